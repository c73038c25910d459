"""Converter requests over datagrams that may be lost, duplicated or reordered: request ids,
retransmission with capped exponential backoff, and answers delivered in order, each once.

Sans-I/O: the client's socket loop passes the time in and moves the datagrams. Strategy:

- Every datagram sent carries a fresh request id (`#<id> U:text`, see docs/PROTOCOL.md); a
  retransmission gets a new id too, and the request remembers all of its ids. Like QUIC's packet
  numbers (RFC 9000, section 12.3), ids are never reused, so a reply tells exactly which send it
  answers: round-trip samples are never ambiguous (the problem Karn's algorithm works around).
- The retransmission timer adapts to the measured round trip as TCP's does (RFC 6298: SRTT,
  RTTVAR, RTO = SRTT + 4 RTTVAR), starting at `INITIAL_RTO_S` and doubling per retransmission
  of a request up to `MAX_BACKOFF_S`.
- A request is given up (an `Unanswered` result) when its `retries` retransmissions are spent,
  the last one has waited its backoff, and `timeout_s` have passed since its first send: never
  with retransmissions left unused (TCP gives up after a count of retransmissions too,
  tcp_retries2 in tcp(7)).
- With `attempt_timeout_s` the timer is fixed instead, as `dig +time=S +tries=N` and
  `snmpget -t S -r N` count, and as the lecture's client does ("recv() after one second, then
  start again"): every send waits `attempt_timeout_s` for its reply, `retries` retransmissions
  follow the first send, and the request is given up when the last one's wait is over, after
  (retries + 1) x attempt_timeout_s. `timeout_s` plays no part then.
- At most `window` requests are in flight (sent, not yet answered) at once, and at most
  `max_undelivered` are submitted but not yet taken, so answers waiting for an earlier, unlucky
  request are bounded too, without that one request stalling the others.

Call order:

    submit(message)* while has_room
    datagrams_to_send(now)         -> new requests and due retransmissions, as wire datagrams
    receive_datagram(data, now)*   -> replies; duplicates, late and stray ones are counted only
    take_results()                 -> finished requests, in submission order, each exactly once
    next_deadline()                -> when to call datagrams_to_send again (None: nothing pending)
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from socklab.protocol.converter import CLOSE, build_datagram, parse_reply_datagram

# RFC 6298, section 2.1: before any round trip is measured, RTO = 1 second.
INITIAL_RTO_S = 1.0
# TCP on Linux never lets its RTO fall below 200 ms (TCP_RTO_MIN); QUIC (RFC 9002, section 6.2)
# has no floor beyond a 1 ms granularity. 50 ms keeps loopback runs quick while a busy machine's
# scheduling hiccups rarely cause a needless retransmission (and one costs only a duplicate).
MIN_RTO_S = 0.05
# Backoff doubles per retransmission, but a person is waiting: never more than this per wait.
MAX_BACKOFF_S = 1.0
DEFAULT_WINDOW = 64
DEFAULT_MAX_UNDELIVERED = 1024
# RFC 6298, section 2: alpha = 1/8, beta = 1/4, K = 4.
RTT_ALPHA = 0.125
RTT_BETA = 0.25
RTT_K = 4


@dataclass(frozen=True, slots=True)
class Answered:
    message: bytes
    reply: bytes
    attempts: int


@dataclass(frozen=True, slots=True)
class Unanswered:
    """No reply came for any of the request's `attempts` sends within the time allowed."""

    message: bytes
    attempts: int
    waited_s: float = field(default=0.0, compare=False)  # from the first send to giving up


@dataclass(frozen=True, slots=True)
class SentWithoutReply:
    """A request the converter never answers over UDP (`C:`, an empty datagram): sent once."""

    message: bytes


RequestResult = Answered | Unanswered | SentWithoutReply


@dataclass(slots=True)
class RetransmissionStats:
    requests: int = 0
    datagrams_sent: int = 0
    retries: int = 0  # retransmissions
    answered: int = 0
    unanswered: int = 0
    losses_seen: int = (
        0  # sends of answered requests whose reply never came (request or reply lost)
    )
    duplicate_replies: int = 0  # a second reply for an answered request
    reordered_replies: int = 0  # a reply to an older send arriving after one to a newer send
    stray_replies: int = 0  # ids we never sent
    replies_without_id: int = 0  # the server does not echo request ids
    smoothed_rtt_s: float | None = None


@dataclass(slots=True)
class _Request:
    message: bytes
    expects_reply: bool
    sends: dict[int, float] = field(default_factory=dict)  # request id -> time sent
    first_sent_s: float | None = None
    retransmit_at_s: float = 0.0
    result: RequestResult | None = None


