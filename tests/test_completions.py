"""Shell completion: the checked-in scripts are current, and real bash completes through the real cancelctl.

The bash tests source ``completions/cancelctl`` in ``bash --norc``, fill in
COMP_WORDS/COMP_CWORD/COMP_LINE/COMP_POINT as readline would for a TAB,
call the function ``complete -p cancelctl`` names, and read COMPREPLY. The
function runs the ``cancelctl`` executable of this venv (found on PATH),
which answers from a temporary config file.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from cancelctl.cli.completion import FILES, script
from cancelctl.generate import COMMAND, completion_files

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PROFILES = {
    "main": {"venue": "gemini"},
    "desk-2": {"venue": "gemini", "account": "desk-2"},
    "pac": {"venue": "pacifica"},
}


@pytest.mark.parametrize("shell", sorted(FILES))
def test_checked_in_script_is_current(shell):
    name = FILES[shell][0]
    path = ROOT / "completions" / name
    assert path.is_file(), f"completions/{name} is missing: run `{COMMAND}`"
    assert path.read_bytes() == script(shell).encode(), f"completions/{name} is stale: run `{COMMAND}`"


def test_generator_writes_exactly_the_three_scripts():
    assert sorted(completion_files()) == sorted(f"completions/{name}" for name, _ in FILES.values())
    assert sorted(p.name for p in (ROOT / "completions").iterdir()) == sorted(name for name, _ in FILES.values())


@pytest.mark.parametrize("shell", sorted(FILES))
def test_completion_command_prints_the_checked_in_file(env, shell):
    proc = env.run("completion", shell)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == (ROOT / "completions" / FILES[shell][0]).read_text()
    assert proc.stderr == ""


def test_unknown_shell_is_a_usage_error(env):
    proc = env.run("completion", "tcsh")
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "tcsh" in proc.stderr and "bash" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_wheel_installs_each_script_where_its_shell_looks():
    data_files = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["data-files"]
    assert data_files == {target: [f"completions/{name}"] for name, target in FILES.values()}
    assert set(data_files) == {
        "share/bash-completion/completions",
        "share/zsh/site-functions",
        "share/fish/vendor_completions.d",
    }


def bash_complete(env, words: list[str], extra_env: dict | None = None) -> subprocess.CompletedProcess:
    """Press TAB after ``words`` (the last one is the word being completed, "" for a new one)."""
    cancelctl = BIN / "cancelctl"
    assert cancelctl.is_file(), f"{cancelctl} is missing: install the project (pip install -e .) first"
    line = " ".join(words)
    program = f"""
        source {shlex.quote(str(ROOT / "completions" / FILES["bash"][0]))}
        spec=$(complete -p cancelctl) || exit 90
        func=$(sed -E 's/.* -F ([^ ]+) .*/\\1/' <<<"$spec")
        COMP_WORDS=({" ".join(shlex.quote(w) for w in words)})
        COMP_CWORD={len(words) - 1}
        COMP_LINE={shlex.quote(line)}
        COMP_POINT=${{#COMP_LINE}}
        "$func" cancelctl {shlex.quote(words[-1])} {shlex.quote(words[-2])}
        printf '%s\\n' "${{COMPREPLY[@]}}"
    """
    e = env.environ()
    e["PATH"] = f"{BIN}{os.pathsep}{e.get('PATH', '')}"
    e.update(extra_env or {})
    return subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", program], capture_output=True, text=True, env=e, timeout=60
    )


def replies(proc: subprocess.CompletedProcess) -> list[str]:
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    return [w for w in proc.stdout.splitlines() if w]


def test_bash_completes_a_command(env):
    assert replies(bash_complete(env, ["cancelctl", "ca"])) == ["cancel"]
    assert set(replies(bash_complete(env, ["cancelctl", "p"]))) == {"panic", "positions", "profiles"}
    assert set(replies(bash_complete(env, ["cancelctl", "cancel", ""]))) == {"all", "session", "order", "pacifica"}


def test_bash_completes_profile_names_from_the_config_file(env):
    env.write_config(PROFILES)
    assert sorted(replies(bash_complete(env, ["cancelctl", "cancel", "all", "-p", ""]))) == sorted(PROFILES)
    assert replies(bash_complete(env, ["cancelctl", "panic", "--profile", "d"])) == ["desk-2"]
    assert replies(bash_complete(env, ["cancelctl", "cancel", "all", "-p", "main", "-p", "pa"])) == ["pac"]


@pytest.mark.parametrize("command", [["keys", "set"], ["keys", "delete"], ["profiles", "remove"]])
def test_bash_completes_the_profile_argument(env, command):
    env.write_config(PROFILES)
    assert sorted(replies(bash_complete(env, ["cancelctl", *command, ""]))) == sorted(PROFILES)


def test_profile_completion_needs_no_keyring(env):
    """The keyring backend that fails every call, and a keyring module that cannot even be found."""
    env.write_config(PROFILES)
    stub = env.root / "no-keyring"
    (stub / "keyring").mkdir(parents=True)
    (stub / "keyring" / "__init__.py").write_text("raise ImportError('completion must not import keyring')\n")
    proc = bash_complete(
        env,
        ["cancelctl", "cancel", "all", "-p", ""],
        extra_env={"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring", "PYTHONPATH": str(stub)},
    )
    assert sorted(replies(proc)) == sorted(PROFILES)


def test_completion_imports_neither_keyring_nor_httpx(env):
    """The whole completion request, in-process, with keyring and httpx (the only way to the network) unimportable."""
    env.write_config(PROFILES)
    program = """
import sys
class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("keyring", "httpx", "httpcore", "socket", "ssl"):
            raise ImportError("completion imported " + name)
sys.meta_path.insert(0, Refuse())
for m in [m for m in sys.modules if m.split(".")[0] in ("socket", "ssl")]:
    del sys.modules[m]
from cancelctl.main import run
run([])
"""
    e = env.environ()
    e.update(_CANCELCTL_COMPLETE="complete_bash", COMP_WORDS="cancelctl cancel all -p ", COMP_CWORD="4")
    proc = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, env=e, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert sorted(proc.stdout.split()) == sorted(PROFILES)
    assert proc.stderr == ""


@pytest.mark.parametrize(
    ("config", "offered"),
    [
        ("this is [not toml\n", []),
        # one unusable table is one broken profile, not a broken file: its name is still offered (the trader may be
        # typing `profiles remove x`), and the others' names too
        ('[profiles.x]\nvenue = "kraken"\n[profiles.y]\nvenue = "gemini"\n', ["x", "y"]),
    ],
)
def test_a_broken_config_completes_nothing_and_says_nothing(env, config, offered):
    env.config_dir.mkdir(parents=True)
    (env.config_dir / "config.toml").write_text(config)
    assert sorted(replies(bash_complete(env, ["cancelctl", "cancel", "all", "-p", ""]))) == offered
