"""``cancelctl panic``: every profile at once, the widest cancel, verified: no open orders."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from cancelctl import config as config_mod
from cancelctl import runner
from cancelctl.cli.cancel import WIDEST
from cancelctl.cli.common import (
    ButtonProfileOpt,
    DryRunOpt,
    JsonOpt,
    QuietOpt,
    ReasonOpt,
    TimeoutOpt,
    VerifyOpt,
    options,
)

if TYPE_CHECKING:
    from cancelctl.config import Profile
    from cancelctl.credentials import Credentials
    from cancelctl.runner import Options


def panic(
    ctx: typer.Context,
    profile: ButtonProfileOpt = None,
    json: JsonOpt = False,
    quiet: QuietOpt = False,
    dry_run: DryRunOpt = False,
    timeout: TimeoutOpt = 10.0,
    verify: VerifyOpt = None,
    reason: ReasonOpt = None,
) -> runner.Outcome:
    """THE PANIC BUTTON: every configured profile (or those named) concurrently, widest cancel, then verify no open
    order is left (positions are untouched)."""
    opts = options(ctx, profile, json, quiet, dry_run, timeout, verify, reason, verify_default=True)
    profiles = config_mod.select(config_mod.load(strict=False), opts.profiles, button=True)
    return run_panic(profiles, opts)


def run_panic(profiles: list[Profile], opts: Options, creds: dict[str, Credentials] | None = None) -> runner.Outcome:
    """Panic on ``profiles`` (used by ``panic`` and the dead-man's switch)."""
    return runner.run(profiles, WIDEST, opts, creds=creds)
