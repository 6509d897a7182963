"""Run one action on one or more profiles under one deadline, then report.

Order of work, so that nothing delays the first cancel: resolve the
profile's credentials, build its venue client, send; only when every
profile is done is the output module (rich) imported and the report shown.
Profiles run concurrently, each in a thread of its own (``_thread``: it dies
with the process, as a daemon thread does); one profile's failure never
stops another.

The deadline is hard: the main thread waits for the profiles until
``--timeout`` plus ``GRACE_S`` and no longer, whatever a profile is stuck
in (an answer trickling in byte by byte, a blocked keyring or lock). A
profile still running then, or when Ctrl-C arrives, is reported from what
it had done so far (see :func:`unfinished`): nothing is lost, and no ID is
reported as not sent unless its request can no longer go out. The
profiles' threads die with the process.
"""

from __future__ import annotations

import _thread
import math
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from cancelctl import config as config_mod
from cancelctl import credentials, signals
from cancelctl.config import Profile
from cancelctl.errors import (
    CancelctlError,
    NotSent,
    OutcomeUnknown,
    UsageProblem,
    internal_error,
    stopped_by,
)
from cancelctl.results import ProfileResult, Report
from cancelctl.transport import Deadline, run_start, warm_tls
from cancelctl.verify import Scope, answered, everything

if TYPE_CHECKING:
    from cancelctl.venues.base import VenueClient

GRACE_S = 0.25  # how long past the deadline the profiles' own timeouts get to report

#: Set by ``cancelctl guard`` while it runs a caller's command (:meth:`cancelctl.guard.Guard.admit`): given the
#: selected profiles before anything is sent, it returns the credentials it holds for them, or raises to hand
#: the command back to the caller's cold path.
admit: Callable[[list[Profile]], dict[str, credentials.Credentials]] | None = None


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


@dataclass
class Outcome:
    """What :func:`run` returns: the report, the options to show it with, and whether it goes into the audit log.

    ``cancelctl.main.finish`` is the one place that writes its audit line
    (``elapsed_ms``: the run's time, ms) and shows it.
    """

    report: Report
    opts: Options
    elapsed_ms: float = 0.0
    audit: bool = True

    @property
    def exit_code(self) -> int:
        return self.report.exit_code


@dataclass
class Progress:
    """Where one profile's run is, for the runner to read from another thread.

    ``stage``: ``credentials`` -> ``action`` -> ``verify`` -> ``details`` (Pacifica's order history names what a
    cancel-all counted) -> ``positions`` -> ``done``;
    ``client``: the venue client once it exists (its ``partial``, ``todo``
    and ``in_flight`` tell what was done); ``deadline``: the profile's own
    gate on the run's clock.
    """

    profile: Profile
    deadline: Deadline
    stage: str = "credentials"
    client: VenueClient | None = None
    result: ProfileResult | None = None
    action: str | None = None  # the action's name on this profile's venue
    note: tuple[str, str] | None = None  # (stage, text) of the last event (a retry...), for the status line

    def notify(self, text: str) -> None:
        """The deadline's listener (:attr:`cancelctl.transport.Deadline.listener`): keep the event for this stage.

        The text can carry a venue's words: it is made one printable line with every registered secret redacted
        before it is kept, as every other venue text is (only called when a status line listens)."""
        from cancelctl.redact import scrub
        from cancelctl.text import one_line

        self.note = (self.stage, scrub(one_line(text)))


@dataclass(frozen=True)
class Action:
    """What to do on each profile.

    ``call``: the venue client's method to run (its result is the profile's
    row set). ``name``: the action's name in the report; None means the
    venue's widest cancel (:attr:`VenueInfo.widest_cancel
    <cancelctl.venues.info.VenueInfo.widest_cancel>`). ``scope``: which open
    orders verification checks, given the action's result (see
    :mod:`cancelctl.verify`); None: the action is not verified. ``after``:
    runs last on the client and the result (``panic`` reads and closes
    positions there, stage ``positions``), also in a dry run; never raises.
    """

    call: Callable[[VenueClient], ProfileResult]
    name: str | None = None
    scope: Scope | None = None
    after: Callable[[Any, ProfileResult], None] | None = None

    def name_on(self, venue: str) -> str:
        from cancelctl.venues.info import VENUES

        info = VENUES.get(venue)  # a broken profile's venue may be none of them: the first venue's names the action
        return self.name or (info or next(iter(VENUES.values()))).widest_cancel


