"""``cancelctl cancel ...``: all, session, order, pacifica."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Optional

import typer

from cancelctl import runner
from cancelctl.cli.common import (
    DryRunOpt,
    JsonOpt,
    NoGuardOpt,
    ProfileOpt,
    QuietOpt,
    ReasonOpt,
    TimeoutOpt,
    VerifyOpt,
    YesOpt,
    examples,
    options,
    selected,
)
from cancelctl.errors import UsageProblem
from cancelctl.runner import Action
from cancelctl.venues.info import VENUES
from cancelctl.verify import answered, everything, ids_scope, symbols_scope

if TYPE_CHECKING:
    from cancelctl.results import ProfileResult
    from cancelctl.venues.base import VenueClient
    from cancelctl.venues.pacifica import Pacifica

#: Each venue's widest cancel (Gemini cancel-all, Pacifica cancel_all_orders, all symbols); verified: no open orders.
WIDEST = Action(lambda c: c.cancel_all(), scope=everything)

def _session(client: VenueClient) -> ProfileResult:
    """Gemini's cancel session (the command checked that every profile is on a venue that has it)."""
    from cancelctl.venues.gemini import Gemini

    assert isinstance(client, Gemini)
    return client.cancel_session()


def _pacifica(client: VenueClient) -> Pacifica:
    """The Pacifica client (the command checked that every profile is on Pacifica)."""
    from cancelctl.venues.pacifica import Pacifica

    assert isinstance(client, Pacifica)
    return client


app = typer.Typer(help="Cancel orders: everything, a session, chosen orders.", no_args_is_help=True)


@app.command(
    "all",
    epilog=examples(
        "cancelctl cancel all -p main",
        "cancelctl cancel all -p main -p pac --verify --reason 'news spike'",
        "cancelctl cancel all --json | jq .exit_code",
    ),
)
def cancel_all(
    ctx: typer.Context,
    profile: ProfileOpt = None,
    json: JsonOpt = False,
    quiet: QuietOpt = False,
    dry_run: DryRunOpt = False,
    timeout: TimeoutOpt = 10.0,
    verify: VerifyOpt = None,
    reason: ReasonOpt = None,
    yes: YesOpt = False,
    no_guard: NoGuardOpt = False,  # read by cancelctl.handoff before this parse
) -> runner.Outcome:
    """Cancel every open order of the account: Gemini cancel-all (every session, UI orders included); Pacifica all
    symbols, then each TWAP order."""
    opts = options(ctx, profile, json, quiet, dry_run, timeout, verify, reason)
    profiles = selected(opts)
    return runner.run(profiles, WIDEST, opts)


@app.command(
    "session",
    epilog=examples(
        "cancelctl cancel session -p bot",
        "cancelctl cancel session -p bot --verify --reason 'bot restart'",
    ),
)
def cancel_session(
    ctx: typer.Context,
    profile: ProfileOpt = None,
    json: JsonOpt = False,
    quiet: QuietOpt = False,
    dry_run: DryRunOpt = False,
    timeout: TimeoutOpt = 10.0,
    verify: VerifyOpt = None,
    reason: ReasonOpt = None,
    yes: YesOpt = False,
    no_guard: NoGuardOpt = False,  # read by cancelctl.handoff before this parse
) -> runner.Outcome:
    """Gemini only: cancel the orders of this API key's session (other sessions and UI orders stay)."""
    opts = options(ctx, profile, json, quiet, dry_run, timeout, verify, reason)
    profiles = selected(opts)
    for p in profiles:
        if p.broken is None and "cancel session" not in VENUES[p.venue].commands:
            raise UsageProblem(
                f"profile {p.name!r} is on {p.venue}, which has no sessions",
                hint=f"use: cancelctl cancel all -p {p.name}   (or cancel pacifica -p {p.name} --symbol S)",
            )
    return runner.run(profiles, Action(_session, "cancel_session", answered), opts)


