"""An adversarial review of the guard (session 8): each test is one way a caller, a venue or the machine tried to
make a guarded run differ from cold, leak a secret or jam the guard. Real processes: the guard, the ``cancelctl``
client and the simulator on loopback."""

from __future__ import annotations

import json

import pytest
from test_guard import COLD, PAC_PRIVATE, ROOMY, Running, normal, seed

from conftest import GEMINI_KEY, GEMINI_SECRET, audit_lines


@pytest.fixture
def two(sim, env):
    """test_guard's ``two``: a Gemini profile ``main`` and a Pacifica profile ``pac`` on the simulator."""
    sim.gemini.add_key(GEMINI_KEY, GEMINI_SECRET)
    sim.pacifica.add_account(PAC_PRIVATE)
    env.write_config(
        {
            "main": {"venue": "gemini", "base_url": sim.url},
            "pac": {"venue": "pacifica", "base_url": sim.url + "/api/v1"},
        }
    )
    env.secret("main", "api_key", GEMINI_KEY)
    env.secret("main", "api_secret", GEMINI_SECRET)
    env.secret("pac", "private_key", PAC_PRIVATE)
    env.vars.update(ROOMY)
    return sim


TOKEN = "drill2026x7Kq9ZpLm4"  # a word redact.looks_secret takes for a pasted secret (letters and digits, 16+)


def test_a_caller_s_refused_words_are_not_secrets_for_every_later_caller(two, env):
    """A usage error registers the words of its command line that look like secrets (so its error line cannot echo
    a paste). In the guard that registry outlives the caller: an earlier caller's refused word was scrubbed from every
    later caller's report (its --reason in the audit line, the JSON document), which cold shows as it is."""
    g = Running(env)
    try:
        runs = []
        for extra in (COLD, {}):
            bad = env.run("panic", "--reason", TOKEN, "--no-such-flag", extra_env=extra)
            assert bad.returncode == 2, bad.stderr
            ids = seed(two)
            before = len(audit_lines(env))
            proc = env.run("cancel", "all", "-p", "main", "--json", "--reason", TOKEN, extra_env=extra)
            audit = [
                {k: v for k, v in line.items() if k not in {"time", "elapsed_ms", "pid"}}
                for line in audit_lines(env)[before:]
            ]
            runs.append((proc.returncode, normal(proc.stdout, ids), normal(json.dumps(audit), ids)))
        assert runs[0] == runs[1]
        assert TOKEN in runs[1][2]
    finally:
        code, err = g.stop()
    assert "ran cancel all" in err, err


def test_a_secret_pasted_into_the_reason_is_not_echoed_on_the_guard_s_terminal(two, env):
    """A hurried trader pastes the API secret into --reason. Cold, the audit line has it redacted (a resolved
    credential is a registered secret); the guard's terminal line for the run ("ran cancel all ... (reason)") printed
    it as it was."""
    g = Running(env)
    try:
        seed(two)
        proc = env.run("cancel", "all", "-p", "main", "--json", "--reason", f"oops {GEMINI_SECRET}")
        assert proc.returncode == 0, proc.stderr
        assert GEMINI_SECRET not in proc.stdout + proc.stderr
        assert all(GEMINI_SECRET not in json.dumps(line) for line in audit_lines(env))
    finally:
        code, err = g.stop()
    assert "ran cancel all" in err, err
    assert GEMINI_SECRET not in err
    assert "oops <redacted>" in err
