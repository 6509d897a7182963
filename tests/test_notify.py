"""Notifications (contract, "Notifications"): apprise's json:// target against a loopback HTTP server.

The real process runs ``panic`` (and a ``deadman`` that fires) on the
simulator; the notification must arrive after the run, say the command,
profiles, counts, exit code and host, hold no secret, never change the exit
code or stdout, and stay within its time bound when the target never
answers. Every failure is one stderr line that never shows the URL's token.
"""

from __future__ import annotations

import json
import time

import pytest

from conftest import GEMINI_KEY, GEMINI_SECRET, assert_no_secret, audit_lines, parse_json
from loopback import Loopback, response

pytest.importorskip("apprise")

TOKEN = "hooktoken0123456789abc"  # part of the URL: an apprise URL holds its service's token


def hook(status: int = 200, delay: float = 0.0) -> Loopback:
    def answer(req):
        if delay:
            time.sleep(delay)
        return response(status, b"{}")

    return Loopback(answer, lifetime=60)


def json_url(server: Loopback, path: str = TOKEN) -> str:
    return server.url.replace("http://", "json://") + "/" + path


def notes(server: Loopback) -> list[dict]:
    """The JSON bodies apprise posted."""
    return [json.loads(r.body) for r in server.requests]


@pytest.fixture
def two(sim, env):
    """Gemini profile ``main`` with two open orders on the simulator."""
    sim.gemini.add_key(GEMINI_KEY, GEMINI_SECRET)
    for symbol in ("btcusd", "ethusd"):
        sim.gemini.add_order("primary", "UI", symbol=symbol)
    env.write_config({"main": {"venue": "gemini", "base_url": sim.url}})
    env.secret("main", "api_key", GEMINI_KEY)
    env.secret("main", "api_secret", GEMINI_SECRET)
    return sim


def notify_config(env, urls: list[str], timeout: float | None = None) -> None:
    text = (env.config_dir / "config.toml").read_text()
    table = "\n[notify]\nurls = " + json.dumps(urls) + (f"\ntimeout = {timeout}" if timeout else "") + "\n"
    (env.config_dir / "config.toml").write_text(text + table)


def test_panic_notifies_every_url_after_the_run(two, env):
    with hook() as a, hook() as b:
        notify_config(env, [json_url(a), json_url(b)])
        proc = env.run("panic", "--json", "--reason", "fat finger")
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr == ""
        assert parse_json(proc)["exit_code"] == 0  # stdout: the one document, unchanged
        for server in (a, b):
            (note,) = notes(server)
            assert server.requests[0].path == "/" + TOKEN
            text = note["title"] + "\n" + note["message"]
            assert_no_secret("notification", text)
            assert note["title"].startswith("cancelctl panic on ") and "exit 0 (done)" in note["title"]
            assert "main (gemini): ok: 2 cancelled, no open orders" in note["message"]
            assert "reason: fat finger" in note["message"]
            assert audit_lines(env)[0]["host"] in note["title"]


def test_the_environment_replaces_the_config_list(two, env):
    with hook() as configured, hook() as from_env:
        notify_config(env, [json_url(configured)])
        proc = env.run("panic", extra_env={"CANCELCTL_NOTIFY_URLS": f" {json_url(from_env)} ,"})
        assert proc.returncode == 0 and proc.stderr == ""
        assert len(from_env.requests) == 1 and configured.requests == []
        assert env.run("panic", extra_env={"CANCELCTL_NOTIFY_URLS": ""}).returncode == 0  # empty: off
        assert len(from_env.requests) == 1 and configured.requests == []


def test_a_target_that_never_answers_cannot_hold_the_run(two, env):
    with hook(delay=30) as stuck:
        notify_config(env, [json_url(stuck)], timeout=1)
        t0 = time.monotonic()
        proc = env.run("panic", "--json")
        elapsed = time.monotonic() - t0
    assert proc.returncode == 0 and parse_json(proc)["exit_code"] == 0
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and "not confirmed within 1 s" in lines[0] and "json://" in lines[0]
    assert TOKEN not in proc.stderr
    # The line above comes only from the bound killing the sender (apprise alone would wait its own 4 s read
    # timeout); the wall time is only a sanity check, with room for a loaded machine.
    assert elapsed < 25


def test_a_refused_or_invalid_url_is_one_line_and_the_code_stays(two, env):
    with hook(status=500) as refusing:
        notify_config(env, [json_url(refusing), "not-a-url-" + TOKEN])
        two.gemini.add_order("primary", "UI")
        proc = env.run("panic")
    assert proc.returncode == 0
    (line,) = proc.stderr.splitlines()
    assert line.startswith("cancelctl: warning: 2 of 2 notification(s) not sent (json://, ?://)")
    assert TOKEN not in proc.stderr


def test_a_failed_panic_notifies_with_its_code(env):
    with hook() as server:
        env.config_dir.mkdir(parents=True)
        (env.config_dir / "config.toml").write_text("[notify]\nurls = " + json.dumps([json_url(server)]) + "\n")
        proc = env.run("panic")  # no profile: 78
        assert proc.returncode == 78
        (note,) = notes(server)
    assert "exit 78 (configuration or credentials unusable)" in note["title"] and "error: config" in note["message"]


