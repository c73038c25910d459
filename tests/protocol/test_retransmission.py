"""The UDP client's retry and matching state machine, pure: time is passed in, nothing waits."""

from __future__ import annotations

import itertools
import random

import pytest

from socklab.protocol.converter import handle_datagram, parse_reply_datagram
from socklab.protocol.retransmission import (
    INITIAL_RTO_S,
    MAX_BACKOFF_S,
    MIN_RTO_S,
    Answered,
    RetransmittingRequester,
    SentWithoutReply,
    Unanswered,
)
from socklab.tools.impair.policy import DatagramImpairment, FaultSettings


def serve(datagrams: list[bytes]) -> list[bytes]:
    """The converter's answers (as socklab's UDP server gives them)."""
    return [reply for reply in map(handle_datagram, datagrams) if reply is not None]


def test_each_send_gets_a_fresh_id_and_replies_are_matched() -> None:
    requester = RetransmittingRequester(timeout_s=5, retries=3)
    requester.submit(b"U:a")
    requester.submit(b"L:B")
    sent = requester.datagrams_to_send(0.0)
    assert sent == [b"#1 U:a", b"#2 L:B"]
    for reply in reversed(serve(sent)):  # the second answer arrives first
        requester.receive_datagram(reply, 0.01)
    assert requester.take_results() == [Answered(b"U:a", b"A", 1), Answered(b"L:B", b"b", 1)]
    assert requester.stats.reordered_replies == 1
    assert requester.is_idle


def test_results_wait_for_the_earlier_request() -> None:
    requester = RetransmittingRequester(timeout_s=5, retries=3)
    for message in (b"U:one", b"U:two"):
        requester.submit(message)
    first, second = requester.datagrams_to_send(0.0)
    requester.receive_datagram(serve([second])[0], 0.01)
    assert requester.take_results() == []
    assert not requester.has_results
    requester.receive_datagram(serve([first])[0], 0.02)
    assert [result.reply for result in requester.take_results()] == [b"ONE", b"TWO"]  # type: ignore[union-attr]


def test_duplicates_are_delivered_once() -> None:
    requester = RetransmittingRequester(timeout_s=5, retries=3)
    requester.submit(b"U:dup")
    (sent,) = requester.datagrams_to_send(0.0)
    reply = serve([sent])[0]
    for _ in range(3):
        requester.receive_datagram(reply, 0.01)
    assert requester.take_results() == [Answered(b"U:dup", b"DUP", 1)]
    requester.receive_datagram(reply, 0.02)  # after delivery, still recognised
    assert requester.take_results() == []
    assert requester.stats.duplicate_replies == 3


def test_backoff_doubles_up_to_the_cap_then_gives_up_at_the_timeout() -> None:
    requester = RetransmittingRequester(timeout_s=20, retries=10)
    requester.submit(b"U:void")
    send_times = []
    now = 0.0
    while True:
        sent = requester.datagrams_to_send(now)
        if sent:
            send_times.append(now)
            assert parse_reply_datagram(sent[0])[0] == len(send_times)  # ids 1, 2, 3...
        results = requester.take_results()
        if results:
            break
        deadline = requester.next_deadline()
        assert deadline is not None
        now = deadline
    assert results == [Unanswered(b"U:void", 11)]
    gaps = [later - earlier for earlier, later in itertools.pairwise(send_times)]
    initial = min(INITIAL_RTO_S, 20 / 4)
    assert gaps[:3] == pytest.approx([initial, min(2 * initial, MAX_BACKOFF_S), MAX_BACKOFF_S])
    assert max(gaps) == pytest.approx(MAX_BACKOFF_S)
    assert now == pytest.approx(20.0)
    assert requester.stats.retries == 10
    assert requester.stats.losses_seen == 11  # no send was answered


def test_no_more_than_the_retries() -> None:
    requester = RetransmittingRequester(timeout_s=100, retries=2)
    requester.submit(b"U:x")
    sends = 0
    now = 0.0
    while True:
        sends += len(requester.datagrams_to_send(now))
        if requester.has_results:
            break
        deadline = requester.next_deadline()
        assert deadline is not None
        now = deadline
    assert sends == 3
    assert now == pytest.approx(100.0)


def test_close_and_empty_requests_are_sent_once_without_id() -> None:
    requester = RetransmittingRequester(timeout_s=5, retries=3)
    for message in (b"U:a", b"C:", b""):
        requester.submit(message)
    assert requester.datagrams_to_send(0.0) == [b"#1 U:a", b"C:", b""]
    requester.receive_datagram(b"#1 A", 0.001)
    assert requester.take_results() == [
        Answered(b"U:a", b"A", 1),
        SentWithoutReply(b"C:"),
        SentWithoutReply(b""),
    ]


def test_replies_without_id_and_strays_are_counted_not_delivered() -> None:
    requester = RetransmittingRequester(timeout_s=5, retries=0)
    requester.submit(b"U:a")
    requester.datagrams_to_send(0.0)
    requester.receive_datagram(b"A", 0.01)
    requester.receive_datagram(b"#99 A", 0.01)
    assert requester.take_results() == []
    assert requester.stats.replies_without_id == 1
    assert requester.stats.stray_replies == 1