@app.command(
    "order",
    epilog=examples(
        "cancelctl cancel order 330429106 330429079 -p main",
        "cancelctl cancel order 8121, 8122 -p pac   # Pacifica: symbols looked up",
        "cancelctl cancel order 8130 --stop --symbol BTC -p pac",
    ),
)
def cancel_order(
    ctx: typer.Context,
    order_ids: Annotated[
        list[str],
        typer.Argument(
            metavar="ID...",
            help="Order IDs, separated by blanks or commas (Gemini: positive integers; Pacifica: integers, or UUIDs "
            "with --client-order-id).",
        ),
    ],
    symbol: Annotated[
        Optional[str],
        typer.Option(
            "--symbol", help="Pacifica: the orders' symbol. Without it each ID is looked up in the open orders."
        ),
    ] = None,
    client_order_id: Annotated[
        bool, typer.Option("--client-order-id", help="Pacifica: the IDs are client order IDs (UUIDs).")
    ] = False,
    stop: Annotated[
        bool, typer.Option("--stop", help="Pacifica: the IDs are stop orders (without --symbol the book says).")
    ] = False,
    twap: Annotated[
        bool, typer.Option("--twap", help="Pacifica: the IDs are TWAP orders (cancel_twap_order).")
    ] = False,
    profile: ProfileOpt = None,
    json: JsonOpt = False,
    quiet: QuietOpt = False,
    dry_run: DryRunOpt = False,
    timeout: TimeoutOpt = 10.0,
    verify: VerifyOpt = None,
    reason: ReasonOpt = None,
    yes: YesOpt = False,
    no_guard: NoGuardOpt = False,  # read by cancelctl.handoff before this parse
) -> runner.Outcome:
    """Cancel the given orders; every ID gets its own row: cancelled, rejected (with the venue's reason) or unknown.

    Gemini takes one request per ID, paced per API key at Gemini's
    recommended 5 a second after a burst of 5: N IDs take about
    (N - 5) / 5 seconds plus N round trips (12 IDs: about 1.4 s; 50 IDs:
    about 9 s, so raise --timeout for long lists). Pacifica sends two or
    more IDs as batches of 10; without --symbol it first reads the open
    orders once for each ID's symbol and kind (stop order or not) and says
    so on stderr; an ID not open there is rejected, not sent.
    """
    opts = options(ctx, profile, json, quiet, dry_run, timeout, verify, reason)
    profiles = selected(opts)
    # Commas separate IDs as blanks do: `1, 2,3` and `1,2,` are three IDs (what a comma leaves empty is
    # nothing); an argument that is empty without a comma (`""`, an unset variable) stays an error below. Blanks
    # inside one argument (`"1 2"`) stay an error too: which order was meant is the trader's to say.
    words = [p.strip() for w in order_ids for p in (w.split(",") if "," in w else [w]) if p.strip() or "," not in w]
    if not words:
        raise UsageProblem("no order ID given", hint="e.g. cancelctl cancel order 330429106 330429079")
    # An ID given twice is one order: sent once, one row (UUIDs compare without regard to case).
    seen: dict[str, str] = {}
    for i in words:
        seen.setdefault(i.lower() if client_order_id else i, i)
    ids = list(seen.values())
    from cancelctl.venues.base import venue_module

    help_hint = "see cancelctl cancel order --help"
    for p in profiles:  # validate everything before anything is sent
        if p.broken is not None:
            continue
        try:
            venue_module(p.venue).validate_cancel(
                ids, symbol=symbol, client_order_id=client_order_id, stop=stop, twap=twap
            )
        except UsageProblem as e:
            raise UsageProblem(e.message, hint=e.hint or help_hint) from None
    if stop and twap:
        raise UsageProblem("--stop and --twap name different kinds of order: give one", hint=help_hint)
    action = Action(
        lambda c: c.cancel_orders(ids, symbol=symbol, client_order_id=client_order_id, stop=stop, twap=twap),
        "cancel_twap_order" if twap else "cancel_stop_order" if stop else "cancel_order",
        ids_scope(ids, client_order_id=client_order_id),
    )
    outcome = runner.run(profiles, action, opts)
    if not opts.quiet:
        say_looked_up(outcome)
    return outcome


def say_looked_up(outcome: runner.Outcome) -> None:
    """One stderr line per profile whose orders' symbols were looked up (Pacifica without --symbol): what each ID
    was found to be, so the trader sees what was cancelled as what."""
    import sys

    from cancelctl.text import one_line

    for r in outcome.report.results:
        if not r.looked_up:
            continue
        found = [
            f"{e['id']} {e['symbol']}{' (stop order)' if e['stop'] else ''}" if e["symbol"] else f"{e['id']} not open"
            for e in r.looked_up
        ]
        line = f"cancelctl: profile {r.profile}: no --symbol, so each ID was looked up in the open orders: "
        sys.stderr.write(one_line(line + ", ".join(found), 1000) + "\n")


@app.command(
    "pacifica",
    epilog=examples(
        "cancelctl cancel pacifica -p pac",
        "cancelctl cancel pacifica -p pac --symbol BTC --symbol ETH",
        "cancelctl cancel pacifica -p pac --exclude-reduce-only",
    ),
)
def cancel_pacifica(
    ctx: typer.Context,
    symbol: Annotated[
        Optional[list[str]],
        typer.Option("--symbol", metavar="S", help="Only this symbol (repeatable); none means all symbols."),
    ] = None,
    exclude_reduce_only: Annotated[
        bool, typer.Option("--exclude-reduce-only", help="Keep reduce-only orders (protective exits).")
    ] = False,
    profile: ProfileOpt = None,
    json: JsonOpt = False,
    quiet: QuietOpt = False,
    dry_run: DryRunOpt = False,
    timeout: TimeoutOpt = 10.0,
    verify: VerifyOpt = None,
    reason: ReasonOpt = None,
    yes: YesOpt = False,
    no_guard: NoGuardOpt = False,  # read by cancelctl.handoff before this parse
) -> runner.Outcome:
    """Pacifica cancel_all_orders: all symbols, or one request per --symbol.

    This is the venue's operation alone: running TWAP orders are not
    touched (cancel all and panic cancel them too; cancel order --twap
    cancels one).
    """
    opts = options(ctx, profile, json, quiet, dry_run, timeout, verify, reason)
    profiles = selected(opts, venue="pacifica")
    for p in profiles:
        if p.broken is None and "cancel pacifica" not in VENUES[p.venue].commands:
            raise UsageProblem(f"profile {p.name!r} is on {p.venue}", hint=f"use: cancelctl cancel all -p {p.name}")
    from cancelctl.venues.pacifica import validate_symbol

    symbols = [validate_symbol(s) for s in dict.fromkeys(symbol or [])]
    action = Action(
        lambda c: _pacifica(c).cancel_all(symbols=symbols or None, exclude_reduce_only=exclude_reduce_only, twap=False),
        "cancel_all_orders",
        symbols_scope(symbols, exclude_reduce_only=exclude_reduce_only),
    )
    return runner.run(profiles, action, opts)
