"""``cancelctl doctor``: is this machine ready to press the button? Never sends a cancel.

Checks, one row each (``check profile status detail``; status ``ok``,
``warn`` or ``fail``; ``-`` as profile for machine-wide rows):

* ``config``: the config file is readable and parses as every other command
  would read it (path shown). A missing file, or one without profiles, fails
  with the fix ``cancelctl profiles add NAME --venue gemini|pacifica``.
* ``keyring``: the keyring backend in use (its class name). An unusable one
  (``keyring.backends.fail.Keyring``, a locked or silent backend) fails only
  when a checked profile has a secret that is not in the environment or a
  ``*_FILE``.
* per profile, ``profile``: the ``[profiles.NAME]`` table is valid;
  ``secrets``: each field's source, ``env``, ``file``, ``keyring`` or
  ``missing``, never a value; ``key``: what can be checked without the
  network (Gemini: the API key looks like ``account-...`` or
  ``master-...``, a master key names a sub-account and an account key does
  not; Pacifica: the private key decodes to a valid Ed25519 keypair, and it
  is the agent wallet's key when ``agent_wallet`` is set, else the
  ``account``'s); ``reach``: an unsigned ``GET`` of a public endpoint
  (Gemini ``/v1/symbols``, Pacifica ``/info``), its HTTP status and
  latency in ms (the first request includes connecting, as a cancel run's
  does); ``clock``: the skew of the venue's clock against the local one,
  from the ``Date`` header (see :func:`measure_skew`) against the limits
  in :data:`LIMITS`.

Nothing is signed and nothing private is requested: the only requests are
unsigned GETs of public endpoints (at most two per profile, the second on
the kept-alive connection for a tighter skew measurement).

Exit code (contract, ``docs/exit-codes.md``): 0 when no check
fails (``warn`` rows do not fail); otherwise the most basic failure wins:
78 when a config, profile, keyring, secrets or key check fails
(configuration or credentials missing or unusable); else 75 when a venue
could not be reached or answered 429/5xx (nothing was sent; retry later);
else 1 (a clock beyond its limit, another HTTP error). ``docs/doctor.md``
has the same table with the sources of each threshold.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Annotated, Optional

import typer

from cancelctl.cli.common import PANEL, JsonOpt, QuietOpt, TimeoutOpt
from cancelctl.errors import CancelctlError, ConfigError, ExitCode
from cancelctl.venues.info import VENUES

ProfileOpt = Annotated[
    Optional[list[str]],
    typer.Option("-p", "--profile", metavar="NAME", help="Profile to check (repeatable). Else $CANCELCTL_PROFILE, else every profile.", rich_help_panel=PANEL),
]

#: The public endpoint doctor GETs, appended to the profile's base URL.
#: Gemini "Symbols" (``GET /v1/symbols``, public, no key); Pacifica "Get
#: market info" (``GET /api/v1/info``, public; the base URL ends in /api/v1).

DATE_RESOLUTION_S = 1.0  # RFC 9110 5.6.7: HTTP-date has whole seconds; servers truncate
LATENCY_WARN_MS = 1000.0  # cancelctl's own rule of thumb: a cancel, a verify round and a retry must fit in --timeout (10 s)


@dataclass(frozen=True)
class Limit:
    """How much clock skew a venue tolerates: ``fail_s`` (None: never fails) and ``warn_s``, seconds, and why."""

    fail_s: float | None
    warn_s: float
    why: str


def _pacifica_window_s() -> float:
    from cancelctl.signing.pacifica import EXPIRY_WINDOW_MS

    return EXPIRY_WINDOW_MS / 1000


def limit_for(profile) -> Limit:
    """The skew limit that matters for ``profile`` (a :class:`~cancelctl.config.Profile`).

    * Gemini, ``nonce = "time-based"``: the nonce must be within ±30 s of
      Gemini's time (Gemini's REST API docs, "Private API invocation",
      https://docs.gemini.com/rest-api/#private-api-invocation): fail beyond 30 s, warn beyond 10 s.
    * Gemini, millisecond nonces: Gemini does not compare them with its
      clock, so skew never fails; beyond 30 s it warns, because this
      machine's nonces then lag those of a correctly clocked process using
      the same key by that much (``InvalidNonce``).
    * Pacifica: a signed request is valid until ``timestamp +
      expiry_window`` (Pacifica's API docs, "Signing",
      https://docs.pacifica.fi/api-documentation/api/signing), and cancelctl signs with a 5 000 ms
      window (``signing/pacifica.py``). A venue clock that far ahead makes
      every cancel arrive expired; the docs say nothing about timestamps
      from the future, so the same limit is used on both sides. Fail
      beyond the window, warn beyond 2 s.
    """
    if profile.venue == "pacifica":
        window = _pacifica_window_s()
        return Limit(window, 2.0, f"signed requests expire {window:g} s after their timestamp (expiry_window, Pacifica docs \"Signing\")")
    if profile.nonce == "time-based":
        return Limit(30.0, 10.0, "time-based nonces must be within 30 s of Gemini's clock (Gemini docs, \"Private API invocation\")")
    return Limit(None, 30.0, "millisecond nonces: Gemini does not check them against its clock, but they lag any correctly clocked process on the same key")


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
    numbers: dict = field(default_factory=dict)

    @classmethod
    def failed(cls, check: str, profile: str, e: CancelctlError, **numbers) -> "Check":
        return cls(check, profile, "fail", e.one_line(), int(e.exit_code), numbers)

    def as_json(self) -> dict:
        return {
            "check": self.check,
            "profile": self.profile,
            "status": self.status,
            "detail": self.detail,
            "exit_code": self.code if self.status == "fail" else 0,
            **self.numbers,
        }


# -- clock skew ---------------------------------------------------------------


@dataclass(frozen=True)
class Skew:
    """Venue clock minus local clock, seconds (positive: the venue is ahead).

    The true skew lies within ``estimate_s ± uncertainty_s``.
    """

    estimate_s: float
    uncertainty_s: float

    def judge(self, limit: Limit) -> str:
        """``fail`` when the whole interval is beyond ``limit.fail_s``; ``warn`` when it may be, or the estimate passes ``warn_s``; else ``ok``."""
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


# -- network --------------------------------------------------------------------


@dataclass
class Sample:
    sent_at: float  # local wall clock, s since the epoch
    round_trip_s: float
    answer: object  # transport.Answer


@dataclass
class Probe:
    """The unsigned GETs of one profile, run in a daemon thread."""

    profile: object
    url: str
    client: object = None  # an httpx client, made before the threads start
    samples: list[Sample] = field(default_factory=list)
    error: CancelctlError | None = None
    done: threading.Event = field(default_factory=threading.Event)


def _probe(probe: Probe, deadline) -> None:
    """Up to two unsigned GETs of ``probe.url``: the first for reachability, the second on the open connection. Never raises."""
    from cancelctl import transport
    from cancelctl.signing import PreparedRequest

    request = PreparedRequest("GET", probe.url, {"Accept": "application/json"})
    client = probe.client
    try:
        for attempt in range(2):
            sent_at, start = time.time(), time.monotonic()
            try:
                answer = transport.send(client, request, deadline)
            except CancelctlError as e:
                if attempt == 0:
                    probe.error = e
                break
            probe.samples.append(Sample(sent_at, time.monotonic() - start, answer))
            if answer.status != 200:
                break
    except Exception as e:  # noqa: BLE001 - reported as a row, never a traceback
        probe.error = probe.error or CancelctlError(f"internal error while probing: {type(e).__name__}", exit_code=ExitCode.INTERNAL)
    finally:
        if client is not None:
            try:
                client.close()
            except Exception:  # noqa: BLE001
                pass
        probe.done.set()


def _start_probes(profiles: list, deadline) -> list[Probe]:
    """One daemon thread per profile. The clients (TLS contexts) are made here first, so that
    making one does not hold the GIL while another thread's request is being timed."""
    from cancelctl import transport

    probes = []
    for p in profiles:
        probe = Probe(p, p.base_url + VENUES[p.venue].public_path)
        try:
            probe.client = transport.new_client()
        except ConfigError as e:  # unusable proxy or CA settings: the reach row names the variable
            probe.error = e
            probe.done.set()
        probes.append(probe)
    for probe in probes:
        if probe.client is not None:
            threading.Thread(target=_probe, args=(probe, deadline.fork()), name=f"doctor-{probe.profile.name}", daemon=True).start()
    return probes


def _reach_check(probe: Probe) -> Check:
    name, url = probe.profile.name, probe.url
    if not probe.done.is_set():
        return Check("reach", name, "fail", f"GET {url}: no answer within --timeout", ExitCode.UNAVAILABLE, {"url": url})
    if not probe.samples:
        e = probe.error or CancelctlError("no answer")
        code = int(e.exit_code) if e.exit_code in (ExitCode.CONFIG, ExitCode.INTERNAL) else ExitCode.UNAVAILABLE
        return Check("reach", name, "fail", f"GET {url}: {e.one_line()}", code, {"url": url})
    first = probe.samples[0]
    status = first.answer.status
    ms = round(first.round_trip_s * 1000, 1)
    numbers = {"url": url, "http_status": status, "latency_ms": ms}
    if len(probe.samples) > 1:
        numbers["latency_keepalive_ms"] = round(probe.samples[1].round_trip_s * 1000, 1)
    timing = f"in {ms:.0f} ms" + (f" ({numbers['latency_keepalive_ms']:.0f} ms on the open connection)" if len(probe.samples) > 1 else "")
    if status == 404:
        return Check("reach", name, "fail", f"GET {url}: HTTP 404 {timing}: not the venue's API (check base_url of profile {name})", ExitCode.CONFIG, numbers)
    if status == 429 or status >= 500:
        return Check("reach", name, "fail", f"GET {url}: HTTP {status} {timing}: the venue is unavailable or rate-limiting; try again later", ExitCode.UNAVAILABLE, numbers)
    if status != 200:
        return Check("reach", name, "fail", f"GET {url}: HTTP {status} {timing}", ExitCode.FAILED, numbers)
    import json

    try:
        json.loads(first.answer.body)
    except (ValueError, RecursionError):
        return Check("reach", name, "warn", f"GET {url}: HTTP 200 {timing}, but not JSON: is base_url the venue's API?", numbers=numbers)
    if ms > LATENCY_WARN_MS:
        return Check("reach", name, "warn", f"GET {url}: HTTP 200 {timing}: slow (over {LATENCY_WARN_MS:.0f} ms); keep --timeout generous", numbers=numbers)
    return Check("reach", name, "ok", f"GET {url}: HTTP 200 {timing}", numbers=numbers)


def _clock_check(probe: Probe) -> Check:
    profile = probe.profile
    limit = limit_for(profile)
    numbers: dict = {"limit_s": limit.fail_s, "warn_s": limit.warn_s}
    dated = [s for s in probe.samples if s.answer.headers.get("date")]
    if not probe.done.is_set() or not probe.samples:
        return Check("clock", profile.name, "warn", "not measured: the venue did not answer", numbers=numbers)
    if not dated:
        return Check("clock", profile.name, "warn", "not measured: the venue's answer has no Date header", numbers=numbers)
    best = min(dated, key=lambda s: s.round_trip_s)
    try:
        skew = measure_skew(best.answer.headers["date"], best.sent_at, best.round_trip_s)
    except ValueError:
        return Check("clock", profile.name, "warn", "not measured: the venue's Date header is not an HTTP-date", numbers=numbers)
    numbers.update(skew_s=round(skew.estimate_s, 3), skew_uncertainty_s=round(skew.uncertainty_s, 3))
    status = skew.judge(limit)
    way = "ahead of" if skew.estimate_s > 0 else "behind"
    if abs(skew.estimate_s) <= skew.uncertainty_s:
        text = f"venue clock agrees with this machine's to within the measurement's ±{skew.uncertainty_s:.1f} s (Date has 1 s resolution)"
    else:
        text = f"venue clock {abs(skew.estimate_s):.1f} s {way} this machine's (±{skew.uncertainty_s:.1f} s: Date has 1 s resolution, plus half the round trip)"
    bound = f"limit ±{limit.fail_s:g} s" if limit.fail_s is not None else f"warns beyond ±{limit.warn_s:g} s"
    detail = f"{text}; {bound}: {limit.why}"
    if status == "fail":
        return Check("clock", profile.name, "fail", detail + " (sync this machine's clock: timedatectl set-ntp true, or chronyc makestep)", ExitCode.FAILED, numbers)
    return Check("clock", profile.name, status, detail, numbers=numbers)


# -- local checks ---------------------------------------------------------------


def _config_checks(names: list[str]) -> tuple[list[Check], list]:
    """The ``config`` row and one ``profile`` row per profile checked; and the valid profiles."""
    from cancelctl import config as config_mod

    add_hint = "create one with: cancelctl profiles add NAME --venue gemini|pacifica"
    path = config_mod.config_path()
    rows: list[Check] = []
    try:
        cfg = config_mod.load(path)
    except ConfigError as e:
        rows.append(Check.failed("config", "-", e))
    else:
        if not cfg.exists:
            rows.append(Check("config", "-", "fail", f"no config file at {path} ({add_hint})", ExitCode.CONFIG))
        elif not cfg.profiles:
            rows.append(Check("config", "-", "fail", f"{path}: no profiles ({add_hint})", ExitCode.CONFIG))
        else:
            default = f", default {cfg.default_profile}" if cfg.default_profile else ""
            rows.append(Check("config", "-", "ok", f"{path}: {len(cfg.profiles)} profile(s){default}"))
    tables = _tables(path)
    chosen = list(dict.fromkeys(names or config_mod.env_profiles())) or list(tables)
    profiles = []
    for name in chosen:
        if name not in tables:
            choices = ", ".join(tables) or "none"
            rows.append(Check("profile", name, "fail", f"no profile named {name!r} in {path} (choices: {choices})", ExitCode.CONFIG))
            continue
        try:
            p = config_mod.parse_profile(name, tables[name], str(path))
        except ConfigError as e:
            rows.append(Check.failed("profile", name, e))
            continue
        extra = "".join(
            [
                f", account {p.account}" if p.account else "",
                f", nonce {p.nonce}" if "nonce" in VENUES[p.venue].profile_keys else "",
            ]
        )
        rows.append(Check("profile", name, "ok", f"{p.venue} {p.environment}, {p.base_url}{extra}"))
        profiles.append(p)
    return rows, profiles


def _tables(path) -> dict:
    """The raw ``[profiles.*]`` tables, or {} when the file cannot be read (the config row says why)."""
    from cancelctl import config as config_mod
    from cancelctl.files import read_regular

    try:
        data = config_mod.parse_toml(read_regular(path, str(path)), path)
    except (OSError, CancelctlError):
        return {}
    tables = data.get("profiles", {})
    return tables if isinstance(tables, dict) else {}


def _keyring_timeout(deadline) -> float:
    """Seconds one keyring call may take: at most 5, and at most half of what is left, so a stalled keyring leaves the probes time."""
    return max(0.1, min(5.0, deadline.remaining() / 2))


KEYRING_WIDE = "the OS keyring"  # how credentials' keyring-wide errors begin (unusable, no answer)


def _sources(profiles: list, deadline) -> tuple[dict[str, dict[str, str]], dict[str, CancelctlError], CancelctlError | None]:
    """Per profile, each field's source (``env``, ``file``, ``keyring``, ``missing``); per-profile keyring errors; the keyring-wide error.

    A keyring that errored or did not answer is not asked again for the
    next profiles (each call would wait its timeout again).
    """
    from cancelctl import credentials

    sources: dict[str, dict[str, str]] = {}
    errors: dict[str, CancelctlError] = {}
    wide: CancelctlError | None = None
    for p in profiles:
        try:
            found = credentials.presence(p.name, p.venue, timeout=_keyring_timeout(deadline), ask_keyring=wide is None)
        except ConfigError as e:
            errors[p.name] = e
            if e.message.startswith(KEYRING_WIDE):
                wide = e
            found = credentials.presence(p.name, p.venue, ask_keyring=False)
        else:
            if wide is not None and None in found.values():
                errors[p.name] = wide
        sources[p.name] = {f: s or "missing" for f, s in found.items()}
    return sources, errors, wide


def _keyring_check(profiles: list, sources: dict, wide: CancelctlError | None, deadline) -> Check:
    from cancelctl import credentials

    needed = [p.name for p in profiles if any(s not in ("env", "file") for s in sources[p.name].values())]
    try:
        name = credentials.backend_name(timeout=_keyring_timeout(deadline))
    except ConfigError as e:
        name, wide = "unknown backend", wide or e
    unusable = wide is not None or name.endswith("fail.Keyring")
    if not unusable:
        users = f"; read for profile(s) {', '.join(needed)}" if needed else "; not needed: every secret checked comes from env/file"
        return Check("keyring", "-", "ok", name + users, numbers={"backend": name})
    why = wide.message if wide is not None else "no usable keyring backend"
    if not needed:
        return Check("keyring", "-", "ok", f"{name}: {why}; not needed: every secret checked comes from env/file", numbers={"backend": name})
    return Check(
        "keyring",
        "-",
        "fail",
        f"{name}: {why}; needed by profile(s) {', '.join(needed)} (unlock or install a keyring, or use CANCELCTL_<PROFILE>_<FIELD> variables: docs/credentials.md)",
        ExitCode.CONFIG,
        {"backend": name},
    )


def _secrets_check(p, sources: dict[str, str], error: CancelctlError | None, deadline):
    """The ``secrets`` row and, when every field resolves, the Credentials (values never shown)."""
    from cancelctl import credentials

    listing = "  ".join(f"{f}={s}" for f, s in sources.items())
    numbers = {"sources": dict(sources)}
    missing = [f for f, s in sources.items() if s == "missing"]
    if missing:
        env = " / ".join("$" + credentials.env_var(p.name, f) for f in missing)
        if error is not None:
            fix = f"{error.message}: set {env}, or run {credentials.set_command(p.name)} where a keyring works"
        else:
            fix = f"run: {credentials.set_command(p.name)}   (or set {env})"
        return Check("secrets", p.name, "fail", f"{listing} ({fix})", ExitCode.CONFIG, numbers), None
    try:
        creds = credentials.resolve(p.name, p.venue, timeout=_keyring_timeout(deadline))
    except ConfigError as e:
        return Check("secrets", p.name, "fail", f"{listing}: {e.one_line()}", ExitCode.CONFIG, numbers), None
    return Check("secrets", p.name, "ok", listing, numbers=numbers), creds


def _key_check(p, creds) -> Check:
    """Signing-key sanity that needs no network; nothing is signed."""
    if creds is None:
        return Check("key", p.name, "warn", "not checked: secrets missing or unreadable")
    where = f"[profiles.{p.name}]"
    fix = f"run: cancelctl keys set {p.name}"
    if p.venue == "gemini":
        key, secret = creds["api_key"], creds["api_secret"]
        from cancelctl.venues.gemini import key_kind

        kind = key_kind(key)
        if kind is None:
            swapped = key_kind(secret) is not None
            why = "api_key and api_secret look swapped" if swapped else "api_key does not look like a Gemini API key (account-... or master-...)"
            return Check("key", p.name, "fail", f"{why} ({fix})", ExitCode.CONFIG)
        if kind == "master" and not p.account:
            return Check("key", p.name, "fail", f'a master key needs the sub-account to act on (Gemini: MissingAccounts): add account = "<sub-account>" to {where}', ExitCode.CONFIG)
        if kind == "account" and p.account:
            return Check("key", p.name, "fail", f"an account key must not name an account (Gemini: AccountsOnGroupOnlyApi): remove account from {where}", ExitCode.CONFIG)
        scope = f" for sub-account {p.account}" if p.account else ""
        return Check("key", p.name, "ok", f"{kind} key{scope}, {p.nonce} nonces", numbers={"key_kind": kind})
    from cancelctl.config import state_dir
    from cancelctl.transport import Deadline
    from cancelctl.venues.base import open_client

    try:  # the client's constructor validates the keypair, account and agent wallet; it sends nothing
        client = open_client(p, creds, state_dir=state_dir(), deadline=Deadline(0.1), dry_run=True)
    except ConfigError as e:
        return Check.failed("key", p.name, e)
    public, numbers = client.public_key, {"public_key": client.public_key, "agent_wallet": p.agent_wallet}
    if p.agent_wallet:
        return Check("key", p.name, "ok", f"valid Ed25519 keypair of agent wallet {public}, signing for account {client.account}", numbers=numbers)
    if p.account and p.account != public:
        return Check(
            "key",
            p.name,
            "fail",
            f"the key is wallet {public}'s but account is {p.account} and agent_wallet is unset: the venue would answer \"Verification failed\" "
            f'(set agent_wallet = "{public}" in {where} if it is an agent\'s key, else fix account or {fix})',
            ExitCode.CONFIG,
            numbers,
        )
    return Check("key", p.name, "ok", f"valid Ed25519 keypair of account {public}; agent_wallet unset", numbers=numbers)


# -- the command ----------------------------------------------------------------


def run_checks(names: list[str], timeout: float) -> list[Check]:
    """Every check, in display order: ``config``, ``keyring``, then per profile ``profile``, ``secrets``, ``key``, ``reach``, ``clock``.

    Local checks first, then the profiles' network probes concurrently; all
    of it within ``timeout`` seconds (plus a 0.25 s grace).
    """
    from cancelctl.transport import Deadline

    deadline = Deadline(timeout)
    config_rows, profiles = _config_checks(names)
    sources, errors, wide = _sources(profiles, deadline)
    checks = [config_rows[0], _keyring_check(profiles, sources, wide, deadline)]
    local: dict[str, list[Check]] = {}
    for p in profiles:
        secrets_row, creds = _secrets_check(p, sources[p.name], errors.get(p.name), deadline)
        local[p.name] = [secrets_row, _key_check(p, creds)]
    # The probes start only now: imports and key checks running beside them would hold the GIL and inflate the latencies measured.
    probes = {probe.profile.name: probe for probe in _start_probes(profiles, deadline)}
    for probe in probes.values():
        probe.done.wait(max(0.0, deadline.remaining()) + 0.25)
    valid = {p.name for p in profiles}
    for row in config_rows[1:]:
        checks.append(row)
        if row.profile in valid:
            probe = probes[row.profile]
            checks += local[row.profile] + [_reach_check(probe), _clock_check(probe)]
    return checks


def exit_code(checks: list[Check]) -> int:
    """0 when nothing failed; else 78 (configuration, credentials) over 75 (unreachable) over the rest (70, then 1)."""
    codes = {c.code for c in checks if c.status == "fail"}
    if not codes:
        return ExitCode.OK
    for code in (ExitCode.CONFIG, ExitCode.UNAVAILABLE, ExitCode.INTERNAL):
        if code in codes:
            return code
    return ExitCode.FAILED


STYLES = {"ok": "green", "warn": "yellow", "fail": "red"}
#: doctor's --json document is not a cancel report (docs/schema/cancelctl-1.schema.json):
#: its own name, so a consumer can tell them apart. A usage error before the
#: checks run still prints the error-only "cancelctl/1" document (main.py).
SCHEMA = "cancelctl-doctor/1"


def show(checks: list[Check], code: int, *, as_json: bool, quiet: bool) -> None:
    """Failed checks as ``cancelctl: error:`` lines on stderr; then one JSON document, nothing (``-q``), a table (TTY) or TSV lines."""
    from cancelctl.render import err, out, out_json

    for c in checks:
        if c.status == "fail":
            where = f"profile {c.profile}: " if c.profile != "-" else ""
            err(f"cancelctl: error: {where}{c.check}: {c.detail}")
    if as_json:

        out_json({"schema": SCHEMA, "ok": code == 0, "exit_code": code, "checks": [c.as_json() for c in checks]})
        return
    if quiet:
        return
    if sys.stdout.isatty():
        _table(checks, code)
        return
    for c in checks:
        out("\t".join([c.check, c.profile, c.status, c.detail]))


def _table(checks: list[Check], code: int) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from cancelctl.redact import scrub

    console = Console()
    t = Table(title="cancelctl doctor")
    for col in ("check", "profile", "status", "detail"):
        t.add_column(col)
    for c in checks:
        t.add_row(Text(c.check), Text(c.profile), Text(c.status, style=STYLES[c.status]), Text(scrub(c.detail)))
    console.print(t)
    failed = sum(c.status == "fail" for c in checks)
    console.print("[green]every check passed[/] (exit 0)" if not failed else f"[red]{failed} check(s) failed[/] (exit {code})")


def doctor(
    ctx: typer.Context,
    profile: ProfileOpt = None,
    json: JsonOpt = False,
    quiet: QuietOpt = False,
    timeout: TimeoutOpt = 10.0,
) -> int:
    """Check config, keyring, secrets (never their values), keys, reachability, latency and clock skew; never sends a cancel.

    Rows: check, profile, status (ok|warn|fail), detail. Exit 0 when no
    check fails (warn rows pass); else 78 for config/keyring/secrets/key
    failures, 75 when a venue is unreachable or answers 429/5xx, 1 for the
    rest (clock skew beyond the venue's limit). See docs/doctor.md.
    """
    checks = run_checks(list(profile or []), timeout)
    code = exit_code(checks)
    show(checks, code, as_json=json, quiet=quiet)
    return code
