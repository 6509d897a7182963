"""Every check in display order, local ones first, then the network probes concurrently, within one deadline."""

from __future__ import annotations

from cancelctl.cli.doctor.clock import clock_check
from cancelctl.cli.doctor.local import config_checks, key_check, keyring_check, secrets_check, sources_of
from cancelctl.cli.doctor.model import Check
from cancelctl.cli.doctor.network import auth_check, reach_check, start_probes


def run_checks(names: list[str], timeout: float) -> list[Check]:
    """Every check, in display order: ``config``, ``keyring``, then per profile ``profile``, ``secrets``, ``key``,
    ``reach``, ``auth``, ``clock``.

    Local checks first, then the profiles' network probes concurrently; all
    of it within ``timeout`` seconds (plus a 0.25 s grace).
    """
    from cancelctl.transport import Deadline

    deadline = Deadline(timeout)
    config_rows, profiles = config_checks(names)
    sources, errors, wide = sources_of(profiles, deadline)
    checks = [config_rows[0], keyring_check(profiles, sources, wide, deadline)]
    local: dict[str, list[Check]] = {}
    usable = {}  # profile -> credentials whose local key check passed: those get the signed read
    for p in profiles:
        secrets_row, creds = secrets_check(p, sources[p.name], errors.get(p.name), deadline)
        local[p.name] = [secrets_row, key_check(p, creds)]
        if creds is not None and local[p.name][1].status == "ok":
            usable[p.name] = creds
    # The probes start only now: imports and key checks running beside them would hold the GIL and inflate the
    # latencies measured.
    probes = {probe.profile.name: probe for probe in start_probes(profiles, deadline, usable)}
    for probe in probes.values():
        probe.done.wait(max(0.0, deadline.remaining()) + 0.25)
    valid = {p.name for p in profiles}
    for row in config_rows[1:]:
        checks.append(row)
        if row.profile in valid:
            probe = probes[row.profile]
            checks += local[row.profile] + [reach_check(probe), auth_check(probe, local[row.profile][1])]
            checks.append(clock_check(probe))
    return checks
