"""What a trader sees at a real terminal: the real process under a pseudo terminal (stdlib ``pty``).

The status line while it waits (stderr, only on a terminal, never with
``-q`` or ``--json``, never in a pipe), the verdict line with each exit
code's own words, errors said once, and tables that stay one line per row
at 60 columns.
"""

from __future__ import annotations

import json
import re
import time

import pytest

from cancelctl.sim.pacifica import solana_keypair

from conftest import GEMINI_KEY, collect, run_on_pty

ALL = "/v1/order/cancel/all"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
VERDICT = re.compile(r"(\d+) cancelled · (\d+) rejected · .*\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC · exit (\d+): (.+)")


def run_pty(env, *args: str, cols: int = 120, timeout: float = 30) -> tuple[int | None, str]:
    """Run ``cancelctl *args`` with stdout and stderr on one pseudo terminal ``cols`` wide; (exit code, screen bytes
    as text, escapes kept)."""
    return run_on_pty(env, *args, cols=cols, seconds=timeout)


def screen_lines(text: str) -> list[str]:
    """The lines as the screen ends up showing them: what a carriage return or an erase (ESC [J) wrote over is gone."""
    lines = []
    for line in text.replace("\r\n", "\n").split("\n"):
        line = line.rsplit("\x1b[J", 1)[-1].rstrip("\r").rsplit("\r", 1)[-1]
        lines.append(ANSI.sub("", line))
    return lines


def verdicts(text: str) -> list[re.Match[str]]:
    return [m for m in map(VERDICT.search, screen_lines(text)) if m]


def test_status_line_shows_retries_then_the_verdict(sim, gemini, env):
    """A venue in maintenance: the status line says so while cancelctl retries, then erases itself; one verdict."""
    import threading

    from cancelctl.nonce import NonceSequence

    for _ in range(3):
        gemini.add_order("primary", "UI")
    sim.fail(ALL, "status", status=503, body="gemini", reason="Maintenance", times=4)
    # The key's nonce lock held for the first 0.4 s (another process signing on this key): the cancel-all is still
    # being prepared when the first frames are drawn (INTERVAL_S after the profiles start), however fast the start-up.
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with NonceSequence(env.state_dir, GEMINI_KEY).turn(5):
            held.set()
            release.wait(0.4)

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(5)
    try:
        code, text = run_pty(env, "cancel", "all", "--timeout", "8")
    finally:
        release.set()
        holder.join()
    assert code == 0, text
    assert re.search(r"main \(gemini\): sending cancel-all · \d\.\d s", text), text
    assert re.search(r"main \(gemini\): Gemini Maintenance[^\r]*, retry \d+ in \d\.\d s · \d+\.\d s", text), text
    assert "\x1b[J" in text  # the status line was erased before the report
    found = verdicts(text)
    assert len(found) == 1, text
    assert found[0].group(1) == "3" and found[0].group(3) == "0" and found[0].group(4) == "done"
    assert gemini.open_orders() == []


def test_no_status_line_or_verdict_with_quiet_json_or_a_pipe(sim, gemini, env):
    for _ in range(2):
        gemini.add_order("primary", "UI")
    sim.fail(ALL, "status", status=503, body="gemini", reason="Maintenance", times=2)
    code, text = run_pty(env, "cancel", "all", "-q", "--timeout", "8")
    assert code == 0 and "retry" not in text and not verdicts(text) and "\x1b[2K" not in text, text
    gemini.add_order("primary", "UI")
    sim.fail(ALL, "status", status=503, body="gemini", reason="Maintenance", times=2)
    code, text = run_pty(env, "cancel", "all", "--json", "--timeout", "8")
    assert code == 0 and "retry" not in text and not verdicts(text) and "\x1b[2K" not in text, text
    assert '"exit_code": 0' in text
    gemini.add_order("primary", "UI")
    sim.fail(ALL, "status", status=503, body="gemini", reason="Maintenance", times=2)
    proc = env.run("cancel", "all", "--timeout", "8")  # stdout and stderr are pipes
    assert proc.returncode == 0 and proc.stderr == "" and "\x1b" not in proc.stdout, proc.stderr


