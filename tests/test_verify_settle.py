"""Verification's last word, in-process and deterministic: which answers may take an order off the book.

The real-process cases live in tests/test_outcome_integrity.py; whether their
second read of the book goes out depends on the key's pacing, so the branch
where it does not (``DeadlinePassed``) is pinned here with a scripted client.
"""

from __future__ import annotations

from typing import Any

from cancelctl.errors import CancelctlError
from cancelctl.results import ProfileResult
from cancelctl.transport import Deadline, DeadlinePassed
from cancelctl.verify import everything, verify


class Scripted:
    """A venue client whose reads of the book follow a script; an entry that is an exception is raised."""

    def __init__(self, reads: list[Any], cancel_answers: list[str]) -> None:
        self.reads = reads
        self.cancel_answers = cancel_answers
        self.deadline = Deadline(5.0)
        self.cancels: list[list[str]] = []

    def open_orders(self) -> list[dict[str, Any]]:
        step = self.reads.pop(0)
        if isinstance(step, Exception):
            raise step
        return [{"order_id": i, "symbol": "btcusd"} for i in step]

    def cancel_orders(self, ids: list[str], **_: Any) -> ProfileResult:
        self.cancels.append(list(ids))
        return ProfileResult("g", "gemini", "cancel_order", cancelled=[i for i in ids if i in self.cancel_answers])


def run(reads: list[Any], answered: list[str], cancel_answers: list[str]) -> tuple[ProfileResult, Scripted]:
    client = Scripted(reads, cancel_answers)
    result = ProfileResult("g", "gemini", "cancel_order", cancelled=list(answered))
    return verify(client, result, lambda o: everything(result, o)), client  # type: ignore[arg-type]


def test_an_order_answered_cancelled_then_listed_stays_open_when_the_next_read_cannot_go_out():
    # answered "cancelled", listed by the read after, answered "cancelled" again, and no read since
    result, client = run([["5"], DeadlinePassed("no time left")], answered=["5"], cancel_answers=["5"])
    assert client.cancels == [["5"]]
    assert result.remaining == ["5"] and result.cancelled == [] and result.verify_error is None


def test_an_answer_given_before_the_last_read_never_takes_an_order_off_the_book():
    # the re-cancel was not answered "cancelled"; the first answer came before the read that listed it
    result, _ = run([["5"], DeadlinePassed("no time left")], answered=["5"], cancel_answers=[])
    assert result.remaining == ["5"] and result.cancelled == []


def test_a_straggler_confirmed_by_its_re_cancel_after_the_last_read_is_cancelled():
    # 7 was never answered before: the read found it, its cancel by ID confirmed it, nothing contradicts that
    result, _ = run([["7"], DeadlinePassed("no time left")], answered=["5"], cancel_answers=["7"])
    assert result.remaining == [] and sorted(result.cancelled) == ["5", "7"]


def test_a_read_that_failed_on_the_wire_is_a_book_not_read():
    from cancelctl.errors import OutcomeUnknown

    result, _ = run([["7"], OutcomeUnknown("reset")], answered=[], cancel_answers=["7"])
    assert result.verify_error is not None


def test_a_client_order_id_answered_cancelled_then_listed_stays_open_when_the_next_read_cannot_go_out():
    # the same as the first case, asked by client order ID: the book lists the order under its order_id 77
    from cancelctl.verify import ids_scope

    uuid = "0b7f5b1c-3c3a-4d7e-9f00-6a2b9c1d2e3f"

    class ByClientId(Scripted):
        def open_orders(self) -> list[dict[str, Any]]:
            return [{**o, "client_order_id": uuid.upper()} for o in super().open_orders()]

    client = ByClientId([["77"], DeadlinePassed("no time left")], cancel_answers=["77"])
    result = ProfileResult("p", "pacifica", "cancel_order", cancelled=[uuid])
    scope = ids_scope([uuid], client_order_id=True)
    verify(client, result, lambda o: scope(result, o), scope.row_id)  # type: ignore[arg-type]
    assert client.cancels == [["77"]]
    assert result.remaining == [uuid] and result.cancelled == [] and result.verify_error is None


def test_a_pacifica_book_whose_twap_half_found_no_time_left_is_a_book_not_read(monkeypatch):
    """Pacifica's book is two reads (``GET /orders``, then ``GET /orders/twap``). When the first came back (it may
    list an order a re-cancel had just answered "cancelled") and only the second found the deadline passed, the
    book was read in part: never a read that did not go out, which verification settles on the read before."""
    import pytest
    from hostile import PAC_PRIVATE, HostileVenue, P, reply

    from cancelctl.config import Profile
    from cancelctl.credentials import Credentials
    from cancelctl.venues.pacifica import Pacifica

    with HostileVenue(lifetime=30) as venue:
        venue.script(P + "/orders", reply(200, {"success": True, "data": [], "error": None, "code": None}))
        profile = Profile(name="p", venue="pacifica", environment="mainnet", base_url_override=venue.url + P)
        client = Pacifica(profile, Credentials({"private_key": PAC_PRIVATE}), state_dir=None, deadline=Deadline(5.0))

        def no_time_left():
            raise DeadlinePassed("the deadline passed before the request could be sent")

        monkeypatch.setattr(client, "open_twap_orders", no_time_left)
        try:
            with pytest.raises(CancelctlError) as caught:
                client.open_orders()
        finally:
            client.close()
    assert venue.requests(P + "/orders")  # the first half went out and came back
    assert not isinstance(caught.value, DeadlinePassed)
