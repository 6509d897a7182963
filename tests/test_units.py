"""Unit tests of the pure parts: exit-code rules, config parsing and selection, credential naming and redaction."""

from __future__ import annotations

import pytest

from cancelctl import config, credentials
from cancelctl.errors import ConfigError, ExitCode, NotSent, OutcomeUnknown, UsageProblem, combine
from cancelctl.results import ProfileResult


@pytest.mark.parametrize(
    "codes, want",
    [
        ([], 0),
        ([0, 0], 0),
        ([0, 4], 3),
        ([4, 4], 4),
        ([4, 78], 1),
        ([4, 5, 75], 5),
        ([75], 75),
        ([3, 0], 3),
        ([1, 4], 1),
    ],
)
def test_combine(codes, want):
    assert combine(codes) == want


def test_profile_result_exit_codes():
    r = ProfileResult("p", "gemini", "cancel_order")
    assert r.exit_code == 0 and r.status == "ok"
    r.cancelled.append("1")
    r.reject("2", "OrderNotFound")
    assert r.exit_code == 3 and r.status == "partial"
    r.unknown.append("3")
    assert r.exit_code == 5 and r.status == "unknown"
    only_rejected = ProfileResult("p", "gemini", "cancel_order")
    only_rejected.reject("2", "OrderNotFound")
    assert only_rejected.exit_code == 1
    not_sent = ProfileResult("p", "gemini", "cancel_all", error=NotSent("down"))
    assert not_sent.exit_code == 75 and not_sent.status == "failed"
    flat = ProfileResult("p", "gemini", "cancel_all", cancelled=["1"], remaining=[])
    assert flat.exit_code == 0
    left = ProfileResult("p", "gemini", "cancel_all", cancelled=["1"], remaining=["9"])
    assert left.exit_code == 3
    unknown = ProfileResult("p", "gemini", "cancel_all", error=OutcomeUnknown("timeout"))
    assert unknown.exit_code == 5


def test_env_var_names():
    assert credentials.env_var("gemini-main", "api_secret") == "CANCELCTL_GEMINI_MAIN_API_SECRET"
    assert credentials.env_var("a.b c", "private_key") == "CANCELCTL_A_B_C_PRIVATE_KEY"


def test_credentials_repr_never_shows_values():
    c = credentials.Credentials({"api_key": "account-XYZ", "api_secret": "hunter2"})
    for text in (repr(c), str(c), f"{c}", repr([c])):
        assert "hunter2" not in text and "account-XYZ" not in text
    assert c["api_secret"] == "hunter2"


def test_secret_from_file_and_whitespace(tmp_path, monkeypatch):
    f = tmp_path / "secret"
    f.write_text("s3cret\n")
    monkeypatch.setenv("CANCELCTL_P_API_KEY", "  key  ")
    monkeypatch.setenv("CANCELCTL_P_API_SECRET_FILE", str(f))
    c = credentials.resolve("p", "gemini")
    assert dict(c) == {"api_key": "key", "api_secret": "s3cret"}
    monkeypatch.setenv("CANCELCTL_P_API_KEY", "ke y")
    with pytest.raises(ConfigError) as e:
        credentials.resolve("p", "gemini")
    assert "ke y" not in str(e.value) and "CANCELCTL_P_API_KEY" in str(e.value)


def load_text(tmp_path, text):
    p = tmp_path / "config.toml"
    p.write_text(text)
    return config.load(p)


def test_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="venue"):
        load_text(tmp_path, '[profiles.a]\nvenue = "kraken"\n')
    with pytest.raises(ConfigError, match="environment"):
        load_text(tmp_path, '[profiles.a]\nvenue = "gemini"\nenvironment = "mainnet"\n')
    with pytest.raises(ConfigError, match="unknown key"):
        load_text(tmp_path, '[profiles.a]\nvenue = "gemini"\nagent_wallet = "x"\n')
    with pytest.raises(ConfigError, match="default_profile"):
        load_text(tmp_path, 'default_profile = "b"\n[profiles.a]\nvenue = "gemini"\n')
    with pytest.raises(ConfigError, match="must be a string"):
        load_text(tmp_path, '[profiles.a]\nvenue = "gemini"\naccount = 3\n')


