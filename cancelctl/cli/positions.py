"""``cancelctl positions``: the open positions, read-only."""

from __future__ import annotations

import typer

from cancelctl import config as config_mod
from cancelctl import runner
from cancelctl.cli.common import JsonOpt, ProfileOpt, QuietOpt, TimeoutOpt
from cancelctl.results import ProfileResult
from cancelctl.runner import Options
from cancelctl.venues.base import VenueClient


def _read(client: VenueClient) -> ProfileResult:
    from cancelctl.errors import CancelctlError

    result = ProfileResult(client.profile.name, client.venue, "positions")
    try:
        result.positions = client.positions()
    except CancelctlError as e:
        result.error = e
    return result


def positions(
    ctx: typer.Context,
    profile: ProfileOpt = None,
    json: JsonOpt = False,
    quiet: QuietOpt = False,
    timeout: TimeoutOpt = 10.0,
) -> runner.Outcome:
    """List open positions (read-only; sends no order and no cancel). Every selected profile at once."""
    debug = bool(ctx.find_root().params.get("debug"))
    opts = Options(profiles=list(profile or []), json=json, quiet=quiet, timeout=timeout, debug=debug)
    profiles = config_mod.select(config_mod.load(), opts.profiles, every=True)
    return runner.run(profiles, runner.Action(_read, "positions"), opts, audit=False)
