"""The one error funnel: run the app, turn every failure into one stderr line and an exit code.

With ``--json`` anywhere on the command line, stdout gets exactly one JSON
document on every exit path, errors included. This is also the one place
that writes the audit line: a cancelling command returns its
:class:`~cancelctl.runner.Outcome` here, and a cancelling command that
failed before it had one gets a line with its error.
"""

import sys

TYPE_CHECKING = False  # not typing's: the hand-off to a guard runs before typing (and re, enum...) is imported
if TYPE_CHECKING:
    from collections.abc import Callable

    from cancelctl.errors import CancelctlError
    from cancelctl.flags import EarlyFlags
    from cancelctl.results import Report
    from cancelctl.runner import Outcome

CANCELLING = {"cancel", "panic", "deadman", "close-positions"}  # commands whose every run leaves an audit line


def _audit(report: "Report", reason: str | None, elapsed_ms: float, argv: list[str] | None = None) -> None:
    """The only caller of :func:`cancelctl.audit.record`."""
    from cancelctl import audit

    if gate is not None:
        gate()

    audit.record(report, reason=reason, elapsed_ms=elapsed_ms, argv=argv)


def finish(outcome: "Outcome") -> int:
    """Write the run's audit line (when it has one), then show its report; the run's exit code.

    A reader that goes away (``cancelctl cancel all | head -1``) does not
    change the code: the cancels were done as the audit line says, so the
    process returns the code recorded there (see :func:`_quiet_stdout`).
    """
    from cancelctl import render, signals

    signals.reporting()
    if outcome.audit:
        _audit(outcome.report, outcome.opts.reason, outcome.elapsed_ms)
    try:
        render.report(outcome.report, outcome.opts)
    except BrokenPipeError:
        _quiet_stdout()
    except Exception:  # noqa: BLE001 - a rendering bug changes neither the exit code nor which rows are said
        _plain_rows(outcome.report)
    return int(outcome.report.exit_code)


def _plain_rows(report: "Report") -> None:
    """After a rendering bug: every ID with its fate, tab-separated on stdout, and one stderr line; never raises."""
    try:
        from cancelctl.redact import scrub

        lines = []
        for r in report.results:
            fates = [(i, "cancelled") for i in r.cancelled] + [(x["id"], "rejected") for x in r.rejected]
            fates += [(i, "unknown") for i in r.unknown] + [(i, "open") for i in r.remaining or ()]
            lines += [f"{r.profile}\t{r.venue}\t{r.action}\t{i}\t{fate}" for i, fate in fates]
            if r.cancelled_count:
                lines.append(f"{r.profile}\t{r.venue}\t{r.action}\t-\tcancelled\t{r.cancelled_count} order(s)")
        sys.stdout.write("".join(scrub(line) + "\n" for line in lines))
        sys.stdout.flush()
        sys.stderr.write(
            f"cancelctl: error: the report could not be shown in full (a bug); exit {int(report.exit_code)}\n"
        )
        sys.stderr.flush()
    except Exception:  # noqa: BLE001 - the exit code is still returned
        pass


