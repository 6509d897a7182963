"""``cancelctl panic``: every profile at once, the widest cancel, verified: no open orders.

Then the positions: reported, and closed on request (``--close-positions``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from cancelctl import runner
from cancelctl.cli.cancel import WIDEST
from cancelctl.cli.common import (
    ButtonProfileOpt,
    DryRunOpt,
    JsonOpt,
    NoGuardOpt,
    QuietOpt,
    ReasonOpt,
    TimeoutOpt,
    VerifyOpt,
    YesOpt,
    examples,
    options,
    selected,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from decimal import Decimal

    from cancelctl.config import Profile
    from cancelctl.credentials import Credentials
    from cancelctl.results import ProfileResult
    from cancelctl.runner import Options

ClosePositionsOpt = Annotated[
    bool,
    typer.Option(
        "--close-positions",
        help=(
            "After the orders are cancelled, close every open position (Pacifica: reduce-only market order; "
            "Gemini: immediate-or-cancel limit order). Never done without this flag."
        ),
    ),
]
MaxSlippageOpt = Annotated[
    Optional[str],
    typer.Option(
        "--max-slippage",
        metavar="PCT",
        help="With --close-positions: the worst price accepted, in percent from the current price (default 0.5).",
    ),
]


#: Each command's --help epilog (cancelctl.cli.build).
EXAMPLES = {
    "panic": examples(
        "cancelctl panic",
        "cancelctl panic -p main --reason 'fat finger'",
        "cancelctl panic --close-positions --max-slippage 1 --json",
    ),
}


def slippage_option(close_positions: bool, max_slippage: str | None) -> Decimal | None:
    """The ``--max-slippage`` Decimal when closing, else None.

    UsageProblem (exit 2) for a bad value, or for one given without closing.
    """
    from cancelctl.errors import UsageProblem
    from cancelctl.positions import parse_slippage

    if not close_positions:
        if max_slippage is not None:
            raise UsageProblem(
                "--max-slippage only applies with --close-positions",
                hint="add --close-positions, or drop --max-slippage",
            )
        return None
    return parse_slippage(max_slippage)


def panic(
    ctx: typer.Context,
    profile: ButtonProfileOpt = None,
    json: JsonOpt = False,
    quiet: QuietOpt = False,
    dry_run: DryRunOpt = False,
    timeout: TimeoutOpt = 10.0,
    verify: VerifyOpt = None,
    reason: ReasonOpt = None,
    no_guard: NoGuardOpt = False,  # read by cancelctl.handoff before this parse
    close_positions: ClosePositionsOpt = False,
    max_slippage: MaxSlippageOpt = None,
    yes: YesOpt = False,
) -> runner.Outcome:
    """THE PANIC BUTTON: every configured profile (or those named) concurrently, widest cancel, then verify no open
    order is left; open positions are reported, and closed only with --close-positions.

    It never asks for confirmation, by design: the button must work from a
    script, a cron job or a hurried hand (--yes/-y is accepted and ignored)."""
    opts = options(ctx, profile, json, quiet, dry_run, timeout, verify, reason, verify_default=True)
    slippage = slippage_option(close_positions, max_slippage)
    if slippage is not None and not opts.verify:
        # Exit 0 with --close-positions means no open order and no position, both seen: the book is read.
        import sys

        sys.stderr.write("cancelctl: warning: --close-positions verifies the book; --no-verify is ignored\n")
        opts.verify = True
    profiles = selected(opts, button=True)
    return run_panic(profiles, opts, close=slippage)


def after_orders(close: Decimal | None = None) -> Callable[[Any, ProfileResult], None]:
    """The runner's ``after`` step: report the positions, or close them with ``close`` percent of slippage."""

    def step(client: Any, result: ProfileResult) -> None:
        from cancelctl import closing

        if close is None:
            closing.report(client, result)
        else:
            closing.close(client, result, close)

    return step


def run_panic(
    profiles: list[Profile], opts: Options, creds: dict[str, Credentials] | None = None, close: Decimal | None = None
) -> runner.Outcome:
    """Panic on ``profiles`` (used by ``panic`` and the dead-man's switch); positions are read (closed with ``close``)
    after verification."""
    return runner.run(profiles, replace(WIDEST, after=after_orders(close)), opts, creds=creds)
