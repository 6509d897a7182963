"""``cancelctl positions`` (the open positions, read-only) and ``cancelctl close-positions`` (close them, no cancel)."""

from __future__ import annotations

from typing import Any

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
    YesOpt,
    examples,
    options,
    selected,
)
from cancelctl.cli.panic import MaxSlippageOpt, after_orders, slippage_option
from cancelctl.results import ProfileResult
from cancelctl.venues.base import VenueClient

#: Each command's --help epilog (cancelctl.cli.build).
EXAMPLES = {
    "close-positions": examples(
        "cancelctl close-positions -p pac --dry-run",
        "cancelctl close-positions -p pac --max-slippage 1",
    ),
}


def _read(client: VenueClient) -> ProfileResult:
    from cancelctl.errors import CancelctlError

    result = ProfileResult(client.profile.name, client.venue, "positions")
    try:
        result.positions = client.positions()
    except CancelctlError as e:
        result.error = e
    return result


def _closing(client: Any) -> ProfileResult:
    """The (empty) result the closing rows go into; the client's first, so an interrupted run keeps them."""
    result: ProfileResult = client._result("close_positions")
    return result


def positions(
    ctx: typer.Context,
    profile: ProfileOpt = None,
    json: JsonOpt = False,
    quiet: QuietOpt = False,
    timeout: TimeoutOpt = 10.0,
    no_guard: NoGuardOpt = False,  # read by cancelctl.handoff before this parse
) -> runner.Outcome:
    """List open positions (read-only; sends no order and no cancel). Every selected profile at once."""
    opts = options(ctx, profile, json, quiet, False, timeout, None, None)
    profiles = selected(opts, every=True)
    return runner.run(profiles, runner.Action(_read, "positions"), opts, audit=False)


def close_positions(
    ctx: typer.Context,
    profile: ProfileOpt = None,
    json: JsonOpt = False,
    quiet: QuietOpt = False,
    dry_run: DryRunOpt = False,
    timeout: TimeoutOpt = 10.0,
    reason: ReasonOpt = None,
    max_slippage: MaxSlippageOpt = None,
    yes: YesOpt = False,
) -> runner.Outcome:
    """Close every open position of the selected profiles (no cancel; `panic --close-positions` cancels first).

    Exit 0 only when flat (no position left).
    """
    opts = options(ctx, profile, json, quiet, dry_run, timeout, False, reason)
    slippage = slippage_option(True, max_slippage)
    profiles = selected(opts)
    action = runner.Action(_closing, "close_positions", after=after_orders(slippage))
    return runner.run(profiles, action, opts)
