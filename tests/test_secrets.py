"""No secret, and no signature-bearing header, in anything the tool prints.

Every process output a test captures goes through ``conftest.collect``,
which fails that test at once when the output shows a secret (so the scan
does not depend on the order the suite runs in). This file makes its own
runs on the paths most likely to leak (--dry-run, --debug, auth failures,
internal errors), and proves the scan itself can fail.
"""

from __future__ import annotations

import pytest

from conftest import GEMINI_SECRET, assert_no_secret


def test_no_secret_in_the_riskiest_outputs(gemini, env, sim):
    gemini.add_order("primary", "UI")
    runs = [
        ("cancel", "all", "--dry-run"),
        ("cancel", "all", "--dry-run", "--json"),
        ("--debug", "cancel", "order", "1", "2", "--dry-run"),
        ("--debug", "cancel", "all", "--json"),
        ("keys", "list"),
    ]
    procs = [env.run(*args) for args in runs]  # env.run scans each output as it comes
    env.secret("main", "api_secret", "a-wrong-secret-that-must-not-print")
    procs.append(env.run("--debug", "cancel", "all", "--json"))
    sim.fail("/v1/", "reset", times=-1)
    procs.append(env.run("--debug", "cancel", "all", "--timeout", "1"))
    assert all(p.stdout or p.stderr for p in procs)  # each run printed something to scan
    # the paths were really taken: successes, an auth failure, a failure with a traceback under --debug
    assert [p.returncode for p in procs[:6]] == [0, 0, 0, 0, 0, 4] and procs[6].returncode != 0


@pytest.mark.parametrize(
    "leak",
    [
        GEMINI_SECRET,
        "X-GEMINI-SIGNATURE: " + "ab" * 48,
        'X-GEMINI-APIKEY": "account-TESTKEYabcdefghij12',
    ],
)
def test_the_scan_catches_a_leak(leak):
    with pytest.raises(AssertionError):
        assert_no_secret("a leaky run", f"cancelctl: error: {leak}")
