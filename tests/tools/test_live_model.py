"""The live view's model (pure): arrows as escaped text, bounded history, counted misses."""

from __future__ import annotations

import json

import pytest

from socklab.tools.capture.ladder import LadderBuilder
from socklab.tools.capture.packets import Packet, TcpFlags
from socklab.tools.live.model import LiveModel, parse_trace_record, step_to_json
from socklab.tools.ports import SocketRow

CLIENT = ("127.0.0.1", 40000)
SERVER = ("127.0.0.1", 50000)


def segment(time: float, source, destination, flags: TcpFlags, seq: int, ack: int, payload=b""):
    return Packet(
        time, "tcp", "ipv4", *source, *destination, payload, len(payload), flags, seq, ack, 65535
    )


def handshake_and_request(request: bytes) -> list[Packet]:
    return [
        segment(10.0, CLIENT, SERVER, TcpFlags.SYN, 100, 0),
        segment(10.1, SERVER, CLIENT, TcpFlags.SYN | TcpFlags.ACK, 500, 101),
        segment(10.2, CLIENT, SERVER, TcpFlags.ACK, 101, 501),
        segment(10.3, CLIENT, SERVER, TcpFlags.PSH | TcpFlags.ACK, 101, 501, request),
    ]


def test_arrows_carry_flags_endpoints_and_messages_as_escaped_text() -> None:
    model = LiveModel(started=10.0)
    for packet in handshake_and_request(b"U:<b>\x1b[31m</b>\n"):
        model.add_packet(packet)
    batch = model.events_after(0, 100)
    assert [event["flags"] for event in batch.events] == ["SYN", "SYN+ACK", "ACK", "PSH+ACK"]
    first, last = batch.events[0], batch.events[-1]
    assert (first["client"], first["server"], first["opens"]) == (
        "127.0.0.1:40000",
        "127.0.0.1:50000",
        True,
    )
    assert last["messages"] == [
        {
            "text": "U:<b>\\x1b[31m</b>",
            "kind": "upper",
            "fragment": "whole",
            "ended_by_close": False,
        }
    ]
    assert last["time"] == 0.3 and batch.cursor == 4 and batch.dropped == 0
    assert model.events_after(4, 100).events == ()


def test_a_long_message_is_cut_for_the_page() -> None:
    builder = LadderBuilder()
    steps = [builder.add(packet) for packet in handshake_and_request(b"U:" + b"x" * 5000 + b"\n")]
    text = step_to_json(steps[-1], 0.0)["messages"][0]["text"]
    assert len(text) < 200 and "5,002 bytes" in text


def test_history_is_a_ring_and_a_late_reader_is_told_what_it_missed() -> None:
    model = LiveModel(started=0.0, max_events=3, max_frames=2)
    for packet in handshake_and_request(b"U:a\n") * 2:
        model.add_packet(packet)
        model.add_frames([(packet.time, b"frame", 5)])
    assert list(model.frames) == [(10.2, b"frame", 5), (10.3, b"frame", 5)]
    assert model.packets == 8
    batch = model.events_after(0, 100)
    assert (len(batch.events), batch.cursor, batch.dropped) == (3, 8, 5)
    model.count_skipped(1000)  # a flood the capture only counted
    assert (model.packets, model.packets_not_drawn, model.last_number) == (1008, 1000, 8)
    limited = model.events_after(5, 1)
    assert (len(limited.events), limited.cursor, limited.dropped) == (1, 6, 0)


def test_socket_rows_say_listening_new_and_closed() -> None:
    listening = SocketRow("tcp", "ipv4", "127.0.0.1", 50000, None, None, "LISTEN", 7, "socklab")
    accepted = SocketRow(
        "tcp", "ipv4", "127.0.0.1", 50000, "127.0.0.1", 40000, "ESTABLISHED", 7, "socklab\x1b"
    )
    model = LiveModel(started=0.0)
    model.update_sockets([listening], 1.0)
    version = model.sockets_version
    model.update_sockets([listening, accepted], 1.5)
    rows = model.snapshot_sockets()
    assert model.sockets_version == version + 1
    assert [(row["listening"], row["status"]) for row in rows] == [
        (True, "open"),
        (False, "appeared"),
    ]
    assert rows[1]["process"] == "socklab\\x1b" and rows[1]["remote"] == "127.0.0.1:40000"
    model.update_sockets([listening], 2.0)
    assert model.snapshot_sockets()[1]["status"] == "closed"
    model.update_sockets([listening], 2.0)
    assert model.sockets_version == version + 2  # unchanged table: no new version to send