def test_selection_rules(tmp_path, monkeypatch):
    monkeypatch.delenv("CANCELCTL_PROFILE", raising=False)
    c = load_text(tmp_path, '[profiles.g]\nvenue = "gemini"\n[profiles.p]\nvenue = "pacifica"\n')
    with pytest.raises(ConfigError, match="several profiles"):
        config.select(c, None)
    assert [p.name for p in config.select(c, None, venue="pacifica")] == ["p"]
    assert [p.name for p in config.select(c, None, every=True)] == ["g", "p"]
    monkeypatch.setenv("CANCELCTL_PROFILE", "p")
    assert [p.name for p in config.select(c, None)] == ["p"]
    assert [p.name for p in config.select(c, ["g"])] == ["g"]
    c.default_profile = "g"
    monkeypatch.delenv("CANCELCTL_PROFILE")
    assert [p.name for p in config.select(c, None)] == ["g"]


def test_base_urls():
    p = config.Profile("x", "gemini", "sandbox")
    assert p.base_url == "https://api.sandbox.gemini.com"
    assert config.Profile("y", "pacifica", "testnet").base_url == "https://test-api.pacifica.fi/api/v1"
    assert (
        config.Profile("z", "gemini", "production", base_url_override="http://127.0.0.1:1/").base_url
        == "http://127.0.0.1:1"
    )


def test_profile_names():
    with pytest.raises(UsageProblem):
        config.validate_profile_name("bad name")
    assert config.validate_profile_name("gemini-main") == "gemini-main"


def test_exit_code_table_is_the_contract():
    assert {e.name: int(e) for e in ExitCode} == {
        "OK": 0,
        "FAILED": 1,
        "USAGE": 2,
        "PARTIAL": 3,
        "AUTH": 4,
        "UNKNOWN": 5,
        "INTERNAL": 70,
        "UNAVAILABLE": 75,
        "CONFIG": 78,
        "INTERRUPTED": 130,
        "TERMINATED": 143,
    }


def test_debug_traceback_is_scrubbed(capsys, monkeypatch):
    """--debug prints the traceback of an internal error, with every known secret redacted."""
    from cancelctl import errors, redact

    secret = "debug-secret-0123456789"
    monkeypatch.setattr(redact, "SECRETS", {secret})
    try:
        raise ValueError(f"header value {secret!r} is not allowed")
    except ValueError as e:
        error = errors.internal_error(e, debug=True)
    stderr = capsys.readouterr().err
    assert "Traceback" in stderr and "ValueError" in stderr and "<redacted>" in stderr
    assert secret not in stderr and secret not in error.one_line()
    assert error.exit_code == ExitCode.INTERNAL


@pytest.mark.parametrize(
    "url, ok",
    [
        ("http://127.0.0.1:8080", True),
        ("http://localhost:8080/api/v1", True),
        ("http://[::1]:8080", True),
        ("https://api.gemini.com", True),
        ("http://api.gemini.com", False),
        ("http://10.0.0.5:8080", False),
        ("http://127.0.0.1.example.com", False),
    ],
)
def test_plain_http_only_on_loopback(url, ok):
    table = {"venue": "gemini", "base_url": url}
    if ok:
        assert config.parse_profile("main", table, "test").base_url == url.rstrip("/")
    else:
        with pytest.raises(ConfigError, match="in clear"):
            config.parse_profile("main", table, "test")


def test_state_files_are_written_in_place_and_read_back(tmp_path):
    """The nonce counter and the pacing bucket are rewritten in place (one pwrite, no rename: same inode), padded
    to a fixed width every reader strips; a file an earlier version wrote (unpadded, longer) reads the same."""
    import os

    from cancelctl import pacing
    from cancelctl.files import STATE_FILE_WIDTH
    from cancelctl.nonce import NonceSequence

    seq = NonceSequence(tmp_path, "account-UNITKEY")
    with seq.turn(5) as take:
        first = int(take())
    inode = os.stat(seq.path).st_ino
    with seq.turn(5) as take:
        second = int(take())
    assert second > first
    assert os.stat(seq.path).st_ino == inode  # written in place
    assert seq.path.read_bytes() == str(second).encode().ljust(STATE_FILE_WIDTH)
    assert sorted(p.name for p in seq.dir.iterdir()) == sorted([seq.path.name, seq.lock_path.name])
    seq.path.write_text(str(second + 10_000_000) + "\n" * 100)  # an earlier version's file, longer than the width
    with seq.turn(5) as take:
        assert int(take()) == second + 10_000_001
    assert len(seq.path.read_bytes()) == STATE_FILE_WIDTH
    bucket = tmp_path / "k.pace"
    bucket.write_text(f"0.000000 {time_now():.6f}")  # an earlier version's bucket (unpadded): empty
    pacing.take(bucket, rate=10.0, burst=5, remaining=1.0)
    tokens, _ = bucket.read_bytes().split()
    assert float(tokens) < 4.0  # read as the empty bucket it was (unread, it would have been full: 4 left after one)
    assert len(bucket.read_bytes()) == STATE_FILE_WIDTH


