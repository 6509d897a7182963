"""Keys and profiles (issue 15, item 9): a keyring that cannot store is said before any secret is asked for, a
swapped Gemini key and secret are caught before they are stored or sent, `profiles remove` takes the secrets with
it, headers on a terminal, a Pacifica base URL ends in /api/v1. The real process."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conftest import GEMINI_KEY, SECRETS_USED, pacifica_keypair, run_on_pty

SECRET = "keys-profiles-secret-9a0c7e55d1"
SECRETS_USED.add(SECRET)


def on_terminal(env, *args: str, extra_env: dict | None = None, seconds: float = 30) -> tuple[int | None, str]:
    """Run cancelctl with stdin, stdout and stderr on a pseudo terminal and no controlling terminal; type nothing.

    Returns (exit code, everything it wrote); the exit code is None when it was still running after ``seconds``
    (waiting for input nobody gives), and it is then killed.
    """
    return run_on_pty(env, *args, seconds=seconds, stdin=True, extra_env=extra_env)


def keyring(env) -> dict:
    """The environment of a process whose OS keyring is tests/file_keyring.py's (one file per test)."""
    return {
        "PYTHON_KEYRING_BACKEND": "file_keyring.FileKeyring",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parent), os.environ.get("PYTHONPATH")])),
        "FILE_KEYRING_PATH": str(env.root / "keyring.json"),
    }


def stored(env) -> dict:
    path = env.root / "keyring.json"
    return json.loads(path.read_text()) if path.exists() else {}


@pytest.fixture
def main(env, sim):
    """A Gemini profile ``main`` on the simulator, no secrets anywhere yet."""
    sim.gemini.add_key(GEMINI_KEY, SECRET)
    env.write_config({"main": {"venue": "gemini", "base_url": sim.url}})
    return sim


# -- keys set -------------------------------------------------------------------------------------------------------


def test_keys_set_without_a_keyring_says_so_before_asking(main, env):
    code, text = on_terminal(env, "keys", "set", "main")  # the tests' default backend: keyring's fail backend
    assert code == 78, text
    assert "no usable OS keyring" in text and "$CANCELCTL_MAIN_API_KEY" in text
    assert "api_key:" not in text  # never prompted


def test_a_swapped_key_and_secret_are_not_stored(main, env):
    extra = keyring(env)
    proc = env.run("keys", "set", "main", input=f"{SECRET}\n{GEMINI_KEY}\n", extra_env=extra)
    assert proc.returncode == 78, proc.stderr
    assert "look swapped" in proc.stderr and "nothing was stored" in proc.stderr
    listed = env.run("keys", "list", extra_env=extra)
    assert listed.returncode == 0 and "api_key=missing" in listed.stdout, listed.stdout
    assert stored(env) == {}
    # the right order is stored, and then it cancels
    proc = env.run("keys", "set", "main", input=f"{GEMINI_KEY}\n{SECRET}\n", extra_env=extra)
    assert proc.returncode == 0, proc.stderr
    order = main.gemini.add_order()
    assert env.run("cancel", "all", extra_env=extra).returncode == 0
    assert order not in [o.order_id for o in main.gemini.open_orders()]


def test_swapped_environment_variables_are_never_sent(env, sim):
    """The secret in $..._API_KEY: the profile is broken before anything is signed; another profile still cancels."""
    sim.gemini.add_key(GEMINI_KEY, SECRET)
    sim.gemini.add_key("account-OTHERkey0123456789", "other-secret-0123456789", account="other")
    env.write_config({n: {"venue": "gemini", "base_url": sim.url} for n in ("main", "other")})
    env.secret("main", "api_key", SECRET)
    env.secret("main", "api_secret", GEMINI_KEY)
    env.secret("other", "api_key", "account-OTHERkey0123456789")
    env.secret("other", "api_secret", "other-secret-0123456789")
    mine, theirs = sim.gemini.add_order(), sim.gemini.add_order(account="other")
    proc = env.run("panic", "--json")
    assert proc.returncode == 3, proc.stderr
    assert "look swapped" in proc.stdout
    assert "swap $CANCELCTL_MAIN_API_KEY and $CANCELCTL_MAIN_API_SECRET" in proc.stdout
    # the API key header of every request the simulator saw: the other profile's key only
    assert {r.get("key") for r in sim.requests()} == {"account-OTHERkey0123456789"}
    assert [o.order_id for o in sim.gemini.open_orders()] == [mine] and theirs != mine


