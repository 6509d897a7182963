"""``cancelctl log``: the audit trail read back by the real process, and the bounded tail reader.

Every run here is recorded by a real ``cancelctl`` process against the
simulator, then read back by another: what ``log`` shows is what the
audit line says (counts, reason, exit code, newest last). A missing log,
torn and damaged lines, a FIFO and a huge file each give one line and
the right exit code, never a traceback or a hang.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from unittest import mock

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cancelctl import audit

from conftest import audit_lines

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "docs" / "schema" / "cancelctl-log-1.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def log_doc(proc, code: int = 0) -> dict:
    """The one ``cancelctl-log/1`` document on stdout, validated against its schema."""
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    doc = json.loads(proc.stdout)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in VALIDATOR.iter_errors(doc)]
    assert not errors, errors
    assert doc["exit_code"] == code
    return doc


def line(**kw) -> str:
    record = {
        "time": "2026-11-29T19:58:03Z",
        "user": "me",
        "host": "desk",
        "pid": 1,
        "command": ["cancelctl", "panic"],
        "reason": None,
        "dry_run": False,
        "exit_code": 0,
        "elapsed_ms": 1.0,
        "results": [],
    }
    record.update(kw)
    return json.dumps(record) + "\n"


def test_schema_is_valid_and_the_docs_example_follows_it():
    import re

    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    text = (ROOT / "docs" / "json.md").read_text()
    examples = [json.loads(b) for b in re.findall(r"```json\n(.*?)```", text, re.S) if "cancelctl-log/1" in b]
    assert examples
    for doc in examples:
        assert not list(VALIDATOR.iter_errors(doc))


def test_runs_are_shown_newest_last_with_counts_reason_and_exit_code(env, sim, gemini):
    from conftest import GEMINI_KEY

    for symbol in ("btcusd", "ethusd"):
        gemini.add_order("primary", GEMINI_KEY, symbol=symbol)
    assert env.run("cancel", "all", "--reason", "end of day").returncode == 0
    assert env.run("cancel", "order", "999999", "--reason", "fat finger").returncode == 1  # rejected: not found
    assert env.run("panic", "-p", "nosuch").returncode == 78  # failed before any profile ran
    recorded = audit_lines(env)
    assert len(recorded) == 3

    doc = log_doc(env.run("log", "--json"))
    runs = doc["runs"]
    assert [r["exit_code"] for r in runs] == [0, 1, 78]  # newest last
    assert [r["reason"] for r in runs] == ["end of day", "fat finger", None]
    assert [r["time"] for r in runs] == [r["time"] for r in recorded]
    assert runs[0]["command"] == ["cancelctl", "cancel", "all", "--reason", "end of day"]
    first = runs[0]["profiles"]
    assert [(p["profile"], p["action"], p["cancelled"], p["rejected"]) for p in first] == [
        ("main", "cancel_all", 2, 0)
    ]
    assert runs[1]["profiles"][0]["rejected"] == 1 and runs[1]["profiles"][0]["cancelled"] == 0
    assert runs[2]["profiles"] == [] and runs[2]["error"]["kind"] == "config"
    assert runs[0]["host"] == recorded[0]["host"] and runs[0]["user"] == recorded[0]["user"]
    assert doc["skipped"] == 0 and doc["path"] == str(env.state_dir / "audit.jsonl")

    last = log_doc(env.run("log", "-n", "1", "--json"))["runs"]
    assert [r["exit_code"] for r in last] == [78]

    # In a pipe: one tab-separated line per run, time who command reason results exit
    proc = env.run("log", "--lines", "2")
    assert proc.returncode == 0, proc.stderr
    rows = [r.split("\t") for r in proc.stdout.splitlines()]
    assert len(rows) == 2 and all(len(r) == 6 for r in rows)
    assert rows[0][2] == "cancel order 999999 --reason fat finger" and rows[0][3] == "fat finger"
    assert rows[0][4].startswith("main: ") and "1 rejected" in rows[0][4] and rows[0][5] == "1"
    assert rows[1][5] == "78" and rows[1][4].startswith("config: ")


def test_a_pasted_secret_stays_redacted(env, sim, gemini):
    pasted = "Zq7sX2pLm9Kd4Rt8Vb3N"  # looks like a credential: refused and redacted before the audit line
    proc = env.run("cancel", "all", pasted)
    assert proc.returncode == 2
    assert pasted not in (env.state_dir / "audit.jsonl").read_text()
    for args in (("log",), ("log", "--json")):
        shown = env.run(*args)
        assert shown.returncode == 0 and pasted not in shown.stdout + shown.stderr
    assert "<redacted>" in env.run("log").stdout


def test_no_log_yet(env):
    proc = env.run("log")
    assert proc.returncode == 0 and proc.stdout == ""
    assert proc.stderr.startswith("cancelctl: no run recorded yet") and proc.stderr.count("\n") == 1
    doc = log_doc(env.run("log", "--json"))
    assert doc["runs"] == [] and doc["ok"] is True


def test_torn_damaged_and_huge_lines_are_skipped_and_said_once(env):
    env.state_dir.mkdir(parents=True)
    path = env.state_dir / "audit.jsonl"
    with open(path, "w") as f:
        f.write(line(reason="one"))
        f.write("not json at all\n")
        f.write('["a list", "not a record"]\n')
        f.write(line(reason="x" * (audit.LINE_LIMIT + 10)))  # over the line limit: never parsed
        f.write(line(reason="two", exit_code="zero", results=[{"profile": 7, "cancelled": "many"}, 3]))
        f.write("\x1b[2J\x00\xff garbage\n")
        f.write(line(reason="three\x1b[31m\nforged\trow"))
        f.write('{"time": "2026-11-29T20:00:00Z", "user": "me", "comm')  # torn: a writer cut off
    doc = log_doc(env.run("log", "--json"))
    assert [r["reason"] for r in doc["runs"]] == ["one", "two", "three\x1b[31m\nforged\trow"]
    assert doc["skipped"] == 5
    two = doc["runs"][1]
    assert two["exit_code"] is None  # the wrong type is null, not a crash
    assert two["profiles"] == [
        {
            "profile": None, "venue": None, "action": None, "status": None, "exit_code": None,
            "cancelled": 0, "rejected": 0, "unknown": 0, "remaining": None,
        }
    ]
    proc = env.run("log")
    assert proc.returncode == 0
    warnings = [w for w in proc.stderr.splitlines() if w]
    assert len(warnings) == 1 and "5 line(s)" in warnings[0] and "skipped" in warnings[0]
    rows = proc.stdout.splitlines()
    assert len(rows) == 3 and all(r.count("\t") == 5 for r in rows)  # the venue-ish text forged no row
    assert "\x1b" not in proc.stdout and rows[2].split("\t")[3] == "three [31m forged row"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX FIFOs")
def test_a_fifo_or_a_directory_is_one_line_and_78_never_a_hang(env):
    env.state_dir.mkdir(parents=True)
    os.mkfifo(env.state_dir / "audit.jsonl")  # nobody writes: an open() without O_NONBLOCK would block for ever
    proc = env.run("log", timeout=20)
    assert proc.returncode == 78 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "not a regular file" in proc.stderr
    doc = log_doc(env.run("log", "--json", timeout=20), 78)
    assert doc["error"]["kind"] == "config" and doc["runs"] == []
    os.unlink(env.state_dir / "audit.jsonl")
    (env.state_dir / "audit.jsonl").mkdir()
    assert env.run("log", timeout=20).returncode == 78


def test_bad_n_is_a_usage_error(env):
    proc = env.run("log", "-n", "0")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


# -- the reader, in process ----------------------------------------------------------


def counting_pread():
    """os.pread wrapped to count the bytes it returns."""
    real = os.pread
    read = [0]

    def pread(fd: int, n: int, offset: int) -> bytes:
        data = real(fd, n, offset)
        read[0] += len(data)
        return data

    return pread, read


def test_a_huge_log_is_read_from_the_end_only(tmp_path):
    path = tmp_path / "audit.jsonl"
    with open(path, "wb") as f:
        f.truncate(1 << 30)  # 1 GiB (sparse: costs no disk), no newline in it
        f.seek(0, os.SEEK_END)
        f.write(b"\n")
        for n in range(3):
            f.write(line(pid=n).encode())
    pread, read = counting_pread()
    with mock.patch.object(os, "pread", pread):
        got = audit.tail(path, 2)
    assert [r["pid"] for r in got.runs] == [1, 2] and got.skipped == 0 and not got.cut
    assert read[0] <= audit.TAIL_BLOCK
    pread, read = counting_pread()
    with mock.patch.object(os, "pread", pread):
        got = audit.tail(path, 10)  # more than there are: reads back to the limit, not to the start
    assert [r["pid"] for r in got.runs] == [0, 1, 2] and got.cut and got.skipped == 0  # the 1 GiB line: not read
    assert read[0] <= audit.TAIL_LIMIT


records = st.fixed_dictionaries({"pid": st.integers(0, 10**6), "reason": st.text(max_size=30)})
garbage = st.binary(max_size=40).filter(lambda b: b"\n" not in b).map(lambda b: b"#" + b)  # never a JSON object
entries = st.lists(st.one_of(records, garbage), max_size=25)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entries=entries, n=st.integers(1, 30), block=st.integers(1, 200))
def test_tail_is_the_last_n_lines_whatever_the_block_size(tmp_path, entries, n, block):
    """Invariant: the runs are the records among the last n lines, in order; every other line there is skipped."""
    path = tmp_path / "audit.jsonl"
    path.write_bytes(b"".join(line(**e).encode() if isinstance(e, dict) else e + b"\n" for e in entries))
    with mock.patch.object(audit, "TAIL_BLOCK", block):
        got = audit.tail(path, n)
    last = entries[-n:]
    assert [(r["pid"], r["reason"]) for r in got.runs] == [(e["pid"], e["reason"]) for e in last if isinstance(e, dict)]
    assert got.skipped == sum(1 for e in last if not isinstance(e, dict))
    assert not got.cut