def _quiet_stdout() -> None:
    """After EPIPE on stdout: point it at /dev/null so the interpreter's final flush cannot fail again (Python docs,
    "Note on SIGPIPE")."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def _fail(e: "CancelctlError", flags: "EarlyFlags", argv: list[str], *, audited: bool) -> int:
    from cancelctl import flags as flags_mod
    from cancelctl import redact, signals
    from cancelctl.errors import ExitCode
    from cancelctl.render import err, error_line, out_json
    from cancelctl.results import Report

    signals.reporting()
    # A word the command line did not accept may be a pasted secret (`keys set main <secret>`, `cancel order
    # 1,<secret>`, `-p<secret>`): registered, so neither this line, the JSON document nor the audit line echoes it.
    redact.register(*filter(redact.looks_secret, flags_mod.pieces(argv)))
    report = Report([], dry_run=flags.dry_run, error=e)
    if not audited and flags.command in CANCELLING:
        _audit(report, flags.reason, 0.0, argv)
    try:
        err(error_line(e))
        if flags.json:
            out_json(report.as_json())
    except BrokenPipeError:
        _quiet_stdout()
    if flags.command == "panic" and e.exit_code != ExitCode.USAGE:  # a button that could not be pressed is news
        _notify(flags, int(e.exit_code), report, flags.reason)
    return int(e.exit_code)


NOTIFYING = {"panic", "deadman"}  # commands whose run is notified (deadman: returns a report only when it fired)


def _notify(flags: "EarlyFlags", code: int, report: "Report", reason: str | None) -> None:
    """After the report and the audit line: the run's notification (contract, "Notifications"), when URLs are set.

    ``heartbeat`` notifies its own failure (cancelctl.cli.watch). Never a dry run; never raises.
    """
    if flags.command not in NOTIFYING or flags.dry_run or report.dry_run:
        return
    from cancelctl import notify

    current = notify.settings()
    if not current.urls and not current.problem:
        return
    title, body = notify.message(flags.command, code, report, reason=reason)
    if deferred is not None:  # run by a guard for a caller: sent once the caller has its answer
        deferred.append((title, body, current))
        return
    notify.send(title, body, current)


#: Set by a guard (cancelctl.guard) while it runs a caller's command: called before the audit line is written, it
#: returns once the caller has said "go", else raises (the caller runs cold and writes its own line).
gate: "Callable[[], None] | None" = None

#: A list while a guard (cancelctl.guard) runs a caller's command: the notifications wait in it until the guard
#: has sent the caller its answer (then :func:`send_deferred`), so a slow target never delays the report.
deferred: list[tuple[str, str, object]] | None = None


def send_deferred(waiting: list[tuple[str, str, object]]) -> None:
    """Send the notifications :func:`_notify` left in ``waiting`` (see :data:`deferred`); never raises."""
    from cancelctl import notify

    for title, body, current in waiting:
        notify.send(title, body, current if isinstance(current, notify.Settings) else None)


def run(argv: list[str] | None = None, *, restore: bool = True) -> int:
    """Run cancelctl with ``argv`` (default ``sys.argv[1:]``); return the exit code.

    SIGINT, SIGTERM and SIGHUP are handled for the whole run (see
    :mod:`cancelctl.signals`); with ``restore`` (an in-process caller) the
    previous handlers come back on return. The process (:func:`main`) keeps
    them to its end, so a late signal cannot turn into a traceback.
    """
    from cancelctl import signals

    # httpx imports its command-line client (rich, pygments: ~100 ms) whenever click is installed, and
    # apprise (the notify extra) installs click. A None entry makes that one import fail, which httpx
    # catches (its ``main`` then only says "pip install 'httpx[cli]'"); cancelctl never calls it.
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
    previous = signals.install()
    try:
        handoff = sys.modules.get("cancelctl.handoff")
        if handoff is not None and handoff.interrupted is not None:  # a guard handed the command back after a signal
            signals.replay(handoff.interrupted)  # the cold run stops here, before anything is sent, and reports it
        signals.raise_early()  # one that came while install() put the handlers in
        return _run(argv)
    except signals.Interrupted as e:  # landed before _run's own handlers, or before an error's report began
        from cancelctl import flags as flags_mod

        words = list(sys.argv[1:] if argv is None else argv)
        return _fail(_stopped(e.signum), flags_mod.parse(words), words, audited=False)
    finally:
        signals.ended()  # first: a signal from here on is counted (the run has its code), never raised out of run
        if restore:
            previous()
        handoff = sys.modules.get("cancelctl.handoff")
        if handoff is not None:
            handoff.reset()  # the hand-off's kept signal and times were this run's


def _run(argv: list[str] | None) -> int:
    import gc

    from cancelctl import flags as flags_mod
    from cancelctl import signals

    argv = list(sys.argv[1:] if argv is None else argv)
    flags = flags_mod.parse(argv)
    audited = False  # finish() wrote the run's audit line: an error after it writes none
    try:
        # Start-up allocates tens of thousands of long-lived objects (imports, the
        # typer tree) and the default threshold (700) runs the cyclic collector
        # dozens of times over them before the first cancel. Collecting every
        # 50,000 allocations keeps long runs (heartbeat, deadman, sim) bounded.
        gc.set_threshold(50_000)
        from cancelctl.errors import CancelctlError, ExitCode
        from cancelctl.flags import env_bool

        if env_bool("CANCELCTL_DEBUG") is None:
            sys.stderr.write("cancelctl: warning: CANCELCTL_DEBUG is not 1/0, true/false, yes/no or on/off; ignored\n")
        import typer

        from cancelctl.cli import command

        try:
            rv = command(flags.command)(args=flags_mod.arrange(argv), prog_name="cancelctl", standalone_mode=False)
        except typer.TyperException as e:  # usage errors from argument parsing
            from cancelctl.cli import usage_problem

            return _fail(usage_problem(e, flags_mod.arrange(argv)), flags, argv, audited=audited)
        except typer.Abort:
            return _fail(
                CancelctlError("aborted", exit_code=ExitCode.INTERRUPTED, kind="interrupted"),
                flags,
                argv,
                audited=audited,
            )
        runner = sys.modules.get("cancelctl.runner")  # loaded whenever a command ran the runner
        if runner is not None and isinstance(rv, runner.Outcome):
            from cancelctl import redact

            # A pasted secret given as --symbol reaches the venue's answer ("not a market") and the audit line's
            # command: registered, so neither echoes it (a real symbol is short; see redact.looks_secret).
            redact.register(*filter(redact.looks_secret, flags_mod.pieces(argv, options=frozenset({"--symbol"}))))
            audited = rv.audit
            code = finish(rv)
            _notify(flags, code, rv.report, rv.opts.reason)
            return code
        return int(rv) if isinstance(rv, int) else 0
    except signals.Interrupted as e:
        return _fail(_stopped(e.signum), flags, argv, audited=audited)
    except KeyboardInterrupt:  # a caller that kept Python's own SIGINT handler
        return _fail(_stopped(2), flags, argv, audited=audited)
    except BrokenPipeError:
        _quiet_stdout()
        return 1
    except Exception as e:  # noqa: BLE001 - the funnel: a bug is one line and exit 70
        from cancelctl.errors import CancelctlError as Foreseen
        from cancelctl.errors import internal_error

        if isinstance(e, Foreseen):
            return _fail(e, flags, argv, audited=audited)
        return _fail(internal_error(e, flags.debug or debug_from_env()), flags, argv, audited=audited)


def _stopped(signum: int) -> "CancelctlError":
    from cancelctl.errors import stopped_by

    handoff = sys.modules.get("cancelctl.handoff")
    if handoff is not None and handoff.unanswered:  # the guard had the "go": it may have sent some
        return stopped_by(
            signum,
            "this process sent no cancel; the guard it handed the command to stopped without answering, so what "
            "it sent is not known (check with: cancelctl orders)",
        )
    return stopped_by(signum, "stopped before any cancel was sent")


def debug_from_env() -> bool:
    """``CANCELCTL_DEBUG``: see :func:`cancelctl.flags.env_bool`; anything unrecognised is off."""
    from cancelctl.flags import env_bool

    return bool(env_bool("CANCELCTL_DEBUG"))


def _whole_writes() -> None:
    """Under ``PYTHONUNBUFFERED`` (``python -u``, set in many container images) ``sys.stdout`` and ``sys.stderr``
    write straight to the file descriptor, and a write that a signal cuts short (a Ctrl-C while the report waits on
    a slow reader) returns a short count that Python's text layer ignores: the rest of the report, the JSON document
    included, was silently lost while the run exited with its code. Each gets a buffered writer under it instead,
    still flushed at every write, which writes the rest after the signal's handler has run."""
    import io

    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if not (isinstance(stream, io.TextIOWrapper) and isinstance(stream.buffer, io.RawIOBase)):
            continue  # buffered already (the usual case), or not a file (a test's capture)
        try:
            raw = io.FileIO(stream.fileno(), "wb", closefd=False)  # its own: the old wrapper closing cannot close it
            whole = io.TextIOWrapper(
                io.BufferedWriter(raw),
                encoding=stream.encoding,
                errors=stream.errors,
                newline="\n",
                line_buffering=stream.line_buffering,
                write_through=True,
            )
        except (OSError, ValueError):
            continue
        setattr(sys, name, whole)


def main() -> None:
    """Run the command in this process, then exit with its code: the cold path. The console script and ``python -m
    cancelctl`` enter at :func:`cancelctl.handoff.main`, which tries a running guard first and calls this when none
    takes the command."""
    from cancelctl import signals

    _whole_writes()
    code = run(restore=False)
    signals.ignore()  # the run has reported: a signal now must not kill the interpreter while it finalizes
    sys.exit(code)
