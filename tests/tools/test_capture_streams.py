"""TCP reassembly and the ladder's message analysis, on crafted segments (no capture needed)."""

from __future__ import annotations

from socklab.protocol.converter import GREETING
from socklab.tools.capture.ladder import (
    Fragment,
    LadderBuilder,
    LadderStep,
    MessageKind,
    classify_message,
)
from socklab.tools.capture.packets import Packet, TcpFlags
from socklab.tools.capture.streams import (
    ConnectionTracker,
    SequenceNumbering,
    StreamReassembler,
    sequence_distance,
)

CLIENT = ("127.0.0.1", 40000)
SERVER = ("127.0.0.1", 50000)
SYN, ACK, PSH, FIN = TcpFlags.SYN, TcpFlags.ACK, TcpFlags.PSH, TcpFlags.FIN


def segment(
    src: tuple[str, int],
    dst: tuple[str, int],
    flags: TcpFlags,
    seq: int,
    ack: int = 0,
    payload: bytes = b"",
    time: float = 0.0,
) -> Packet:
    return Packet(
        time,
        "tcp",
        "ipv4",
        src[0],
        src[1],
        dst[0],
        dst[1],
        payload,
        len(payload),
        flags,
        seq % 2**32,
        ack % 2**32,
    )


def test_sequence_distance_wraps() -> None:
    assert sequence_distance(5, 2**32 - 5) == 10
    assert sequence_distance(2**32 - 5, 5) == -10


def test_reassembler_in_order_out_of_order_and_retransmission() -> None:
    stream = StreamReassembler()
    stream.start(2**32 - 2)  # the stream crosses the wrap-around
    assert stream.receive(2**32 - 2, b"ab") == (b"ab", False)
    assert stream.receive(2, b"ef") == (b"", False)  # early: waits for the gap
    assert stream.receive(0, b"cd") == (b"cdef", False)  # fills it, releases the rest
    assert stream.receive(0, b"cd") == (b"", True)  # old bytes again: a retransmission
    assert stream.receive(2, b"efgh") == (b"gh", False)  # overlapping: only the new part
    assert stream.bytes_delivered == 8


def test_reassembler_bounds_waiting_bytes() -> None:
    stream = StreamReassembler(max_pending_bytes=4)
    stream.start(0)
    assert stream.receive(10, b"12345") == (b"", False)
    assert stream.bytes_dropped == 5


def handshake(tracker_or_builder: ConnectionTracker | LadderBuilder) -> list[object]:
    add = (
        tracker_or_builder.track
        if isinstance(tracker_or_builder, ConnectionTracker)
        else tracker_or_builder.add
    )
    return [
        add(segment(CLIENT, SERVER, SYN, 1000)),
        add(segment(SERVER, CLIENT, SYN | ACK, 5000, 1001)),
        add(segment(CLIENT, SERVER, ACK, 1001, 5001)),
    ]


def test_tracker_relative_numbers_and_roles() -> None:
    tracker = ConnectionTracker()
    syn, syn_ack, ack = handshake(tracker)  # type: ignore[misc]
    assert syn.is_new_connection and syn.from_client and syn.relative_seq == 0
    assert not syn_ack.from_client and (syn_ack.relative_seq, syn_ack.relative_ack) == (0, 1)
    assert (ack.relative_seq, ack.relative_ack) == (1, 1)
    data = tracker.track(segment(CLIENT, SERVER, PSH | ACK, 1001, 5001, b"U:a\n"))
    assert data.delivered == b"U:a\n" and data.connection.client == CLIENT
    again = tracker.track(segment(CLIENT, SERVER, PSH | ACK, 1001, 5001, b"U:a\n"))
    assert again.retransmission and again.delivered == b""


def test_tracker_joining_mid_stream_and_port_reuse() -> None:
    tracker = ConnectionTracker()
    first = tracker.track(segment(SERVER, CLIENT, PSH | ACK, 77, 9, b"A\n"))
    assert first.is_new_connection and first.relative_seq == 1 and first.delivered == b"A\n"
    tracker.track(segment(SERVER, CLIENT, FIN | ACK, 79, 9))
    tracker.track(segment(CLIENT, SERVER, FIN | ACK, 9, 80))
    reused = tracker.track(segment(CLIENT, SERVER, SYN, 123))
    assert reused.is_new_connection and reused.connection.number == 2


def test_numbering_agrees_with_the_tracker_and_wraps() -> None:
    numbering = SequenceNumbering()
    tracker = ConnectionTracker()
    packets = [
        segment(CLIENT, SERVER, SYN, 2**32 - 2),
        segment(SERVER, CLIENT, SYN | ACK, 5000, 2**32 - 1),
        segment(CLIENT, SERVER, ACK, 2**32 - 1, 5001),
        segment(CLIENT, SERVER, PSH | ACK, 2**32 - 1, 5001, b"U:a\n"),
        segment(SERVER, CLIENT, PSH | ACK, 5001, 3, b"A\n"),
    ]
    numbers = [numbering.number(packet) for packet in packets]
    assert numbers == [(0, None), (0, 1), (1, 1), (1, 1), (1, 5)]
    tracked = [tracker.track(packet) for packet in packets]
    assert numbers == [(t.relative_seq, t.relative_ack) for t in tracked]


