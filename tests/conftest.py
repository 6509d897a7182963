"""Shared fixtures: a real simulator on 127.0.0.1, isolated config/state dirs, and the real cancelctl process.

Every server a test starts is on loopback, stops by itself after its
lifetime, and is stopped at teardown. Every cancelctl process runs with a
timeout and with no access to the user's real config, state or keyring.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import zygote

from cancelctl.sim.server import Simulator

# The hostile venue's shared fixtures (venue, gem, pac): tests/hostile.py.
pytest_plugins = ["hostile"]

VECTORS = Path(__file__).parent / "vectors"
GEMINI_KEY = "account-TESTKEYabcdefghij12"
GEMINI_SECRET = "TESTSECRET1234567890abcdefgh"

# Every process's output is collected here (labels for failure messages) and
# scanned for secrets as it is collected: see collect(). Under pytest-xdist each worker has its own
# copies: a test registers its secrets (Env.secret, SECRETS_USED.add) in the worker that runs it, before
# any process that could print them, and module-level registrations run in every worker's collection.
OUTPUTS: list[tuple[str, str]] = []
SECRETS_USED: set[str] = {GEMINI_SECRET}
MIN_SECRET = 8  # characters; shorter "secrets" (test typos) are not scrubbed by cancelctl either
SIGNATURE_HEADER = re.compile(r"X-GEMINI-SIGNATURE\W+[0-9a-f]{96}", re.I)


# Every cancelctl process the suite starts inherits this process's environment. Where that sets
# PYTHONDONTWRITEBYTECODE (this CI machine's does), each of them would compile the checkout's modules from
# source again: about 0.1 s of CPU a process, over a thousand processes. So they may write their bytecode
# (__pycache__, ignored by git; written to a temporary file and renamed into place, so the workers can share
# it); the test process itself is left as it was started. The installed packages' bytecode is pip's, written
# at install. (A PYTHONPYCACHEPREFIX outside the checkout, as before, made every worker's zygote compile all
# of typer, rich, httpx, apprise and hypothesis again on a fresh clone: about 20 s of the suite's wall time.)
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
# The test processes too: each xdist worker imports every test module through pytest's assertion rewriting, which
# caches the rewritten code (tests/__pycache__/*-pytest-*.pyc) only when bytecode may be written. Without it each of
# the six workers rewrote and compiled all of them on every run: about 6 s of CPU a worker.
sys.dont_write_bytecode = False


def _one_certificate_bundle() -> str:
    """A CA bundle of one throwaway certificate (trustme), for every process's ``SSL_CERT_FILE``.

    cancelctl builds its TLS context at the start of every run, from ``SSL_CERT_FILE`` when it is set,
    else certifi's bundle: loading certifi's 150 certificates costs about 45 ms of CPU, a fifth of a test
    process's, and the simulator speaks plain HTTP. Tests about the trust store itself (tests/test_tls.py,
    the CA settings in tests/test_robustness.py) set or unset the variable themselves.
    """
    import atexit
    import shutil

    import trustme

    directory = tempfile.mkdtemp(prefix="cancelctl-tests-ca-")
    atexit.register(shutil.rmtree, directory, True)  # each test process's own; gone with it
    path = os.path.join(directory, "ca.pem")
    trustme.CA().cert_pem.write_to_path(path)
    return path


CA_BUNDLE = _one_certificate_bundle()


# The suite runs in six pytest-xdist workers (pyproject.toml) on two cores: most of a test's time is waiting (for a
# deadline, a trickling answer, a process), and a cancelctl process costs little CPU since it is forked from a
# pre-imported interpreter (tests/zygote.py). Tests that hold the real process to a wall-clock bound (the contract's
# --timeout + 0.5 s, start-up included; a deadman's TTL; a heartbeat's window) and tests that start a burst of
# processes at once form two units of work, "clock-a" and "clock-b", each run one test at a time in one worker:
# at most two of them share the cores at any moment, and a burst of twenty processes never runs next to a deadline
# test of its own unit; the encrypted-file keyring's tests (Argon2, CPU-bound under a 5 s bound) are a third unit.
# xdist starts the units with the most tests first (--loadscope-reorder), so these start at once while the other
# workers take the single tests. Nothing else changes for them: the same processes, the same bounds
# (docs/performance.md, "Test suite time"). The units are made by the scheduler below, not by xdist_group marks:
# with pytest 9.2, --dist loadgroup silently stops grouping (pytest-dev/pytest-xdist#1386).
CLOCK_FILES = {
    "test_faults.py": "clock-a",
    "test_robustness.py": "clock-b",
    # each keyrings.cryptfile read derives its key with Argon2 (about a second of CPU) under cancelctl's 5 s keyring
    # bound: one such test at a time
    "test_keyring_cryptfile.py": "keyring",
    "test_keyring_secret_service.py": "keyring",
}
CLOCK_TESTS = {
    # wall-clock bounds seen to need a free core
    "test_doctor.py::test_stalled_keyring_is_bounded",
    "test_guard.py::test_a_notification_of_a_guarded_panic_waits_for_the_caller_s_answer",
    "test_json_schema.py::test_unknown_outcome",
    "test_outcome_integrity.py::test_an_order_answered_cancelled_but_still_listed_has_one_row_open",
    "test_pacifica_cli.py::test_an_unreadable_book_sends_nothing",
    "test_pacifica_cli.py::test_server_error_is_exit_5",
    "test_pacifica_cli.py::test_unreadable_200_is_exit_5",
    "test_pacifica_cli.py::test_rate_limited_is_exit_75",
    "test_panic.py::test_deadman_fires_within_ttl_plus_one_second_and_not_before",
    "test_panic.py::test_heartbeat_keeps_the_session_alive_past_the_window",
    "test_twap.py::test_verification_catches_a_twap_the_first_listing_missed",
    "test_watch_events.py::test_heartbeat_on_a_terminal_prints_each_beat",
}
BURSTS = {
    # bursts of concurrent processes
    "test_structure.py::test_every_module_imports_alone_in_a_fresh_interpreter",
    "test_gemini_cli.py::test_ten_concurrent_processes_on_one_key_never_fail_on_nonce",
    "test_gemini_cli.py::test_cancel_all_with_many_concurrent_on_one_key",
    "test_venue_shapes.py::test_pacing_is_shared_by_processes_on_one_key",
    "test_tls.py::test_an_exit_while_the_tls_context_is_still_loading_is_clean",
    "test_panic.py::test_audit_log_under_concurrent_runs",
    "test_faults.py::test_twenty_processes_on_one_key",
}


def unit(nodeid: str) -> str:
    """The unit of work of the test ``nodeid`` (``tests/test_x.py::test_name[params]``): its own node ID, or
    "clock-a" (test_faults.py and the bursts), "clock-b" (test_robustness.py and CLOCK_TESTS) or "keyring"."""
    path, _, rest = nodeid.partition("::")
    name = path.rsplit("/", 1)[-1]
    test = f"{name}::{rest.split('[', 1)[0]}"
    if test in BURSTS:
        return "clock-a"
    if test in CLOCK_TESTS:
        return "clock-b"
    return CLOCK_FILES.get(name, nodeid)


def pytest_xdist_make_scheduler(config, log):
    """xdist's load-by-scope scheduler with the units above as scopes."""
    from xdist.scheduler import LoadScopeScheduling

    class Units(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return unit(nodeid)

    return Units(config, log)


def pytest_sessionstart(session):
    """Each worker's zygote (tests/zygote.py) starts before its first test, not inside a test's timed run. The xdist
    controller instead rewrites the test modules once before it starts the workers (:func:`_rewrite_test_modules`)."""
    if not hasattr(session.config, "workerinput") and session.config.getoption("numprocesses", None):
        warming = _warm_hypothesis_caches()  # in a process of its own, while this one rewrites and compiles
        _rewrite_test_modules(session.config)  # the controller starts no cancelctl process
        import compileall

        import cancelctl

        compileall.compile_dir(os.path.dirname(cancelctl.__file__), quiet=1)  # once, not in each worker's zygote
        if warming is not None:
            try:
                warming.wait(timeout=60)
            except subprocess.TimeoutExpired:
                warming.kill()
                warming.wait()
        return
    zygote.start()


#: Run once by the xdist controller before the workers start: hypothesis's tables of the characters a text strategy
#: may draw (every Unicode category's code points, and which of them UTF-8 encodes), which it computes in the first
#: test that draws text and caches in .hypothesis/unicode_data/. Absent on a fresh clone, so each of the six workers
#: computed them at the same moment: about 3 s of CPU a worker (a loop over the 1.1 million code points).
WARM_HYPOTHESIS = """
try:
    from hypothesis.internal import charmap

    charmap.charmap()
    charmap.intervals_from_codec("utf-8")
except Exception as e:  # only a cache: the workers compute what is missing
    print(f"tests/conftest.py: hypothesis's character tables not computed ahead: {type(e).__name__}: {e}")
"""


def _warm_hypothesis_caches() -> subprocess.Popen | None:
    """Start computing hypothesis's character tables (:data:`WARM_HYPOTHESIS`) in the working directory, whose
    .hypothesis/ the workers use; None when no process could be started (each worker computes them, as before)."""
    try:
        return subprocess.Popen([sys.executable, "-c", WARM_HYPOTHESIS], stdin=subprocess.DEVNULL)
    except OSError:
        return None


def _rewrite_test_modules(config) -> None:
    """Cache pytest's assertion-rewritten code of every test module (``tests/__pycache__/*-pytest-*.pyc``) before the
    workers start, so that on a fresh clone one process rewrites and compiles them (about 6 s of CPU), not each of
    the six workers at the same moment. Uses pytest's own rewriting (``_pytest.assertion.rewrite``, not a public
    API): when its functions are not what this expects, nothing is cached here and each worker does it as before."""
    try:
        from _pytest.assertion import rewrite

        state = config.stash[rewrite.assertstate_key]
        for fn in sorted(Path(__file__).parent.glob("*.py")):
            if not (fn.name.startswith("test_") or fn.name == "conftest.py"):
                continue  # the helpers are rewritten only when a test module registers them
            cache_dir = rewrite.get_cache_dir(fn)
            if not rewrite.try_makedirs(cache_dir):
                return
            pyc = cache_dir / (fn.name[:-3] + rewrite.PYC_TAIL)
            if rewrite._read_pyc(fn, pyc, state.trace) is None:
                source_hash, co = rewrite._rewrite_test(fn, config)
                rewrite._write_pyc(state, co, source_hash, pyc)
    except Exception as e:  # noqa: BLE001 - only a cache: the workers rewrite what is missing
        sys.stderr.write(f"tests/conftest.py: test modules not rewritten ahead: {type(e).__name__}: {e}\n")


def vectors(name: str) -> dict:
    return json.loads((VECTORS / f"{name}.json").read_text())


@pytest.fixture(autouse=True)
def _no_hand_off_state_left():
    """A test that runs the hand-off in this process (``handoff.try_guard``) leaves what belongs to the one command a
    real client hands off: the signal handlers it sets (SIGINT kept, never raised), the kept signal, the time the
    cold path took over (every later in-process run's ``--timeout`` counted from it: 'the deadline passed while
    reading credentials', seen in CI). Put back after each test, so tests do not depend on their order."""
    import signal

    handled = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]
    before = {sig: signal.getsignal(sig) for sig in handled}
    yield
    for sig, handler in before.items():
        if signal.getsignal(sig) is not handler and handler is not None:
            signal.signal(sig, handler)
    handoff = sys.modules.get("cancelctl.handoff")
    if handoff is not None:
        handoff.reset()