def test_each_exit_code_has_its_own_words_and_an_error_is_said_once(sim, gemini, env):
    """75 says nothing was sent (safe to retry), not "failed"; the error's text is on screen once."""
    gemini.add_order("primary", "UI")
    sim.fail(ALL, "status", status=503, body="gemini", reason="Maintenance", times=-1)
    code, text = run_pty(env, "cancel", "all", "--timeout", "3")  # room for start-up under load
    assert code == 75, text
    (v,) = verdicts(text)
    assert v.group(3) == "75" and v.group(4).startswith("nothing was sent") and "safe to retry" in v.group(4)
    lines = [line for line in screen_lines(text) if "simulated Maintenance" in line and "retry" not in line]
    assert len(lines) == 1 and lines[0].startswith("cancelctl: error:"), text
    assert any("see the error above" in line for line in screen_lines(text)), text
    assert "failed" not in v.group(0)


WALLET = "9C6hybhQ6Aycep9jaUnP6uL9ZYvDjUp1aSkFWPUFJtpj"  # a 44-character Solana address, as venues quote them


def test_a_long_reason_does_not_wrap_a_60_column_table(sim, gemini, env):
    ids = [str(gemini.add_order("primary", "UI")) for _ in range(3)]
    message = f"order belongs to wallet {WALLET}, which is not the account of this key {WALLET}"
    payload = json.dumps({"result": "error", "reason": message, "message": message})
    sim.fail("/v1/order/cancel", "status", status=400, payload=payload, times=2)
    code, text = run_pty(env, "cancel", "order", *ids, "--timeout", "8", cols=60)
    assert code == 3, text
    table = [line for line in screen_lines(text) if line[:1] in "┏┃┡│└"]
    assert all(len(line) <= 60 for line in table), text
    rows = [line for line in table if line.startswith("│")]
    assert len(rows) == 3 and {line.split("│")[2].strip() for line in rows} == set(ids), text
    assert sum("rejected" in line for line in rows) == 2
    (v,) = verdicts(text)
    assert v.group(1) == "1" and v.group(2) == "2" and v.group(3) == "3"


# -- the rendering as a pure function of the report (in-process) -------------------------------------------------


def test_every_exit_code_has_its_own_words():
    from cancelctl.errors import EXIT_WORDS, ExitCode

    assert set(EXIT_WORDS) == set(ExitCode)
    assert len(set(EXIT_WORDS.values())) == len(EXIT_WORDS)
    assert not EXIT_WORDS[ExitCode.UNAVAILABLE].startswith("failed")
    assert not EXIT_WORDS[ExitCode.INTERRUPTED].startswith("failed")


def _results():
    from hypothesis import strategies as st

    from cancelctl.errors import AuthError, NotSent, OutcomeUnknown
    from cancelctl.results import ProfileResult

    ids = st.lists(st.from_regex(r"[1-9][0-9]{0,5}", fullmatch=True), max_size=4, unique=True)
    errors = st.sampled_from([None, NotSent("venue unavailable"), OutcomeUnknown("no answer"), AuthError("bad key")])

    @st.composite
    def result(draw):
        r = ProfileResult(
            draw(st.sampled_from(["main", "pac"])),
            "gemini",
            draw(st.sampled_from(["cancel_all", "cancel_order", "cancel_all_orders", "cancel_session"])),
        )
        r.cancelled = draw(ids)
        for i in draw(ids):
            r.reject(i, draw(st.sampled_from(["OrderNotFound", "not sent: venue unavailable", "x" * 90])))
        r.unknown = draw(ids)
        r.remaining = draw(st.one_of(st.none(), ids))
        r.error = draw(errors)
        r.cancelled_count = draw(st.one_of(st.none(), st.integers(0, 5)))
        return r

    return st.lists(result(), min_size=0, max_size=3)


