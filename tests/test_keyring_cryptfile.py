"""The encrypted-file keyring (extra ``cryptfile``: keyrings.cryptfile) through the real process.

Selected explicitly with PYTHON_KEYRING_BACKEND; the passphrase comes from
$CANCELCTL_KEYRING_PASSPHRASE or $CANCELCTL_KEYRING_PASSPHRASE_FILE and is
never prompted for: without it the run exits 78 at once with the variable's
name, and nothing resembling a prompt is printed. The processes run in a
new session (no controlling terminal), as under cron, so a getpass prompt
would show up on stderr instead of waiting on the developer's terminal.
"""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import zygote

from conftest import GEMINI_KEY, SECRETS_USED, collect

pytest.importorskip(
    "keyrings.cryptfile.cryptfile", reason="the cryptfile extra is not installed (pip install -e '.[test]')"
)

BACKEND = "keyrings.cryptfile.cryptfile.CryptFileKeyring"
# The same backend at the cheapest Argon2 costs (tests/cheap_cryptfile.py): the real class costs about 1.3 s of
# CPU per access, three or more per process, under cancelctl's 5 s bound on a keyring call: next to the other
# workers' tests that bound is close. test_chained_... (chained in by keyring itself) keeps the real class.
CHEAP = {"PYTHON_KEYRING_BACKEND": "cheap_cryptfile.CheapCryptFileKeyring", "PYTHONPATH": str(Path(__file__).parent)}
PASSPHRASE = "correct horse battery staple 8d1f"
SECRET = "cryptfile-test-secret-2b7e151628aed2a6"
PROMPTS = ("password", "passphrase:", "Warning", "echo")


@pytest.fixture
def setup(sim, env):
    sim.gemini.add_key(GEMINI_KEY, SECRET)
    env.write_config({"main": {"venue": "gemini", "base_url": sim.url}})
    SECRETS_USED.update({SECRET, PASSPHRASE})
    return sim