def test_numbering_mid_stream_port_reuse_and_its_bound() -> None:
    numbering = SequenceNumbering(max_directions=2)
    # Joined mid-stream: the first byte seen is 1, and so is the first byte acknowledged.
    assert numbering.number(segment(SERVER, CLIENT, PSH | ACK, 77, 9, b"A\n")) == (1, 1)
    assert numbering.number(segment(CLIENT, SERVER, ACK, 9, 79)) == (1, 3)
    # A new SYN on the same 4-tuple counts afresh in both directions.
    assert numbering.number(segment(CLIENT, SERVER, SYN, 123)) == (0, None)
    assert numbering.number(segment(SERVER, CLIENT, SYN | ACK, 900, 124)) == (0, 1)
    other = ("127.0.0.1", 40001)
    assert numbering.number(segment(CLIENT, SERVER, ACK, 130, 901)) == (7, 1)
    numbering.number(segment(other, SERVER, SYN, 5))  # a third direction: the oldest goes
    # Forgotten, CLIENT -> SERVER counts as if joined mid-stream again.
    assert numbering.number(segment(CLIENT, SERVER, ACK, 130, 901)) == (1, 1)


def steps_of(builder: LadderBuilder, *packets: Packet) -> list[LadderStep]:
    return [builder.add(packet) for packet in packets]


def test_ladder_two_messages_in_one_segment() -> None:
    builder = LadderBuilder()
    opening = handshake(builder)
    assert [s.flags for s in opening] == ["SYN", "SYN+ACK", "ACK"]  # type: ignore[attr-defined]
    assert opening[0].opens_connection  # type: ignore[attr-defined]
    greeting, request = steps_of(
        builder,
        segment(SERVER, CLIENT, PSH | ACK, 5001, 1001, GREETING + b"\n"),
        segment(CLIENT, SERVER, PSH | ACK, 1001, 5001 + len(GREETING) + 1, b"U:a\nL:B\n"),
    )
    assert [p.kind for p in greeting.pieces] == [MessageKind.GREETING]
    assert request.whole_messages == 2
    assert [(p.text, p.kind, p.fragment) for p in request.pieces] == [
        (b"U:a", MessageKind.UPPER_REQUEST, Fragment.WHOLE),
        (b"L:B", MessageKind.LOWER_REQUEST, Fragment.WHOLE),
    ]
    assert request.sender == CLIENT and request.receiver == SERVER and request.from_client


def test_ladder_message_spanning_segments_and_ended_by_fin() -> None:
    builder = LadderBuilder()
    handshake(builder)
    first, middle, last, hello = steps_of(
        builder,
        segment(CLIENT, SERVER, PSH | ACK, 1001, 5001, b"U:he"),
        segment(CLIENT, SERVER, PSH | ACK, 1005, 5001, b"ll"),
        segment(CLIENT, SERVER, PSH | ACK, 1007, 5001, b"o\nHi server!"),
        segment(CLIENT, SERVER, FIN | ACK, 1018, 5001),
    )
    assert [(p.text, p.fragment) for p in first.pieces] == [(b"U:he", Fragment.START)]
    assert [(p.text, p.fragment) for p in middle.pieces] == [(b"ll", Fragment.MIDDLE)]
    assert [(p.text, p.fragment) for p in last.pieces] == [
        (b"U:hello", Fragment.END),
        (b"Hi server!", Fragment.START),
    ]
    assert last.whole_messages == 1
    assert [(p.text, p.kind, p.ended_by_close) for p in hello.pieces] == [
        (b"Hi server!", MessageKind.TEXT, True)
    ]
    assert hello.relative_seq == 18 and hello.flags == "FIN+ACK"


def test_ladder_udp_datagrams_are_whole_messages() -> None:
    builder = LadderBuilder()
    request = builder.add(Packet(1.0, "udp", "ipv4", *CLIENT, *SERVER, b"#3 U:x", 6))
    reply = builder.add(Packet(1.1, "udp", "ipv4", *SERVER, *CLIENT, b"#3 X", 4))
    assert request.opens_connection and not reply.opens_connection
    assert request.from_client and not reply.from_client
    assert request.pieces[0].kind is MessageKind.UPPER_REQUEST
    assert reply.pieces[0].kind is MessageKind.REPLY


def test_classify_messages() -> None:
    assert classify_message(b"C:", from_client=True) is MessageKind.CLOSE_REQUEST
    assert classify_message(b"E:unknown", from_client=False) is MessageKind.ERROR_REPLY
    assert classify_message(GREETING, from_client=False) is MessageKind.GREETING
    assert classify_message(b"U:x", from_client=False) is MessageKind.REPLY
