"""One conformance suite for every runtime: the real `socklab converter server --model M`.

Parametrized over RUNTIMES x transport x framing (ids such as `threads-tcp-line`). Each case
starts one server subprocess for the module's tests of that case (pytest groups the tests by
the module-scoped parameter, so one server runs at a time).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from socklab.clients.converter_client import DatagramConverterClient, StreamConverterClient
from socklab.protocol.converter import GREETING
from socklab.protocol.framing import make_framer
from tests.runtimes.servers import (
    MODELS,
    TCP_CASES,
    UDP_CASES,
    Case,
    RunningServer,
    case_id,
    connect_raw,
    read_until_closed,
    start_server,
)

MAX_MESSAGE_BYTES = 4096

RAW_MERGE_REASON = (
    "raw framing takes one recv() as one request, as the slides' naive server does: two "
    "requests arriving together are answered as one, and the second is lost"
)


@pytest.fixture(scope="module", params=TCP_CASES, ids=case_id)
def tcp_server(request: pytest.FixtureRequest) -> Iterator[RunningServer]:
    server = start_server(request.param, "--max-message-bytes", str(MAX_MESSAGE_BYTES))
    yield server
    assert server.process.stop() == 0


@pytest.fixture(scope="module", params=UDP_CASES, ids=case_id)
def udp_server(request: pytest.FixtureRequest) -> Iterator[RunningServer]:
    server = start_server(request.param)
    yield server
    assert server.process.stop() == 0


def client_for(server: RunningServer) -> StreamConverterClient:
    return StreamConverterClient(
        server.host,
        server.port,
        framing=server.case.framing,
        timeout_s=5.0,
        max_message_bytes=MAX_MESSAGE_BYTES * 4,
    )


def test_greeting(tcp_server: RunningServer) -> None:
    with client_for(tcp_server) as client:
        assert client.greeting == GREETING


def test_upper_and_lower(tcp_server: RunningServer) -> None:
    with client_for(tcp_server) as client:
        assert client.request(b"U:hello world") == b"HELLO WORLD"
        assert client.request(b"L:MiXeD 123") == b"mixed 123"


def test_close_command_ends_the_connection(tcp_server: RunningServer) -> None:
    with client_for(tcp_server) as client:
        assert client.request(b"U:before") == b"BEFORE"
        assert client.request(b"C:") is None


def test_unicode(tcp_server: RunningServer) -> None:
    with client_for(tcp_server) as client:
        assert client.request("U:straße".encode()) == b"STRASSE"
        assert client.request("L:ÄÖÜ ΩMEGA".encode()) == "äöü ωmega".encode()


def test_errors_are_replies_and_the_connection_stays(tcp_server: RunningServer) -> None:
    with client_for(tcp_server) as client:
        unknown = client.request(b"X:foo")
        assert unknown is not None
        assert unknown.startswith(b"E:unknown command 'X:'")
        invalid = client.request(b"U:\xff")
        assert invalid is not None
        assert invalid.startswith(b"E:request is not valid UTF-8 (byte 0xFF")
        assert client.request(b"U:still here") == b"STILL HERE"


def test_request_split_into_pieces(tcp_server: RunningServer) -> None:
    framing = tcp_server.case.framing
    with client_for(tcp_server) as client:
        if framing == "raw":
            # The naive server survives only a split right after the command (the slide's
            # recv(2) then recv(1500)); anywhere else it breaks, which the protocol tests show.
            client.send_bytes(b"L:")
            client.send_bytes(b"UPPER")
        else:
            for byte in make_framer(framing, MAX_MESSAGE_BYTES).encode(b"U:one byte at a time"):
                client.send_bytes(bytes([byte]))
        expected = b"upper" if framing == "raw" else b"ONE BYTE AT A TIME"
        assert client.receive_message() == expected


def test_requests_merged_in_one_send(
    tcp_server: RunningServer, request: pytest.FixtureRequest
) -> None:
    framing = tcp_server.case.framing
    if framing == "raw":
        request.applymarker(pytest.mark.xfail(strict=True, reason=RAW_MERGE_REASON))
    encode = make_framer(framing, MAX_MESSAGE_BYTES).encode
    with client_for(tcp_server) as client:
        client.send_bytes(encode(b"U:first") + encode(b"L:SECOND") + encode(b"U:third"))
        # One reply at a time: raw fails at the first (it answers all three as one).
        for expected in (b"FIRST", b"second", b"THIRD"):
            assert client.receive_message() == expected


def test_over_long_message(tcp_server: RunningServer) -> None:
    framing = tcp_server.case.framing
    text = b"a" * (MAX_MESSAGE_BYTES + 100)
    sock = connect_raw(tcp_server.host, tcp_server.port)
    with sock:
        if framing == "raw":
            # Raw framing never refuses: it cuts the text at 1500 bytes and answers the pieces.
            sock.sendall(b"U:" + text)
            first = sock.recv(65536)
            assert first.startswith(GREETING)
            first = first[len(GREETING) :] or sock.recv(65536)
            assert first.startswith(b"AAAA")
            assert b"E:message" not in first
            return
        sock.sendall(make_framer(framing, len(text) + 10).encode(b"U:" + text))
        received = read_until_closed(sock)
    messages = make_framer(framing, 2 * MAX_MESSAGE_BYTES).receive_data(received)
    assert messages[0] == GREETING
    assert len(messages) == 2, messages
    assert isinstance(messages[1], bytes)
    assert messages[1].startswith(b"E:message of ")
    assert messages[1].endswith(f"exceeds the {MAX_MESSAGE_BYTES:,}-byte limit".encode())


def test_several_clients_in_turn_and_at_once(tcp_server: RunningServer) -> None:
    # Every model serves a second client after the first: the iterative one only in turn.
    clients = []
    try:
        for number in range(3):
            client = client_for(tcp_server)
            clients.append(client)
            assert client.request(f"U:client {number}".encode()) == f"CLIENT {number}".encode()
            if tcp_server.case.model == "iterative":
                assert client.request(b"C:") is None
    finally:
        for client in clients:
            client.close()


def test_udp_requests(udp_server: RunningServer) -> None:
    with DatagramConverterClient(udp_server.host, udp_server.port, timeout_s=5.0) as client:
        assert client.request(b"U:hello") == b"HELLO"
        assert client.request(b"L:WORLD") == b"world"
        assert client.request("U:straße".encode()) == b"STRASSE"
        # An error reply is sent only when it is no longer than the request (no amplification).
        assert client.request(b"X:" + b"w" * 80).startswith(b"E:unknown command 'X:'")


def test_udp_request_id_and_close(udp_server: RunningServer) -> None:
    with DatagramConverterClient(udp_server.host, udp_server.port, timeout_s=5.0) as client:
        client.send_datagram(b"C:")  # no reply: UDP has no connection to close
        client.send_datagram(b"U:abc", request_id=42)
        assert client.receive_datagram() == b"#42 ABC"


@pytest.mark.parametrize("model", MODELS)
def test_ipv6_loopback(model: str) -> None:
    server = start_server(Case(model, "tcp", "line"), host="::1")
    try:
        assert server.host == "::1"
        with client_for(server) as client:
            assert client.request(b"U:six") == b"SIX"
    finally:
        assert server.process.stop() == 0


@pytest.mark.parametrize("case", UDP_CASES, ids=case_id)
def test_udp_ipv6_loopback(case: Case) -> None:
    server = start_server(case, host="::1")
    try:
        with DatagramConverterClient("::1", server.port, timeout_s=5.0) as client:
            assert client.request(b"L:SIX") == b"six"
    finally:
        assert server.process.stop() == 0
