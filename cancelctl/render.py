"""Output: a rich table for people, tab-separated lines for pipes, one JSON document for scripts.

stdout carries results only; every error line goes to stderr. Imported
only after the cancels are sent (rich is the slowest import of the tool).
Every string printed passes through :func:`scrub`, which blanks any secret
resolved in this process.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cancelctl.errors import CancelctlError, ExitCode
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


SEE_ABOVE = "see the error above"


def rows(result: ProfileResult, *, brief: bool = False) -> list[tuple[str, str, str]]:
    """(order ID, result, reason) rows for one profile; at least one row; every field one printable, bounded line.

    ``brief`` (a terminal showing the error lines too): the profile's error is not repeated in its rows; they
    point to it (errors are said once).
    """
    from cancelctl.text import one_line

    said = _said(result) if brief else {}
    if brief and result.error is not None and result.error.exit_code == ExitCode.UNAVAILABLE:
        said[result.status] = "not sent"  # a table says 75 in its own words; TSV keeps the status
    return [
        (one_line(i, 100), one_line(said.get(r, r) if i == "-" else r, 40), one_line(said.get(why, why)))
        for i, r, why in _rows(result)
    ]


def _said(result: ProfileResult) -> dict[str, str]:
    """Reasons that repeat the profile's error line, and the short text that replaces them in a table."""
    said: dict[str, str] = {}
    for e, lead in ((result.error, ""), (result.verify_error, "book unreadable after cancelling: ")):
        if e is not None:
            said[lead + e.one_line()] = (lead.split(":")[0] + ": " if lead else "") + SEE_ABOVE
            said[f"not sent: {e.message}"] = f"not sent: {SEE_ABOVE}"
    if result.positions_error is not None:
        said[f"positions not read: {result.positions_error.one_line()}"] = f"positions not read: {SEE_ABOVE}"
    if result.preview_error is not None:
        said[f"book not read: {result.preview_error.one_line()}"] = f"book not read: {SEE_ABOVE}"
    return said


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
    seen = result.details
    rows += [(o["order_id"], "would cancel", order_text(dict(o))) for o in result.would_cancel or ()]
    rows += [
        (i, "cancelled", order_text(dict(seen[i])) if i in seen else "TWAP order" if i in twap else "")
        for i in result.cancelled
    ]
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
        if i not in rejected and result.orders is None  # `orders --expect-none`: the listing's rows say it
    ]
    if result.preview_error is not None:
        rows.append(("-", "unknown", f"book not read: {result.preview_error.one_line()}"))
    elif result.would_cancel == []:
        rows.append(("-", "dry-run", "no open orders in scope: the real run would cancel none now"))
    if result.dry_run and result.requests is not None:
        rows.append(("-", "dry-run", f"{len(result.requests)} request(s) signed, none sent"))
    if result.cancelled_orders:  # Pacifica's count, named by its order history
        rows[:0] = [
            (o["order_id"], "cancelled", f"{order_text(dict(o))} (named by the order history)")
            for o in result.cancelled_orders
        ]
    elif result.cancelled_count:
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


@dataclass(frozen=True)
class Terminal:
    """What rendering knows of where it writes: whether stdout and stderr are terminals, and the width (columns;
    None: ask the terminal). ``now``: the time the verdict line gives (epoch seconds; None: the current time)."""

    stdout: bool = False
    stderr: bool = False
    width: int | None = None
    now: float | None = None

    @classmethod
    def detect(cls) -> Terminal:
        """This process's stdout and stderr; never raises (a closed stream is not a terminal)."""

        def tty(stream: object) -> bool:
            try:
                return bool(stream.isatty())  # type: ignore[attr-defined]
            except (AttributeError, ValueError, OSError):
                return False

        return cls(stdout=tty(sys.stdout), stderr=tty(sys.stderr))


