"""Network probes: up to two unsigned GETs of a public endpoint per profile, then one signed read-only request
that proves the key (``auth``); the ``reach`` and ``auth`` rows.

#: The public endpoint is each venue's ``public_path`` (:mod:`cancelctl.venues.info`):
#: Gemini "Symbols" (``GET /v1/symbols``, public, no key); Pacifica "Get
#: market info" (``GET /api/v1/info``, public; the base URL ends in /api/v1).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cancelctl.cli.doctor.model import Check
from cancelctl.errors import CancelctlError, ConfigError, ExitCode
from cancelctl.venues.info import VENUES

if TYPE_CHECKING:
    from cancelctl.config import Profile
    from cancelctl.credentials import Credentials
    from cancelctl.transport import Answer, Deadline, HTTPClient

LATENCY_WARN_MS = 1000.0


@dataclass
class Sample:
    sent_at: float  # local wall clock, s since the epoch
    round_trip_s: float
    answer: Answer


@dataclass
class Probe:
    """The unsigned GETs of one profile, run in a daemon thread."""

    profile: Profile
    url: str
    client: HTTPClient | None = None  # made before the threads start
    samples: list[Sample] = field(default_factory=list)
    error: CancelctlError | None = None
    done: threading.Event = field(default_factory=threading.Event)
    creds: Credentials | None = None  # set when the local checks passed: the signed read is made with them
    auth: Check | None = None  # the signed read's row, once made


def _probe(probe: Probe, deadline: Deadline) -> None:
    """Up to two unsigned GETs of ``probe.url``: the first for reachability, the second on the open connection;
    then, with ``probe.creds`` and a 200, the signed read that proves the key (:func:`_prove`). Never raises."""
    from cancelctl import transport
    from cancelctl.signing import PreparedRequest

    request = PreparedRequest("GET", probe.url, {"Accept": "application/json"})
    client = probe.client
    assert client is not None  # start_probes starts a thread only for a probe with a client
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
        if probe.creds is not None and probe.samples and probe.samples[0].answer.status == 200:
            probe.auth = _prove(probe, deadline)
    except Exception as e:  # noqa: BLE001 - reported as a row, never a traceback
        probe.error = probe.error or CancelctlError(
            f"internal error while probing: {type(e).__name__}", exit_code=ExitCode.INTERNAL
        )
    finally:
        if client is not None:
            try:
                client.close()
            except Exception:  # noqa: BLE001
                pass
        probe.done.set()


def _prove(probe: Probe, deadline: Deadline) -> Check:
    """The ``auth`` row: the venue client's one signed read-only request (``prove_key``: Gemini ``POST
    /v1/orders``, Pacifica ``list_api_keys``), after the timed GETs so it does not disturb them. Never a cancel."""
    from cancelctl.config import state_dir
    from cancelctl.venues.base import open_client

    name = probe.profile.name
    assert probe.creds is not None
    client = None
    try:
        client = open_client(probe.profile, probe.creds, state_dir=state_dir(), deadline=deadline)
        return Check("auth", name, "ok", client.prove_key())
    except CancelctlError as e:
        return Check.failed("auth", name, e, venue_reason=e.venue_reason)
    finally:
        if client is not None:
            client.close()


def auth_check(probe: Probe, key_row: Check) -> Check:
    """The ``auth`` row of a profile: the signed read's, or why it was not made."""
    name = probe.profile.name
    if probe.auth is not None:
        return probe.auth
    if key_row.status != "ok":
        return Check("auth", name, "warn", "not checked: the key check did not pass")
    if not probe.done.is_set():
        return Check("auth", name, "fail", "no answer within --timeout", ExitCode.UNAVAILABLE)
    return Check("auth", name, "warn", "not checked: the venue was not reached (see reach)")


def start_probes(
    profiles: list[Profile], deadline: Deadline, creds: dict[str, Credentials] | None = None
) -> list[Probe]:
    """One daemon thread per profile. The clients (TLS contexts) are made here first, so that
    making one does not hold the GIL while another thread's request is being timed. A profile with
    ``creds`` also gets the signed read (:func:`_prove`) after its GETs."""
    from cancelctl import transport

    probes = []
    for p in profiles:
        probe = Probe(p, p.base_url + VENUES[p.venue].public_path, creds=(creds or {}).get(p.name))
        try:
            probe.client = transport.new_client()
        except ConfigError as e:  # unusable proxy or CA settings: the reach row names the variable
            probe.error = e
            probe.done.set()
        probes.append(probe)
    for probe in probes:
        if probe.client is not None:
            threading.Thread(
                target=_probe, args=(probe, deadline.fork()), name=f"doctor-{probe.profile.name}", daemon=True
            ).start()
    return probes


def reach_check(probe: Probe) -> Check:
    name, url = probe.profile.name, probe.url
    if not probe.done.is_set():
        return Check(
            "reach", name, "fail", f"GET {url}: no answer within --timeout", ExitCode.UNAVAILABLE, {"url": url}
        )
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
    timing = f"in {ms:.0f} ms" + (
        f" ({numbers['latency_keepalive_ms']:.0f} ms on the open connection)" if len(probe.samples) > 1 else ""
    )
    if status == 404:
        return Check(
            "reach",
            name,
            "fail",
            f"GET {url}: HTTP 404 {timing}: not the venue's API (check base_url of profile {name})",
            ExitCode.CONFIG,
            numbers,
        )
    if status == 429 or status >= 500:
        return Check(
            "reach",
            name,
            "fail",
            f"GET {url}: HTTP {status} {timing}: the venue is unavailable or rate-limiting; try again later",
            ExitCode.UNAVAILABLE,
            numbers,
        )
    if status != 200:
        return Check("reach", name, "fail", f"GET {url}: HTTP {status} {timing}", ExitCode.FAILED, numbers)
    import json

    try:
        json.loads(first.answer.body)
    except (ValueError, RecursionError):
        return Check(
            "reach",
            name,
            "warn",
            f"GET {url}: HTTP 200 {timing}, but not JSON: is base_url the venue's API?",
            numbers=numbers,
        )
    if ms > LATENCY_WARN_MS:
        return Check(
            "reach",
            name,
            "warn",
            f"GET {url}: HTTP 200 {timing}: slow (over {LATENCY_WARN_MS:.0f} ms); keep --timeout generous",
            numbers=numbers,
        )
    return Check("reach", name, "ok", f"GET {url}: HTTP 200 {timing}", numbers=numbers)