def test_the_verdict_and_table_never_raise_and_keep_every_row(capsys):
    from hypothesis import given, settings

    from cancelctl import render
    from cancelctl.results import Report
    from cancelctl.runner import Options

    @settings(max_examples=60, deadline=None)
    @given(_results())
    def check(results):
        report = Report(results)
        line = render.verdict(report, 0.0)
        code = int(report.exit_code)
        assert (
            line.endswith(f"exit {code}: " + line.split(f"exit {code}: ", 1)[1]) and "1970-01-01 00:00:00 UTC" in line
        )
        render.report(report, Options(), render.Terminal(stdout=True, stderr=True, width=60, now=0.0))
        out = capsys.readouterr()
        table = [x for x in out.out.splitlines() if x.startswith("│")]
        assert len(table) == sum(len(render.rows(r)) for r in results)
        assert all(len(x) <= 60 for x in out.out.splitlines())
        assert out.err.splitlines()[-1] == line

    check()


def test_a_rendering_failure_loses_no_row(monkeypatch, capsys):
    from cancelctl import render
    from cancelctl.results import ProfileResult, Report
    from cancelctl.runner import Options

    def broken(*a, **k):
        raise RuntimeError("a bug in the table")

    monkeypatch.setattr(render, "rich_table", broken)
    r = ProfileResult("main", "gemini", "cancel_order", cancelled=["11", "12"])
    r.reject("13", "OrderNotFound")
    render.report(Report([r]), Options(), render.Terminal(stdout=True, stderr=True, now=0.0))
    out = capsys.readouterr()
    assert [x.split("\t")[3:5] for x in out.out.splitlines()] == [
        ["11", "cancelled"],
        ["12", "cancelled"],
        ["13", "rejected"],
    ]
    assert out.err.strip().endswith("exit 3: partial: some done, some rejected or still open")


def test_orders_has_its_own_table_a_count_and_expect_none(sim, gemini, env):
    ids = [str(gemini.add_order("primary", "UI", symbol="btcusd", price="61000.00")) for _ in range(2)]
    code, text = run_pty(env, "orders", "--expect-none", cols=60)
    assert code == 3, text
    lines = screen_lines(text)
    header = next(line for line in lines if line.startswith("┃"))
    assert [c.strip() for c in header.strip("┃").split("┃")] == [
        "profile",
        "order ID",
        "symbol",
        "side",
        "size",
        "price",
    ]
    rows = [line for line in lines if line.startswith("│")]
    assert {r.split("│")[2].strip() for r in rows} == set(ids) and all("btcusd" in r for r in rows), text
    assert not any("open" == cell.strip() for r in rows for cell in r.split("│"))
    assert all(len(line) <= 60 for line in lines if line[:1] in "┏┃┡│└"), text
    assert any(line.startswith("2 open orders · book read on 1/1 account · ") for line in lines), text
    assert any(line.endswith("exit 3: orders are open (--expect-none)") for line in lines), text
    # a script: the exit code alone, and the JSON document says which
    proc = env.run("orders", "--expect-none", "--json")
    assert proc.returncode == 3 and sorted(json.loads(proc.stdout)["results"][0]["remaining"]) == sorted(ids)
    assert env.run("orders").returncode == 0  # without the option, listing open orders is not a failure
    assert env.run("cancel", "all", "-q").returncode == 0
    code, text = run_pty(env, "orders", "--expect-none", cols=60)
    assert code == 0 and any("no open orders · book read on 1/1 account" in line for line in screen_lines(text)), text
    proc = env.run("orders", "--expect-none")
    assert proc.returncode == 0 and proc.stderr == ""


# -- Pacifica's cancel-all counts; its order history names the orders ---------------------------------------------

PAC_PRIVATE, PAC = solana_keypair(bytes(range(101, 133)))


