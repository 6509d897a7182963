"""The suite's forked cancelctl processes (tests/zygote.py) behave as fresh interpreters do.

Each scenario runs the same command line, with the same environment and the same simulator
state, once forked from the zygote and once in a fresh ``python -m cancelctl``, and compares exit
status, stdout and stderr (timings aside). The last test holds :data:`zygote.RUN_TIME_VARIABLES`
to what the preloaded modules really read at import time.
"""

from __future__ import annotations

import ast
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import zygote

from conftest import GEMINI_KEY, GEMINI_SECRET

pytestmark = pytest.mark.skipif(zygote.fresh_only(), reason="CANCELCTL_TESTS_FRESH: nothing is forked")

TIMINGS = re.compile(r'("elapsed_ms": |"ms": |\b)\d+(\.\d+)?( ?ms\b|(?=,?\n))')
SIGNED = re.compile(r"[A-Za-z0-9+/=]{40,}|\b1[0-9]{12}\b")  # a dry run's signed payload, signature and nonce


def normal(text: str) -> str:
    return SIGNED.sub("S", TIMINGS.sub("T", text))


def both(env, *args: str, input: str | None = None) -> tuple[subprocess.CompletedProcess, subprocess.CompletedProcess]:
    """The command run forked, then fresh; each with the test's environment."""
    cmd = [sys.executable, "-m", "cancelctl", *args]
    kwargs = dict(env=env.environ(), capture_output=True, text=True, timeout=60, input=input)
    forked_before = zygote.counts()[0]
    forked = zygote.run(cmd, **kwargs)
    assert zygote.counts()[0] == forked_before + 1, "the zygote did not fork it"
    fresh = subprocess.run(cmd, **kwargs)
    return forked, fresh


def same(forked: subprocess.CompletedProcess, fresh: subprocess.CompletedProcess) -> None:
    assert forked.returncode == fresh.returncode, (forked.stderr, fresh.stderr)
    assert normal(forked.stdout) == normal(fresh.stdout)
    assert normal(forked.stderr) == normal(fresh.stderr)


@pytest.mark.parametrize(
    "args",
    [
        ("--version",),
        ("--help",),
        ("cancel", "--help"),
        ("cancl", "all"),  # a typo: usage error with a suggestion, exit 2
        ("cancel", "order", "not-an-id"),
        ("cancel", "all", "--timeout", "nan", "--json"),
        ("profiles", "list"),
        ("orders", "--json"),
        ("cancel", "all", "--dry-run", "--json"),
    ],
)
def test_a_forked_process_answers_as_a_fresh_one(gemini, env, args):
    forked, fresh = both(env, *args)
    same(forked, fresh)


