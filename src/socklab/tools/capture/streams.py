"""Putting TCP back together: connections, relative sequence numbers, in-order byte streams. Pure.

Strategy: a connection is named by its two endpoints; the client is whoever sent the first SYN
(or, joining mid-stream, whoever was seen first). Each direction has a `StreamReassembler`: the
receiver's view of RFC 9293 3.10.7.4 — bytes are delivered once, in sequence order; an old
(retransmitted) segment delivers nothing; a segment from the future waits until the gap is
filled. Sequence numbers wrap at 2**32, so every comparison is modulo 2**32 (RFC 1982 serial
arithmetic). Memory is bounded: out-of-order bytes per direction and connections per tracker.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from socklab.tools.capture.packets import Packet, TcpFlags

SEQUENCE_MODULUS: Final = 1 << 32
# Out-of-order data waiting for a gap: Linux's default tcp_rmem maximum is 6 MiB; one connection's
# worth of waiting segments in a teaching capture is far less, 1 MiB keeps the bound tight.
MAX_PENDING_BYTES: Final = 1 << 20
MAX_CONNECTIONS: Final = 10_000


def sequence_distance(later: int, earlier: int) -> int:
    """later - earlier in 32-bit serial arithmetic: negative when `later` is in the past."""
    difference = (later - earlier) % SEQUENCE_MODULUS
    return difference - SEQUENCE_MODULUS if difference >= SEQUENCE_MODULUS // 2 else difference


def relative_number(number: int, initial_sequence: int) -> int:
    """A sequence or acknowledgement number counted from an initial sequence number (ISN),
    as Wireshark shows it: the SYN is 0, the first data byte 1."""
    return (number - initial_sequence) % SEQUENCE_MODULUS


class SequenceNumbering:
    """Relative sequence and acknowledgement numbers for a packet list, without reassembly.

    The line view may skip packets when the terminal falls behind, so it cannot afford the
    reassemblers' state (out-of-order bytes wait for gaps that a skipped packet never fills);
    numbering needs only each direction's ISN. A SYN sets it (a SYN without ACK starts the
    4-tuple afresh: port reuse); a direction first seen mid-stream counts from one before its
    first sequence number, and one whose ISN is unknown when the other side acknowledges it,
    from one before that acknowledgement (its next byte is then 1 in both columns).
    Memory is bounded: the oldest directions are forgotten past `max_directions`.
    """

    def __init__(self, max_directions: int = 2 * MAX_CONNECTIONS) -> None:
        self._initial: dict[tuple[tuple[str, int], tuple[str, int]], int] = {}
        self.max_directions = max_directions

    def number(self, packet: Packet) -> tuple[int, int | None]:
        """(relative seq, relative ack); ack is None when the segment carries no ACK."""
        if packet.proto != "tcp" or packet.seq is None or packet.flags is None:
            raise ValueError("only TCP segments have sequence numbers")
        forward = (packet.source, packet.destination)
        backward = (packet.destination, packet.source)
        if packet.has(TcpFlags.SYN):
            if not packet.has(TcpFlags.ACK):
                self._initial.pop(backward, None)
            self._remember(forward, packet.seq)
        elif forward not in self._initial:
            self._remember(forward, packet.seq - 1)
        seq = relative_number(packet.seq, self._initial[forward])
        if not packet.has(TcpFlags.ACK) or packet.ack is None:
            return seq, None
        if backward not in self._initial:
            self._remember(backward, packet.ack - 1)
        return seq, relative_number(packet.ack, self._initial[backward])

    def _remember(self, direction: tuple[tuple[str, int], tuple[str, int]], isn: int) -> None:
        self._initial.pop(direction, None)
        while len(self._initial) >= self.max_directions:
            del self._initial[next(iter(self._initial))]  # the oldest (insertion order)
        self._initial[direction] = isn % SEQUENCE_MODULUS


class StreamReassembler:
    """One direction of a TCP connection, as the receiving socket sees it.

    Call order: start(initial_sequence)? then receive(seq, payload)* ; without start() the first
    segment's sequence number is taken as the start (a capture that began mid-connection).
    """

    def __init__(self, max_pending_bytes: int = MAX_PENDING_BYTES) -> None:
        self.next_sequence: int | None = None
        self._pending: dict[int, bytes] = {}
        self._pending_bytes = 0
        self.max_pending_bytes = max_pending_bytes
        self.bytes_delivered = 0
        self.bytes_dropped = 0  # out-of-order bytes over the bound, never delivered

    def start(self, initial_sequence: int) -> None:
        self.next_sequence = initial_sequence % SEQUENCE_MODULUS

    def receive(self, sequence: int, payload: bytes) -> tuple[bytes, bool]:
        """(bytes now in order, whether the segment was entirely old: a retransmission)."""
        if self.next_sequence is None:
            self.next_sequence = sequence % SEQUENCE_MODULUS
        if not payload:
            return b"", False
        offset = sequence_distance(sequence, self.next_sequence)
        if offset + len(payload) <= 0:
            return b"", True
        if offset > 0:
            self._hold(sequence % SEQUENCE_MODULUS, payload)
            return b"", False
        delivered = bytearray(payload[-offset:] if offset < 0 else payload)
        self._advance(len(delivered))
        while self._pending:
            waiting = self._take_pending()
            if waiting is None:
                break
            delivered += waiting
        self.bytes_delivered += len(delivered)
        return bytes(delivered), False

    def _advance(self, count: int) -> None:
        assert self.next_sequence is not None
        self.next_sequence = (self.next_sequence + count) % SEQUENCE_MODULUS

    def _hold(self, sequence: int, payload: bytes) -> None:
        if sequence in self._pending:
            return
        if self._pending_bytes + len(payload) > self.max_pending_bytes:
            self.bytes_dropped += len(payload)
            return
        self._pending[sequence] = payload
        self._pending_bytes += len(payload)

    def _take_pending(self) -> bytes | None:
        """The waiting bytes that now continue the stream, or None if a gap remains."""
        assert self.next_sequence is not None
        for sequence, payload in list(self._pending.items()):
            offset = sequence_distance(sequence, self.next_sequence)
            if offset > 0:
                continue
            del self._pending[sequence]
            self._pending_bytes -= len(payload)
            if offset + len(payload) <= 0:
                continue  # wholly old by now
            fresh = payload[-offset:] if offset < 0 else payload
            self._advance(len(fresh))
            return fresh
        return None


@dataclass
class _Direction:
    reassembler: StreamReassembler = field(default_factory=StreamReassembler)
    initial_sequence: int | None = None
    fin_seen: bool = False


@dataclass
class Connection:
    """Both directions of one TCP connection; `number` counts connections from 1 in the capture."""

    number: int
    client: tuple[str, int]
    server: tuple[str, int]
    directions: dict[tuple[str, int], _Direction] = field(default_factory=dict)
    reset: bool = False

    def direction_of(self, sender: tuple[str, int]) -> _Direction:
        return self.directions.setdefault(sender, _Direction())

    @property
    def is_finished(self) -> bool:
        return self.reset or (
            len(self.directions) == 2 and all(d.fin_seen for d in self.directions.values())
        )


@dataclass(frozen=True, slots=True)
class TrackedSegment:
    """What one TCP segment means for its connection."""

    connection: Connection
    is_new_connection: bool
    from_client: bool
    relative_seq: int | None  # from the sender's initial sequence number (0 = the SYN)
    relative_ack: int | None  # from the receiver's initial sequence number; None without ACK
    delivered: bytes  # bytes that became readable, in order, with this segment
    retransmission: bool
    fin: bool  # the sender closed its direction


def endpoints_key(a: tuple[str, int], b: tuple[str, int]) -> tuple[tuple[str, int], ...]:
    return (a, b) if a <= b else (b, a)


class ConnectionTracker:
    """Feeds TCP packets into per-connection reassemblers. Call `track(packet)` in capture order."""

    def __init__(self, max_connections: int = MAX_CONNECTIONS) -> None:
        self._connections: dict[tuple[tuple[str, int], ...], Connection] = {}
        self._count = 0
        self.max_connections = max_connections

    def track(self, packet: Packet) -> TrackedSegment:
        if packet.proto != "tcp" or packet.seq is None or packet.flags is None:
            raise ValueError("only TCP segments can be tracked")
        key = endpoints_key(packet.source, packet.destination)
        connection = self._connections.get(key)
        is_syn = packet.has(TcpFlags.SYN)
        is_new = connection is None or (
            # A new SYN after the old connection finished: the 4-tuple was reused.
            connection.is_finished and is_syn and not packet.has(TcpFlags.ACK)
        )
        if is_new:
            connection = self._open(key, packet)
        assert connection is not None
        sender = connection.direction_of(packet.source)
        receiver = connection.direction_of(packet.destination)
        if is_syn and sender.initial_sequence is None:
            sender.initial_sequence = packet.seq
            sender.reassembler.start(packet.seq + 1)
        elif sender.initial_sequence is None:
            # Joined mid-stream: count from one before the first byte seen, as Wireshark does.
            sender.initial_sequence = (packet.seq - 1) % SEQUENCE_MODULUS
        payload_seq = packet.seq + (1 if is_syn else 0)
        delivered, retransmission = sender.reassembler.receive(payload_seq, packet.payload)
        fin = packet.has(TcpFlags.FIN)
        if fin:
            sender.fin_seen = True
        if packet.has(TcpFlags.RST):
            connection.reset = True
        relative_ack = None
        if packet.has(TcpFlags.ACK) and packet.ack is not None:
            base = receiver.initial_sequence
            relative_ack = relative_number(packet.ack, base) if base is not None else None
        return TrackedSegment(
            connection=connection,
            is_new_connection=is_new,
            from_client=packet.source == connection.client,
            relative_seq=relative_number(packet.seq, sender.initial_sequence),
            relative_ack=relative_ack,
            delivered=delivered,
            retransmission=retransmission,
            fin=fin,
        )

    def _open(self, key: tuple[tuple[str, int], ...], packet: Packet) -> Connection:
        self._connections.pop(key, None)
        while len(self._connections) >= self.max_connections:
            # Forget the oldest connection (dicts keep insertion order).
            del self._connections[next(iter(self._connections))]
        self._count += 1
        if packet.has(TcpFlags.SYN) and packet.has(TcpFlags.ACK):
            client, server = packet.destination, packet.source  # we missed the SYN
        else:
            client, server = packet.source, packet.destination
        connection = Connection(self._count, client, server)
        self._connections[key] = connection
        return connection
