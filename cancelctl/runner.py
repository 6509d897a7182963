"""Run one action on one or more profiles under one deadline, then report.

Order of work, so that nothing delays the first cancel: resolve the
profile's credentials, build its venue client, send; only when every
profile is done is the output module (rich) imported and the report shown.
Profiles run concurrently in threads; one profile's failure never stops
another.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

from cancelctl import config as config_mod
from cancelctl import credentials
from cancelctl.config import Profile
from cancelctl.errors import CancelctlError, ExitCode
from cancelctl.results import ProfileResult, Report
from cancelctl.transport import Deadline

# Every secret resolved in this process, so output can be scrubbed of them
# as a last line of defence (nothing is meant to print one in the first place).
SECRETS: set[str] = set()


@dataclass
class Options:
    """The options every cancel command takes (contract, "Options every cancel command takes")."""

    profiles: list[str] = field(default_factory=list)
    json: bool = False
    quiet: bool = False
    dry_run: bool = False
    timeout: float = 10.0
    verify: bool = False
    reason: str | None = None
    debug: bool = False


def internal_error(e: BaseException, debug: bool) -> CancelctlError:
    if debug:
        traceback.print_exception(e, file=sys.stderr)
    return CancelctlError(
        f"internal error: {type(e).__name__}",
        hint="this is a bug; run again with --debug for the traceback",
        exit_code=ExitCode.INTERNAL,
        kind="internal",
    )


def run_profile(
    profile: Profile,
    action: Callable[[object], ProfileResult],
    action_name: str,
    opts: Options,
    deadline: Deadline,
    creds: credentials.Credentials | None = None,
) -> ProfileResult:
    """Resolve credentials (unless given), open the venue client, run ``action(client)``; never raises."""
    from cancelctl.venues import open_client

    client = None
    try:
        if creds is None:
            creds = credentials.resolve(profile.name, profile.venue, timeout=max(0.5, deadline.remaining()))
        SECRETS.update(creds.secrets())
        client = open_client(profile, creds, state_dir=config_mod.state_dir(), deadline=deadline, dry_run=opts.dry_run)
        result = action(client)
        if opts.dry_run:
            result.requests = client.prepared
    except CancelctlError as e:
        result = ProfileResult(profile=profile.name, venue=profile.venue, action=action_name, error=e, dry_run=opts.dry_run)
    except Exception as e:  # noqa: BLE001 - a bug in one profile must not stop the others
        result = ProfileResult(profile=profile.name, venue=profile.venue, action=action_name, error=internal_error(e, opts.debug))
    finally:
        if client is not None:
            client.close()
    result.elapsed_ms = deadline.elapsed_ms()
    return result


def run(
    profiles: list[Profile],
    action: Callable[[object], ProfileResult],
    action_name: str,
    opts: Options,
    creds: dict[str, credentials.Credentials] | None = None,
) -> int:
    """Run ``action`` on every profile (concurrently when several), render, return the exit code.

    ``creds`` maps profile names to credentials already in hand (the demo);
    otherwise each profile's are resolved from the environment or keyring.
    """
    deadline = Deadline(opts.timeout)
    creds = creds or {}

    def one(p: Profile) -> ProfileResult:
        return run_profile(p, action, action_name, opts, deadline, creds.get(p.name))

    if len(profiles) == 1:
        results = [one(profiles[0])]
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=len(profiles)) as pool:
            results = list(pool.map(one, profiles))
    report = Report(results, dry_run=opts.dry_run)
    from cancelctl import render

    render.report(report, opts)
    return report.exit_code