class RetransmittingRequester:
    """The request/retry/matching state of one UDP converter client (see the module docstring)."""

    def __init__(
        self,
        *,
        timeout_s: float,
        retries: int,
        window: int = DEFAULT_WINDOW,
        max_undelivered: int = DEFAULT_MAX_UNDELIVERED,
        first_id: int = 1,
        attempt_timeout_s: float | None = None,
    ) -> None:
        if (
            timeout_s <= 0
            or retries < 0
            or not 1 <= window <= max_undelivered
            or first_id < 0
            or (attempt_timeout_s is not None and attempt_timeout_s <= 0)
        ):
            raise ValueError(
                "timeout_s > 0, retries >= 0, 1 <= window <= max_undelivered, first_id >= 0, "
                "attempt_timeout_s > 0"
            )
        self.timeout_s = timeout_s
        self.attempt_timeout_s = attempt_timeout_s
        self.retries = retries
        self.window = window
        self.max_undelivered = max_undelivered
        self._in_flight = 0  # submitted and not finished
        self.stats = RetransmissionStats()
        self._next_id = first_id
        self._requests: deque[_Request] = deque()  # submitted, not yet taken as results
        self._by_id: dict[int, _Request] = {}
        self._newest_replied_id = -1
        self._srtt: float | None = None
        self._rttvar = 0.0

    @property
    def has_room(self) -> bool:
        return self._in_flight < self.window and len(self._requests) < self.max_undelivered

    @property
    def has_results(self) -> bool:
        """take_results() would return something now."""
        return bool(self._requests) and self._requests[0].result is not None

    @property
    def is_idle(self) -> bool:
        """Nothing submitted is still waiting to be taken."""
        return not self._requests

    @property
    def rto_s(self) -> float:
        """The current retransmission timeout before backoff (RFC 6298, section 2)."""
        if self._srtt is None:
            return min(INITIAL_RTO_S, self.timeout_s / 4)
        return max(MIN_RTO_S, self._srtt + RTT_K * self._rttvar)

    def submit(self, message: bytes) -> None:
        if not self.has_room:
            raise ValueError("window full: wait for results before submitting more")
        expects_reply = bool(message) and message[:2] != CLOSE
        self._requests.append(_Request(message, expects_reply))
        self._in_flight += 1
        self.stats.requests += 1

    def datagrams_to_send(self, now: float) -> list[bytes]:
        out: list[bytes] = []
        for request in self._requests:
            if request.result is not None:
                continue
            if request.first_sent_s is None:
                request.first_sent_s = now
                if not request.expects_reply:
                    out.append(request.message)
                    request.result = SentWithoutReply(request.message)
                    self._in_flight -= 1
                    continue
                out.append(self._send(request, now))
            elif now >= request.retransmit_at_s:
                if self._is_over(request, now):
                    self._give_up(request, now)
                    continue
                if len(request.sends) > self.retries:
                    continue
                self.stats.retries += 1
                out.append(self._send(request, now))
        self.stats.datagrams_sent += len(out)
        return out

    def _is_over(self, request: _Request, now: float) -> bool:
        """The time allowed for `request` has run out (called when its timer is due)."""
        if len(request.sends) <= self.retries:
            return False
        if self.attempt_timeout_s is not None:
            return True
        assert request.first_sent_s is not None
        return now - request.first_sent_s >= self.timeout_s

    def _send(self, request: _Request, now: float) -> bytes:
        request_id = self._next_id
        self._next_id += 1
        request.sends[request_id] = now
        self._by_id[request_id] = request
        assert request.first_sent_s is not None
        if self.attempt_timeout_s is not None:
            request.retransmit_at_s = now + self.attempt_timeout_s
            return build_datagram(request.message, request_id)
        backoff = min(MAX_BACKOFF_S, self.rto_s * 2 ** (len(request.sends) - 1))
        if len(request.sends) > self.retries:
            # The last send: wait for its reply, and until timeout_s is over, then give up.
            request.retransmit_at_s = max(now + backoff, request.first_sent_s + self.timeout_s)
        else:
            request.retransmit_at_s = now + backoff
        return build_datagram(request.message, request_id)

    def _give_up(self, request: _Request, now: float) -> None:
        assert request.first_sent_s is not None
        request.result = Unanswered(request.message, len(request.sends), now - request.first_sent_s)
        self._in_flight -= 1
        self.stats.unanswered += 1
        self.stats.losses_seen += len(request.sends)

    def _forget_ids(self, request: _Request) -> None:
        for request_id in request.sends:
            self._by_id.pop(request_id, None)

    def receive_datagram(self, datagram: bytes, now: float) -> None:
        request_id, payload = parse_reply_datagram(datagram)
        if request_id is None:
            self.stats.replies_without_id += 1
            return
        if request_id < self._newest_replied_id:
            self.stats.reordered_replies += 1
        self._newest_replied_id = max(self._newest_replied_id, request_id)
        request = self._by_id.get(request_id)
        if request is None:
            if request_id < self._next_id:
                self.stats.duplicate_replies += 1  # for a request already answered or given up
            else:
                self.stats.stray_replies += 1
            return
        if request.result is not None:
            self.stats.duplicate_replies += 1
            return
        self._sample_rtt(now - request.sends[request_id])
        request.result = Answered(request.message, payload, len(request.sends))
        self._in_flight -= 1
        self.stats.answered += 1
        # Earlier sends without a reply so far: one datagram of each pair was lost (or is late).
        self.stats.losses_seen += sum(1 for sent in request.sends if sent < request_id)

    def _sample_rtt(self, sample_s: float) -> None:
        sample_s = max(0.0, sample_s)
        if self._srtt is None:
            self._srtt = sample_s
            self._rttvar = sample_s / 2
        else:
            self._rttvar = (1 - RTT_BETA) * self._rttvar + RTT_BETA * abs(self._srtt - sample_s)
            self._srtt = (1 - RTT_ALPHA) * self._srtt + RTT_ALPHA * sample_s
        self.stats.smoothed_rtt_s = self._srtt

    def take_results(self) -> list[RequestResult]:
        """Finished requests from the front, in submission order; each is returned once."""
        results: list[RequestResult] = []
        while self._requests and self._requests[0].result is not None:
            request = self._requests.popleft()
            assert request.result is not None
            results.append(request.result)
            self._forget_ids(request)
        return results

    def next_deadline(self) -> float | None:
        times = [
            request.retransmit_at_s
            for request in self._requests
            if request.result is None and request.first_sent_s is not None
        ]
        if any(
            request.first_sent_s is None and request.result is None for request in self._requests
        ):
            return float("-inf")  # unsent requests: send now
        return min(times) if times else None