def test_apprise_that_cannot_be_loaded_is_one_line(two, env, tmp_path):
    broken = tmp_path / "shadow" / "apprise"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("raise ImportError('simulated missing apprise')\n")
    with hook() as server:
        notify_config(env, [json_url(server)])
        proc = env.run("panic", extra_env={"PYTHONPATH": str(tmp_path / "shadow")})
    assert proc.returncode == 0 and server.requests == []
    (line,) = proc.stderr.splitlines()
    assert "apprise could not be loaded" in line and "cancelctl[notify]" in line


def test_no_notification_for_a_dry_run_or_other_commands(two, env):
    with hook() as server:
        notify_config(env, [json_url(server)])
        assert env.run("panic", "--dry-run").returncode == 0
        assert env.run("cancel", "all").returncode == 0
        assert env.run("orders").returncode == 0
        assert server.requests == []


def test_a_deadman_that_fired_notifies(two, env):
    with hook() as server:
        notify_config(env, [json_url(server)])
        alive = env.root / "bot.alive"
        proc = env.run("deadman", "--ttl", "1", "--file", str(alive), timeout=30)
        assert proc.returncode == 0, proc.stderr
        (note,) = notes(server)
    assert note["title"].startswith("cancelctl deadman on ") and "exit 0" in note["title"]
    assert "reason: deadman: no check-in for" in note["message"] and "2 cancelled" in note["message"]


def test_a_heartbeat_that_failed_notifies(sim, env, monkeypatch):
    """In process (the real window is 30 s): the heartbeat command's failure path sends its note."""
    from typer.testing import CliRunner

    from cancelctl.cli import build, watch

    sim.gemini.add_key(GEMINI_KEY, GEMINI_SECRET, heartbeat=True)
    env.write_config({"hb": {"venue": "gemini", "base_url": sim.url}})
    env.secret("hb", "api_key", GEMINI_KEY)
    env.secret("hb", "api_secret", GEMINI_SECRET)

    def missed(names, beat, *, say, **kw):
        say("profile hb: no heartbeat for 30 s: Gemini has cancelled that session's orders")
        return 1

    monkeypatch.setattr(watch, "keep_alive", missed)
    with hook() as server:
        for k, v in env.environ().items():
            monkeypatch.setenv(k, v)
        monkeypatch.setenv("CANCELCTL_NOTIFY_URLS", json_url(server))
        import signal

        saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
        try:
            result = CliRunner().invoke(build("heartbeat"), ["heartbeat"], standalone_mode=False)
        finally:
            for sig, handler in saved.items():
                signal.signal(sig, handler)
        assert result.return_value == 1, result.output
        (note,) = notes(server)
    assert "cancelctl heartbeat on " in note["title"] and "exit 1 (failed)" in note["title"]
    assert "profiles: hb" in note["message"] and "no heartbeat for 30 s" in note["message"]


def test_profiles_add_keeps_the_notify_table(env):
    env.write_config({"main": {"venue": "gemini"}})
    notify_config(env, ["json://127.0.0.1:9/x"], timeout=3)
    proc = env.run("profiles", "add", "other", "--venue", "gemini")
    assert proc.returncode == 0, proc.stderr
    import tomllib

    data = tomllib.loads((env.config_dir / "config.toml").read_text())
    assert data["notify"] == {"urls": ["json://127.0.0.1:9/x"], "timeout": 3} and set(data["profiles"]) == {
        "main",
        "other",
    }


def test_message_and_scheme_units():
    from cancelctl import notify
    from cancelctl.redact import register

    assert notify.scheme("tgram://123:ABC/456") == "tgram://"
    assert notify.scheme("no scheme token123") == "?://"
    assert notify.scheme("j$on://x") == "?://"
    register("S3cretValue-abcdef123")
    title, body = notify.message("panic", 5, reason="pasted S3cretValue-abcdef123 here\nforged")
    assert "exit 5 (outcome unknown)" in title
    assert "S3cretValue-abcdef123" not in body and "\nforged" not in body


def test_the_notify_child_never_imports_from_the_working_directory(two, env, tmp_path):
    """The installed ``cancelctl`` never looks in the directory it is run from; nor may its notify child (a
    ``python -m`` child puts that directory first on sys.path: an apprise.py there would get the URLs)."""
    import subprocess
    import sys
    from pathlib import Path

    cwd = tmp_path / "somewhere"
    cwd.mkdir()
    marker = tmp_path / "shadowed"
    (cwd / "apprise.py").write_text(f"open({str(marker)!r}, 'w').write('imported')\nraise ImportError('shadow')\n")
    with hook() as server:
        notify_config(env, [json_url(server)])
        script = Path(sys.executable).parent / "cancelctl"
        proc = subprocess.run(
            [str(script), "panic"], cwd=cwd, env=env.environ(), capture_output=True, text=True, timeout=60
        )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not marker.exists(), "the notify child imported apprise.py from the working directory"
    assert len(notes(server)) == 1, proc.stderr