def test_window_limits_requests_in_flight() -> None:
    requester = RetransmittingRequester(timeout_s=5, retries=1, window=2, max_undelivered=3)
    requester.submit(b"U:1")
    requester.submit(b"U:2")
    assert not requester.has_room
    with pytest.raises(ValueError):
        requester.submit(b"U:3")
    _first, second = requester.datagrams_to_send(0.0)
    requester.receive_datagram(serve([second])[0], 0.01)  # answered, waits for the first
    assert requester.has_room
    requester.submit(b"U:3")
    assert not requester.has_room  # three undelivered


def test_rto_follows_rfc6298() -> None:
    requester = RetransmittingRequester(timeout_s=10, retries=3)
    assert requester.rto_s == INITIAL_RTO_S
    requester.submit(b"U:a")
    (sent,) = requester.datagrams_to_send(0.0)
    requester.receive_datagram(serve([sent])[0], 0.2)
    # first sample R: SRTT = R, RTTVAR = R/2, RTO = SRTT + 4 RTTVAR
    assert requester.rto_s == pytest.approx(0.2 + 4 * 0.1)
    assert requester.stats.smoothed_rtt_s == pytest.approx(0.2)
    fast = RetransmittingRequester(timeout_s=10, retries=3)
    fast.submit(b"U:b")
    (sent,) = fast.datagrams_to_send(0.0)
    fast.receive_datagram(serve([sent])[0], 0.0001)
    assert fast.rto_s == MIN_RTO_S


def test_every_request_answered_once_in_order_through_a_bad_network() -> None:
    """The client's promise, on the real fault policy with the issue's settings."""
    faults = FaultSettings(loss=0.3, duplicate=0.2, reorder=0.2)
    up = DatagramImpairment(faults, random.Random("7/1/up"))
    down = DatagramImpairment(faults, random.Random("7/1/down"))
    requester = RetransmittingRequester(timeout_s=60, retries=40)
    messages = [f"U:request {n}".encode() for n in range(300)]
    pending = iter(messages)
    results = []
    now, one_way = 0.0, 0.0005
    exhausted = False
    while not (exhausted and requester.is_idle):
        while not exhausted and requester.has_room:
            message = next(pending, None)
            if message is None:
                exhausted = True
            else:
                requester.submit(message)
        for datagram in requester.datagrams_to_send(now):
            up.receive_datagram(datagram, now)
        for request in up.take_due(now + one_way):
            for reply in serve([request]):
                down.receive_datagram(reply, now + one_way)
        for reply in down.take_due(now + 2 * one_way):
            requester.receive_datagram(reply, now + 2 * one_way)
        results += requester.take_results()
        deadlines = [
            d for d in (requester.next_deadline(), up.next_deadline(), down.next_deadline()) if d
        ]
        now = max(now + 2 * one_way, min(deadlines, default=now))
        assert now < 600, "the exchange must finish"
    assert results == [
        Answered(m, m[2:].upper(), r.attempts) for m, r in zip(messages, results, strict=True)
    ]  # type: ignore[union-attr]
    stats = requester.stats
    assert stats.retries > 0 and stats.losses_seen > 0 and stats.duplicate_replies > 0
    assert stats.answered == 300


def test_attempt_timeout_waits_that_long_for_every_send_as_dig_and_snmpget() -> None:
    # --timeout 0.2 --retries 20: 21 sends, 0.2 s apart, given up after 4.2 s (not after 0.2 s).
    requester = RetransmittingRequester(timeout_s=0.2, retries=20, attempt_timeout_s=0.2)
    requester.submit(b"U:a")
    sends: list[float] = []
    now = 0.0
    while True:
        sends.extend(now for _ in requester.datagrams_to_send(now))
        if requester.has_results:
            break
        deadline = requester.next_deadline()
        assert deadline is not None
        now = deadline
    assert sends == pytest.approx([0.2 * n for n in range(21)])
    assert now == pytest.approx(4.2)
    (result,) = requester.take_results()
    assert result == Unanswered(b"U:a", 21)
    assert isinstance(result, Unanswered) and result.waited_s == pytest.approx(4.2)


def test_adaptive_timer_never_gives_up_with_retries_unused() -> None:
    # --retries 30 without --timeout: every retransmission is sent, even after timeout_s.
    requester = RetransmittingRequester(timeout_s=5, retries=30)
    requester.submit(b"U:a")
    sends = 0
    now = 0.0
    while True:
        sends += len(requester.datagrams_to_send(now))
        if requester.has_results:
            break
        deadline = requester.next_deadline()
        assert deadline is not None
        now = deadline
    assert sends == 31
    assert now > 5


def test_attempt_timeout_is_fixed_whatever_the_round_trip() -> None:
    requester = RetransmittingRequester(timeout_s=5, retries=3, attempt_timeout_s=0.5)
    requester.submit(b"U:x")
    (first,) = requester.datagrams_to_send(0.0)
    requester.receive_datagram(serve([first])[0], 0.001)  # a 1 ms round trip
    requester.take_results()
    requester.submit(b"U:y")
    requester.datagrams_to_send(1.0)
    assert requester.next_deadline() == pytest.approx(1.5)  # no RTO from the 1 ms sample


def test_attempt_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError, match="attempt_timeout_s > 0"):
        RetransmittingRequester(timeout_s=5, retries=1, attempt_timeout_s=0)
