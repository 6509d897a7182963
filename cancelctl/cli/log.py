"""``cancelctl log``: the last runs recorded in the audit log, newest last.

Reads ``$CANCELCTL_STATE_DIR/audit.jsonl`` through :func:`cancelctl.audit.tail`
(the last lines only, at most :data:`cancelctl.audit.TAIL_LIMIT` bytes,
never a FIFO or a device). Shows what each line recorded: when, who, on
which host, the command (secrets were redacted when the line was written),
``--reason``, per profile the counts, and the exit code. With ``--json``,
one ``cancelctl-log/1`` document (docs/json.md, docs/schema/cancelctl-log-1.schema.json).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cancelctl.cli.common import JsonOpt, QuietOpt

SCHEMA = "cancelctl-log/1"
DEFAULT_RUNS = 20


def counts(profile: dict[str, Any]) -> str:
    """``main 6 cancelled, 1 rejected, 0 open`` (or ``main failed`` when it has no count): one profile of a run."""
    parts = [f"{profile[k]} {k}" for k in ("cancelled", "rejected", "unknown") if profile.get(k)]
    if profile.get("remaining") is not None:
        parts.append(f"{profile['remaining']} open")
    name = profile.get("profile") or "?"
    if not parts:
        parts.append(profile.get("status") or "-")
    return f"{name}: {', '.join(parts)}"


def row(run: dict[str, Any]) -> tuple[str, str, str, str, str, str]:
    """(time, who, command, reason, results, exit) of one run, each one printable, bounded line."""
    from cancelctl.text import one_line

    when = (run.get("time") or "?").replace("T", " ").replace("Z", " UTC")
    who = f"{run.get('user') or '?'}@{run.get('host') or '?'}"
    words = run.get("command") or []
    command = " ".join(words[1:] if words[:1] == ["cancelctl"] else words)
    results = "; ".join(counts(p) for p in run.get("profiles") or [])
    if not results and run.get("error"):
        results = f"{run['error'].get('kind') or 'error'}: {run['error'].get('message') or ''}"
    if run.get("dry_run"):
        results = f"dry run; {results}" if results else "dry run"
    code = run.get("exit_code")
    return (
        one_line(when, 40),
        one_line(who, 80),
        one_line(command, 120),
        one_line(run.get("reason") or "", 120),
        one_line(results or "-", 300),
        "?" if code is None else str(code),
    )


def log(
    lines: Annotated[
        int,
        typer.Option("-n", "--lines", metavar="N", min=1, max=100_000, help="How many runs to show (the last N)."),
    ] = DEFAULT_RUNS,
    json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> int:
    """Show the last runs recorded in the audit log, newest last: when, who, host, command, reason, counts, exit
    code."""
    import sys

    from cancelctl import audit
    from cancelctl.errors import CancelctlError, ExitCode
    from cancelctl.render import err, error_line, out, out_json

    path = audit.log_path()
    error: CancelctlError | None = None
    runs: list[dict[str, Any]] = []
    skipped = 0
    cut = False
    try:
        found = audit.tail(path, lines)
        runs, skipped, cut = found.runs, found.skipped, found.cut
    except FileNotFoundError:
        if not json and not quiet:
            err(f"cancelctl: no run recorded yet ({path} does not exist)")
    except CancelctlError as e:
        error = e
        err(error_line(e))
    if skipped:
        err(f"cancelctl: warning: {skipped} line(s) of {path} are not audit records (torn or damaged); skipped")
    if cut:
        err(f"cancelctl: warning: only the last {audit.TAIL_LIMIT >> 20} MiB of {path} were read")
    code = int(error.exit_code) if error is not None else int(ExitCode.OK)
    if json:
        doc: dict[str, Any] = {
            "schema": SCHEMA,
            "ok": code == 0,
            "exit_code": code,
            "path": str(path),
            "runs": runs,
            "skipped": skipped,
        }
        if error is not None:
            doc["error"] = {"kind": error.kind, "message": error.one_line(), "venue_reason": None}
        out_json(doc)
        return code
    if quiet or not runs:
        return code
    table = [row(r) for r in runs]
    if sys.stdout.isatty():
        from rich.markup import escape

        from cancelctl.render import rich_table

        rich_table(
            ("time", "who", "command", "reason", "results", "exit"),
            table,
            f"{len(runs)} run(s), newest last; {escape(str(path))}",
            styled=-1,
        )
    else:
        for line in table:
            out("\t".join(line))
    return code