def datagram(time: float, source, destination, payload: bytes) -> Packet:
    return Packet(time, "udp", "ipv4", *source, *destination, payload, len(payload))


def udp_row(port: int, pid: int) -> SocketRow:
    return SocketRow("udp", "ipv4", "127.0.0.1", port, None, None, None, pid, "p")


def test_a_relay_is_recognised_on_the_wire_and_its_losses_and_duplicates_named() -> None:
    client, relay, flow, server = (("127.0.0.1", port) for port in (40000, 50001, 45000, 50000))
    model = LiveModel(started=0.0)
    # the relay (PID 2) owns its listening port and its flow's port; client 1, server 3
    model.update_sockets(
        [udp_row(40000, 1), udp_row(50001, 2), udp_row(45000, 2), udp_row(50000, 3)], 0.0
    )
    packets = [
        datagram(1.0, client, relay, b"U:a"),  # forwarded: the relay is recognised
        datagram(1.01, flow, server, b"U:a"),
        datagram(1.02, server, flow, b"A"),  # the reply comes back through it
        datagram(1.03, relay, client, b"A"),
        datagram(1.1, client, relay, b"U:b"),  # never comes out: lost
        datagram(1.2, client, relay, b"U:c"),  # comes out twice: duplicated
        datagram(1.21, flow, server, b"U:c"),
        datagram(1.22, flow, server, b"U:c"),
        datagram(1.3, server, client, b"U:a"),  # same bytes from the receiving port: no forward
        datagram(1.31, client, server, b"U:a"),  # same bytes, another process: no forward
    ]
    for packet in packets:
        model.add_packet(packet)
    model.judge_datagrams(1.5)  # too early for anything
    assert [e for e in model.events_after(0, 100).events if "fate" in e] == []
    model.judge_datagrams(3.0)
    events = model.events_after(0, 100).events
    numbers = {
        event["messages"][0]["text"] + "@" + event["to"]: event["number"]
        for event in events
        if "number" in event
    }
    fates = [(event["fate"], event["step"]) for event in events if "fate" in event]
    assert fates == [
        ("lost", numbers["U:b@127.0.0.1:50001"]),
        ("duplicated", numbers["U:c@127.0.0.1:50001"]),
    ]


def test_a_loss_before_the_relay_was_recognised_and_a_lagging_table_are_judged_right() -> None:
    client, relay, flow, server = (("127.0.0.1", port) for port in (40000, 50001, 45000, 50000))
    model = LiveModel(started=0.0)
    model.update_sockets([udp_row(40000, 1), udp_row(50001, 2), udp_row(50000, 3)], 0.0)
    for packet in [
        datagram(1.0, client, relay, b"U:first"),  # lost: the relay is not known yet
        datagram(1.5, client, relay, b"U:second"),  # forwarded through a flow socket ...
        datagram(1.51, flow, server, b"U:second"),  # ... the table has not shown yet
    ]:
        model.add_packet(packet)
    model.judge_datagrams(2.6)
    assert not any("fate" in event for event in model.events_after(0, 100).events)
    model.update_sockets([udp_row(45000, 2)], 2.7)  # the table catches up
    model.judge_datagrams(2.8)
    fates = [(e["fate"], e["step"]) for e in model.events_after(0, 100).events if "fate" in e]
    assert fates == [("lost", 1)]