def test_cancelling_forked_and_fresh(gemini, env, sim):
    """The same book cancelled twice, once each way: the same rows, the same JSON but for timings."""
    sim.gemini.add_order()
    sim.gemini.add_order()
    forked = env.run("cancel", "all", "--json")
    sim.gemini._ids = itertools.count(330429000)  # the same order IDs again
    sim.gemini.add_order()
    sim.gemini.add_order()
    fresh = subprocess.run(
        [sys.executable, "-m", "cancelctl", "cancel", "all", "--json"],
        env=env.environ(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    same(forked, fresh)
    assert json.loads(forked.stdout)["results"][0]["cancelled_count"] == 2


def test_standard_input_reaches_a_forked_process(env):
    """``keys set`` reads a pasted secret from a pipe: the forked process reads the test's pipe, not the zygote's."""
    env.write_config({"main": {"venue": "gemini", "base_url": "http://127.0.0.1:9"}})
    forked, fresh = both(env, "keys", "set", "main", input=f"{GEMINI_KEY}\n{GEMINI_SECRET}\n")
    same(forked, fresh)


def test_a_signal_reaches_the_forked_process(gemini, env):
    """SIGTERM to the pid a forked Popen reports ends that process, with cancelctl's own exit code for it."""
    codes = []
    for make in (zygote.Popen, subprocess.Popen):
        proc = make(
            [sys.executable, "-m", "cancelctl", "deadman", "--ttl", "30", "--file", str(env.root / "beat")],
            env=env.environ(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        beat = env.root / "beat"
        end = time.monotonic() + 30  # armed: deadman creates its check-in file once its handlers are in place
        while not beat.exists() and proc.poll() is None and time.monotonic() < end:
            time.sleep(0.02)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
        codes.append(proc.returncode)
        beat.unlink()
    assert codes[0] == codes[1]


def test_another_interpreter_environment_is_started_fresh(env):
    """A variable read at import time (typer's FORCE_COLOR) differing from the zygote's: no fork."""
    before = zygote.counts()
    proc = zygote.run(
        [sys.executable, "-m", "cancelctl", "--version"],
        env={**env.environ(), "FORCE_COLOR": "1", "PYTHONHASHSEED": "7"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0
    assert zygote.counts() == (before[0], before[1] + 1)


def _env_reads(path: str) -> list[tuple[int, set[str]]]:
    """Module- and class-level statements of ``path`` that touch ``os.environ``/``getenv``, with their strings."""
    text = open(path, encoding="utf-8").read()
    found: list[tuple[int, set[str]]] = []
    if "environ" not in text and "getenv" not in text:
        return found

    def walk(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            if isinstance(node, ast.ClassDef):
                walk(node.body)
                continue
            names = {getattr(n, "attr", getattr(n, "id", None)) for n in ast.walk(node)}
            if names & {"environ", "getenv"}:
                strings = {n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
                found.append((node.lineno, strings))

    walk(ast.parse(text).body)
    return found


def test_no_preloaded_module_reads_a_run_time_variable_at_import():
    """Every module the zygote holds, scanned: no import-time read of a variable a forked process may change."""
    listing = subprocess.run(
        [sys.executable, "-c", "import json, sys, zygote; zygote._preload(); "
         "print(json.dumps([getattr(m, '__file__', None) for m in list(sys.modules.values())]))"],
        cwd="tests", capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    files = sorted({f for f in json.loads(listing.stdout) if f and f.endswith(".py")})
    assert any(f.endswith("cancelctl/main.py") for f in files) and len(files) > 200
    offending = []
    for path in files:
        for line, strings in _env_reads(path):
            keys = {s for s in strings if s in zygote.RUN_TIME_VARIABLES or s.startswith(zygote.RUN_TIME_PREFIXES)}
            if keys:
                offending.append(f"{path}:{line} {sorted(keys)}")
    assert offending == []


@pytest.mark.parametrize("attribute", ["umask", "ignored-signal", "blocked-signal", "file-size-limit"])
def test_a_process_attribute_of_the_test_s_own_is_started_fresh(env, attribute):
    """What a fresh child inherits from the test process besides its environment (its umask, a signal it ignores or
    blocks: a fresh ``python`` keeps SIGINT ignored; a resource limit) the fork would take from the zygote instead:
    such a process is started fresh, and it sees the test's attribute, not the zygote's."""
    import os
    import resource

    probe = {
        "umask": ("import os; m = os.umask(0); print(oct(m))", lambda: oct(0o027)),
        "ignored-signal": ("import signal; print(signal.getsignal(signal.SIGINT) is signal.SIG_IGN)", lambda: "True"),
        "blocked-signal": ("import signal; print(signal.SIGUSR2 in signal.pthread_sigmask(0, []))", lambda: "True"),
        "file-size-limit": ("import resource; print(resource.getrlimit(resource.RLIMIT_FSIZE)[0])", lambda: "1000000"),
    }[attribute]
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_mask = os.umask(0o027) if attribute == "umask" else None
    old_handler = signal.signal(signal.SIGINT, signal.SIG_IGN) if attribute == "ignored-signal" else None
    if attribute == "blocked-signal":
        signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR2])
    if attribute == "file-size-limit":
        resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, hard))
    try:
        before = zygote.counts()
        proc = zygote.run(
            [sys.executable, "-m", "cancelctl", "--version"],
            env=env.environ(), capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        seen = subprocess.run([sys.executable, "-c", probe[0]], capture_output=True, text=True, timeout=60).stdout
    finally:
        if old_mask is not None:
            os.umask(old_mask)
        if old_handler is not None:
            signal.signal(signal.SIGINT, old_handler)
        if attribute == "blocked-signal":
            signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGUSR2])
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert proc.returncode == 0, proc.stderr
    assert zygote.counts() == (before[0], before[1] + 1)
    assert seen.strip() == probe[1]()  # what a fresh child of the test process sees
    after = zygote.counts()
    proc = zygote.run([sys.executable, "-m", "cancelctl", "--version"], env=env.environ(), capture_output=True,
                      text=True, timeout=60)  # fmt: skip
    assert zygote.counts() == (after[0] + 1, after[1])  # the attribute restored: forked again


def test_a_zygote_that_died_is_replaced(env):
    """A zygote killed (the OOM killer, a stray kill) does not turn every later process of the worker into an
    error: the next process starts a new zygote and is forked from it."""
    old = zygote._Zygote.process
    assert old is not None
    old.kill()
    old.wait(timeout=10)
    before = zygote.counts()
    proc = zygote.run([sys.executable, "-m", "cancelctl", "--version"], env=env.environ(), capture_output=True,
                      text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert zygote.counts() == (before[0] + 1, before[1])
    assert zygote._Zygote.process is not old and zygote._Zygote.process.poll() is None


#: A keyring backend module of the tests' own, found only through PYTHONPATH (``zygote_probe_backend.Probe``).
PROBE_BACKEND = (
    "import keyring.backend\n\n"
    "class Probe(keyring.backend.KeyringBackend):\n"
    "    priority = 1\n\n"
    "    def get_password(self, service, username):\n"
    "        return None\n\n"
    "    def set_password(self, service, username, password):\n"
    "        raise RuntimeError('read-only')\n\n"
    "    def delete_password(self, service, username):\n"
    "        raise RuntimeError('read-only')\n"
)


def test_pythonpath_is_on_sys_path_and_a_stand_in_is_started_fresh(env, tmp_path):
    """PYTHONPATH: a forked process finds a module there (as keyring backends of the tests are found), and a directory
    holding a module the zygote has already imported (a stand-in ``keyring``) gets a fresh interpreter, which
    imports the stand-in."""
    if os.environ.get("PYTHONPATH"):  # the zygote was started with it: another PYTHONPATH is always a fresh start
        pytest.skip("the suite itself runs with PYTHONPATH set: the zygote does not emulate it then")
    env.write_config({"main": {"venue": "gemini", "base_url": "http://127.0.0.1:9"}})
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "zygote_probe_backend.py").write_text(PROBE_BACKEND)
    environ = {**env.environ(), "PYTHONPATH": str(extra), "PYTHON_KEYRING_BACKEND": "zygote_probe_backend.Probe"}
    before = zygote.counts()
    forked = zygote.run([sys.executable, "-m", "cancelctl", "keys", "list"], env=environ, capture_output=True,
                        text=True, timeout=60)  # fmt: skip
    fresh = subprocess.run([sys.executable, "-m", "cancelctl", "keys", "list"], env=environ, capture_output=True,
                           text=True, timeout=60)  # fmt: skip
    assert zygote.counts() == (before[0] + 1, before[1])
    same(forked, fresh)
    assert "main" in forked.stdout
    (extra / "keyring").mkdir()
    (extra / "keyring" / "__init__.py").write_text("raise SystemExit('the stand-in keyring was imported')\n")
    before = zygote.counts()
    shadowed = zygote.run([sys.executable, "-m", "cancelctl", "keys", "list"], env=environ, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert zygote.counts() == (before[0], before[1] + 1)
    assert "the stand-in keyring was imported" in shadowed.stderr + shadowed.stdout


@pytest.mark.parametrize("case", ["sitecustomize", "relative", "empty-entry", "zip", "working-directory"])
def test_a_module_a_fresh_interpreter_would_find_first_is_found_by_a_forked_one_too(env, tmp_path, case):
    """Where a fresh ``python -m cancelctl`` finds a module before the zygote's: a ``sitecustomize`` on PYTHONPATH
    (site.py runs it at start-up), a stand-in named by a relative PYTHONPATH entry or an empty one (both relative to
    the working directory), one inside a zip archive on PYTHONPATH, or one in the working directory itself
    (``sys.path[0]`` of ``-m``). The forked process kept the zygote's modules and passed where the fresh one failed."""
    if case != "working-directory" and os.environ.get("PYTHONPATH"):
        pytest.skip("the suite itself runs with PYTHONPATH set: the zygote does not emulate it then")
    import zipfile

    work = tmp_path / "work"
    (work / "lib").mkdir(parents=True)
    stand_in = "raise SystemExit('the stand-in typer was imported')\n"
    environ = env.environ()
    if case == "sitecustomize":
        (work / "lib" / "sitecustomize.py").write_text("import sys\nsys.stderr.write('sitecustomize ran\\n')\n")
        environ["PYTHONPATH"] = str(work / "lib")
    elif case == "relative":
        (work / "lib" / "typer.py").write_text(stand_in)
        environ["PYTHONPATH"] = "lib"
    elif case == "empty-entry":
        (work / "typer.py").write_text(stand_in)
        environ["PYTHONPATH"] = os.pathsep + str(tmp_path)
    elif case == "zip":
        with zipfile.ZipFile(work / "lib.zip", "w") as archive:
            archive.writestr("typer.py", stand_in)
        environ["PYTHONPATH"] = str(work / "lib.zip")
    else:
        (work / "typer.py").write_text(stand_in)
    cmd = [sys.executable, "-m", "cancelctl", "--version"]
    kwargs = dict(env=environ, cwd=str(work), capture_output=True, text=True, timeout=60)
    forked = zygote.run(cmd, **kwargs)
    fresh = subprocess.run(cmd, **kwargs)
    same(forked, fresh)
    assert ("sitecustomize ran" if case == "sitecustomize" else "the stand-in typer was imported") in fresh.stderr


def test_a_relative_pythonpath_entry_is_found_by_a_forked_process(env, tmp_path):
    """A relative PYTHONPATH entry holding a new module: still forked (nothing shadowed), and the module is found
    relative to the process's working directory, as the interpreter makes the entry absolute."""
    if os.environ.get("PYTHONPATH"):
        pytest.skip("the suite itself runs with PYTHONPATH set: the zygote does not emulate it then")
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "zygote_probe_backend.py").write_text(PROBE_BACKEND)
    env.write_config({"main": {"venue": "gemini", "base_url": "http://127.0.0.1:9"}})
    environ = {**env.environ(), "PYTHONPATH": "lib", "PYTHON_KEYRING_BACKEND": "zygote_probe_backend.Probe"}
    before = zygote.counts()
    forked = zygote.run([sys.executable, "-m", "cancelctl", "keys", "list"], env=environ, cwd=str(tmp_path),
                        capture_output=True, text=True, timeout=60)  # fmt: skip
    assert zygote.counts() == (before[0] + 1, before[1])
    assert forked.returncode == 0 and "main" in forked.stdout, forked.stderr


@pytest.mark.parametrize("case", ["nul-in-argument", "nul-in-environment", "missing-directory"])
def test_what_no_process_can_be_started_with_raises_as_subprocess_does(env, tmp_path, case):
    """A NUL in an argument or a variable, or a working directory that does not exist: ``subprocess`` raises before
    any process exists. Forked, the first ran cancelctl with an argument no real process can receive (exit 0), the
    others ended with status 127 and nothing on stderr."""
    args = [sys.executable, "-m", "cancelctl", "--version"] + (["a\0b"] if case == "nul-in-argument" else [])
    environ = {**env.environ(), **({"HTTP_PROXY": "http://a\0b"} if case == "nul-in-environment" else {})}
    cwd = str(tmp_path / "gone") if case == "missing-directory" else None
    with pytest.raises((ValueError, OSError)) as fresh:
        subprocess.run(args, env=environ, cwd=cwd, capture_output=True, timeout=60)
    with pytest.raises(type(fresh.value)):
        zygote.run(args, env=environ, cwd=cwd, capture_output=True, timeout=60)
