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
from cancelctl.errors import CancelctlError, ExitCode, OutcomeUnknown
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
    action_name: str | dict[str, str],
    opts: Options,
    deadline: Deadline,
    creds: credentials.Credentials | None = None,
    scope: Callable[[ProfileResult], Callable[[dict], bool]] | None = None,
) -> ProfileResult:
    """Resolve credentials (unless given), open the venue client, run ``action(client)``, verify; never raises.

    With ``opts.verify`` and a ``scope`` (result -> order predicate), the
    book is checked after the action (see :mod:`cancelctl.verify`) unless
    the action failed in a way that makes reading the book pointless
    (credentials, configuration, venue unreachable).
    """
    from cancelctl.venues import open_client

    if isinstance(action_name, dict):
        action_name = action_name[profile.venue]
    client = None
    try:
        if creds is None:
            creds = credentials.resolve(profile.name, profile.venue, timeout=max(0.5, deadline.remaining()))
        SECRETS.update(creds.secrets())
        client = open_client(profile, creds, state_dir=config_mod.state_dir(), deadline=deadline, dry_run=opts.dry_run)
        result = action(client)
        if opts.dry_run:
            result.requests = client.prepared
        elif opts.verify and scope is not None and (result.error is None or isinstance(result.error, OutcomeUnknown)):
            from cancelctl.verify import verify

            verify(client, result, scope(result))
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
    action_name: str | dict[str, str],
    opts: Options,
    creds: dict[str, credentials.Credentials] | None = None,
    scope: Callable[[ProfileResult], Callable[[dict], bool]] | None = None,
    audit: bool = True,
) -> int:
    """Run ``action`` on every profile (concurrently when several), audit, render, return the exit code.

    ``creds`` maps profile names to credentials already in hand (the demo,
    the dead-man's switch); otherwise each profile's are resolved from the
    environment or keyring. ``scope`` enables verification (see
    :func:`run_profile`). Ctrl-C keeps what finished, marks the rest
    unknown, still writes the audit line and exits 130.
    """
    deadline = Deadline(opts.timeout)
    creds = creds or {}
    results: list[ProfileResult | None] = [None] * len(profiles)
    interrupted = None

    def one(p: Profile) -> ProfileResult:
        return run_profile(p, action, action_name, opts, deadline, creds.get(p.name), scope)

    try:
        if len(profiles) == 1:
            results[0] = one(profiles[0])
        else:
            from concurrent.futures import ThreadPoolExecutor

            pool = ThreadPoolExecutor(max_workers=len(profiles))
            futures = [pool.submit(one, p) for p in profiles]
            try:
                for i, f in enumerate(futures):
                    results[i] = f.result()
            finally:
                pool.shutdown(wait=False, cancel_futures=True)
    except KeyboardInterrupt:
        interrupted = CancelctlError("interrupted; orders without an answer are of unknown fate", exit_code=ExitCode.INTERRUPTED, kind="interrupted")
    final = [
        r or ProfileResult(p.name, p.venue, action_name if isinstance(action_name, str) else action_name[p.venue], error=OutcomeUnknown("interrupted before the answer came", kind="interrupted"))
        for p, r in zip(profiles, results)
    ]
    report = Report(final, dry_run=opts.dry_run, error=interrupted)
    if audit:
        from cancelctl import audit as audit_mod

        audit_mod.record(report, reason=opts.reason, elapsed_ms=deadline.elapsed_ms())
    from cancelctl import render

    render.report(report, opts)
    return report.exit_code
