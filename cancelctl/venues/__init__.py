"""One module per venue. Each exposes a client class with the same verbs:
``cancel_all()``, ``cancel_orders(ids)``, ``open_orders()`` and ``close()``,
plus what only that venue has (Gemini ``cancel_session``/``heartbeat``,
Pacifica symbol-scoped cancel-all). Modules are imported on first use so the
panic path loads only the venue it needs.
"""

from __future__ import annotations

from pathlib import Path

from cancelctl.config import Profile
from cancelctl.credentials import Credentials
from cancelctl.transport import Deadline


def open_client(profile: Profile, creds: Credentials, *, state_dir: Path, deadline: Deadline, dry_run: bool = False):
    """The venue client for ``profile``. Raises ConfigError for unusable credentials."""
    if profile.venue == "gemini":
        from cancelctl.venues.gemini import Gemini

        return Gemini(profile, creds, state_dir=state_dir, deadline=deadline, dry_run=dry_run)
    from cancelctl.venues.pacifica import Pacifica

    return Pacifica(profile, creds, deadline=deadline, dry_run=dry_run)
