"""Clock skew: the limit each venue's signing tolerates, and the skew measured from a ``Date`` header."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cancelctl.cli.doctor.model import Check, Limit
from cancelctl.errors import ExitCode

if TYPE_CHECKING:
    from cancelctl.cli.doctor.network import Probe
    from cancelctl.config import Profile

DATE_RESOLUTION_S = 1.0  # RFC 9110 5.6.7: HTTP-date has whole seconds; servers truncate


def _pacifica_window_s() -> float:
    from cancelctl.signing.pacifica import EXPIRY_WINDOW_MS

    return EXPIRY_WINDOW_MS / 1000


def limit_for(profile: Profile) -> Limit:
    """The skew limit that matters for ``profile``: the function its venue's
    :class:`~cancelctl.venues.info.VenueInfo` names in ``clock_limit`` (below); no limit for a venue without one.
    """
    from importlib import import_module

    from cancelctl.venues.info import VENUES

    info = VENUES.get(profile.venue)
    if info is None or not info.clock_limit:
        return Limit(None, 30.0, f"no clock rule known for venue {profile.venue!r}")
    module, _, function = info.clock_limit.partition(":")
    limit: Limit = getattr(import_module(module), function)(profile)
    return limit


def pacifica_limit(profile: Profile) -> Limit:
    """Pacifica: a signed request is valid until ``timestamp + expiry_window`` (Pacifica's API docs, "Signing",
    https://docs.pacifica.fi/api-documentation/api/signing), and cancelctl signs with a 5 000 ms window
    (``signing/pacifica.py``). A venue clock that far ahead makes every cancel arrive expired; the docs say
    nothing about timestamps from the future, so the same limit is used on both sides. Fail beyond the
    window, warn beyond 2 s.
    """
    window = _pacifica_window_s()
    return Limit(
        window,
        2.0,
        f'signed requests expire {window:g} s after their timestamp (expiry_window, Pacifica docs "Signing")',
    )


def gemini_limit(profile: Profile) -> Limit:
    """Gemini: the profile's nonce kind decides.

    * ``nonce = "time-based"``: the nonce must be within ±30 s of
      Gemini's time (Gemini's REST API docs, "Private API invocation",
      https://docs.gemini.com/rest-api/#private-api-invocation): fail beyond 30 s, warn beyond 10 s.
    * millisecond nonces: Gemini does not compare them with its
      clock, so skew never fails; beyond 30 s it warns, because this
      machine's nonces then lag those of a correctly clocked process using
      the same key by that much (``InvalidNonce``).
    """
    if profile.nonce == "time-based":
        return Limit(
            30.0,
            10.0,
            'time-based nonces must be within 30 s of Gemini\'s clock (Gemini docs, "Private API invocation")',
        )
    return Limit(
        None,
        30.0,
        "millisecond nonces: Gemini does not check them against its clock, but they lag any correctly clocked "
        "process on the same key",
    )


@dataclass(frozen=True)
class Skew:
    """Venue clock minus local clock, seconds (positive: the venue is ahead).

    The true skew lies within ``estimate_s ± uncertainty_s``.
    """

    estimate_s: float
    uncertainty_s: float

    def judge(self, limit: Limit) -> str:
        """``fail`` when the whole interval is beyond ``limit.fail_s``; ``warn`` when it may be, or the estimate
        passes ``warn_s``; else ``ok``."""
        size = abs(self.estimate_s)
        if limit.fail_s is not None and size - self.uncertainty_s > limit.fail_s:
            return "fail"
        if limit.fail_s is not None and size + self.uncertainty_s > limit.fail_s:
            return "warn"
        return "warn" if size > limit.warn_s else "ok"


def measure_skew(date_header: str, sent_at: float, round_trip_s: float) -> Skew:
    """The skew from one answer's ``Date`` header.

    ``sent_at``: local wall-clock time (s since the epoch) just before the
    request went out; ``round_trip_s``: seconds until the answer was in.
    The venue stamped ``Date`` somewhere in ``[sent_at, sent_at +
    round_trip_s]`` local time, and ``Date`` has 1-second resolution
    (the venue's time was in ``[D, D + 1)``), so the skew lies in
    ``[D - sent_at - round_trip_s, D + 1 - sent_at]``: the estimate is its
    middle (``D + 0.5`` against the request's midpoint) and the uncertainty
    half its width, ``0.5 + round_trip_s / 2``. Raises ValueError for a
    header that is not an HTTP-date.
    """
    from email.utils import parsedate_to_datetime

    try:
        stamped = parsedate_to_datetime(date_header)
    except (TypeError, ValueError, IndexError):
        raise ValueError("not an HTTP-date") from None
    if stamped is None or stamped.tzinfo is None:
        raise ValueError("not an HTTP-date")
    venue = stamped.timestamp()
    return Skew(venue + DATE_RESOLUTION_S / 2 - (sent_at + round_trip_s / 2), DATE_RESOLUTION_S / 2 + round_trip_s / 2)


def clock_check(probe: Probe) -> Check:
    profile = probe.profile
    limit = limit_for(profile)
    numbers: dict[str, Any] = {"limit_s": limit.fail_s, "warn_s": limit.warn_s}
    dated = [s for s in probe.samples if s.answer.headers.get("date")]
    if not probe.done.is_set() or not probe.samples:
        return Check("clock", profile.name, "warn", "not measured: the venue did not answer", numbers=numbers)
    if not dated:
        return Check(
            "clock", profile.name, "warn", "not measured: the venue's answer has no Date header", numbers=numbers
        )
    best = min(dated, key=lambda s: s.round_trip_s)
    try:
        skew = measure_skew(best.answer.headers["date"], best.sent_at, best.round_trip_s)
    except ValueError:
        return Check(
            "clock", profile.name, "warn", "not measured: the venue's Date header is not an HTTP-date", numbers=numbers
        )
    numbers.update(skew_s=round(skew.estimate_s, 3), skew_uncertainty_s=round(skew.uncertainty_s, 3))
    status = skew.judge(limit)
    way = "ahead of" if skew.estimate_s > 0 else "behind"
    if abs(skew.estimate_s) <= skew.uncertainty_s:
        text = (
            "venue clock agrees with this machine's to within the measurement's "
            f"±{skew.uncertainty_s:.1f} s (Date has 1 s resolution)"
        )
    else:
        text = (
            f"venue clock {abs(skew.estimate_s):.1f} s {way} this machine's "
            f"(±{skew.uncertainty_s:.1f} s: Date has 1 s resolution, plus half the round trip)"
        )
    bound = f"limit ±{limit.fail_s:g} s" if limit.fail_s is not None else f"warns beyond ±{limit.warn_s:g} s"
    detail = f"{text}; {bound}: {limit.why}"
    if status == "fail":
        return Check(
            "clock",
            profile.name,
            "fail",
            detail + " (sync this machine's clock: timedatectl set-ntp true, or chronyc makestep)",
            ExitCode.FAILED,
            numbers,
        )
    return Check("clock", profile.name, status, detail, numbers=numbers)
