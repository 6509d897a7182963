"""What cancelctl knows of each venue, as plain data: one description per venue, imports nothing.

Everything else reads venue facts from here: the config file's venues,
environments, URLs and keys (:mod:`cancelctl.config`), the secret fields
(:mod:`cancelctl.credentials`), which commands a venue supports and its
widest cancel (:mod:`cancelctl.cli`), its client class
(:func:`cancelctl.venues.base.open_client`) and doctor's probes. Adding a
venue is one client module under ``cancelctl/venues/`` and one
:class:`VenueInfo` in :data:`VENUES`. A name not in :data:`VENUES` is no
venue: it is never treated as another one.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class VenueInfo:
    """One venue's facts.

    ``environments``: environment name -> REST base URL (no trailing
    slash), the first the default. ``secret_fields``: the credential
    fields, in the order ``keys set`` asks for them. ``profile_keys``: the
    keys its ``[profiles.NAME]`` table accepts. ``commands``: the
    venue-specific commands it supports (``cancel session``,
    ``cancel pacifica``, ``heartbeat``); ``cancel all``, ``cancel order``,
    ``panic``, ``orders`` and ``deadman`` work on every venue.
    ``widest_cancel``: the action name of its widest cancel (what ``panic``
    and ``cancel all`` send). ``client``: ``module:Class`` of its venue
    client, imported on first use. ``key_prefixes``: API key prefix ->
    key kind, when the venue's keys have them. ``public_path``: an
    unsigned read for doctor's reachability and clock probes.
    ``docs``: the venue's API documentation (URL), the source of its facts.
    ``secret_check``: ``module:function`` that ``keys set`` calls with the
    values read and the profile before storing them (raises ConfigError
    for secrets that cannot work), when the venue has one. ``key_check``
    and ``clock_limit``: ``module:function`` of doctor's key rules (profile,
    credentials -> its ``key`` row) and of the clock skew its signing
    tolerates (profile -> limit).

    ``base_path``: the path every base URL of the venue ends in (its REST
    paths hang below it), so ``profiles add`` refuses a ``--base-url``
    without it; ``own_prefix``: the path the venue's REST paths begin with
    themselves, so a ``--base-url`` ending in it is refused (every request
    would go to that path twice). ``profile_check``: ``module:function``
    that ``profiles add`` calls with the profile name and the options given
    (``{key: value}``, keys of ``profile_keys``) before writing the profile
    (raises UsageProblem for a value that must not go in the config file),
    when the venue has one.
    """

    name: str
    title: str
    client: str
    environments: dict[str, str]
    secret_fields: tuple[str, ...]
    profile_keys: frozenset[str]
    widest_cancel: str
    public_path: str
    docs: str
    commands: frozenset[str] = frozenset()
    key_prefixes: dict[str, str] = field(default_factory=dict)
    secret_check: str | None = None
    key_check: str | None = None
    clock_limit: str | None = None
    base_path: str | None = None
    own_prefix: str | None = None
    profile_check: str | None = None

    @property
    def default_environment(self) -> str:
        return next(iter(self.environments))


COMMON_KEYS = frozenset({"venue", "environment", "account", "base_url"})

GEMINI = VenueInfo(
    name="gemini",
    title="Gemini",
    client="cancelctl.venues.gemini:Gemini",
    # https://docs.gemini.com/rest-api/#private-api-invocation (base URLs)
    environments={"production": "https://api.gemini.com", "sandbox": "https://api.sandbox.gemini.com"},
    secret_fields=("api_key", "api_secret"),
    profile_keys=COMMON_KEYS | {"nonce"},
    widest_cancel="cancel_all",
    public_path="/v1/symbols",
    docs="https://docs.gemini.com/rest-api/",
    commands=frozenset({"cancel session", "heartbeat"}),
    # https://docs.gemini.com/rest-api/#master-api: master keys act for a named sub-account
    key_prefixes={"master-": "master", "account-": "account"},
    secret_check="cancelctl.venues.gemini:check_secrets",
    key_check="cancelctl.cli.doctor.local:gemini_key",
    clock_limit="cancelctl.cli.doctor.clock:gemini_limit",
    # Gemini's paths carry /v1 themselves (https://docs.gemini.com/rest-api/: POST /v1/order/cancel/all on
    # https://api.gemini.com): a base URL ending in it makes every request /v1/v1/..., refused only when the
    # button is pressed (EndpointMismatch, exit 1).
    own_prefix="/v1",
)

PACIFICA = VenueInfo(
    name="pacifica",
    title="Pacifica",
    client="cancelctl.venues.pacifica:Pacifica",
    # https://docs.pacifica.fi/api-documentation/api (REST base)
    environments={"mainnet": "https://api.pacifica.fi/api/v1", "testnet": "https://test-api.pacifica.fi/api/v1"},
    secret_fields=("private_key",),
    profile_keys=COMMON_KEYS | {"agent_wallet"},
    widest_cancel="cancel_all_orders",
    public_path="/info",
    docs="https://docs.pacifica.fi/api-documentation/api",
    commands=frozenset({"cancel pacifica"}),
    secret_check="cancelctl.venues.pacifica:check_secrets",
    key_check="cancelctl.cli.doctor.local:pacifica_key",
    clock_limit="cancelctl.cli.doctor.clock:pacifica_limit",
    # Every Pacifica path is under /api/v1 (https://docs.pacifica.fi/api-documentation/api/rest-api): without
    # it each request would be a 404, found only when the button is pressed.
    base_path="/api/v1",
    profile_check="cancelctl.venues.pacifica:check_profile",
)

VENUES: dict[str, VenueInfo] = {v.name: v for v in (GEMINI, PACIFICA)}


def supporting(command: str) -> list[str]:
    """The venues that support ``command`` (one of the ``commands`` words)."""
    return [v.name for v in VENUES.values() if command in v.commands]


def names(sep: str = "|") -> str:
    """The venue names joined by ``sep`` (``gemini|pacifica``), for help texts and hints."""
    return sep.join(VENUES)