# -- profiles remove --------------------------------------------------------------------------------------------------


def test_profiles_remove_takes_the_keyring_entry(main, env):
    extra = keyring(env)
    assert env.run("keys", "set", "main", input=f"{GEMINI_KEY}\n{SECRET}\n", extra_env=extra).returncode == 0
    proc = env.run("profiles", "remove", "main", extra_env=extra)
    assert proc.returncode == 0 and "and its keyring entry" in proc.stderr, proc.stderr
    assert stored(env) == {}
    # the same name again finds nothing stored
    env.write_config({"main": {"venue": "gemini", "base_url": main.url}})
    listed = env.run("keys", "list", extra_env=extra)
    assert "api_key=missing" in listed.stdout and "api_secret=missing" in listed.stdout, listed.stdout


def test_profiles_remove_keep_secrets(main, env):
    extra = keyring(env)
    assert env.run("keys", "set", "main", input=f"{GEMINI_KEY}\n{SECRET}\n", extra_env=extra).returncode == 0
    proc = env.run("profiles", "remove", "main", "--keep-secrets", extra_env=extra)
    assert proc.returncode == 0 and "cancelctl keys delete main" in proc.stderr, proc.stderr
    env.write_config({"main": {"venue": "gemini", "base_url": main.url}})
    assert "api_key=keyring" in env.run("keys", "list", extra_env=extra).stdout


def test_profiles_remove_says_what_remains(main, env):
    env.secret("main", "api_key", GEMINI_KEY)
    proc = env.run("profiles", "remove", "main")  # the fail backend: nothing can be deleted here
    assert proc.returncode == 0, proc.stderr
    assert "but not its secrets" in proc.stderr and "cancelctl keys delete main" in proc.stderr
    assert "unset CANCELCTL_MAIN_API_KEY" in proc.stderr and "API_SECRET" not in proc.stderr
    assert env.run("profiles", "list").stdout == ""


# -- lists and add ----------------------------------------------------------------------------------------------------


def test_lists_have_headers_on_a_terminal_only(main, env):
    env.secret("main", "api_key", GEMINI_KEY)
    env.secret("main", "api_secret", SECRET)
    code, text = on_terminal(env, "profiles", "list")
    assert code == 0 and text.splitlines()[0].split()[:4] == ["PROFILE", "VENUE", "ENVIRONMENT", "ACCOUNT"], text
    assert text.splitlines()[1].split()[:2] == ["main", "gemini"] and "\t" not in text
    code, text = on_terminal(env, "keys", "list")
    assert code == 0 and text.splitlines()[0].startswith("PROFILE"), text
    assert "api_key=env" in text.splitlines()[1]
    piped = env.run("profiles", "list")
    assert piped.stdout.split("\t")[:2] == ["main", "gemini"] and "PROFILE" not in piped.stdout
    assert "PROFILE" not in env.run("keys", "list").stdout


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080", "http://127.0.0.1:8080/api", "http://127.0.0.1:8080/v1/"])
def test_a_pacifica_base_url_ends_in_api_v1(env, url):
    env.write_config({})
    proc = env.run("profiles", "add", "pac", "--venue", "pacifica", "--base-url", url)
    assert proc.returncode == 2 and "ends in /api/v1" in proc.stderr, proc.stderr
    assert f"--base-url {url.rstrip('/')}/api/v1" in proc.stderr
    assert env.run("profiles", "list").stdout == ""
    good = env.run("profiles", "add", "pac", "--venue", "pacifica", "--base-url", url.rstrip("/") + "/api/v1")
    assert good.returncode == 0 and env.run("profiles", "list").stdout.startswith("pac*\tpacifica"), good.stderr


