"""doctor's rows and limits: :class:`Check`, :class:`Limit`, and the exit code a set of rows calls for."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cancelctl.errors import CancelctlError, ExitCode


@dataclass(frozen=True)
class Limit:
    """How much clock skew a venue tolerates: ``fail_s`` (None: never fails) and ``warn_s``, seconds, and why."""

    fail_s: float | None
    warn_s: float
    why: str


@dataclass
class Check:
    """One row: ``check``, ``profile`` (``-`` for machine-wide), ``status`` (ok|warn|fail), ``detail``.

    ``code`` is the exit code a failed row calls for; ``numbers`` go into
    the JSON row as they are (``latency_ms``, ``skew_s``...).
    """

    check: str
    profile: str
    status: str
    detail: str
    code: int = ExitCode.OK
    numbers: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def failed(cls, check: str, profile: str, e: CancelctlError, **numbers: Any) -> Check:
        return cls(check, profile, "fail", e.one_line(), int(e.exit_code), numbers)

    def as_json(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "profile": self.profile,
            "status": self.status,
            "detail": self.detail,
            "exit_code": self.code if self.status == "fail" else 0,
            **self.numbers,
        }


def exit_code(checks: list[Check]) -> int:
    """0 when nothing failed; else 78 (configuration, credentials) over 4 (the venue refused the key) over 75
    (unreachable) over the rest (70, then 1)."""
    codes = {c.code for c in checks if c.status == "fail"}
    if not codes:
        return ExitCode.OK
    for code in (ExitCode.CONFIG, ExitCode.AUTH, ExitCode.UNAVAILABLE, ExitCode.INTERNAL):
        if code in codes:
            return code
    return ExitCode.FAILED
