"""No secret, and no signature-bearing header, in anything the tool printed during the suite.

Runs last (file name) so it sees every process output collected by
conftest.Env.run; it also makes its own runs on the paths most likely to
leak (--dry-run, --debug, auth failures, internal errors) so it can fail on
its own when run alone.
"""

from __future__ import annotations

import re

from conftest import GEMINI_KEY, GEMINI_SECRET, OUTPUTS, SECRETS_USED


def test_no_secret_in_any_output(gemini, env, sim):
    gemini.add_order("primary", "UI")
    runs = [
        ("cancel", "all", "--dry-run"),
        ("cancel", "all", "--dry-run", "--json"),
        ("--debug", "cancel", "order", "1", "2", "--dry-run"),
        ("--debug", "cancel", "all", "--json"),
        ("keys", "list"),
    ]
    for args in runs:
        env.run(*args)
    env.secret("main", "api_secret", "a-wrong-secret-that-must-not-print")
    env.run("--debug", "cancel", "all", "--json")
    sim.fail("/v1/", "reset", times=-1)
    env.run("--debug", "cancel", "all", "--timeout", "1")
    assert len(OUTPUTS) >= len(runs) + 2
    secrets = {s for s in SECRETS_USED if len(s) >= 8} | {GEMINI_SECRET}
    signature_header = re.compile(r"X-GEMINI-SIGNATURE\W+[0-9a-f]{96}", re.I)
    for label, text in OUTPUTS:
        for s in secrets:
            assert s not in text, f"a secret appeared in the output of: {label}"
        assert not signature_header.search(text), f"a signature appeared in: {label}"
        assert "X-GEMINI-APIKEY\": \"" + GEMINI_KEY not in text
