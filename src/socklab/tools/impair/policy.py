"""The fault policy of `socklab impair`: what happens to each datagram and each stream chunk.

Pure code, like the protocol core: the relay passes in a seeded `random.Random` and the current
time, and asks when to call again. Nothing here touches a socket or a clock, so every decision is
reproducible from the seed and unit-testable without waiting.

Call order for both classes (one object per flow and direction):

    receive_datagram(data, now) | receive_data(data, now) [receive_eof()]
    take_due(now) -> what to send now, in order
    next_deadline() -> when to call take_due again (None: nothing is waiting)

Datagrams get netem's faults (Linux `tc qdisc ... netem`): loss, duplication, reordering, delay
with jitter, a rate. A datagram chosen for reordering is held back until the next datagram of the
flow has gone out, then sent right after it (or sent after `REORDER_MAX_HOLD_S` if none comes),
so reordering shows even without a delay. Jitter alone may reorder too, as with netem.

Streams get Toxiproxy's toxics: latency with jitter (never reordering bytes: TCP delivers in
order), bandwidth, slicer, limit_data (close after exactly N bytes) and a reset after N bytes.
"""

from __future__ import annotations

import enum
import heapq
import random
from collections import deque
from dataclasses import dataclass, field

# netem's default queue `limit` is 1000 packets; like netem, a full queue drops new datagrams.
MAX_QUEUED_DATAGRAMS = 1000
# A datagram held back for reordering waits at most this long for a successor to overtake it.
REORDER_MAX_HOLD_S = 0.05
# The token bucket holds this many seconds' worth of bytes: the largest burst sent at once. Linux
# `tc tbf` needs at least rate/HZ; 20 ms keeps measured rates within 1 % over a second or two.
BURST_S = 0.02


