"""Process robustness at the edges (issue 12): limits, hostile input, signals.

Every case runs the real ``cancelctl`` process against a loopback server
(``tests/loopback.py`` or the simulator) and checks what docs/faults.md
promises: the exit code, one line on stderr, no traceback, the audit line.
"""

from __future__ import annotations

import json
import time

import pytest
from conftest import GEMINI_KEY, GEMINI_SECRET
from loopback import Loopback, response

ALL = "/v1/order/cancel/all"


def gemini_on(env, url: str, name: str = "main") -> None:
    env.write_config({name: {"venue": "gemini", "base_url": url}})
    env.secret(name, "api_key", GEMINI_KEY)
    env.secret(name, "api_secret", GEMINI_SECRET)


def audit_lines(env) -> list[dict]:
    path = env.state_dir / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def one_error_line(proc) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cancelctl: error: "), proc.stderr
    return lines[0]


# -- 4. Retry-After that is absent, non-positive or not a number is the backoff floor -----


@pytest.mark.parametrize("value", ["0", "-5", "nan", "inf", "soon"])
def test_nonsense_retry_after_keeps_the_backoff(env, value):
    rate_limited = json.dumps({"result": "error", "reason": "RateLimited", "message": "slow down"}).encode()
    with Loopback(lambda r: response(429, rate_limited, {"Retry-After": value}, "Too Many Requests")) as lb:
        gemini_on(env, lb.url)
        t0 = time.monotonic()
        proc = env.run("cancel", "all", "--timeout", "1.5")
        elapsed = time.monotonic() - t0
        n = len(lb.requests)
    assert proc.returncode == 75, (proc.returncode, proc.stderr)
    one_error_line(proc)
    # 0.1 s doubling: 0.1 + 0.2 + 0.4 + 0.8 > 1.5, so at most 5 requests (a hot loop makes thousands).
    assert 2 <= n <= 6, n
    assert elapsed < 1.5 + 0.5
    assert audit_lines(env)[-1]["exit_code"] == 75


# -- 5. answers too large or nested too deep; config nested too deep ---------------------


def endless_zeros(request):
    yield b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
    chunk = b"0" * 65536
    while True:
        yield chunk


def test_an_endless_answer_is_cut_off_and_unreadable(env):
    with Loopback(endless_zeros) as lb:
        gemini_on(env, lb.url)
        t0 = time.monotonic()
        proc = env.run("cancel", "all", "--json", "--timeout", "4")
        elapsed = time.monotonic() - t0
    assert proc.returncode == 5, (proc.returncode, proc.stderr)
    line = one_error_line(proc)
    assert "unreadable answer" in line and "bytes" in line, line
    assert json.loads(proc.stdout)["exit_code"] == 5
    assert elapsed < 4 + 0.5
    assert audit_lines(env)[-1]["exit_code"] == 5


def test_a_declared_huge_answer_is_not_read(env):
    with Loopback(lambda r: [b"HTTP/1.1 200 OK\r\nContent-Length: 999999999999\r\n\r\n", b"{" * 1000]) as lb:
        gemini_on(env, lb.url)
        proc = env.run("cancel", "all", "--timeout", "2")
    assert proc.returncode == 5, (proc.returncode, proc.stderr)
    assert "unreadable answer" in one_error_line(proc)


@pytest.mark.parametrize("body", [b"[" * 200_000, b'{"a":' * 100_000])
def test_deeply_nested_json_is_an_unreadable_answer(env, body):
    with Loopback(lambda r: response(200, body)) as lb:
        gemini_on(env, lb.url)
        proc = env.run("cancel", "all", "--json", "--timeout", "2")
    assert proc.returncode == 5, (proc.returncode, proc.stderr)
    one_error_line(proc)
    assert json.loads(proc.stdout)["results"][0]["status"] == "unknown"


@pytest.mark.parametrize("command", [["cancel", "all"], ["panic", "--json"], ["orders"], ["profiles", "list"], ["doctor"]])
def test_deeply_nested_toml_is_a_config_error(env, command):
    env.config_dir.mkdir(parents=True)
    (env.config_dir / "config.toml").write_text("a = " + "[" * 50_000)
    proc = env.run(*command, "--timeout", "2") if command[0] not in ("profiles",) else env.run(*command)
    assert proc.returncode == 78, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    if command[0] != "doctor":
        assert "nested too deeply" in one_error_line(proc)