def test_a_datagram_the_relay_forwarded_after_a_later_one_is_named_reordered() -> None:
    client, other, relay, flow, other_flow, server = (
        ("127.0.0.1", port) for port in (40000, 40001, 50001, 45000, 45001, 50000)
    )
    model = LiveModel(started=0.0)
    owners = {40000: 1, 40001: 4, 50001: 2, 45000: 2, 45001: 2, 50000: 3}  # the relay is PID 2
    model.update_sockets([udp_row(port, pid) for port, pid in owners.items()], 0.0)
    for packet in [
        datagram(1.0, client, relay, b"U:1"),  # in order
        datagram(1.01, flow, server, b"U:1"),
        datagram(1.1, client, relay, b"U:2"),  # held back ...
        datagram(1.11, client, relay, b"U:3"),
        datagram(1.12, flow, server, b"U:3"),  # ... U:3 overtakes it
        datagram(1.13, flow, server, b"U:2"),
        datagram(1.2, other, relay, b"U:x"),  # another flow: overtaking it is no reordering
        datagram(1.21, client, relay, b"U:4"),
        datagram(1.22, flow, server, b"U:4"),
        datagram(1.23, other_flow, server, b"U:x"),
    ]:
        model.add_packet(packet)
    model.judge_datagrams(3.0)
    events = model.events_after(0, 100).events
    numbers = {
        e["messages"][0]["text"]: e["number"] for e in events if e.get("to") == "127.0.0.1:50001"
    }
    fates = [(e["fate"], e["step"]) for e in events if "fate" in e]
    assert fates == [("reordered", numbers["U:2"])]


def trace_record(nbytes: int, end: int, seq: int, **changes: object) -> bytes:
    record = {"v": 1, "call": "recv", "local": "127.0.0.1:50000", "peer": "127.0.0.1:40000"}
    record |= {"nbytes": nbytes, "end": end, "seq": seq, "pid": 77}
    return json.dumps(record | changes).encode()


def test_traced_recv_calls_stand_beside_the_segments_that_carried_their_bytes() -> None:
    model = LiveModel(started=10.0)
    # a recv() traced before the capture drew its connection waits for it
    early = parse_trace_record(trace_record(8, 8, 1))
    assert early is not None
    model.add_trace(early, 10.25)
    assert model.events_after(0, 100).events == ()
    for packet in handshake_and_request(b"U:a\nU:b\n"):  # two messages, one segment
        model.add_packet(packet)
    sliced = [  # one message in two segments, received by two calls
        segment(10.4, CLIENT, SERVER, TcpFlags.PSH | TcpFlags.ACK, 109, 501, b"U:lo"),
        segment(10.5, CLIENT, SERVER, TcpFlags.PSH | TcpFlags.ACK, 113, 501, b"ng\n"),
    ]
    for packet in sliced:
        model.add_packet(packet)
    for nbytes, end, seq in ((4, 12, 2), (3, 15, 3)):
        record = parse_trace_record(trace_record(nbytes, end, seq))
        assert record is not None
        model.add_trace(record, 10.7)
    events = model.events_after(0, 100).events
    segments = [
        (e["seq"], e["seq"] + e["length"] - 1) for e in events if e.get("length") and "flags" in e
    ]
    recvs = [(e["first"], e["last"], e["conn"], e["to"]) for e in events if "recv" in e]
    assert segments == [(1, 8), (9, 12), (13, 15)]
    assert recvs == [
        (1, 8, "tcp-1", "127.0.0.1:50000"),  # one call returned both messages: merged
        (9, 12, "tcp-1", "127.0.0.1:50000"),  # the sliced message took two calls
        (13, 15, "tcp-1", "127.0.0.1:50000"),
    ]
    assert next(e for e in events if "recv" in e)["time"] == 0.25  # when it was received


def test_a_traced_call_whose_connection_never_shows_is_dropped_and_counted() -> None:
    model = LiveModel(started=0.0)
    record = parse_trace_record(trace_record(3, 3, 1, peer="127.0.0.1:1"))
    assert record is not None
    model.add_trace(record, 1.0)
    model.judge_datagrams(2.0)
    assert model.traces_unmatched == 0
    model.judge_datagrams(4.5)
    assert model.traces_unmatched == 1 and model.events_after(0, 10).events == ()


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b"[1]",
        trace_record(1, 1, 1, v=2),
        trace_record(1, 1, 1, call="<b>send</b>"),
        trace_record(1, 1, 1, local="example.org:80"),  # never a name to resolve
        trace_record(1, 1, 1, local="<script>:80"),
        trace_record(1, 1, 1, extra="x"),
        trace_record(-1, 1, 1),
        trace_record(True, 1, 1),  # a bool is no count
        trace_record(5, 4, 1),  # more bytes than the stream held
        trace_record(1, 1, 0),
        trace_record(1, 1, 1, pid="7"),
        b'{"v": 1, ' + b" " * 2000 + b"}",
    ],
)
def test_a_malformed_trace_record_is_refused(data: bytes) -> None:
    assert parse_trace_record(data) is None
