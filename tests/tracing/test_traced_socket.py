"""TracedSocket in-process: every call reported once, with its facts; failures re-raised unchanged."""

from __future__ import annotations

import socket

import pytest

from socklab.tracing import Call, TracedSocket, TraceEvent, connect_stream, new_socket, poll_quietly


def test_without_a_tracer_the_factory_returns_a_plain_socket() -> None:
    with new_socket() as sock:
        assert type(sock) is socket.socket


def test_stream_calls_in_order_with_counts_and_addresses() -> None:
    events: list[TraceEvent] = []
    with new_socket(socket.AF_INET, socket.SOCK_STREAM, events.append) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        with connect_stream("127.0.0.1", port, timeout_s=5, tracer=events.append) as client:
            connection, peer = listener.accept()
            assert isinstance(connection, TracedSocket)
            with connection:
                client.sendall(b"ab")
                client.send(b"cd")
                received = b""
                while len(received) < 4:
                    received += connection.recv(1024)
    calls = [event.call for event in events]
    assert calls[:3] == [Call.SOCKET, Call.BIND, Call.LISTEN]
    assert calls.count(Call.CLOSE) == 3  # listener, client, accepted socket: once each
    accept = next(event for event in events if event.call is Call.ACCEPT)
    assert accept.address == (peer[0], peer[1]) and accept.new_fd is not None
    sends = [
        (event.call, event.nbytes, event.data)
        for event in events
        if event.call in (Call.SEND, Call.SENDALL)
    ]
    assert sends == [(Call.SENDALL, 2, b"ab"), (Call.SEND, 2, b"cd")]
    receives = [event for event in events if event.call is Call.RECV]
    assert [event.sequence for event in receives] == list(range(1, len(receives) + 1))
    assert b"".join(event.data for event in receives) == b"abcd"
    bind = next(event for event in events if event.call is Call.BIND)
    assert bind.address == ("127.0.0.1", port)  # the port the OS picked, not 0


def test_datagrams_report_sender_and_destination() -> None:
    events: list[TraceEvent] = []
    with (
        new_socket(socket.AF_INET, socket.SOCK_DGRAM, events.append) as server,
        new_socket(socket.AF_INET, socket.SOCK_DGRAM, events.append) as client,
    ):
        server.bind(("127.0.0.1", 0))
        address = server.getsockname()
        client.sendto(b"one", address)
        client.sendto(b"two", 0, address)  # the flags form
        server.settimeout(5)
        first, sender = server.recvfrom(100)
        second = server.recvmsg(100)[0]
    assert (first, second) == (b"one", b"two")
    sendtos = [event for event in events if event.call is Call.SENDTO]
    assert [(event.nbytes, event.address) for event in sendtos] == [(3, address), (3, address)]
    received = [event for event in events if event.call in (Call.RECVFROM, Call.RECVMSG)]
    assert [(event.call, event.data, event.address, event.sequence) for event in received] == [
        (Call.RECVFROM, b"one", (sender[0], sender[1]), 1),
        (Call.RECVMSG, b"two", (sender[0], sender[1]), 2),
    ]
    assert all(event.transport == "udp" for event in events)


def test_recv_timeout_is_reported_and_reraised() -> None:
    events: list[TraceEvent] = []
    with new_socket(socket.AF_INET, socket.SOCK_DGRAM, events.append) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(0.01)
        with pytest.raises(TimeoutError):
            sock.recv(10)
    timed_out = [event for event in events if event.timed_out]
    assert [(event.call, event.argument) for event in timed_out] == [(Call.RECV, 10)]


def test_polling_slices_and_would_block_are_not_reported() -> None:
    events: list[TraceEvent] = []
    with new_socket(socket.AF_INET, socket.SOCK_DGRAM, events.append) as sock:
        sock.bind(("127.0.0.1", 0))
        poll_quietly(sock, 0.01)
        with pytest.raises(TimeoutError):
            sock.recv(10)
        sock.setblocking(False)
        with pytest.raises(BlockingIOError):
            sock.recv(10)
    assert [event.call for event in events] == [Call.SOCKET, Call.BIND, Call.CLOSE]


def test_failed_connect_is_reported_with_its_error() -> None:
    events: list[TraceEvent] = []
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, not listening: connecting is refused
        with pytest.raises(ConnectionRefusedError):
            connect_stream("127.0.0.1", port, timeout_s=5, tracer=events.append)
    failed = [event for event in events if event.error is not None]
    assert [(event.call, event.address) for event in failed] == [
        (Call.CONNECT, ("127.0.0.1", port))
    ]
    assert "refused" in (failed[0].error or "").lower()
