"""What every venue client shares: its HTTP client's lifetime and an empty result for an action."""

from __future__ import annotations

from cancelctl.results import ProfileResult


class VenueClient:
    """Base of :class:`~cancelctl.venues.gemini.Gemini` and :class:`~cancelctl.venues.pacifica.Pacifica`."""

    venue = ""
    profile = None
    dry_run = False
    _client = None

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def _result(self, action: str) -> ProfileResult:
        return ProfileResult(profile=self.profile.name, venue=self.venue, action=action, dry_run=self.dry_run)
