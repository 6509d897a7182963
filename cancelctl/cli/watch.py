"""Dead-man's switches: ``heartbeat`` (Gemini's own) and ``deadman`` (client-side, for any venue).

Gemini "Require Heartbeat" (Gemini's REST API docs, "Heartbeat", https://docs.gemini.com/rest-api/): a key
with it has its session's orders cancelled after 30 s without an
authenticated call; ``POST /v1/heartbeat`` keeps it alive.

Pacifica has no cancel-after (its API docs, https://docs.pacifica.fi/api-documentation/api, list none), so
``deadman`` watches a file instead: the trader's bot checks in by touching
it (``touch PATH``, ``os.utime``, ``fs.utimesSync``...). When its mtime is
older than the TTL, ``deadman`` runs ``panic`` on its profiles and exits
with panic's code. Credentials are resolved when it is armed, so a keyring
that locks later cannot stop it from firing.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from cancelctl import config as config_mod
from cancelctl import credentials
from cancelctl.cli.common import (
    ButtonProfileOpt,
    JsonOpt,
    ProfileOpt,
    QuietOpt,
    ReasonOpt,
    TimeoutOpt,
    options,
    selected,
)
from cancelctl.errors import CancelctlError, ExitCode, UsageProblem
from cancelctl.runner import Options, Outcome
from cancelctl.venues.info import VENUES

#: Each command's --help epilog (cancelctl.cli.build; the form of cancelctl.cli.common.examples).
EXAMPLES = {
    "deadman": "Examples:\n\n  cancelctl deadman --ttl 30 -p pac\n\n"
    "  cancelctl deadman --ttl 60 --file /run/bot/alive --reason 'bot went quiet'",
}

if TYPE_CHECKING:
    from cancelctl.config import Profile
    from cancelctl.credentials import Credentials

HEARTBEAT_WINDOW_S = 30.0  # Gemini cancels a Require-Heartbeat session after 30 s of silence


BEAT_TIMEOUT_S = 10.0  # the longest one heartbeat request may take (s); never past the window


class StopRequested(Exception):
    """Raised by a heartbeat that SIGINT, SIGTERM or SIGHUP interrupted."""


class Stop(threading.Event):
    """Set by SIGINT, SIGTERM or SIGHUP; ``signum``: the first of them (None while none came)."""

    signum: int | None = None


def _stop_event() -> Stop:
    """An event set by SIGINT, SIGTERM or SIGHUP (these commands stop cleanly on any of them)."""
    stop = Stop()

    def on_signal(signum: int, frame: object) -> None:
        if stop.signum is None:
            stop.signum = signum
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    return stop


def interruptible(fn: Callable[[], None], stop: threading.Event) -> None:
    """Run ``fn()`` in a daemon thread; return when it does (its exception raised here), or raise
    StopRequested at once when ``stop`` is set.

    The main thread then never sits in a socket read a signal cannot end
    (an answer trickling in a byte at a time): stopping takes at most 0.05 s.
    """
    box: dict[str, BaseException] = {}

    def target() -> None:
        try:
            fn()
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            box["error"] = e

    t = threading.Thread(target=target, name="heartbeat", daemon=True)
    t.start()
    while t.is_alive():
        if stop.wait(0.05):
            raise StopRequested
    if "error" in box:
        raise box["error"]


def _say(text: str) -> None:
    """One event line on stderr, timestamped (UTC, to the second): ``cancelctl: 2026-11-30 00:14:03 UTC <text>``."""
    from cancelctl.render import err

    err(f"cancelctl: {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())} {text}")


def beats_shown(beats: bool | None) -> bool:
    """Whether each heartbeat (deadman: each check-in) gets its line: ``--beats``/``--no-beats``, else only when
    stderr is a terminal (a pipe, a journal or a cron mail gets the armed, late, fired and stopped lines only)."""
    if beats is not None:
        return beats
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


BeatsOpt = Annotated[
    Optional[bool],
    typer.Option(
        "--beats/--no-beats",
        help="A timestamped line for each heartbeat (deadman: each check-in). Default: only when stderr is a "
        "terminal.",
    ),
]


def heartbeat(
    profile: ProfileOpt = None,
    interval: Annotated[
        float,
        typer.Option(
            "--interval",
            metavar="SECONDS",
            min=1,
            max=29,
            help="Seconds between heartbeats (Gemini cancels after 30 s of silence).",
        ),
    ] = 15.0,
    beats: BeatsOpt = None,
) -> int:
    """Keep Gemini "Require Heartbeat" sessions alive (POST /v1/heartbeat) until SIGINT/SIGTERM; exit 1 once the 30
    s window is missed."""

    # another profile's mistake never stops the heartbeat of these (Gemini would cancel their orders 30 s later)
    profiles = config_mod.select(config_mod.load(strict=False), list(profile or []))
    for p in profiles:
        if p.broken is not None:
            raise p.broken
        if "heartbeat" not in VENUES[p.venue].commands:
            raise UsageProblem(
                f"profile {p.name!r} is on {p.venue}, which has no heartbeat",
                hint=f"use: cancelctl deadman -p {p.name} --ttl SECONDS",
            )
    creds = {p.name: credentials.resolve(p.name, p.venue) for p in profiles}
    stop = _stop_event()
    beat = beater(profiles, creds, stop, show=beats_shown(beats))
    names = [p.name for p in profiles]
    _say(f"heartbeat armed: every {interval:g} s for {', '.join(names)}; Ctrl-C or SIGTERM stops")
    said: list[str] = []

    def say(text: str) -> None:
        said.append(text)
        _say(text)

    code = keep_alive(names, beat, interval=interval, wait=stop.wait, say=say)
    if code != ExitCode.OK:  # the session's orders are gone: notify (contract, "Notifications")
        from cancelctl import notify

        title, body = notify.message("heartbeat", code, detail=said[-1] if said else None)
        body = f"profiles: {', '.join(names)}\n{body}"
        notify.send(title, body)
    return int(code)


def beater(
    profiles: list[Profile], creds: dict[str, Credentials], stop: threading.Event, *, show: bool = False
) -> Callable[[str, float], None]:
    """The ``beat(name, seconds)`` of :func:`keep_alive` for these Gemini profiles (``heartbeat``, ``guard
    --heartbeat``): one ``POST /v1/heartbeat`` bounded by ``seconds``; StopRequested at once when ``stop`` is set.
    ``show``: a timestamped ``heartbeat beat`` line for each confirmed heartbeat."""
    from cancelctl.transport import Deadline
    from cancelctl.venues.gemini import Gemini

    clients = {p.name: p for p in profiles}
    warned: list[str] = []

    def beat(name: str, seconds: float) -> None:
        p = clients[name]
        deadline = Deadline(seconds)

        def send() -> None:
            client = Gemini(p, creds[name], state_dir=config_mod.state_dir(), deadline=deadline)
            try:
                client.heartbeat()
            finally:
                client.close()

        started = time.monotonic()
        try:
            interruptible(send, stop)
            if show:
                _say(f"heartbeat beat: {name} ok ({time.monotonic() - started:.2f} s)")
        finally:
            deadline.close()  # a stopped beat sends nothing more
            if not warned:  # an unwritable state dir: said once, the heartbeats go on with in-memory nonces
                from cancelctl import state

                line = state.warning_line(config_mod.state_dir(), None)
                if line:
                    warned.append(line)
                    from cancelctl.render import err

                    err(line)

    return beat


def keep_alive(
    names: list[str],
    beat: Callable[[str, float], None],
    *,
    interval: float,
    wait: Callable[[float], bool],
    window: float = HEARTBEAT_WINDOW_S,
    clock: Callable[[], float] = time.monotonic,
    say: Callable[[str], None] = _say,
) -> int:
    """Call ``beat(name, seconds)`` for every profile each ``interval`` s until ``wait(s)`` returns True (stopped).

    ``seconds`` bounds that heartbeat: at most ``BEAT_TIMEOUT_S`` and
    ``interval``, and never past the end of the profile's window, so a
    heartbeat that is not confirmed in time is reported on time. ``beat``
    raises :class:`~cancelctl.errors.CancelctlError` when a heartbeat
    fails: that is one line and the loop goes on; :class:`StopRequested`
    when stopped. Once a profile has had no successful heartbeat for
    ``window`` s (by ``clock``, in s) the venue has cancelled its session's
    orders: one line, at that moment (waits end at the earliest window's
    end), and :attr:`ExitCode.FAILED`. Stopped: :attr:`ExitCode.OK`.
    """
    last_ok = {name: clock() for name in names}
    stopped = False
    while not stopped:
        for name in names:
            left = last_ok[name] + window - clock()
            if left > 0:
                try:
                    beat(name, min(BEAT_TIMEOUT_S, interval, left))
                    last_ok[name] = clock()
                except StopRequested:
                    stopped = True
                    break
                except CancelctlError as e:
                    late = clock() - last_ok[name]
                    say(
                        f"heartbeat failed for profile {name}: {e.one_line()}; late: {late:.0f} s since the last "
                        f"heartbeat (Gemini cancels at {window:g} s)"
                    )
            silent = clock() - last_ok[name]
            if silent >= window:
                say(
                    f"heartbeat fired: profile {name}: no heartbeat for {silent:.0f} s: Gemini has cancelled that "
                    "session's orders"
                )
                return ExitCode.FAILED
        if stopped:
            break
        due = min(last_ok[n] + window for n in names) - clock()
        if wait(max(0.0, min(interval, due))):
            break
    say(f"heartbeat stopped; Gemini will cancel the session's orders after {window:g} s")
    return ExitCode.OK


FUTURE_SLACK_S = 1.0  # a check-in time this far ahead of the clock is reported (s)


def _arm_checks(opts: Options, ttl: float) -> tuple[list[Profile], dict[str, Credentials]]:
    """Everything the firing path will need, checked before saying "armed"; (profiles, credentials).

    Options (``--ttl``, ``--timeout``: finite numbers), the profiles (no
    broken one), the credentials (resolved now, so a keyring that locks
    later cannot stop the switch) and the venue client each profile's
    panic will build (key decoding, Solana key rules, a master key's
    sub-account). Raises the contract's error (2 or 78): it refuses to arm.
    """
    import math

    from cancelctl.transport import Deadline
    from cancelctl.venues.base import open_client

    if not math.isfinite(ttl):
        raise UsageProblem(f"--ttl must be a number of seconds, not {ttl}", hint="e.g. --ttl 30")
    if not math.isfinite(opts.timeout):
        raise UsageProblem(f"--timeout must be a number of seconds, not {opts.timeout}", hint="e.g. --timeout 10")
    profiles = selected(opts, button=True)
    for p in profiles:
        if p.broken is not None:
            raise type(p.broken)(f"deadman not armed: {p.broken.message}", hint=p.broken.hint)
    creds = {p.name: credentials.resolve(p.name, p.venue) for p in profiles}  # now, not when firing
    for p in profiles:
        try:
            open_client(
                p, creds[p.name], state_dir=config_mod.state_dir(), deadline=Deadline(opts.timeout), dry_run=True
            ).close()
        except CancelctlError as e:
            raise type(e)(f"deadman not armed: {e.message}", hint=e.hint) from None
    return profiles, creds


def _check_in_file(path: Path) -> None:
    """Create the check-in file (0600) and its directory (0700) when missing, whatever the umask; touch it."""
    import os

    from cancelctl.errors import ConfigError

    try:
        config_mod.private_dir(path.parent)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            os.fchmod(fd, 0o600)
            os.close(fd)
        os.utime(path)
    except OSError as e:
        raise ConfigError(
            f"deadman not armed: cannot create or touch the check-in file {path}: {e.strerror or type(e).__name__}",
            hint="choose a writable one with --file PATH, or fix the permissions of its directory",
        ) from None


def watch_file(
    path: Path,
    ttl: float,
    stop: threading.Event,
    *,
    say: Callable[[str], None] = _say,
    checked_in: Callable[[float], None] | None = None,
    show_check_ins: bool = False,
    say_late: bool = False,
) -> float | None:
    """Watch the check-in file ``path`` until it is older than ``ttl`` s (the seconds of silence then) or ``stop``
    is set (None). ``checked_in(t)`` is told every check-in seen (t: time.time()); the file exists (see
    :func:`_check_in_file`). A deleted file is no check-in; one dated in the future counts as now, said once.
    ``show_check_ins``: a ``deadman check-in`` line for each; ``say_late``: a ``deadman late`` line once per gap,
    at half the TTL."""
    last_mtime = path.stat().st_mtime
    last = min(last_mtime, time.time())
    if checked_in is not None:
        checked_in(last)
    poll = min(0.2, ttl / 10)
    warned_future = False
    warned_late = False
    while not stop.wait(poll):
        try:
            mtime = path.stat().st_mtime
        except FileNotFoundError:
            mtime = last_mtime  # a deleted file is no check-in: the last one seen still counts
        now = time.time()
        if (
            mtime != last_mtime
        ):  # a check-in; one dated in the future counts as now (a clock set wrong must not blind the switch)
            if show_check_ins:
                say(f"deadman check-in: {now - last:.1f} s after the previous one (TTL {ttl:g} s)")
            last_mtime, last = mtime, min(mtime, now)
            warned_late = False
            if checked_in is not None:
                checked_in(last)
            if mtime > now + FUTURE_SLACK_S and not warned_future:
                warned_future = True
                say(
                    f"deadman: the check-in file's time is {mtime - now:.0f} s in the future; counting that "
                    "check-in as now (check the clocks)"
                )
        silent = now - last
        if say_late and not warned_late and ttl / 2 < silent <= ttl:
            warned_late = True
            say(f"deadman late: no check-in for {silent:.1f} s; fires at {ttl:g} s")
        if silent > ttl:
            return silent
    return None


def deadman(
    ctx: typer.Context,
    ttl: Annotated[
        float, typer.Option("--ttl", metavar="SECONDS", min=1, help="Fire when the check-in file is older than this.")
    ],
    file: Annotated[
        Optional[Path],
        typer.Option(
            "--file", metavar="PATH", help="The check-in file the bot touches (default: STATE_DIR/deadman.alive)."
        ),
    ] = None,
    profile: ButtonProfileOpt = None,
    json: JsonOpt = False,
    quiet: QuietOpt = False,
    timeout: TimeoutOpt = 10.0,
    reason: ReasonOpt = None,
    beats: BeatsOpt = None,
) -> int | Outcome:
    """Client-side dead-man's switch: panic on the profiles when the bot stops touching the check-in file for longer
    than --ttl."""
    from cancelctl.cli.panic import run_panic

    opts = options(ctx, profile, json, quiet, False, timeout, True, reason)
    profiles, creds = _arm_checks(opts, ttl)
    path = file or config_mod.state_dir() / "deadman.alive"
    stop = _stop_event()  # before the check-in file exists: a supervisor that sees it may stop us at once (disarmed, 0)
    _check_in_file(path)
    _say(f"deadman armed for {', '.join(p.name for p in profiles)}: TTL {ttl:g} s; check in with: touch {path}")
    silent = watch_file(path, ttl, stop, show_check_ins=beats_shown(beats), say_late=True)
    if silent is not None:
        _say(f"deadman fired: no check-in for {silent:.1f} s (TTL {ttl:g} s): panic")
        opts.reason = opts.reason or f"deadman: no check-in for {silent:.1f} s (TTL {ttl:g} s)"
        sys.stderr.flush()
        from cancelctl import signals

        try:
            signals.install()  # firing is a cancel like any other: a signal now is reported as 130/143
            if stop.signum is not None:
                # It came after the switch decided to fire and before the line above (the old handler only set
                # ``stop``, which nothing reads any more): raised now, as if it had come a moment later, so the
                # panic sends nothing and the run says 130/143, "stopped before any cancel was sent". It was
                # swallowed, and the panic ran to its end.
                signals.replay(stop.signum)
            signals.raise_early()  # one handled while install() put the handlers in (kept there, not raised)
        except signals.Interrupted as e:  # one more signal right after install(): the first one still decides
            if stop.signum is not None and e.signum != stop.signum:
                raise signals.Interrupted(stop.signum) from None
            raise
        return run_panic(profiles, opts, creds)
    _say("deadman disarmed")
    if opts.json:  # the contract: one JSON document on every exit path; disarmed cancelled nothing
        from cancelctl.render import out_json
        from cancelctl.results import Report

        out_json(Report([]).as_json())
    return ExitCode.OK
