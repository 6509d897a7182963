"""``cancelctl orders``: the open orders, read-only."""

from __future__ import annotations

from typing import Annotated

import typer

from cancelctl import runner
from cancelctl.cli.common import JsonOpt, NoGuardOpt, ProfileOpt, QuietOpt, TimeoutOpt, options, selected
from cancelctl.results import ProfileResult
from cancelctl.venues.base import VenueClient


def _list(client: VenueClient, expect_none: bool = False) -> ProfileResult:
    """The open orders of ``client``'s account; with ``expect_none``, their IDs also in ``remaining`` (exit 3 when
    any is open)."""
    from cancelctl.errors import CancelctlError

    result = ProfileResult(client.profile.name, client.venue, "list_orders")
    try:
        result.orders = client.open_orders()
    except CancelctlError as e:
        result.error = e
        return result
    if expect_none:
        result.remaining = [o["order_id"] for o in result.orders]
    return result


def orders(
    ctx: typer.Context,
    profile: ProfileOpt = None,
    json: JsonOpt = False,
    quiet: QuietOpt = False,
    timeout: TimeoutOpt = 10.0,
    no_guard: NoGuardOpt = False,  # read by cancelctl.handoff before this parse
    expect_none: Annotated[
        bool,
        typer.Option(
            "--expect-none",
            help="For scripts: exit 0 only when no order is open on any selected account, 3 when one is "
            "(5, 75... when a book could not be read).",
        ),
    ] = False,
) -> runner.Outcome:
    """List open orders (read-only; sends no cancel)."""
    opts = options(ctx, profile, json, quiet, False, timeout, None, None)
    profiles = selected(opts, every=True)
    return runner.run(profiles, runner.Action(lambda c: _list(c, expect_none), "list_orders"), opts, audit=False)
