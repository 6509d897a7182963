"""What every venue client shares: its HTTP client's lifetime, an empty result for an action, and its progress.

Progress is what lets the runner stop waiting for a profile (deadline,
Ctrl-C) without losing an order: the first action's result as it is being
built (``partial``), the order IDs it was asked to cancel (``todo``) and
those of the request on the wire (``in_flight``). The runner reads them
from another thread after closing the profile's deadline gate (see
:meth:`cancelctl.transport.Deadline.close`), so an ID is marked in flight
before its request may go out and unmarked only after its row is recorded.
"""

from __future__ import annotations

from contextlib import contextmanager

from cancelctl.results import ProfileResult


class VenueClient:
    """Base of :class:`~cancelctl.venues.gemini.Gemini` and :class:`~cancelctl.venues.pacifica.Pacifica`."""

    venue = ""
    profile = None
    dry_run = False
    _client = None
    partial: ProfileResult | None = None  # the first action's result, while it is being built
    todo: tuple[str, ...] = ()  # the order IDs that action was asked to cancel
    in_flight: tuple[str, ...] = ()  # the order IDs of the request being sent

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def _result(self, action: str, ids: list[str] | None = None) -> ProfileResult:
        """A new result for ``action``; the first one becomes ``partial`` (with ``ids`` as ``todo``)."""
        result = ProfileResult(profile=self.profile.name, venue=self.venue, action=action, dry_run=self.dry_run)
        if self.partial is None:
            self.partial, self.todo = result, tuple(str(i) for i in ids or ())
        return result

    @contextmanager
    def sending(self, ids: list[str]):
        """Mark ``ids`` in flight for the block, which sends their request and records their rows."""
        self.in_flight = tuple(str(i) for i in ids)
        try:
            yield
        finally:
            self.in_flight = ()