def report(report: Report, opts: Options, term: Terminal | None = None, *, expected: int | None = None) -> None:
    """Print ``report`` as ``opts`` asks (json, quiet, table or TSV), its errors on stderr, then its verdict line.

    A pure function of the report, the options and ``term`` (default: this
    process's streams): ``cancelctl guard`` replays it. Errors are said once:
    one stderr line each, and on a terminal the table's row points to it.
    The verdict line (:func:`verdict`) goes to stderr when stderr is a
    terminal (never with ``--json`` or ``-q``), else under the table on a
    terminal, never into a pipe. ``expected``: the exit code a drill step
    expects (the demo), said as expected rather than as a warning. A
    failure to render (a bug) falls back to the tab-separated rows: it
    never loses a row or changes the exit code; BrokenPipeError is raised
    for the caller.
    """
    term = term or Terminal.detect()
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
        if r.preview_error is not None:
            where = f"profile {profile}: " if profile else ""
            err(f"cancelctl: warning: {where}dry run: the book could not be read: {r.preview_error.one_line()}")
    if report.error is not None:
        err(error_line(report.error))
    if opts.json:
        out_json(report.as_json())
        return
    if opts.quiet:
        requests(report, opts)
        return
    if term.stdout:
        try:
            if report.results and all(r.action == "list_orders" for r in report.results):
                orders_table(report, brief=term.stderr, width=term.width)
            else:
                table(report, brief=term.stderr, width=term.width)
        except (BrokenPipeError, KeyboardInterrupt):
            raise
        except Exception:  # noqa: BLE001 - a rendering bug must not lose a row: the plain rows instead
            tsv(report)
    else:
        tsv(report)
    requests(report, opts)  # a dry run: what it would cancel first, then the signed requests
    if term.stdout or term.stderr:
        say_verdict(report, term, expected=expected)


def requests(report: Report, opts: Options) -> None:
    """A dry run's signed requests, redacted, on stdout: a ``# profile (venue): would send`` line, then the JSON."""
    if not opts.dry_run:
        return
    for r in report.results:
        for req in r.requests or []:
            out(f"# {r.profile} ({r.venue}): would send")
            out_json(req)


def tsv(report: Report) -> None:
    """The rows as tab-separated lines on stdout: profile, venue, action, order ID, result, reason."""
    for r in report.results:
        for order_id, result, reason in rows(r):
            action = "cancel_twap_order" if order_id in r.twap and r.orders is None else r.action
            out("\t".join([r.profile, r.venue, action, order_id, result, reason]))


def plural(n: int, word: str, words: str | None = None) -> str:
    """``1 order``, ``2 orders`` (``words``: the plural when it is not ``word + "s"``)."""
    return f"{n} {word if n == 1 else words or word + 's'}"


def verdict(report: Report, now: float | None = None, *, expected: int | None = None) -> str:
    """The run in one line for people: counts, what verification saw, the time (UTC) and the exit code in words.

    e.g. ``12 cancelled · 1 rejected · 0 unknown · no open orders left on 4/4 accounts · 2026-11-29 19:58:03 UTC
    · exit 0: done``. ``now``: epoch seconds (default the current time). Never raises.
    """
    import time

    from cancelctl.errors import EXIT_WORDS

    code = int(report.exit_code)
    words = EXIT_WORDS.get(code, "failed")
    if report.dry_run and code == 0:
        words = "dry run: no cancel was sent"
    if code == ExitCode.PARTIAL and report.results and all(r.action == "list_orders" for r in report.results):
        words = "orders are open (--expect-none)"
    if expected is not None and code == expected and code != 0:
        words = f"{words.split(':')[0]}, as this step expects"
    try:
        parts = _counts(report)
    except Exception:  # noqa: BLE001 - the exit code is said whatever the counts could not say
        parts = []
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(now))
    return " · ".join([*parts, stamp, f"exit {code}: {words}"])


