"""The one error funnel: run the app, turn every failure into one stderr line and an exit code.

With ``--json`` anywhere on the command line, stdout gets exactly one JSON
document on every exit path, errors included. This is also the one place
that writes the audit line: a cancelling command returns its
:class:`~cancelctl.runner.Outcome` here, and a cancelling command that
failed before it had one gets a line with its error.
"""

from __future__ import annotations

import sys

CANCELLING = {"cancel", "panic", "deadman"}  # commands whose every run leaves an audit line


def _audit(report, reason: str | None, elapsed_ms: float, argv: list[str] | None = None) -> None:
    """The only caller of :func:`cancelctl.audit.record`."""
    from cancelctl import audit

    audit.record(report, reason=reason, elapsed_ms=elapsed_ms, argv=argv)


def finish(outcome) -> int:
    """Write the run's audit line (when it has one), then show its report; the run's exit code."""
    from cancelctl import render

    if outcome.audit:
        _audit(outcome.report, outcome.opts.reason, outcome.elapsed_ms)
    render.report(outcome.report, outcome.opts)
    return outcome.report.exit_code


def _fail(e, flags, argv: list[str], *, audited: bool) -> int:
    from cancelctl.render import err, error_line, out
    from cancelctl.results import Report

    err(error_line(e))
    report = Report([], dry_run=flags.dry_run, error=e)
    if not audited and flags.command in CANCELLING:
        _audit(report, flags.reason, 0.0, argv)
    if flags.json:
        import json

        out(json.dumps(report.as_json(), indent=2))
    return int(e.exit_code)


def run(argv: list[str] | None = None) -> int:
    """Run cancelctl with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    import gc

    # Start-up allocates tens of thousands of long-lived objects (imports, the
    # typer tree) and the default threshold (700) runs the cyclic collector
    # dozens of times over them before the first cancel. Collecting every
    # 50,000 allocations keeps long runs (heartbeat, deadman, sim) bounded.
    gc.set_threshold(50_000)
    argv = list(sys.argv[1:] if argv is None else argv)
    from cancelctl import flags as flags_mod
    from cancelctl.errors import CancelctlError, ExitCode, UsageProblem, internal_error

    flags = flags_mod.parse(argv)
    debug = flags.debug or bool(__import__("os").environ.get("CANCELCTL_DEBUG"))
    audited = False  # finish() wrote the run's audit line: an error after it writes none
    try:
        import typer

        from cancelctl.cli import build

        try:
            rv = build(flags.command)(args=argv, prog_name="cancelctl", standalone_mode=False)
        except typer.TyperException as e:  # usage errors from argument parsing
            message = e.format_message() if hasattr(e, "format_message") else str(e)
            return _fail(UsageProblem(message, hint="see cancelctl --help"), flags, argv, audited=audited)
        except typer.Abort:
            return _fail(CancelctlError("aborted", exit_code=ExitCode.INTERRUPTED, kind="interrupted"), flags, argv, audited=audited)
        runner = sys.modules.get("cancelctl.runner")  # loaded whenever a command ran the runner
        if runner is not None and isinstance(rv, runner.Outcome):
            audited = rv.audit
            return finish(rv)
        return int(rv) if isinstance(rv, int) else 0
    except CancelctlError as e:
        return _fail(e, flags, argv, audited=audited)
    except KeyboardInterrupt:
        return _fail(CancelctlError("interrupted", exit_code=ExitCode.INTERRUPTED, kind="interrupted"), flags, argv, audited=audited)
    except BrokenPipeError:
        return ExitCode.FAILED
    except Exception as e:  # noqa: BLE001 - the funnel: a bug is one line and exit 70
        return _fail(internal_error(e, debug), flags, argv, audited=audited)


def main() -> None:
    """Console-script entry point."""
    sys.exit(run())
