"""The one error funnel: run the app, turn every failure into one stderr line and an exit code.

With ``--json`` anywhere on the command line, stdout gets exactly one JSON
document on every exit path, errors included.
"""

from __future__ import annotations

import sys


CANCELLING = {"cancel", "panic", "deadman"}  # commands whose every run leaves an audit line


def _fail(e, argv: list[str]) -> int:
    from cancelctl.render import err, error_line, out
    from cancelctl.results import Report

    err(error_line(e))
    report = Report([], dry_run="--dry-run" in argv, error=e)
    words = [a for a in argv if not a.startswith("-")]
    if words and words[0] in CANCELLING:
        from cancelctl import audit

        if not audit.WRITTEN:
            audit.record(report, reason=_reason(argv), elapsed_ms=0.0, argv=argv)
    if "--json" in argv:
        import json

        out(json.dumps(report.as_json(), indent=2))
    return int(e.exit_code)


def _reason(argv: list[str]) -> str | None:
    for i, a in enumerate(argv):
        if a == "--reason" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--reason="):
            return a.split("=", 1)[1]
    return None


def run(argv: list[str] | None = None) -> int:
    """Run cancelctl with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    import gc

    # Start-up allocates tens of thousands of long-lived objects (imports, the
    # typer tree) and the default threshold (700) runs the cyclic collector
    # dozens of times over them before the first cancel. Collecting every
    # 50,000 allocations keeps long runs (heartbeat, deadman, sim) bounded.
    gc.set_threshold(50_000)
    argv = list(sys.argv[1:] if argv is None else argv)
    from cancelctl.errors import CancelctlError, ExitCode, UsageProblem

    debug = "--debug" in argv or bool(__import__("os").environ.get("CANCELCTL_DEBUG"))
    try:
        import typer

        from cancelctl.cli import build

        try:
            rv = build(argv)(args=argv, prog_name="cancelctl", standalone_mode=False)
        except typer.TyperException as e:  # usage errors from argument parsing
            message = e.format_message() if hasattr(e, "format_message") else str(e)
            return _fail(UsageProblem(message, hint="see cancelctl --help"), argv)
        except typer.Abort:
            return _fail(CancelctlError("aborted", exit_code=ExitCode.INTERRUPTED, kind="interrupted"), argv)
        return int(rv) if isinstance(rv, int) else 0
    except CancelctlError as e:
        return _fail(e, argv)
    except KeyboardInterrupt:
        return _fail(CancelctlError("interrupted", exit_code=ExitCode.INTERRUPTED, kind="interrupted"), argv)
    except BrokenPipeError:
        return ExitCode.FAILED
    except Exception as e:  # noqa: BLE001 - the funnel: a bug is one line and exit 70
        from cancelctl.runner import internal_error

        return _fail(internal_error(e, debug), argv)


def main() -> None:
    """Console-script entry point."""
    sys.exit(run())