def _counts(report: Report) -> list[str]:
    results = report.results
    n = len(results)
    if not results:
        return []
    actions = {r.action for r in results}
    parts: list[str] = []
    if actions == {"list_orders"}:
        listed = sum(len(r.orders or ()) for r in results)
        read = sum(r.orders is not None and r.error is None for r in results)
        parts.append(plural(listed, "open order") if listed else "no open orders")
        parts.append(f"book read on {read}/{plural(n, 'account')}")
    elif actions == {"positions"}:
        held = sum(len(r.positions or ()) for r in results)
        read = sum(r.positions is not None and r.positions_error is None and r.error is None for r in results)
        parts.append(plural(held, "open position") if held else "flat (no open position)")
        parts.append(f"read on {read}/{plural(n, 'account')}")
    elif report.dry_run:
        looked = [r for r in results if r.would_cancel is not None]
        if looked or any(r.preview_error is not None for r in results):
            would = sum(len(r.would_cancel or ()) for r in looked)
            parts.append(
                f"would cancel {plural(would, 'open order')} (book read on {len(looked)}/{plural(n, 'account')})"
            )
        signed = sum(len(r.requests or ()) for r in results)
        parts.append(f"{plural(signed, 'request')} signed, none sent")
    else:
        cancelled = sum(len(r.cancelled) + (r.cancelled_count or 0) for r in results)
        rejected = [x for r in results for x in r.rejected]
        not_sent = sum(x["reason"].startswith("not sent") for x in rejected)
        parts += [f"{cancelled} cancelled", f"{len(rejected) - not_sent} rejected"]
        if not_sent:
            parts.append(f"{not_sent} not sent")
        parts.append(f"{sum(len(r.unknown) for r in results)} unknown")
        checked = [r for r in results if r.remaining is not None or r.verify_error is not None]
        if checked:
            # an unsettled scope (a symbol that could not be checked) is never "no open orders left": exit 5 says why
            clean = sum(r.remaining == [] and r.verify_error is None and r.unsettled is None for r in results)
            # a check of some orders (IDs, symbols) says nothing of the others: "in scope", never the account clear
            scope = " in scope" if any(r.scoped for r in checked) else ""
            parts.append(f"no open orders left{scope} on {clean}/{plural(n, 'account')}")
            still = sum(len(r.remaining or ()) for r in results)
            if still:
                parts.append(f"{still} still open")
    read_positions = [r for r in results if r.positions is not None and r.action != "positions"]
    if read_positions:
        held = sum(len(r.positions or ()) for r in read_positions)
        parts.append(plural(held, "position") + " open" if held else "flat (no position)")
    return parts


VERDICT_STYLES = {0: "green", 3: "yellow", 5: "yellow", 75: "yellow", 130: "yellow", 143: "yellow"}


def say_verdict(report: Report, term: Terminal, *, expected: int | None = None) -> None:
    """The verdict line: on stderr when it is a terminal, else on stdout (a terminal); coloured by exit code."""
    line = scrub(verdict(report, term.now, expected=expected))
    code = int(report.exit_code)
    style = "green" if code == expected else VERDICT_STYLES.get(code, "red")
    try:
        from rich.console import Console
        from rich.text import Text

        Console(stderr=term.stderr, width=term.width, soft_wrap=True).print(Text(line, style=style))
    except (BrokenPipeError, KeyboardInterrupt):
        raise
    except Exception:  # noqa: BLE001 - the line is said, without colour
        (err if term.stderr else out)(line)


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
    "not sent": "yellow",
    "fail": "red",
}


MIN_COLUMN = 4  # with ``cut``, the narrowest a column is made when the table must shrink (an ID column: never cut)


def fit_widths(columns: Sequence[str], lines: Sequence[Sequence[str]], width: int) -> list[int]:
    """Column widths (characters) so that the table fits ``width``, one line per row.

    Each column starts at its widest cell (or header). While the table is too
    wide, the last column (the reason) shrinks first, down to 8; then the
    widest column that is not an ID column loses one character at a time,
    down to ``MIN_COLUMN``. An ID column (its header says "ID") keeps its
    width: an order ID cut is no ID. Borders and padding take 3 characters a
    column and 1 at the end.
    """
    natural = [max([len(col), *(len(line[n]) for line in lines if n < len(line))]) for n, col in enumerate(columns)]
    widths = list(natural)

    def over() -> int:
        return sum(w + 3 for w in widths) + 1 - width

    if over() > 0:
        widths[-1] = max(min(8, natural[-1]), widths[-1] - over())
    shrinkable = [n for n, col in enumerate(columns) if "ID" not in col]
    while over() > 0:
        n = max(shrinkable, key=lambda i: widths[i])
        if widths[n] <= MIN_COLUMN:
            break
        widths[n] -= 1
    return widths