def run(
    env,
    *args: str,
    input: str | None = None,
    passphrase: str | None = PASSPHRASE,
    extra: dict | None = None,
    cheap: bool = True,
):
    """The real process, cryptfile selected (``cheap``: at the cheapest Argon2 costs), no controlling terminal (like
    cron); returns (proc, seconds)."""
    environ = env.environ()
    environ.update(PYTHON_KEYRING_BACKEND=BACKEND, XDG_DATA_HOME=str(env.root / "data"))
    if cheap:
        environ.update(CHEAP)
    if passphrase is not None:
        environ["CANCELCTL_KEYRING_PASSPHRASE"] = passphrase
    environ.update(extra or {})
    environ = {k: v for k, v in environ.items() if v is not None}  # None: unset it
    start = time.monotonic()
    proc = zygote.run(
        [sys.executable, "-m", "cancelctl", *args],
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=environ,
        timeout=60,
        start_new_session=True,
    )
    collect(" ".join(args) + " (cryptfile)", proc.stdout + proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc, time.monotonic() - start


def keyring_file(env):
    return env.root / "data" / "python_keyring" / "cryptfile_pass.cfg"


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """A keyring file holding profile main's secrets, written once by the real ``keys set`` (each Argon2 key
    derivation costs about a second, so tests that only need a stored key copy this file)."""
    from conftest import Env

    template = Env(tmp_path_factory.mktemp("cryptfile-template"))
    (template.root / "home").mkdir()
    template.write_config({"main": {"venue": "gemini", "base_url": "http://127.0.0.1:9"}})
    SECRETS_USED.update({SECRET, PASSPHRASE})
    proc, _ = run(template, "keys", "set", "main", input=f"{GEMINI_KEY}\n{SECRET}\n")
    assert proc.returncode == 0, proc.stderr
    return keyring_file(template).read_bytes()


def install(env, stored: bytes) -> None:
    """Profile main's secrets in ``env``'s encrypted-file keyring, as ``keys set`` left them."""
    path = keyring_file(env)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(stored)
    path.chmod(0o600)


def test_keys_set_then_cancel_all(setup, env):
    order = setup.gemini.add_order("primary", "UI")
    proc, _ = run(env, "keys", "set", "main", input=f"{GEMINI_KEY}\n{SECRET}\n")
    assert proc.returncode == 0, proc.stderr
    path = keyring_file(env)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = path.read_text()
    assert SECRET not in stored and GEMINI_KEY not in stored and PASSPHRASE not in stored  # encrypted
    proc, _ = run(env, "keys", "list")
    assert proc.returncode == 0 and "api_key=keyring" in proc.stdout and "api_secret=keyring" in proc.stdout, (
        proc.stderr
    )
    proc, _ = run(env, "cancel", "all", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["results"][0]["cancelled"] == [str(order)]
    assert setup.gemini.open_orders() == []
    for p in (proc,):
        assert SECRET not in p.stdout + p.stderr and PASSPHRASE not in p.stdout + p.stderr


def test_passphrase_from_a_file(setup, env, tmp_path, stored):
    install(env, stored)
    phrase_file = tmp_path / "passphrase"
    phrase_file.write_text(PASSPHRASE + "\n")  # a trailing newline, as editors leave it
    setup.gemini.add_order("primary", "UI")
    proc, _ = run(env, "cancel", "all", passphrase=None, extra={"CANCELCTL_KEYRING_PASSPHRASE_FILE": str(phrase_file)})
    assert proc.returncode == 0, proc.stderr
    assert setup.gemini.open_orders() == []


def test_no_passphrase_is_78_at_once_and_never_a_prompt(setup, env, stored):
    install(env, stored)
    setup.gemini.add_order("primary", "UI")
    for args in (("cancel", "all"), ("cancel", "all", "--json"), ("panic",), ("keys", "list")):
        proc, seconds = run(env, *args, passphrase=None)
        assert seconds < 8, f"{args}: took {seconds:.1f} s"  # no waiting on a prompt, no deadline run out
        out = proc.stdout + proc.stderr
        assert "CANCELCTL_KEYRING_PASSPHRASE" in out, out
        assert not any(p in out for p in PROMPTS), out
        if args[0] != "keys":
            assert proc.returncode == 78, (args, proc.stderr)
            assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert setup.gemini.open_orders() != [] and setup.requests() == []
    # keys set with a pipe and no passphrase: no "set a password for your new keyring" prompt either
    keyring_file(env).unlink()
    proc, _ = run(env, "keys", "set", "main", input=f"{GEMINI_KEY}\n{SECRET}\n", passphrase=None)
    assert proc.returncode == 78 and "CANCELCTL_KEYRING_PASSPHRASE" in proc.stderr
    assert not any(p in proc.stdout + proc.stderr for p in PROMPTS)
    assert not keyring_file(env).exists()


def test_wrong_passphrase_is_78_without_traceback(setup, env, stored):
    install(env, stored)
    wrong = "not the passphrase at all 51c"
    SECRETS_USED.add(wrong)
    proc, _ = run(env, "cancel", "all", passphrase=wrong)
    assert proc.returncode == 78
    assert "wrong passphrase" in proc.stderr and wrong not in proc.stderr + proc.stdout
    assert setup.requests() == []


def test_environment_still_wins_over_the_file_keyring(setup, env):
    """With every secret in the environment the keyring (and its passphrase) is never needed."""
    setup.gemini.add_order("primary", "UI")
    proc, _ = run(
        env,
        "cancel",
        "all",
        passphrase=None,
        extra={"CANCELCTL_MAIN_API_KEY": GEMINI_KEY, "CANCELCTL_MAIN_API_SECRET": SECRET},
    )
    assert proc.returncode == 0, proc.stderr
    assert not keyring_file(env).exists()


def test_selected_through_keyringrc_cfg(setup, env):
    """keyring's own config file selects it as well as PYTHON_KEYRING_BACKEND does."""
    config_home = env.root / "xdg-config"
    (config_home / "python_keyring").mkdir(parents=True)
    cheap = CHEAP["PYTHON_KEYRING_BACKEND"]
    (config_home / "python_keyring" / "keyringrc.cfg").write_text(f"[backend]\ndefault-keyring={cheap}\n")
    extra = {"PYTHON_KEYRING_BACKEND": None, "XDG_CONFIG_HOME": str(config_home)}
    proc, _ = run(env, "cancel", "all", passphrase=None, extra=extra)
    assert proc.returncode == 78 and "CANCELCTL_KEYRING_PASSPHRASE" in proc.stderr, proc.stderr
    proc, _ = run(env, "keys", "set", "main", input=f"{GEMINI_KEY}\n{SECRET}\n", extra=extra)
    assert proc.returncode == 0, proc.stderr
    assert keyring_file(env).exists()
    setup.gemini.add_order("primary", "UI")
    proc, _ = run(env, "cancel", "all", extra=extra)
    assert proc.returncode == 0, proc.stderr
    assert setup.gemini.open_orders() == []


def test_chained_without_a_file_keys_set_asks_for_the_passphrase_before_the_secrets(setup, env):
    """The encrypted-file keyring chained in by keyring itself (installed with the extra, nothing selected): its
    file does not exist yet, so a read does not prompt, but the write of `keys set` would create it and prompt
    "Please set a password for your new keyring" after the secrets were given. Without the passphrase: 78 naming
    the variable, no prompt, no file; with it: stored in that file, and the next cancel reads it."""
    chained = {"PYTHON_KEYRING_BACKEND": "keyring.backends.chainer.ChainerBackend"}
    proc, _ = run(
        env, "keys", "set", "main", input=f"{GEMINI_KEY}\n{SECRET}\n", passphrase=None, extra=chained, cheap=False
    )
    assert proc.returncode == 78 and "CANCELCTL_KEYRING_PASSPHRASE" in proc.stderr, proc.stderr
    assert not any(p in proc.stdout + proc.stderr for p in PROMPTS), proc.stderr
    assert not keyring_file(env).exists()
    proc, _ = run(env, "keys", "set", "main", input=f"{GEMINI_KEY}\n{SECRET}\n", extra=chained, cheap=False)
    assert proc.returncode == 0, proc.stderr
    assert keyring_file(env).exists() and SECRET.encode() not in keyring_file(env).read_bytes()
    setup.gemini.add_order("primary", "UI")
    proc, _ = run(env, "cancel", "all", extra=chained, cheap=False)
    assert proc.returncode == 0, proc.stderr
    assert setup.gemini.open_orders() == []


def test_a_subclass_with_its_own_passphrase_source_is_left_alone(setup, env):
    """A CryptFileKeyring subclass that gets its passphrase itself (it overrides how the class asks for it) works
    without $CANCELCTL_KEYRING_PASSPHRASE, as it did before subclasses were recognised: cancelctl demanded the
    variable of it (78) and never let it unlock."""
    own = {
        "PYTHON_KEYRING_BACKEND": "cheap_cryptfile.SelfUnlockingCryptFileKeyring",
        "_CANCELCTL_TEST_OWN_PASSPHRASE": PASSPHRASE,
    }
    proc, _ = run(env, "keys", "set", "main", input=f"{GEMINI_KEY}\n{SECRET}\n", passphrase=None, extra=own)
    assert proc.returncode == 0, proc.stderr
    proc, _ = run(env, "keys", "list", passphrase=None, extra=own)
    assert proc.returncode == 0 and "api_secret=keyring" in proc.stdout, proc.stderr
