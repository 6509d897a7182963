"""Exit codes as a named table, and the exceptions that carry them.

The table is the contract's (``docs/exit-codes.md``); cron jobs
and scripts branch on these numbers, so they never change.

Every failure the tool can foresee is a :class:`CancelctlError` with one line
of ``message`` (no secret ever goes into it) and an optional ``hint`` naming
the exact command or environment variable that fixes it. ``main()`` is the
only place that turns them into output and an exit status.
"""

from __future__ import annotations

import sys
from enum import IntEnum
from typing import Any


class ExitCode(IntEnum):
    """The contract's exit codes."""

    OK = 0  # everything asked for was done (verified: no open orders, when verifying)
    FAILED = 1  # the venue refused or answered with an error; nothing confirmed
    USAGE = 2  # usage error
    PARTIAL = 3  # some orders or profiles done, some rejected or still open
    AUTH = 4  # the venue rejected the credentials
    UNKNOWN = 5  # sent, but the outcome is unknown
    INTERNAL = 70  # a bug; --debug shows the traceback
    UNAVAILABLE = 75  # nothing was sent: unreachable or rate-limited; safe to retry
    CONFIG = 78  # configuration or credentials missing or unusable
    INTERRUPTED = 130  # interrupted (SIGINT, Ctrl-C)
    TERMINATED = 143  # terminated (SIGTERM: timeout, systemd stop, kill; SIGHUP the same)


#: What each exit code says to a person, in the verdict line (``docs/exit-codes.md``): each code its own words.
EXIT_WORDS: dict[int, str] = {
    ExitCode.OK: "done",
    ExitCode.FAILED: "failed: the venue refused or answered with an error; nothing confirmed",
    ExitCode.USAGE: "usage error: nothing was sent",
    ExitCode.PARTIAL: "partial: some done, some rejected or still open",
    ExitCode.AUTH: "credentials rejected by the venue; nothing confirmed",
    ExitCode.UNKNOWN: "outcome unknown: sent, but no answer says what happened; run panic again",
    ExitCode.INTERNAL: "internal error (a bug; --debug shows the traceback)",
    ExitCode.UNAVAILABLE: "nothing was sent: venue unreachable or rate-limited; safe to retry",
    ExitCode.CONFIG: "configuration or credentials unusable; nothing was sent",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C): orders without an answer are of unknown fate",
    ExitCode.TERMINATED: "terminated (SIGTERM or SIGHUP): orders without an answer are of unknown fate",
}


def combine(codes: list[int]) -> int:
    """The run's exit code from each profile's code (contract, "Exit codes").

    All 0 → 0; some 0 and some not → 3; none 0 and all one code → that code;
    otherwise 5 if any is 5, else 1. An empty list is 0.
    """
    if not codes or all(c == ExitCode.OK for c in codes):
        return ExitCode.OK
    if any(c == ExitCode.OK for c in codes):
        return ExitCode.PARTIAL
    if len(set(codes)) == 1:
        return codes[0]
    if ExitCode.UNKNOWN in codes:
        return ExitCode.UNKNOWN
    return ExitCode.FAILED


class CancelctlError(Exception):
    """A foreseen failure: one line for the user and the exit code to use.

    ``kind`` is a short machine-readable word that goes into the JSON
    document's ``error.kind``; ``venue_reason`` is the venue's own error
    name (Gemini ``reason``, Pacifica message) when there is one.
    """

    exit_code: int = ExitCode.FAILED
    kind: str = "failed"

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        venue_reason: str | None = None,
        exit_code: int | None = None,
        kind: str | None = None,
    ) -> None:
        from cancelctl.text import MESSAGE_LIMIT, VENUE_TEXT_LIMIT, one_line

        # Messages quote venue text: one bounded, printable line whatever the venue sent.
        message = one_line(message, MESSAGE_LIMIT)
        super().__init__(message)
        self.message = message
        self.hint = one_line(hint, MESSAGE_LIMIT) if hint is not None else None
        self.venue_reason = one_line(venue_reason, VENUE_TEXT_LIMIT) if venue_reason is not None else None
        if exit_code is not None:
            self.exit_code = exit_code
        if kind is not None:
            self.kind = kind

    def one_line(self) -> str:
        """The message and the fix, on one line."""
        text = self.message if not self.hint else f"{self.message} ({self.hint})"
        return " ".join(text.split())

    def as_json(self) -> dict[str, Any]:
        """``{"kind", "message", "venue_reason"}`` as the contract's JSON wants."""
        return {"kind": self.kind, "message": self.one_line(), "venue_reason": self.venue_reason}


class UsageProblem(CancelctlError):
    exit_code = ExitCode.USAGE
    kind = "usage"


class ConfigError(CancelctlError):
    exit_code = ExitCode.CONFIG
    kind = "config"


class KeyringUnavailable(ConfigError):
    """The OS keyring as a whole cannot be used: it raised an error or did not answer in time (not one profile's
    entry)."""


class AuthError(CancelctlError):
    exit_code = ExitCode.AUTH
    kind = "auth"


class VenueRefused(CancelctlError):
    exit_code = ExitCode.FAILED
    kind = "refused"


class NotSent(CancelctlError):
    """Nothing reached the venue (or it refused before doing anything): safe to retry."""

    exit_code = ExitCode.UNAVAILABLE
    kind = "unavailable"

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class OutcomeUnknown(CancelctlError):
    """The request may have reached the venue, and no answer says what happened."""

    exit_code = ExitCode.UNKNOWN
    kind = "unknown"


def internal_error(e: BaseException, debug: bool) -> CancelctlError:
    """The error for a bug (exit 70); with ``debug``, its traceback on stderr first, scrubbed of every secret."""
    if debug:  # scrubbed like every other output: an exception message can quote a header or a body
        import traceback

        from cancelctl.redact import scrub

        sys.stderr.write(scrub("".join(traceback.format_exception(e))))
        sys.stderr.flush()
    return CancelctlError(
        f"internal error: {type(e).__name__}",
        hint="this is a bug; run again with --debug for the traceback",
        exit_code=ExitCode.INTERNAL,
        kind="internal",
    )


def stopped_by(signum: int, what: str) -> CancelctlError:
    """The run's error after a signal: SIGINT is 130 (kind ``interrupted``), SIGTERM and SIGHUP 143
    (kind ``terminated``).

    ``what`` says what is known, e.g. "orders without an answer are of unknown fate".
    """
    import signal

    if signum == signal.SIGINT:
        return CancelctlError(f"interrupted; {what}", exit_code=ExitCode.INTERRUPTED, kind="interrupted")
    try:
        name = signal.Signals(signum).name
    except ValueError:
        name = f"signal {signum}"
    return CancelctlError(f"terminated by {name}; {what}", exit_code=ExitCode.TERMINATED, kind="terminated")