def rich_table(
    columns: Sequence[str],
    lines: Iterable[Sequence[str]],
    footer: str | None,
    *,
    styled: int,
    title: str | None = None,
    width: int | None = None,
    cut: bool = False,
) -> None:
    """A rich table on stdout (a terminal): every cell scrubbed and shown as text (no markup), column ``styled``
    coloured by :data:`STYLES`; then ``footer`` (rich markup) when given.

    With ``cut``, cells never wrap onto a second line: a long venue reason
    (a 44-character wallet address) is cut with "…" so a 60-column terminal
    still shows one line per row (the full text is in the error line,
    ``--json``, the tab-separated output and the audit log); the last column
    gets the room the others leave. ``width``: columns (None: the terminal's).
    """
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(width=width)
    t = Table(title=title)
    lines = [list(line) for line in lines]
    if cut:
        widths = fit_widths(columns, lines, console.width)
    for n, col in enumerate(columns):
        if cut:
            t.add_column(col, no_wrap=True, overflow="ellipsis", width=widths[n])
        else:
            t.add_column(col)
    for line in lines:
        t.add_row(
            *(Text(scrub(cell), style=STYLES.get(cell, "red") if n == styled else "") for n, cell in enumerate(line))
        )
    console.print(t)
    if footer is not None:
        console.print(footer)


def table(report: Report, title: str | None = None, *, brief: bool = False, width: int | None = None) -> None:
    """The report as a table for people: profile, order ID, result, reason.

    ``brief``: the error lines are on the same screen (stderr a terminal too), so a profile's error row
    points to its line instead of repeating it.
    """
    lines = [
        (r.profile, order_id, result, reason)
        for r in report.results
        for order_id, result, reason in rows(r, brief=brief)
    ]
    rich_table(("profile", "order ID", "result", "reason"), lines, None, styled=2, title=title, width=width, cut=True)


def order_text(o: dict[str, Any]) -> str:
    """``btcusd buy 0.5 @ 61000 reduce-only``: an order's details as cancelctl saw them, one bounded line."""
    from cancelctl.text import one_line

    symbol, side, size, price = order_cells(o)
    text = " ".join(x for x in (symbol, side, size) if x) + (f" @ {price}" if price else "")
    kind = " ".join(w for w, k in (("reduce-only", "reduce_only"), ("stop", "stop"), ("TWAP", "twap")) if o.get(k))
    return one_line(f"{text} {kind}".strip())


def order_kind(o: dict[str, Any]) -> str:
    """``limit reduce-only stop TWAP``: what kind of order, in words (venue text made one bounded line)."""
    from cancelctl.text import one_line

    words = [str(o.get("order_type") or "")] if o.get("order_type") else []
    words += [w for w, k in (("reduce-only", "reduce_only"), ("stop", "stop"), ("TWAP", "twap")) if o.get(k)]
    return one_line(" ".join(words), 40)


def order_cells(o: dict[str, Any]) -> tuple[str, str, str, str]:
    """(symbol, side, size, price) of an open order: one printable, bounded line each; "" where the venue gave none."""
    from cancelctl.text import one_line

    return tuple(  # type: ignore[return-value]
        "" if o.get(k) is None else one_line(o.get(k), 40) for k in ("symbol", "side", "amount", "price")
    )


def order_lines(report: Report, *, brief: bool = False) -> list[tuple[str, ...]]:
    """The ``orders`` table's rows: profile, order ID, symbol, side, size, price, kind; a profile with no open order
    or an unread book gets one row saying so."""
    from cancelctl.text import one_line

    lines: list[tuple[str, ...]] = []
    for r in report.results:
        for o in r.orders or []:
            lines.append((r.profile, one_line(o["order_id"], 100), *order_cells(dict(o)), order_kind(dict(o))))
        if r.error is not None:
            note = f"book not read: {SEE_ABOVE if brief else r.error.one_line()}"
            lines.append((r.profile, "-", "", "", "", "", note))
        elif not r.orders:
            lines.append((r.profile, "-", "", "", "", "", "no open orders"))
    return lines


def orders_table(report: Report, *, brief: bool = False, width: int | None = None) -> None:
    """``cancelctl orders`` for people: one row per open order, its details in their own columns."""
    columns: tuple[str, ...] = ("profile", "order ID", "symbol", "side", "size", "price", "kind")
    lines = order_lines(report, brief=brief)
    keep = [n for n in range(len(columns)) if n < 2 or any(line[n] for line in lines)]  # no empty detail column
    columns, lines = tuple(columns[n] for n in keep), [tuple(line[n] for n in keep) for line in lines]
    rich_table(
        columns,
        lines,
        None,
        styled=-1,
        width=width,
        cut=True,
    )