@pytest.fixture
def pacifica(sim, env):
    sim.pacifica.add_account(PAC_PRIVATE)
    env.write_config({"pac": {"venue": "pacifica", "base_url": sim.url + "/api/v1"}})
    env.secret("pac", "private_key", PAC_PRIVATE)
    return sim.pacifica


def test_pacifica_cancel_all_rows_are_named_by_the_order_history(sim, pacifica, env):
    btc = pacifica.add_order(PAC, "BTC", side="bid", price="61000", amount="0.5")
    eth = pacifica.add_order(PAC, "ETH", side="ask", price="2600", amount="3", reduce_only=True)
    proc = env.run("cancel", "pacifica", "--json")
    assert proc.returncode == 0, proc.stderr
    (r,) = json.loads(proc.stdout)["results"]
    assert r["cancelled_count"] == 2 and r["cancelled"] == []  # the cancel's answer named none
    named = {o["order_id"]: o for o in r["cancelled_orders"]}
    assert set(named) == {str(btc), str(eth)}
    assert (named[str(btc)]["symbol"], named[str(btc)]["side"], named[str(btc)]["amount"]) == ("BTC", "bid", "0.5")
    assert named[str(eth)]["reduce_only"] is True
    assert len(sim.requests("/api/v1/orders/history")) == 1
    # at a terminal: a row per order, with its details (the run above as if it had been ten seconds ago)
    with sim.lock:
        for o in pacifica.orders.values():
            o.updated_at -= 10_000
    pacifica.add_order(PAC, "SOL", price="140", amount="12")
    code, text = run_pty(env, "cancel", "pacifica")
    assert code == 0, text
    assert any("SOL bid 12 @ 140 (named by the order history)" in line for line in screen_lines(text)), text


def test_pacifica_history_that_does_not_add_up_leaves_the_count(sim, pacifica, env):
    """An order someone else placed and cancelled meanwhile: three cancels in the history for a count of two, so no
    names. (A reduce-only order a bot cancelled would not do: --exclude-reduce-only kept it out of the cancel-all's
    scope, so the history's two in-scope cancels are named.)"""
    ours = [pacifica.add_order(PAC, "BTC") for _ in range(2)]
    sim.fail("/api/v1/orders/history", "delay", seconds=1.0, times=1)
    proc = env.popen("cancel", "pacifica", "--exclude-reduce-only", "--json")
    end = time.monotonic() + 20
    while not sim.requests("/api/v1/orders/cancel_all") and time.monotonic() < end:
        time.sleep(0.02)
    with sim.lock:  # placed and cancelled elsewhere while cancelctl is still to read the history
        o = pacifica.orders[pacifica.add_order(PAC, "ETH")]
        o.live, o.updated_at = False, int(time.time() * 1000)
    out, err = proc.communicate(timeout=30)
    collect("cancel pacifica (history does not add up)", out + err)
    assert proc.returncode == 0, err
    (r,) = json.loads(out)["results"]
    assert r["cancelled_count"] == 2 and "cancelled_orders" not in r and not pacifica.open_orders(PAC)
    proc = env.run("cancel", "pacifica", "-p", "pac")
    assert ours and "the venue gives no IDs" not in proc.stdout  # nothing left: 0 counted, nothing to name
    pacifica.add_order(PAC, "BTC")
    sim.fail("/api/v1/orders/history", "status", status=503, body="error", times=-1)  # down: retried 1.5 s at most
    started = time.monotonic()
    proc = env.run("cancel", "pacifica")
    assert proc.returncode == 0 and "1 order(s); the venue gives no IDs" in proc.stdout, proc.stdout + proc.stderr
    assert time.monotonic() - started < 8  # not the whole --timeout (10 s)


