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
  does); ``auth``: one signed read-only request proves the venue accepts
  the key (Gemini ``POST /v1/orders``; Pacifica ``list_api_keys``, ``POST
  /api/v1/account/api_keys``): "key accepted", or the venue's refusal with
  its fix (a wrong secret, an unbound agent wallet, an account the venue
  does not know); ``clock``: the skew of the venue's clock against the local one,
  from the ``Date`` header (see :func:`measure_skew`) against the limits
  in :data:`LIMITS`.

Never a cancel or an order: per profile, at most two unsigned GETs of a
public endpoint (the second on the kept-alive connection for a tighter
skew measurement) and, when the local checks passed, the one signed read
(sent again only when the venue asks, as for a Gemini ``InvalidNonce``).

Exit code (contract, ``docs/exit-codes.md``): 0 when no check
fails (``warn`` rows do not fail); otherwise the most basic failure wins:
78 when a config, profile, keyring, secrets or key check fails, or the
venue does not know the account (configuration or credentials missing or
unusable); else 4 when the venue refused the key; else 75 when a venue
could not be reached or answered 429/5xx (nothing was sent; retry later);
else 1 (a clock beyond its limit, another HTTP error). ``docs/doctor.md``
has the same table with the sources of each threshold.
"""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from cancelctl.cli.common import PANEL, JsonOpt, QuietOpt, TimeoutOpt
from cancelctl.cli.doctor.model import Check, exit_code
from cancelctl.cli.doctor.run import run_checks

__all__ = ["SCHEMA", "doctor", "run_checks", "show"]

ProfileOpt = Annotated[
    Optional[list[str]],
    typer.Option(
        "-p",
        "--profile",
        metavar="NAME",
        help="Profile to check (repeatable). Else $CANCELCTL_PROFILE, else every profile.",
        rich_help_panel=PANEL,
    ),
]


#: doctor's --json document is not a cancel report (docs/schema/cancelctl-1.schema.json):
#: its own name, so a consumer can tell them apart. A usage error before the
#: checks run still prints the error-only "cancelctl/1" document (main.py).
SCHEMA = "cancelctl-doctor/1"


def show(checks: list[Check], code: int, *, as_json: bool, quiet: bool) -> None:
    """Failed checks as ``cancelctl: error:`` lines on stderr; then one JSON document, nothing (``-q``), a table
    (TTY) or TSV lines."""
    from cancelctl.render import err, out, out_json, rich_table

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
        failed = sum(c.status == "fail" for c in checks)
        footer = (
            "[green]every check passed[/] (exit 0)" if not failed else f"[red]{failed} check(s) failed[/] (exit {code})"
        )
        rich_table(
            ("check", "profile", "status", "detail"),
            [(c.check, c.profile, c.status, c.detail) for c in checks],
            footer,
            styled=2,
            title="cancelctl doctor",
        )
        return
    for c in checks:
        out("\t".join([c.check, c.profile, c.status, c.detail]))


def doctor(
    ctx: typer.Context,
    profile: ProfileOpt = None,
    json: JsonOpt = False,
    quiet: QuietOpt = False,
    timeout: TimeoutOpt = 10.0,
) -> int:
    """Check config, keyring, secrets (never their values), keys, reachability, latency and
    clock skew, and prove each key with one signed read-only request; never sends a cancel.

    Rows: check, profile, status (ok|warn|fail), detail. Exit 0 when no
    check fails (warn rows pass); else 78 for config/keyring/secrets/key
    failures, 4 when a venue refused a key, 75 when a venue is unreachable
    or answers 429/5xx, 1 for the rest (clock skew beyond the venue's
    limit). See docs/doctor.md.
    """
    checks = run_checks(list(profile or []), timeout)
    code = exit_code(checks)
    show(checks, code, as_json=json, quiet=quiet)
    return code