BROKEN_CONFIG = """\
default_profile = "gone"

[profiles.good]
venue = "gemini"
base_url = "http://127.0.0.1:9"

[profiles.bad]
venue = "krakken"
api_secret = "not-a-secret-but-a-misplaced-key"

[profiles.odd]
venue = "pacifica"
environment = "moonnet"
"""


def test_one_broken_profile_never_blocks_listing_adding_removing_or_storing_the_others(env):
    """Contract: a broken profile never disarms the others. `profiles`/`keys` commands went 78 for every profile
    when one table was unusable, so even `profiles remove bad` (the fix) could not run."""
    import tomllib

    env.config_dir.mkdir(parents=True)
    path = env.config_dir / "config.toml"
    path.write_text(BROKEN_CONFIG)
    listed = env.run("profiles", "list")
    names = [line.split("\t")[:3] for line in listed.stdout.splitlines()]
    assert names == [["good", "gemini", "production"], ["bad", "krakken", "broken"], ["odd", "pacifica", "broken"]]
    assert listed.returncode == 78, listed.stderr
    assert "profile 'bad'" in listed.stderr and "moonnet" in listed.stderr and "'gone'" in listed.stderr
    keys = env.run("keys", "list")
    assert [line.split("\t")[0] for line in keys.stdout.splitlines()] == ["good", "bad", "odd"]
    assert keys.returncode == 78 and "Traceback" not in keys.stderr
    refused = env.run("keys", "set", "bad", input="a\nb\n")  # its own table is the problem: said, nothing stored
    assert refused.returncode == 78 and "krakken" in refused.stderr
    added = env.run("profiles", "add", "new", "--venue", "gemini")
    assert added.returncode == 0, added.stderr
    data = tomllib.loads(path.read_text())
    # what the user wrote in the broken tables (and the invalid default) is kept as written, not rewritten
    assert data["profiles"]["bad"] == {"venue": "krakken", "api_secret": "not-a-secret-but-a-misplaced-key"}
    assert data["profiles"]["odd"] == {"venue": "pacifica", "environment": "moonnet"}
    assert data["default_profile"] == "gone" and "new" in data["profiles"]
    removed = env.run("profiles", "remove", "bad")
    assert removed.returncode == 0, removed.stderr
    assert "bad" not in tomllib.loads(path.read_text())["profiles"]


def test_a_broken_profile_does_not_stop_the_heartbeat_of_another(env):
    env.config_dir.mkdir(parents=True)
    (env.config_dir / "config.toml").write_text(BROKEN_CONFIG)
    # no secrets: the heartbeat gets as far as the good profile's credentials (78 naming them), not the bad table
    proc = env.run("heartbeat", "-p", "good", timeout=30)
    assert proc.returncode == 78 and "CANCELCTL_GOOD_API_KEY" in proc.stderr and "krakken" not in proc.stderr
    mine = env.run("heartbeat", "-p", "bad", timeout=30)
    assert mine.returncode == 78 and "krakken" in mine.stderr and "Traceback" not in mine.stderr


def test_keys_set_checks_a_pacifica_key_before_storing_it(env):
    """keys set on a Pacifica profile: a usable secret key is stored; text that is no Solana secret key is refused
    (78) and nothing is stored (the venue description's secret check)."""
    env.write_config({"pac": {"venue": "pacifica"}})
    extra = keyring(env)
    proc = env.run("keys", "set", "pac", input="not-a-base58-key\n", extra_env=extra)
    assert proc.returncode == 78 and "not base58" in proc.stderr, proc.stderr
    assert stored(env) == {}
    secret, _ = pacifica_keypair(41)
    SECRETS_USED.add(secret)
    proc = env.run("keys", "set", "pac", input=f"{secret}\n", extra_env=extra)
    assert proc.returncode == 0, proc.stderr
    assert secret in json.dumps(stored(env))