@pytest.fixture
def sim():
    with Simulator(lifetime=120) as s:
        yield s


@dataclass
class Env:
    """An isolated cancelctl environment: config dir, state dir, environment variables."""

    root: Path
    vars: dict = field(default_factory=dict)

    @property
    def config_dir(self) -> Path:
        return self.root / "config"

    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    def write_config(self, profiles: dict, default: str | None = None) -> None:
        import tomli_w

        self.config_dir.mkdir(parents=True, exist_ok=True)
        data: dict = {"profiles": profiles}
        if default:
            data["default_profile"] = default
        (self.config_dir / "config.toml").write_text(tomli_w.dumps(data))

    def secret(self, profile: str, field_name: str, value: str) -> None:
        from cancelctl.credentials import env_var

        self.vars[env_var(profile, field_name)] = value
        SECRETS_USED.add(value)

    def environ(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CANCELCTL_")}
        env.update(
            CANCELCTL_CONFIG_DIR=str(self.config_dir),
            CANCELCTL_STATE_DIR=str(self.state_dir),
            # Never the developer's real keyring: the fail backend unless a test says otherwise.
            PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
            HOME=str(self.root / "home"),
            NO_COLOR="1",
            # Never a guard the developer runs: the socket is looked for under this test's own runtime dir.
            XDG_RUNTIME_DIR=str(self.root / "run"),
            SSL_CERT_FILE=CA_BUNDLE,  # not certifi's 150 certificates: see _one_certificate_bundle
            SSL_CERT_DIR="",
        )
        env.update(self.vars)
        return env

    def run(
        self, *args: str, input: str | None = None, timeout: float = 60, extra_env: dict | None = None
    ) -> subprocess.CompletedProcess:
        """Run the real ``cancelctl`` process (``python -m cancelctl``, forked from the zygote: tests/zygote.py)."""
        env = self.environ()
        env.update(extra_env or {})
        proc = zygote.run(
            [sys.executable, "-m", "cancelctl", *args],
            input=input,
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
        collect(" ".join(args), proc.stdout + proc.stderr)
        return proc

    def popen(self, *args: str, extra_env: dict | None = None) -> subprocess.Popen:
        env = self.environ()
        env.update(extra_env or {})
        return zygote.Popen(
            [sys.executable, "-m", "cancelctl", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )


@pytest.fixture
def env(tmp_path) -> Env:
    e = Env(tmp_path)
    (tmp_path / "home").mkdir()
    return e


@pytest.fixture
def gemini(sim, env):
    """A Gemini account key on the simulator, configured as the only profile ``main``."""
    sim.gemini.add_key(GEMINI_KEY, GEMINI_SECRET)
    env.write_config({"main": {"venue": "gemini", "base_url": sim.url}})
    env.secret("main", "api_key", GEMINI_KEY)
    env.secret("main", "api_secret", GEMINI_SECRET)
    return sim.gemini


def parse_json(proc: subprocess.CompletedProcess) -> dict:
    """The single JSON document on stdout (fails the test when there is not exactly one)."""
    doc = json.loads(proc.stdout)
    assert doc["schema"] == "cancelctl/1"
    return doc


def collect(label: str, text: str) -> None:
    """Record one process's output and fail the calling test at once if it shows a secret.

    Checked against every secret a test has handed to cancelctl so far
    (``SECRETS_USED``: :meth:`Env.secret` adds to it), and for a Gemini signature header
    or the API key header with its value: a leak fails the test that
    produced it, whatever order the suite runs in.
    """
    OUTPUTS.append((label, text))
    assert_no_secret(label, text)


def assert_no_secret(label: str, text: str) -> None:
    """Fail when ``text`` (one output, named by ``label``) shows a secret, a Gemini signature or the API key header."""
    for s in {x for x in SECRETS_USED if len(x) >= MIN_SECRET} | {GEMINI_SECRET}:
        assert s not in text, f"a secret appeared in the output of: {label}"
    assert not SIGNATURE_HEADER.search(text), f"a signature appeared in: {label}"
    assert 'X-GEMINI-APIKEY": "' + GEMINI_KEY not in text, f"the API key header appeared in: {label}"


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def audit_lines(env: Env) -> list[dict]:
    """Every line of ``env``'s audit log, parsed (none torn); [] when there is no log."""
    path = env.state_dir / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def pacifica_keypair(n: int) -> tuple[str, str]:
    """(base58 64-byte secret key, base58 public key) from the seed ``bytes([n]) * 32``."""
    from cancelctl.sim.pacifica import solana_keypair

    return solana_keypair(bytes([n]) * 32)


def run_on_pty(
    env: Env, *args: str, cols: int = 120, seconds: float = 30, stdin: bool = False, extra_env: dict | None = None
) -> tuple[int | None, str]:
    """Run ``cancelctl *args`` with stdout and stderr (and stdin with ``stdin``, in a new session: nobody types) on one
    pseudo terminal ``cols`` wide; (exit code, everything it wrote as text, escapes kept). The exit code is None when
    it was still running after ``seconds`` (waiting for input nobody gives); it is then killed."""
    import fcntl
    import pty
    import select
    import struct
    import termios
    import time

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, cols, 0, 0))
    e = env.environ()
    e.update(TERM="xterm-256color", COLUMNS=str(cols), **(extra_env or {}))
    proc = zygote.Popen(  # forked from the zygote: a pseudo-terminal is only an fd to pass
        [sys.executable, "-m", "cancelctl", *args],
        stdin=slave if stdin else subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
        env=e,
        start_new_session=stdin,
    )
    os.close(slave)
    chunks: list[bytes] = []
    end = time.monotonic() + seconds
    code: int | None = None
    try:
        while time.monotonic() < end:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the process closed its side
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        try:
            code = proc.wait(timeout=max(1.0, end - time.monotonic()))
        except subprocess.TimeoutExpired:
            code = None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        os.close(master)
    text = b"".join(chunks).decode("utf-8", "replace")
    collect(" ".join(args) + " (tty)", text)
    return code, text



def stuck_writing(proc: subprocess.Popen, deadline: float) -> None:
    """Wait (until ``deadline``, ``time.monotonic()``) for ``proc``'s main thread to be blocked in write(2) (x86-64
    and arm64 number it 1 and 64, /proc/PID/syscall), then a moment more; the test proves nothing unless it is
    still running then (its report stuck on a reader that does not read)."""
    import time

    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{proc.pid}/syscall") as f:
                if f.read().split()[0] in ("1", "64"):
                    break
        except (OSError, IndexError):
            pass
        time.sleep(0.005)
    time.sleep(0.05)
    assert proc.poll() is None, "the report was not stuck: the test proves nothing"


def pending(pid: int) -> int:
    """The signals pending for process ``pid`` (any of its threads, or the process as a whole), as a bit mask
    (Linux /proc SigPnd and ShdPnd)."""
    mask = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/status") as f:
                for line in f:
                    if line.startswith(("SigPnd:", "ShdPnd:")):
                        mask |= int(line.split()[1], 16)
        except OSError:
            pass
    return mask