def run_profile(
    profile: Profile,
    action: Action,
    opts: Options,
    deadline: Deadline,
    creds: credentials.Credentials | None = None,
    progress: Progress | None = None,
) -> ProfileResult:
    """Resolve credentials (unless given), open the venue client, run ``action.call(client)``, verify; never raises.

    With ``opts.verify`` and an ``action.scope``, the
    book is checked after the action (see :mod:`cancelctl.verify`) unless
    the action failed in a way that makes reading the book pointless
    (credentials, configuration, venue unreachable). ``action.after(client,
    result)`` runs last, under the same conditions and also in a dry run
    (``panic`` reads and closes positions there, stage ``positions``); it
    must not raise. ``progress``, when given, is kept up to date for
    :func:`unfinished`.
    """
    from cancelctl.venues.base import open_client

    action_name = action.name_on(profile.venue)
    progress = progress or Progress(profile, deadline)
    progress.action = action_name
    client = None
    try:
        if profile.broken is not None:  # its own failed row; the other profiles are not held up by it
            raise profile.broken
        if creds is None:
            creds = credentials.resolve(profile.name, profile.venue, timeout=max(0.1, deadline.remaining()))
        client = open_client(profile, creds, state_dir=config_mod.state_dir(), deadline=deadline, dry_run=opts.dry_run)
        progress.client, progress.stage = client, "action"
        result = action.call(client)
        usable = result.error is None or isinstance(result.error, OutcomeUnknown)
        if opts.dry_run:
            result.requests = client.prepared
            if action.scope is not None and action.scope is not answered:  # a session's orders: only its cancel says
                from cancelctl.verify import preview

                progress.stage = "verify"
                preview(client, result, action.scope)
        elif opts.verify and action.scope is not None and usable:
            from cancelctl.verify import verify

            ahead = getattr(client, "read_history_ahead", None)  # Pacifica: its history read goes next to the book's
            if ahead is not None and result.cancelled_count:
                ahead(result)
            progress.stage = "verify"
            scope, done = action.scope, result
            result.scoped = scope is not everything  # the verdict says "in scope", never "no open orders left"
            verify(client, result, lambda order: scope(done, order), getattr(scope, "row_id", None))
        identify = getattr(client, "identify_cancelled", None)  # Pacifica: name what a cancel-all only counted
        if identify is not None and result.cancelled_count and not opts.dry_run:
            progress.stage = "details"
            identify(result)
        if action.after is not None and usable:
            progress.stage = "positions"
            action.after(client, result)
    except CancelctlError as e:
        result = ProfileResult(
            profile=profile.name, venue=profile.venue, action=action_name, error=e, dry_run=opts.dry_run
        )
    except Exception as e:  # noqa: BLE001 - a bug in one profile must not stop the others
        result = ProfileResult(
            profile=profile.name, venue=profile.venue, action=action_name, error=internal_error(e, opts.debug)
        )
    finally:
        if client is not None:
            client.close()
    result.elapsed_ms = deadline.elapsed_ms()
    return result


def unfinished(
    progress: Progress, action: Action, opts: Options, interrupted: bool, word: str = "interrupted"
) -> ProfileResult:
    """The result of a profile the run stopped waiting for (deadline or Ctrl-C); call after closing its gate.

    Rows already recorded are kept; IDs in flight are ``unknown`` when a
    request had begun to go out, else "not sent"; IDs never sent are
    rejected "not sent: ..." (the closed gate guarantees they never will
    be). The profile's error is OutcomeUnknown (5) when something was sent,
    else NotSent (75); during verification it is the ``verify_error`` (the
    book could not be read: 5). Both have kind ``word`` after a signal:
    ``interrupted`` (SIGINT) or ``terminated`` (SIGTERM, SIGHUP).
    """
    p = progress.profile
    wrote = progress.deadline.wrote
    client = progress.client
    in_flight = list(getattr(client, "in_flight", ()))  # read before the rows: an ID moves from here to a row
    partial = getattr(client, "partial", None)
    if partial is not None:
        r = replace(
            partial,
            cancelled=list(partial.cancelled),
            rejected=[dict(x) for x in list(partial.rejected)],
            unknown=list(partial.unknown),
            remaining=None if partial.remaining is None else list(partial.remaining),
        )
    else:
        r = ProfileResult(p.name, p.venue, action.name_on(p.venue), dry_run=opts.dry_run)
    kind = word if interrupted else None
    if wrote:
        for i in in_flight:
            if i not in r.cancelled and i not in r.unknown:
                r.rejected = [x for x in r.rejected if x["id"] != i]
                r.unknown.append(i)
    known = set(r.cancelled) | set(r.unknown) | {x["id"] for x in r.rejected}
    for i in [*getattr(client, "todo", ()), *in_flight]:
        if i not in known:
            known.add(i)
            r.reject(i, f"not sent: {word}" if interrupted else "not sent: the deadline passed first")
    if progress.stage == "details":  # the orders' outcome is known; only the history's names of them are missing
        pass
    elif progress.stage == "positions":  # the orders' outcome is known; the positions are not
        if r.closed is not None:  # every closing order keeps its row, made final (none is left "sent")
            from cancelctl.positions import unsettled

            if any(c.get("status") not in ("pending", "rejected") for c in list(r.closed)):
                r.positions = None  # the last read is from before closing orders that may have filled
            r.closed = unsettled(r.closed, word if interrupted else "the deadline passed")
        r.positions_error = OutcomeUnknown(
            f"{word} while reading or closing positions"
            if interrupted
            else "positions not read back before the deadline",
            kind=kind,
        )
    elif progress.stage == "verify":
        from cancelctl.verify import settle_cut

        settle_cut(r)  # one row per ID: what the last read listed stays open, whatever was answered before it
        r.verify_error = OutcomeUnknown(
            f"{word} while verifying" if interrupted else "the book was not read back before the deadline", kind=kind
        )
    elif wrote:
        r.error = OutcomeUnknown(
            f"{word} before {p.venue} answered" if interrupted else f"no answer from {p.venue} before the deadline",
            hint=f"see what is still open: cancelctl orders -p {p.name}",
            kind=kind,
        )
    else:
        where = "while reading credentials" if progress.stage == "credentials" else "before any request went out"
        what = word if interrupted else "the deadline passed"
        r.error = NotSent(
            f"{what} {where}; nothing was sent", hint=None if interrupted else "raise --timeout", kind=kind
        )
    r.elapsed_ms = progress.deadline.elapsed_ms()
    result: ProfileResult = r
    return result