@dataclass(frozen=True, slots=True)
class FaultSettings:
    """The faults applied to one direction of a flow; the defaults change nothing."""

    loss: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    delay_s: float = 0.0
    jitter_s: float = 0.0
    rate_bytes_per_s: int | None = None
    slice_bytes: int | None = None
    slice_delay_s: float = 0.0
    limit_bytes: int | None = None
    reset_after_bytes: int | None = None

    def __post_init__(self) -> None:
        for name in ("loss", "duplicate", "reorder"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} probability {value} is outside 0..1")
        if self.delay_s < 0 or self.jitter_s < 0 or self.slice_delay_s < 0:
            raise ValueError("delays must not be negative")
        for name in ("rate_bytes_per_s", "slice_bytes"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1")
        for name in ("limit_bytes", "reset_after_bytes"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must not be negative")


NO_FAULTS = FaultSettings()


class TokenBucket:
    """Rate limiting computed from passed-in times: tokens (bytes) accrue at `rate` per second
    up to `capacity`; a send of n bytes waits until n tokens are there. A datagram larger than
    the bucket waits for a full bucket and leaves a debt, so the long-run rate still holds.
    """

    def __init__(self, rate_bytes_per_s: float, now: float) -> None:
        self.rate = float(rate_bytes_per_s)
        self.capacity = max(1.0, self.rate * BURST_S)
        self._tokens = self.capacity
        self._time = now

    def release_time(self, size: int, ready_at: float) -> float:
        """The earliest time >= ready_at at which `size` bytes may go; takes their tokens."""
        start = max(ready_at, self._time)
        tokens = min(self.capacity, self._tokens + (start - self._time) * self.rate)
        needed = min(float(size), self.capacity)
        if tokens < needed:
            start += (needed - tokens) / self.rate
            tokens = needed
        self._tokens = tokens - size
        self._time = start
        return start


def _jittered_delay(faults: FaultSettings, rng: random.Random) -> float:
    """delay ± jitter (uniform, as Toxiproxy's latency toxic), never negative."""
    if not faults.jitter_s:
        return faults.delay_s
    return max(0.0, faults.delay_s + rng.uniform(-faults.jitter_s, faults.jitter_s))


# --- datagrams ---------------------------------------------------------------------------------


@dataclass(slots=True)
class DatagramStats:
    """What happened to the datagrams of one direction (several flows may share one object)."""

    received: int = 0
    forwarded: int = 0  # copies sent, duplicates included
    lost: int = 0
    duplicated: int = 0
    reordered: int = 0
    delayed: int = 0
    dropped_queue_full: int = 0


@dataclass(slots=True)
class QueueBudget:
    """Bytes every flow may hold in its queues together; shared so many clients stay bounded."""

    max_bytes: int
    used_bytes: int = 0

    def reserve(self, size: int) -> bool:
        if self.used_bytes + size > self.max_bytes:
            return False
        self.used_bytes += size
        return True

    def release(self, size: int) -> None:
        self.used_bytes -= size


@dataclass(order=True, slots=True)
class _Queued:
    release_s: float
    sequence: int
    datagram: bytes = field(compare=False)


class DatagramImpairment:
    """The fate of each datagram of one flow direction: dropped, duplicated, held back, delayed.

    Random draws happen in a fixed order per datagram (loss, duplicate, reorder, one jitter per
    copy), each only when its probability is set, so a seed replays the same decisions.
    """

    def __init__(
        self,
        faults: FaultSettings,
        rng: random.Random,
        *,
        stats: DatagramStats | None = None,
        budget: QueueBudget | None = None,
        max_queued: int = MAX_QUEUED_DATAGRAMS,
    ) -> None:
        self.faults = faults
        self.stats = stats if stats is not None else DatagramStats()
        self._rng = rng
        self._budget = budget
        self._max_queued = max_queued
        self._bucket: TokenBucket | None = None
        self._queue: list[_Queued] = []  # heap by (release time, arrival order)
        self._held: list[_Queued] = []  # waiting for a successor to overtake them
        self._sequence = 0

    @property
    def queued_datagrams(self) -> int:
        return len(self._queue) + len(self._held)

    def receive_datagram(self, datagram: bytes, now: float) -> None:
        faults, rng, stats = self.faults, self._rng, self.stats
        stats.received += 1
        if faults.loss and rng.random() < faults.loss:
            stats.lost += 1
            return
        copies = 1
        if faults.duplicate and rng.random() < faults.duplicate:
            copies = 2
            stats.duplicated += 1
        hold = bool(faults.reorder) and rng.random() < faults.reorder
        for _copy in range(copies):
            release = now
            if faults.rate_bytes_per_s:
                if self._bucket is None:
                    self._bucket = TokenBucket(faults.rate_bytes_per_s, now)
                release = self._bucket.release_time(len(datagram), now)
            delay = _jittered_delay(faults, rng)
            if delay:
                stats.delayed += 1
            self._enqueue(datagram, release + delay, hold)
        if hold:
            stats.reordered += 1

    def _enqueue(self, datagram: bytes, release: float, hold: bool) -> None:
        if self.queued_datagrams >= self._max_queued or (
            self._budget is not None and not self._budget.reserve(len(datagram))
        ):
            self.stats.dropped_queue_full += 1
            return
        self._sequence += 1
        item = _Queued(release, self._sequence, datagram)
        if hold:
            self._held.append(item)
            return
        heapq.heappush(self._queue, item)
        # Everything held back goes right after this datagram: it has been overtaken.
        for held in self._held:
            self._sequence += 1
            heapq.heappush(
                self._queue, _Queued(max(held.release_s, release), self._sequence, held.datagram)
            )
        self._held.clear()

    def take_due(self, now: float) -> list[bytes]:
        """The datagrams to send now, in order."""
        if self._held:
            expired = [held for held in self._held if held.release_s + REORDER_MAX_HOLD_S <= now]
            if expired:
                self._held = [held for held in self._held if held not in expired]
                for held in expired:
                    held.release_s += REORDER_MAX_HOLD_S
                    heapq.heappush(self._queue, held)
        due: list[bytes] = []
        while self._queue and self._queue[0].release_s <= now:
            datagram = heapq.heappop(self._queue).datagram
            if self._budget is not None:
                self._budget.release(len(datagram))
            due.append(datagram)
        self.stats.forwarded += len(due)
        return due

    def next_deadline(self) -> float | None:
        times = [held.release_s + REORDER_MAX_HOLD_S for held in self._held]
        if self._queue:
            times.append(self._queue[0].release_s)
        return min(times) if times else None

    def discard(self) -> None:
        """Forget everything queued (the flow expired); returns its bytes to the budget."""
        if self._budget is not None:
            for item in (*self._queue, *self._held):
                self._budget.release(len(item.datagram))
        self._queue.clear()
        self._held.clear()


# --- streams -----------------------------------------------------------------------------------


class StreamEnding(enum.Enum):
    """How a stream ends once its byte allowance has been forwarded."""

    CLOSE = "close"  # FIN after exactly --limit-bytes bytes (Toxiproxy's limit_data)
    RESET = "reset"  # RST after --reset-after bytes (SO_LINGER 0, Toxiproxy's reset_peer)


@dataclass(slots=True)
class StreamStats:
    """Bytes of one direction (several connections may share one object)."""

    bytes_received: int = 0
    bytes_forwarded: int = 0
    bytes_discarded: int = 0  # beyond --limit-bytes / --reset-after
    pieces: int = 0  # writes handed to the relay (slices, rate-limited pieces)


@dataclass(slots=True)
class _Chunk:
    data: bytes
    ready_s: float  # arrival plus delay and jitter
    offset: int = 0


class StreamImpairment:
    """One direction of a TCP connection: delay, jitter, rate, slices, and where it ends.

    Bytes leave in order, whatever the jitter: each piece goes no earlier than the one before.
    `ending` turns from None to CLOSE or RESET once the allowance has been forwarded; `eof_due`
    turns True once the source's end of stream may be passed on.
    """

    def __init__(
        self,
        faults: FaultSettings,
        rng: random.Random,
        *,
        stats: StreamStats | None = None,
    ) -> None:
        self.faults = faults
        self.stats = stats if stats is not None else StreamStats()
        self._rng = rng
        self._chunks: deque[_Chunk] = deque()
        self._pending_bytes = 0
        self._bucket: TokenBucket | None = None
        self._last_release_s: float | None = None
        self._planned: tuple[float, int] | None = None  # the head piece: (release time, size)
        self._eof_received = False
        limits = [
            (limit, kind)
            for limit, kind in (
                (faults.reset_after_bytes, StreamEnding.RESET),
                (faults.limit_bytes, StreamEnding.CLOSE),
            )
            if limit is not None
        ]
        self._allowance: int | None = None
        self._ending_kind: StreamEnding | None = None
        if limits:
            self._allowance, self._ending_kind = min(limits, key=lambda pair: pair[0])

    @property
    def pending_bytes(self) -> int:
        return self._pending_bytes

    @property
    def ending(self) -> StreamEnding | None:
        if self._allowance == 0 and not self._chunks:
            return self._ending_kind
        return None

    @property
    def eof_due(self) -> bool:
        return self._eof_received and not self._chunks and self.ending is None

    def receive_data(self, data: bytes, now: float) -> None:
        self.stats.bytes_received += len(data)
        if self._allowance is not None:
            kept = data[: self._allowance]
            self.stats.bytes_discarded += len(data) - len(kept)
            self._allowance -= len(kept)
            data = kept
        if not data:
            return
        self._chunks.append(_Chunk(data, now + _jittered_delay(self.faults, self._rng)))
        self._pending_bytes += len(data)

    def receive_eof(self) -> None:
        self._eof_received = True

    def _plan_head(self) -> tuple[float, int]:
        if self._planned is None:
            faults, chunk = self.faults, self._chunks[0]
            size = len(chunk.data) - chunk.offset
            release = chunk.ready_s
            if faults.slice_bytes is not None:
                size = min(size, faults.slice_bytes)
                if self._last_release_s is not None:
                    release = max(release, self._last_release_s + faults.slice_delay_s)
            if self._last_release_s is not None:
                release = max(release, self._last_release_s)
            if faults.rate_bytes_per_s is not None:
                if self._bucket is None:
                    self._bucket = TokenBucket(faults.rate_bytes_per_s, release)
                size = min(size, int(self._bucket.capacity))
                release = self._bucket.release_time(size, release)
            self._planned = (release, size)
        return self._planned

    def take_due(self, now: float) -> list[bytes]:
        """The pieces to write now, in order (each its own write: a slice stays a segment)."""
        pieces: list[bytes] = []
        faults = self.faults
        # Without a rate or slice spacing, all slices of a chunk share one release time: cut the
        # whole chunk at once (a fast path; the piece-by-piece loop below gives the same result).
        whole_chunks = faults.rate_bytes_per_s is None and not faults.slice_delay_s
        while self._chunks:
            if whole_chunks and self._planned is None:
                chunk = self._chunks[0]
                release = chunk.ready_s
                if self._last_release_s is not None:
                    release = max(release, self._last_release_s)
                if release > now:
                    break
                step = faults.slice_bytes or len(chunk.data)
                size = len(chunk.data) - chunk.offset
                cut = [chunk.data[i : i + step] for i in range(chunk.offset, len(chunk.data), step)]
                pieces += cut
                self._chunks.popleft()
                self._pending_bytes -= size
                self._last_release_s = release
                self.stats.bytes_forwarded += size
                continue
            release, size = self._plan_head()
            if release > now:
                break
            chunk = self._chunks[0]
            pieces.append(chunk.data[chunk.offset : chunk.offset + size])
            chunk.offset += size
            if chunk.offset == len(chunk.data):
                self._chunks.popleft()
            self._pending_bytes -= size
            self._last_release_s = release
            self._planned = None
            self.stats.bytes_forwarded += size
        self.stats.pieces += len(pieces)
        return pieces

    def next_deadline(self) -> float | None:
        return self._plan_head()[0] if self._chunks else None
