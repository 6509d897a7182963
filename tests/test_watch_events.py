"""``heartbeat`` and ``deadman`` event lines: timestamped, one per event (armed, beat, late, fired) on a terminal;
in a pipe only the armed, late, fired and stopped lines unless ``--beats`` asks for each beat.

The terminal is a real pseudo-terminal (``pty``) on the process's stderr.
"""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import sys
import threading
import time

import zygote

from conftest import GEMINI_KEY, GEMINI_SECRET, collect

STAMP = re.compile(r"^cancelctl: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC (.*)$")


def events(text: str) -> list[str]:
    """The event lines' texts (timestamp checked and stripped); other lines (the panic report) are left out."""
    return [m.group(1) for m in map(STAMP.match, text.replace("\r", "").splitlines()) if m]


def on_a_terminal(env, args: list[str], *, until: float, touch=None) -> tuple[int, str]:
    """Run ``cancelctl ARGS`` with stderr on a pseudo-terminal until ``until`` s after its "armed" line (then
    SIGTERM); (code, stderr). Start-up is not counted: under load it alone may take seconds."""
    master, slave = pty.openpty()
    proc = zygote.Popen(  # forked from the zygote: a pseudo-terminal is only an fd to pass
        [sys.executable, "-m", "cancelctl", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=slave,
        env=env.environ(),
    )
    os.close(slave)
    chunks: list[bytes] = []
    end = time.monotonic() + 60  # until the armed line shows
    armed = False
    stopped = False
    while True:
        if not armed and b"armed" in b"".join(chunks):
            armed, end = True, time.monotonic() + until
        if not stopped and time.monotonic() > end and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            stopped = True
        if touch is not None and not stopped:
            touch()
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO: the process closed the terminal
                data = b""
            if not data and proc.poll() is not None:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
        if time.monotonic() > end + 30:
            proc.kill()
            break
    proc.wait(timeout=10)
    proc.stdout.close()
    os.close(master)
    text = b"".join(chunks).decode("utf-8", "replace")
    collect(" ".join(args), text)
    return proc.returncode, text


def hb_profile(sim, env) -> None:
    sim.gemini.add_key(GEMINI_KEY, GEMINI_SECRET, heartbeat=True)
    env.write_config({"hb": {"venue": "gemini", "base_url": sim.url}})
    env.secret("hb", "api_key", GEMINI_KEY)
    env.secret("hb", "api_secret", GEMINI_SECRET)


def test_heartbeat_on_a_terminal_prints_each_beat(sim, env):
    hb_profile(sim, env)
    code, text = on_a_terminal(env, ["heartbeat", "--interval", "1"], until=3)
    assert code == 0, text
    said = events(text)
    assert said[0].startswith("heartbeat armed: every 1 s for hb")
    beats = [s for s in said if s.startswith("heartbeat beat: hb ok (")]
    late = [s for s in said if s.startswith("heartbeat failed for profile hb: ") and "; late: " in s]
    # One line per attempt: a beat that got its answer, or a failed (late) one (a loaded machine may time one out).
    assert beats and len(beats) + len(late) >= 2, text
    assert len(beats) <= len(sim.requests("/v1/heartbeat")) <= len(beats) + len(late), text
    assert said[-1].startswith("heartbeat stopped")
    assert len(said) == len([line for line in text.splitlines() if line.strip()])  # every line an event


def test_heartbeat_in_a_pipe_prints_no_beat_unless_asked(sim, env):
    hb_profile(sim, env)
    for extra, shown in (([], False), (["--beats"], True)):
        proc = env.popen("heartbeat", "--interval", "1", *extra)
        first = proc.stderr.readline()  # armed: start-up is over
        time.sleep(2.6)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
        err = first + err
        collect("heartbeat", out + err)
        assert proc.returncode == 0, err
        said = events(err)
        assert said[0].startswith("heartbeat armed") and said[-1].startswith("heartbeat stopped")
        assert any(s.startswith("heartbeat beat:") for s in said) is shown, err
        assert len(said) == len(err.splitlines())  # every line is a timestamped event


def test_deadman_on_a_terminal_armed_check_ins_late_fired(sim, env):
    sim.gemini.add_key(GEMINI_KEY, GEMINI_SECRET)
    sim.gemini.add_order("primary", "UI")
    env.write_config({"main": {"venue": "gemini", "base_url": sim.url}})
    env.secret("main", "api_key", GEMINI_KEY)
    env.secret("main", "api_secret", GEMINI_SECRET)
    alive = env.root / "bot.alive"
    last = [0.0]
    first = [0.0]

    def touch() -> None:  # a bot that checks in every 0.5 s for 2.5 s after the file appears, then hangs
        now = time.monotonic()
        if alive.exists() and not first[0]:
            first[0] = now
        if first[0] and now < first[0] + 2.5 and now - last[0] >= 0.5:
            last[0] = now
            os.utime(alive)

    code, text = on_a_terminal(env, ["deadman", "--ttl", "2", "--file", str(alive)], until=15, touch=touch)
    assert code == 0, text
    said = events(text)
    kinds = [s.split(":")[0].split(" ")[1] for s in said]
    assert kinds[0] == "armed" and kinds[-1] == "fired", said
    assert kinds.count("check-in") >= 2 and kinds.count("late") == 1, said
    assert kinds.index("late") > max(i for i, k in enumerate(kinds) if k == "check-in")
    assert said[-1].startswith("deadman fired: no check-in for ") and said[-1].endswith("(TTL 2 s): panic")


def test_deadman_in_a_pipe_says_no_check_in_line(sim, env):
    sim.gemini.add_key(GEMINI_KEY, GEMINI_SECRET)
    env.write_config({"main": {"venue": "gemini", "base_url": sim.url}})
    env.secret("main", "api_key", GEMINI_KEY)
    env.secret("main", "api_secret", GEMINI_SECRET)
    alive = env.root / "bot.alive"
    proc = env.popen("deadman", "--ttl", "4", "--file", str(alive))
    first = proc.stderr.readline()  # armed
    stop = threading.Event()

    def bot() -> None:
        while not stop.wait(0.3):
            if alive.exists():
                os.utime(alive)

    t = threading.Thread(target=bot, daemon=True)
    t.start()
    time.sleep(2)
    stop.set()
    t.join()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=10)
    err = first + err
    collect("deadman", out + err)
    assert proc.returncode == 0, err
    assert [s.split(":")[0] for s in events(err)] == ["deadman armed for main", "deadman disarmed"], err