def run(
    profiles: list[Profile],
    action: Action,
    opts: Options,
    creds: dict[str, credentials.Credentials] | None = None,
    audit: bool = True,
) -> Outcome:
    """Run ``action`` on every profile concurrently; the :class:`Outcome` (nothing is shown or recorded here).

    ``creds`` maps profile names to credentials already in hand (the demo,
    the dead-man's switch); otherwise each profile's are resolved from the
    environment or keyring. ``action.scope`` enables verification (see
    :func:`run_profile`). The run ends by ``opts.timeout`` (s, counted from
    the process's start when the process is young, see
    :func:`cancelctl.transport.run_start`) plus ``GRACE_S``: a profile
    still running then is reported as :func:`unfinished`. Ctrl-C does the
    same at once: the report keeps every row and exits 130. ``audit``: whether
    the run gets an audit line (``orders`` and the demo do not).
    """
    if not math.isfinite(opts.timeout):  # click's FloatRange lets "nan" through
        raise UsageProblem(f"--timeout must be a number of seconds, not {opts.timeout}", hint="e.g. --timeout 10")
    if admit is not None and not creds:
        creds = admit(profiles)
    deadline = Deadline(opts.timeout, start=run_start())
    if not opts.dry_run:
        warm_tls()
    creds = creds or {}
    runs = [Progress(p, deadline.fork()) for p in profiles]

    def work(progress: Progress, done: Any) -> None:
        try:
            p = progress.profile
            progress.result = run_profile(p, action, opts, progress.deadline, creds.get(p.name), progress)
            progress.stage = "done"
        finally:
            done.release()

    interrupted = None
    status = None
    try:
        # One thread per profile, started with _thread rather than threading.Thread: Thread.start() waits until
        # the new thread has run, and the GIL going back and forth for it sat between the command and its first
        # cancel (docs/performance.md, "The guard"). Each thread releases its lock when its profile is done; like
        # a daemon thread, one still running at the exit dies with the process.
        dones = []
        for r in runs:
            done = _thread.allocate_lock()
            done.acquire()
            _thread.start_new_thread(work, (r, done))
            dones.append(done)
        if not opts.json and not opts.quiet:  # a terminal's status line, started after the first cancels are under way
            from cancelctl import progress

            status = progress.start(runs, opts)
        for done in dones:  # interrupted by a signal as Thread.join is (the main thread's lock waits are)
            if done.acquire(True, max(0.0, deadline.end + GRACE_S - time.monotonic())):
                done.release()
        signals.reporting()  # from here a signal is counted, never raised: the report below is always made
    except signals.Interrupted as e:
        interrupted = stopped_by(e.signum, "orders without an answer are of unknown fate")
    except KeyboardInterrupt:  # a caller that kept Python's own SIGINT handler
        interrupted = stopped_by(signal.SIGINT, "orders without an answer are of unknown fate")
    finally:
        if status is not None:
            status.stop()
    final = []
    for r in runs:
        r.deadline.close()  # from here on, nothing more of this profile goes out
        final.append(
            r.result
            or unfinished(r, action, opts, interrupted is not None, interrupted.kind if interrupted else "interrupted")
        )
    report = Report(final, dry_run=opts.dry_run, error=interrupted)
    return Outcome(report, opts, elapsed_ms=deadline.elapsed_ms(), audit=audit)