def test_rows_carry_the_details_cancelctl_saw(sim, gemini, env):
    """Gemini's cancel answer names the order's symbol, side, size and price; verification's read names a straggler."""
    a = gemini.add_order("primary", "UI", symbol="ethusd", price="2400.00")
    proc = env.run("cancel", "order", str(a))
    assert proc.returncode == 0, proc.stderr
    (row,) = [line.split("\t") for line in proc.stdout.splitlines()]
    assert row[3:5] == [str(a), "cancelled"] and row[5].startswith("ethusd buy ") and row[5].endswith("@ 2400.00")
    stubborn = gemini.add_order("primary", "UI", symbol="solusd", price="140.00", refuse=1)
    proc = env.run("panic")
    assert proc.returncode == 0, proc.stderr
    rows = {r[3]: r for r in (line.split("\t") for line in proc.stdout.splitlines())}
    assert rows[str(stubborn)][4] == "cancelled" and rows[str(stubborn)][5].startswith("solusd buy "), proc.stdout


def test_a_dry_run_shows_what_it_would_cancel_then_the_requests(sim, gemini, env):
    ids = [str(gemini.add_order("primary", "UI", symbol="btcusd", price="61000.00")) for _ in range(2)]
    code, text = run_pty(env, "cancel", "all", "--dry-run")
    assert code == 0, text
    lines = screen_lines(text)
    would = [line for line in lines if "would cancel" in line and line.startswith("│")]
    assert {line.split("│")[2].strip() for line in would} == set(ids) and all("btcusd buy" in w for w in would)
    first_request = next(n for n, line in enumerate(lines) if line.startswith("# main (gemini): would send"))
    assert max(n for n, line in enumerate(lines) if "would cancel" in line and line.startswith("│")) < first_request
    assert any(
        line.startswith("would cancel 2 open orders (book read on 1/1 account) · 1 request signed") for line in lines
    )
    assert any(line.endswith("exit 0: dry run: no cancel was sent") for line in lines), text
    assert [r["path"] for r in sim.requests()] == ["/v1/orders"] and len(gemini.open_orders()) == 2


def test_a_bug_anywhere_in_the_report_keeps_the_exit_code_and_the_rows(monkeypatch, capsys):
    from cancelctl import main, render
    from cancelctl.results import ProfileResult, Report
    from cancelctl.runner import Options, Outcome

    def broken(*a, **k):
        raise ValueError("a bug in rendering")

    monkeypatch.setattr(render, "report", broken)
    r = ProfileResult("main", "gemini", "cancel_order", cancelled=["11"])
    r.reject("13", "OrderNotFound")
    assert main.finish(Outcome(Report([r]), Options(), audit=False)) == 3
    out = capsys.readouterr()
    assert [x.split("\t")[3:5] for x in out.out.splitlines()] == [["11", "cancelled"], ["13", "rejected"]]
    assert "could not be shown in full" in out.err and "exit 3" in out.err


def test_every_error_is_said_once_on_a_terminal(capsys):
    """Each kind of error a result carries: its text once on the screen (the stderr line), the row points to it."""
    from cancelctl import render
    from cancelctl.errors import NotSent, OutcomeUnknown
    from cancelctl.results import ProfileResult, Report
    from cancelctl.runner import Options

    texts = {
        "error": "HTTP 403 from Pacifica: account 9C6hybhQ6Aycep9jaUnP6uL9ZYvDjUp1aSkFWPUFJtpj is unknown zq7x",
        "verify_error": "the book could not be read 7f3a",
        "positions_error": "positions endpoint broke 91ab",
        "preview_error": "the order list broke c0de",
    }
    for field, text in texts.items():
        r = ProfileResult("main", "pacifica", "cancel_all_orders", dry_run=field == "preview_error")
        error = NotSent(text) if field == "error" else OutcomeUnknown(text)
        setattr(r, field, error)
        if field == "error":
            r.reject("55", f"not sent: {text}")
        render.report(Report([r]), Options(), render.Terminal(stdout=True, stderr=True, width=120, now=0.0))
        out = capsys.readouterr()
        assert (out.out + out.err).count(text[-4:]) == 1, (field, out.out, out.err)
        assert "see the error above" in out.out, (field, out.out)


