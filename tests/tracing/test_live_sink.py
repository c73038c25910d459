"""Traced TCP receive calls sent to `socklab live` as JSON datagrams (tracing/live_sink.py)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from socklab.tools.live.model import parse_trace_record
from socklab.tracing import Call, TraceEvent, new_socket
from socklab.tracing.live_sink import LiveSink, loopback_address
from tests.socklab_process import SocklabProcess, free_port, run_socklab


@pytest.fixture
def live_view() -> Iterator[socket.socket]:
    """A stand-in for the live server's trace socket: records are read off it."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(5.0)
        yield sock


def test_a_traced_tcp_socket_reports_its_receives_with_both_ends_and_stream_offsets(
    live_view: socket.socket,
) -> None:
    sink = LiveSink(live_view.getsockname())
    events: list[TraceEvent] = []

    def trace(event: TraceEvent) -> None:
        events.append(event)
        sink.send(event)

    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = new_socket(tracer=trace)
        client.connect(listener.getsockname())
        peer, _address = listener.accept()
        with client, peer:
            peer.sendall(b"U:one\n")
            assert client.recv(3) == b"U:o"
            assert client.recv(100) == b"ne\n"
            peer.close()
            assert client.recv(100) == b""
            local, remote = client.getsockname(), client.getpeername()
    sink.close()
    records = [parse_trace_record(live_view.recv(2048)) for _ in range(3)]
    ends = f"{local[0]}:{local[1]}", f"{remote[0]}:{remote[1]}"
    assert [(r["local"], r["peer"]) for r in records if r] == [ends] * 3
    assert [(r["nbytes"], r["end"], r["seq"]) for r in records if r] == [
        (3, 3, 1),
        (3, 6, 2),
        (0, 6, 3),
    ]
    # connect() and the others are not sent: only receive calls, only TCP
    assert Call.CONNECT in {event.call for event in events}
    live_view.settimeout(0.05)
    with pytest.raises(TimeoutError):
        live_view.recv(2048)


def test_a_udp_receive_is_not_sent(live_view: socket.socket) -> None:
    sink = LiveSink(live_view.getsockname())
    sink.send(TraceEvent(Call.RECVFROM, 3, "udp", nbytes=4, address=("127.0.0.1", 9), sequence=1))
    live_view.settimeout(0.05)
    with pytest.raises(TimeoutError):
        live_view.recv(2048)
    sink.close()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:8765", ("127.0.0.1", 8765)),
        ("[::1]:8765", ("::1", 8765)),
        ("192.0.2.1:8765", None),  # not loopback: the records stay on the machine
        ("localhost:8765", None),  # never a name to resolve
        ("127.0.0.1", None),
        ("127.0.0.1:99999", None),
    ],
)
def test_only_a_loopback_ip_literal_is_taken(text: str, expected: object) -> None:
    assert loopback_address(text) == expected


def test_a_non_loopback_socklab_live_address_is_refused_in_one_line() -> None:
    port = free_port()
    server = SocklabProcess(["converter", "server", "--port", str(port)])
    try:
        server.wait_listening()
        result = run_socklab(
            ["converter", "client", "--port", str(port), "--trace", "U:x"],
            env={"SOCKLAB_LIVE": "192.0.2.1:8765\x1b[2J"},
        )
    finally:
        server.stop()
    assert result.returncode == 0, result.stderr
    refusals = [line for line in result.stderr.splitlines() if "SOCKLAB_LIVE=" in line]
    assert refusals == [
        "SOCKLAB_LIVE=192.0.2.1:8765\\x1b[2J is not a loopback ip:port: the recv() calls are not"
        " sent to socklab live. Use the address socklab live printed, e.g."
        " SOCKLAB_LIVE=127.0.0.1:8765."
    ]