# -- 6. files that are not regular files: FIFO, /dev/zero, a directory ---------------------


def fifo(path) -> str:
    import os

    os.mkfifo(path)
    return str(path)


@pytest.mark.parametrize("kind", ["fifo", "dev-zero-link", "directory"])
def test_config_file_that_is_not_a_regular_file(env, kind):
    import os

    env.config_dir.mkdir(parents=True)
    path = env.config_dir / "config.toml"
    if kind == "fifo":
        fifo(path)
    elif kind == "dev-zero-link":
        os.symlink("/dev/zero", path)
    else:
        path.mkdir()
    t0 = time.monotonic()
    proc = env.run("cancel", "all", "--timeout", "2", timeout=20)
    assert proc.returncode == 78, (proc.returncode, proc.stderr)
    assert "config.toml" in one_error_line(proc)
    assert time.monotonic() - t0 < 2.5


@pytest.mark.parametrize("kind", ["fifo", "/dev/zero", "huge"])
@pytest.mark.parametrize("command", [["cancel", "all", "--timeout", "2"], ["heartbeat"], ["doctor", "--timeout", "2"]])
def test_secret_file_that_is_not_a_small_regular_file(env, tmp_path, kind, command):
    env.write_config({"main": {"venue": "gemini", "base_url": "http://127.0.0.1:9"}})
    if kind == "fifo":
        path = fifo(tmp_path / "secret")
    elif kind == "huge":
        path = str(tmp_path / "secret")
        with open(path, "wb") as f:
            f.truncate(50 << 20)  # sparse: 50 MB of nothing
    else:
        path = kind
    extra = {"CANCELCTL_MAIN_API_KEY_FILE": path, "CANCELCTL_MAIN_API_SECRET": GEMINI_SECRET}
    t0 = time.monotonic()
    proc = env.run(*command, extra_env=extra, timeout=20)
    assert proc.returncode == 78, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    assert "CANCELCTL_MAIN_API_KEY_FILE" in proc.stderr + proc.stdout
    assert time.monotonic() - t0 < 3


def test_ca_file_that_is_a_fifo(env, tmp_path):
    with Loopback(lambda r: response(200, b"{}")) as lb:
        gemini_on(env, lb.url)
        t0 = time.monotonic()
        proc = env.run("cancel", "all", "--timeout", "2", extra_env={"SSL_CERT_FILE": fifo(tmp_path / "ca.pem")}, timeout=20)
        elapsed = time.monotonic() - t0
        assert lb.requests == []
    assert proc.returncode == 78, (proc.returncode, proc.stderr)
    assert "SSL_CERT_FILE" in one_error_line(proc)
    assert elapsed < 2.5


# -- 7. proxy and CA settings httpx cannot use ---------------------------------------------


BROKEN_NETWORK_ENV = [
    ("HTTPS_PROXY", "socks5://127.0.0.1:1080"),
    ("HTTPS_PROXY", "gopher://proxy.example:70"),
    ("ALL_PROXY", "http://[::1"),
    ("SSL_CERT_FILE", "/nonexistent/ca.pem"),
    ("SSL_CERT_FILE", "/etc/hostname"),
    ("SSL_CERT_DIR", "/nonexistent/certs"),
]


@pytest.mark.parametrize("name,value", BROKEN_NETWORK_ENV)
def test_broken_proxy_or_ca_setting_is_a_config_error_naming_it(env, name, value):
    if name == "HTTPS_PROXY" and value.startswith("socks"):
        try:
            import socksio  # noqa: F401

            pytest.skip("socksio installed: a SOCKS proxy is usable")
        except ImportError:
            pass
    extra = {name: value, **({"SSL_CERT_FILE": ""} if name == "SSL_CERT_DIR" else {})}
    with Loopback(lambda r: response(200, b"{}")) as lb:
        gemini_on(env, lb.url)
        proc = env.run("cancel", "all", "--json", "--timeout", "2", extra_env=extra)
        doctor = env.run("doctor", "--timeout", "2", extra_env=extra)
    assert proc.returncode == 78, (proc.returncode, proc.stderr)
    line = one_error_line(proc)
    assert name in line and ("unset" in line or "point" in line), line
    assert json.loads(proc.stdout)["exit_code"] == 78
    assert doctor.returncode == 78, (doctor.returncode, doctor.stderr, doctor.stdout)
    assert "Traceback" not in doctor.stderr and name in doctor.stdout + doctor.stderr