def test_retry_events_cost_nothing_without_a_listener_and_reach_one(monkeypatch):
    from cancelctl import transport
    from cancelctl.errors import NotSent

    calls = []

    def attempt():
        calls.append(1)
        if len(calls) < 3:
            raise NotSent("Gemini unavailable (HTTP 503)")
        return "answered"

    def formatted(*args):
        raise AssertionError("a note was made with nobody listening")

    monkeypatch.setattr(transport, "retry_note", formatted)
    assert transport.with_retries(attempt, transport.Deadline(5)) == "answered"
    monkeypatch.undo()
    calls.clear()
    deadline, seen = transport.Deadline(5), []
    deadline.listener = seen.append
    assert transport.with_retries(attempt, deadline) == "answered"
    assert seen == [
        "Gemini unavailable (HTTP 503), retry 1 in 0.1 s",
        "Gemini unavailable (HTTP 503), retry 2 in 0.2 s",
    ]


def test_pacifica_history_outside_the_cancel_all_scope_is_never_named(sim, pacifica, env):
    """cancel pacifica --symbol BTC counts one; a history that shows only an ETH order cancelled (another process's
    cancel, the BTC one not yet listed) adds up to one, but an ETH order is not this run's: the count stays unnamed.
    Likewise a reduce-only order under --exclude-reduce-only, and an order the verification still saw open."""
    btc = pacifica.add_order(PAC, "BTC")
    eth = pacifica.add_order(PAC, "ETH", reduce_only=True)
    now = int(time.time() * 1000)
    entry = {**pacifica.orders[eth].history(), "order_status": "cancelled", "updated_at": now}
    page = json.dumps({"success": True, "data": [entry], "next_cursor": None, "has_more": False})
    for args in (["--symbol", "BTC"], ["--exclude-reduce-only"]):
        pacifica.orders[btc].live = True
        sim.fail("/api/v1/orders/history", status=200, payload=page, content_type="application/json", times=1)
        proc = env.run("cancel", "pacifica", *args, "--json")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        (r,) = json.loads(proc.stdout)["results"]
        assert r["cancelled_count"] == 1 and "cancelled_orders" not in r, r
        assert eth in {o.order_id for o in pacifica.open_orders(PAC)}


def test_a_status_line_note_is_one_line_with_secrets_redacted():
    """A retry note can carry a venue's words: kept as one printable line, every registered secret redacted."""
    from cancelctl import redact
    from cancelctl.runner import Progress
    from cancelctl.transport import Deadline

    secret = "Zq8vN3kLm2Xw9TbR7cY4pJ6h"
    redact.register(secret)
    try:
        p = Progress(profile=None, deadline=Deadline(5))  # type: ignore[arg-type]
        p.notify(f"503: \x1b[2Jbusy {secret}\nretry 2 in 0.4 s")
        assert p.note is not None
        text = p.note[1]
        assert secret not in text and "<redacted>" in text
        assert "\x1b" not in text and "\n" not in text
    finally:
        redact.SECRETS.discard(secret)


def test_the_verdict_never_says_no_open_orders_left_on_an_unsettled_scope():
    """`cancel pacifica --symbol BTCX --verify` with the market list unreadable exits 5 (the symbol may be no market):
    the verdict said "no open orders left in scope on 1/1 account" next to "exit 5"."""
    from cancelctl import render
    from cancelctl.errors import OutcomeUnknown
    from cancelctl.results import ProfileResult, Report

    def result(unsettled):
        # as venues/pacifica.py leaves it: the doubt is the result's error too, and verification cannot clear it
        return ProfileResult("p", "pacifica", "cancel_all", cancelled_count=0, remaining=[], scoped=True,
                             unsettled=unsettled, error=unsettled)

    assert "no open orders left in scope on 1/1 account" in render.verdict(Report([result(None)]), 0.0)
    doubt = Report([result(OutcomeUnknown("BTCX could not be checked against the markets"))])
    line = render.verdict(doubt, 0.0)
    assert doubt.exit_code == 5 and "on 0/1 account" in line and "exit 5" in line, line
