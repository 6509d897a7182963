"""Output: a rich table for people, tab-separated lines for pipes, one JSON document for scripts.

stdout carries results only; every error line goes to stderr. Imported
only after the cancels are sent (rich is the slowest import of the tool).
Every string printed passes through :func:`scrub`, which blanks any secret
resolved in this process.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from cancelctl.errors import CancelctlError
from cancelctl.redact import scrub
from cancelctl.results import ProfileResult, Report

if TYPE_CHECKING:
    from cancelctl.runner import Options

__all__ = ["err", "error_line", "out", "out_json", "report", "rich_table", "rows", "scrub", "table"]


def out(text: str) -> None:
    sys.stdout.write(scrub(text) + "\n")
    sys.stdout.flush()


def out_json(doc: object) -> None:
    """One JSON document on stdout: secrets redacted in its values before serialising (never in its text afterwards)."""
    from cancelctl.redact import dumps

    sys.stdout.write(dumps(doc, indent=2) + "\n")
    sys.stdout.flush()


def err(text: str) -> None:
    sys.stderr.write(scrub(text) + "\n")
    sys.stderr.flush()


def error_line(e: CancelctlError, profile: str | None = None) -> str:
    where = f"profile {profile}: " if profile else ""
    return f"cancelctl: error: {where}{e.one_line()}"


def rows(result: ProfileResult) -> list[tuple[str, str, str]]:
    """(order ID, result, reason) rows for one profile; at least one row; every field one printable, bounded line."""
    from cancelctl.text import one_line

    return [(one_line(i, 100), one_line(r, 40), one_line(why)) for i, r, why in _rows(result)]


def _rows(result: ProfileResult) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    if result.orders is not None:
        rows += [
            (
                o["order_id"],
                "open",
                " ".join(str(o.get(k)) for k in ("symbol", "side", "amount", "price") if o.get(k) is not None)
                + (" reduce-only" if o.get("reduce_only") else "")
                + (" stop" if o.get("stop") else "")
                + (" TWAP" if o.get("twap") else ""),
            )
            for o in result.orders
        ]
        if not rows and result.error is None:
            rows.append(("-", "none open", "no open orders"))
    twap = set(result.twap)
    rows += [(i, "cancelled", "TWAP order" if i in twap else "") for i in result.cancelled]
    still_open = set(result.remaining or ())
    rejected = {r["id"] for r in result.rejected}
    rows += [
        (
            r["id"],
            "rejected",
            r["reason"]
            + ("; still open after verification" if r["id"] in still_open else "")
            + (" (TWAP order)" if r["id"] in still_open and r["id"] in twap else ""),
        )
        for r in result.rejected
    ]
    rows += [(i, "unknown", "fate unknown: check the venue") for i in result.unknown]
    rows += [  # one row per ID: a rejected order still open is its rejection row, which says so
        (i, "open", "still open after verification" + (" (TWAP order)" if i in twap else ""))
        for i in result.remaining or []
        if i not in rejected
    ]
    if result.dry_run and result.requests is not None:
        rows.append(("-", "dry-run", f"{len(result.requests)} request(s) signed, none sent"))
    if result.cancelled_count:
        rows.insert(0, ("-", "cancelled", f"{result.cancelled_count} order(s); the venue gives no IDs"))
    if result.error is not None and not (result.cancelled or result.rejected or result.unknown):
        rows.append(("-", result.status, result.error.one_line()))
    if result.verify_error is not None:
        rows.append(("-", "unknown", f"book unreadable after cancelling: {result.verify_error.one_line()}"))
    if not rows and result.action not in ("positions", "close_positions"):
        rows.append(("-", "ok", "nothing to cancel" if result.remaining is None else "no open orders"))
    if result.positions is not None or result.positions_error is not None or result.closed:
        rows += position_rows(result)  # under the orders
    if not rows:
        rows.append(("-", "ok", ""))
    return rows


def position_text(p: dict[str, Any]) -> str:
    """``BTC long 0.5 @ 61200 (mark 61000, unrealized PnL -100)``: one printable, bounded line (venue text)."""
    from cancelctl.text import one_line

    return one_line(_position_text(p))


def _position_text(p: dict[str, Any]) -> str:
    text = f"{p['symbol']} {p['side']} {p['size']}"
    if p.get("entry_price") is not None:
        text += f" @ {p['entry_price']}"
    extra = [
        f"{k} {p[f]}" for k, f in (("mark", "mark_price"), ("unrealized PnL", "unrealized_pnl")) if p.get(f) is not None
    ]
    return text + (f" ({', '.join(extra)})" if extra else "")


def position_rows(result: ProfileResult) -> list[tuple[str, str, str]]:
    """(symbol, result, text) rows: closing orders, then what is open, or flat, or why it is not known."""
    rows: list[tuple[str, str, str]] = []
    for c in result.closed or []:
        what = f"close {c['symbol']} {c['side']} {c['size']}" + (f" order {c['order_id']}" if c.get("order_id") else "")
        rows.append((c["symbol"], f"close {c['status']}", what + (f": {c['reason']}" if c.get("reason") else "")))
    if result.positions_error is not None:
        rows.append(("-", "unknown", f"positions not read: {result.positions_error.one_line()}"))
    elif result.positions is not None:
        hint = "" if result.closing or result.action == "positions" else " — not closed; use --close-positions"
        rows += [(p["symbol"], "position", position_text(p) + hint) for p in result.positions]
        if not result.positions and result.error is None:
            rows.append(("-", "flat", "no open position"))
    return rows


def report(report: Report, opts: Options) -> None:
    """Print ``report`` as ``opts`` asks (json, quiet, table or TSV) and its errors on stderr."""
    for r in report.results:
        profile = r.profile if len(report.results) > 1 else None
        if r.error is not None:
            err(error_line(r.error, profile))
        elif r.verify_error is not None:  # cancels answered, book unreadable: exit 5 needs its line too
            err(
                f"cancelctl: error: {'profile ' + profile + ': ' if profile else ''}cancelled, but the book could "
                f"not be read back: {r.verify_error.one_line()}"
            )
        if r.close_error is not None and r.error is None:  # a closing order refused for the key or the config
            err(error_line(r.close_error, profile))
        if r.positions_error is not None and r.error is None:  # a failed position read is said, not hidden
            err(
                f"cancelctl: {'error' if r.closing else 'warning'}: "
                f"{'profile ' + profile + ': ' if profile else ''}positions not read: {r.positions_error.one_line()}"
            )
        elif r.closing and r.positions and not r.dry_run:
            left = ", ".join(position_text(p) for p in r.positions)
            where = f"profile {profile}: " if profile else ""
            err(f"cancelctl: error: {where}{len(r.positions)} position(s) still open after closing: {left}")
    if report.error is not None:
        err(error_line(report.error))
    if opts.json:
        out_json(report.as_json())
        return
    if opts.dry_run:
        for r in report.results:
            for req in r.requests or []:
                out(f"# {r.profile} ({r.venue}): would send")
                out_json(req)
    if opts.quiet:
        return
    if sys.stdout.isatty():
        table(report)
    else:
        for r in report.results:
            for order_id, result, reason in rows(r):
                action = "cancel_twap_order" if order_id in r.twap and r.orders is None else r.action
                out("\t".join([r.profile, r.venue, action, order_id, result, reason]))


STYLES = {
    "position": "yellow",
    "close filled": "green",
    "close partial": "yellow",
    "close unknown": "yellow",
    "flat": "green",
    "none open": "green",
    "cancelled": "green",
    "rejected": "red",
    "unknown": "yellow",
    "open": "red",
    "ok": "green",
    "dry-run": "cyan",
    "warn": "yellow",
    "fail": "red",
}


def rich_table(
    columns: Sequence[str], lines: Iterable[Sequence[str]], footer: str, *, styled: int, title: str | None = None
) -> None:
    """A rich table on stdout (a terminal): every cell scrubbed and shown as text (no markup), column ``styled``
    coloured by :data:`STYLES`; then ``footer`` (rich markup)."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console()
    t = Table(title=title)
    for col in columns:
        t.add_column(col)
    for line in lines:
        t.add_row(
            *(Text(scrub(cell), style=STYLES.get(cell, "red") if n == styled else "") for n, cell in enumerate(line))
        )
    console.print(t)
    console.print(footer)


def table(report: Report, title: str | None = None) -> None:
    """The report as a table for people: profile, order ID, result, reason; then the verdict."""
    code = report.exit_code
    word = {0: "[green]done[/]", 3: "[yellow]partial[/]", 5: "[yellow]outcome unknown[/]"}.get(code, "[red]failed[/]")
    lines = [(r.profile, order_id, result, reason) for r in report.results for order_id, result, reason in rows(r)]
    rich_table(("profile", "order ID", "result", "reason"), lines, f"{word} (exit {code})", styled=2, title=title)