def time_now() -> float:
    import time

    return time.monotonic()


@pytest.mark.parametrize("kind", ["fifo", "symlink", "missing"])
def test_a_state_file_that_is_not_a_regular_file_is_replaced(tmp_path, kind):
    """A FIFO (opening it to write would block) or a symlink at a state file's path is replaced by a regular file
    through a rename, as every write was before; nothing is written through the link."""
    import os
    import stat

    from cancelctl.files import overwrite

    path, target = tmp_path / "k.last", tmp_path / "elsewhere"
    target.write_text("untouched")
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "symlink":
        path.symlink_to(target)
    overwrite(path, "1234")
    assert stat.S_ISREG(os.lstat(path).st_mode) and path.read_bytes().strip() == b"1234"
    assert target.read_text() == "untouched"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere", "k.last"]


def test_the_hand_off_s_json_is_json():
    """The client writes its request without ``json``: what it writes is ASCII JSON that reads back as the value,
    whatever the strings hold (quotes, controls, lone surrogates from undecodable argv bytes, astral characters)."""
    import json

    from hypothesis import given, settings
    from hypothesis import strategies as st

    from cancelctl.handoff import dumps

    leaves = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
    values = st.recursive(
        leaves, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(), c, max_size=4), max_leaves=12
    )

    @settings(max_examples=300, deadline=None)
    @given(values)
    def round_trip(value):
        text = dumps(value)
        assert text.isascii()
        assert json.loads(text) == value

    round_trip()
    odd = [b"\xff-p".decode("utf-8", "surrogateescape"), '"\\\n\x00\x7f\u2028\U0001f600']
    assert json.loads(dumps(odd)) == odd


def test_a_signal_handled_inside_a_finalizer_is_raised_after_it_not_dropped(capsys):
    """The first signal's Interrupted, raised where Python cannot raise (a ``__del__``, a weakref callback such as
    the import system's module-lock one), was printed with a traceback and lost: the run went on. It is sent again
    and raised at the next safe point, with no traceback."""
    import signal
    import sys
    import time

    from cancelctl import signals

    class Finalized:
        def __del__(self) -> None:
            signal.raise_signal(signal.SIGINT)  # the handler runs in here

    hook = sys.unraisablehook
    restore = signals.install()
    try:
        with pytest.raises(signals.Interrupted) as caught:
            item = Finalized()
            del item
            end = time.monotonic() + 5
            while time.monotonic() < end:  # safe points
                time.sleep(0.001)
        assert caught.value.signum == signal.SIGINT
        assert signals.RECEIVED[-2:] != [signal.SIGINT, signal.SIGINT]  # counted once, not twice
    finally:
        restore()
        signals.RECEIVED.clear()
    assert sys.unraisablehook is hook
    err = capsys.readouterr().err
    assert "Traceback" not in err and "Exception ignored" not in err, err


class _SignalledFinalizer:
    """Raises ``signum`` in its ``__del__``: cancelctl's handler runs where Python drops its exception."""

    def __init__(self, signum: int) -> None:
        self.signum = signum

    def __del__(self) -> None:
        import signal

        signal.raise_signal(self.signum)


def _redelivery_held(signals):
    """The lock the re-delivery thread takes before it sends (none in a version without one): held, the thread waits."""
    import contextlib

    return getattr(signals, "_redelivery", None) or contextlib.nullcontext()


def _safe_points(seconds: float) -> None:
    import time

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(0.001)


def test_a_second_signal_while_a_dropped_one_is_re_delivered_does_not_change_the_code(monkeypatch):
    """A SIGINT dropped in a finalizer, then a SIGTERM before its re-delivery landed: the first signal decides (130,
    ``interrupted``), and each signal is counted once. The SIGTERM was raised (143) and the SIGINT forgotten."""
    import signal

    from cancelctl import signals

    monkeypatch.setattr(signals, "BACKSTOP", False)  # the second signal must not end this test process 2 s later
    restore = signals.install()
    signals.RECEIVED.clear()
    try:
        with _redelivery_held(signals):  # the re-delivery thread waits: the SIGTERM surely comes before it
            item = _SignalledFinalizer(signal.SIGINT)
            del item
            with pytest.raises(signals.Interrupted) as caught:
                signal.raise_signal(signal.SIGTERM)
                _safe_points(2)
        assert caught.value.signum == signal.SIGINT and caught.value.exit_code == 130
        _safe_points(0.2)  # a re-delivery, had it been sent, is handled by now
        assert signals.RECEIVED == [signal.SIGINT, signal.SIGTERM]
        assert signals.first() == signal.SIGINT
    finally:
        restore()
        signals.RECEIVED.clear()


def test_a_re_delivery_after_the_run_ended_reaches_no_other_handler():
    """The run ended (its handlers restored) before a dropped signal's re-delivery landed: the handler that comes
    back (a guard's own, which stops the guard; Python's, a KeyboardInterrupt in an in-process caller) never gets
    it. It got it: the guard stopped on a caller's Ctrl-C."""
    import signal

    from cancelctl import signals

    got: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: got.append(signum))
    try:
        restore = signals.install()
        with _redelivery_held(signals):  # the re-delivery thread waits until the run has ended
            try:
                item = _SignalledFinalizer(signal.SIGINT)
                del item
            finally:
                restore()  # the command ended first
        _safe_points(0.3)
    finally:
        signal.signal(signal.SIGINT, previous)
        signals.RECEIVED.clear()
    assert got == []


def test_a_nested_install_s_restore_keeps_the_outer_run_s_hook():
    """install() inside a run that installed already (the deadman arms again when it fires): the inner restore put
    the previous unraisable hook back while the outer run went on, and a signal dropped in a finalizer was lost."""
    import sys

    from cancelctl import signals

    hook = sys.unraisablehook
    outer = signals.install()
    try:
        inner = signals.install()
        inner()
        assert sys.unraisablehook is signals._unraisable
    finally:
        outer()
        signals.RECEIVED.clear()
    assert sys.unraisablehook is hook


def test_another_unraisable_exception_is_still_reported(capsys):
    """Only cancelctl's own Interrupted is re-delivered: any other exception Python drops while the handlers are
    installed is reported as Python reports it."""
    import sys

    from cancelctl import signals

    class Broken:
        def __del__(self) -> None:
            raise ValueError("broken finalizer")

    previous, sys.unraisablehook = sys.unraisablehook, sys.__unraisablehook__
    restore = signals.install()
    try:
        item = Broken()
        del item
    finally:
        restore()
        sys.unraisablehook = previous
    err = capsys.readouterr().err
    assert "Exception ignored in" in err and "ValueError: broken finalizer" in err, err


def test_the_config_is_parsed_again_only_when_its_bytes_changed(tmp_path, monkeypatch):
    """``config.load`` keeps the last Config per file: the same bytes give an equal Config that is the caller's own
    (no parse), any other bytes are parsed, even of the same size and within the file's timestamp resolution."""
    from cancelctl import config

    path = tmp_path / "config.toml"
    path.write_text('[profiles.a]\nvenue = "gemini"\n\n[notify]\nurls = ["x"]\n')
    first = config.load(path, strict=False)
    parsed: list[bytes] = []
    real = config.parse_toml
    monkeypatch.setattr(config, "parse_toml", lambda raw, p: parsed.append(raw) or real(raw, p))
    second = config.load(path, strict=False)
    assert parsed == [] and second == first
    second.profiles.clear()
    assert second.other is not None
    second.other["notify"]["urls"].append("y")
    assert config.load(path, strict=False) == first  # what a caller changed stays its own
    path.write_text('[profiles.b]\nvenue = "gemini"\n\n[notify]\nurls = ["x"]\n')  # the same size
    third = config.load(path, strict=False)
    assert len(parsed) == 1 and list(third.profiles) == ["b"]
