"""Behaviour that differs between the models, or that every model must hold under stress.

Each test runs the real `socklab converter server --model M` subprocess on loopback.
"""

from __future__ import annotations

import contextlib
import select
import signal
import socket
import sys
import time

import psutil
import pytest

from socklab.clients.converter_client import StreamConverterClient
from socklab.protocol.converter import GREETING
from socklab.protocol.framing import make_framer
from tests.runtimes.servers import (
    CONCURRENT_MODELS,
    MODELS,
    Case,
    RunningServer,
    connect_raw,
    read_until_closed,
    start_server,
)

BUSY = b"E:server busy, try again later"


def test_iterative_serves_one_client_while_the_next_waits_in_the_backlog(
    servers: list[RunningServer],
) -> None:
    server = start_server(Case("iterative", "tcp", "line"))
    servers.append(server)
    with StreamConverterClient(server.host, server.port) as first:
        assert first.request(b"U:first") == b"FIRST"
        # The kernel completes the second handshake (the listen backlog), so connect() works,
        # but the server is busy with the first client: no greeting arrives yet.
        waiting = connect_raw(server.host, server.port)
        with waiting:
            waiting.sendall(b"U:queued\n")
            ready, _, _ = select.select([waiting], [], [], 1.0)
            assert not ready, "the waiting client was served while the first one was connected"
            assert first.request(b"C:") is None  # the first client leaves ...
            received = bytearray()
            waiting.settimeout(10.0)
            while received.count(b"\n") < 2:  # ... and the waiting one gets greeting and reply
                chunk = waiting.recv(4096)
                assert chunk, received
                received += chunk
    assert bytes(received) == GREETING + b"\nQUEUED\n"


@pytest.mark.parametrize("framing", ["line", "length"])
@pytest.mark.parametrize("model", CONCURRENT_MODELS)
def test_max_clients_answers_busy_and_closes(
    model: str, framing: str, servers: list[RunningServer]
) -> None:
    server = start_server(Case(model, "tcp", framing), "--max-clients", "2")
    servers.append(server)
    with contextlib.ExitStack() as stack:
        admitted = [
            stack.enter_context(StreamConverterClient(server.host, server.port, framing=framing))
            for _ in range(2)
        ]
        with StreamConverterClient(server.host, server.port, framing=framing) as third:
            assert third.greeting == BUSY  # framed like every message, so any client reads it
            assert third.maybe_receive_message() is None  # and then closed, never left hanging
        for client in admitted:
            assert client.request(b"U:still served") == b"STILL SERVED"
        assert admitted[0].request(b"C:") is None
        # The freed place is given to the next client (once the server saw the close).
        deadline = time.monotonic() + 10.0
        while True:
            with StreamConverterClient(server.host, server.port, framing=framing) as next_one:
                if next_one.greeting == GREETING:
                    assert next_one.request(b"L:IN") == b"in"
                    break
            assert time.monotonic() < deadline, "the freed place was never given out"
            time.sleep(0.05)


def _raise_open_file_limit(wanted: int) -> None:
    if sys.platform == "win32":
        return
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))


IDLE_CONNECTIONS = 2000


@pytest.mark.parametrize("model", ["selectors", "asyncio"])
def test_thousands_of_idle_connections_do_not_stop_service(
    model: str, servers: list[RunningServer]
) -> None:
    _raise_open_file_limit(IDLE_CONNECTIONS + 512)  # the server inherits the raised limit
    server = start_server(Case(model, "tcp", "line"), "--max-clients", str(IDLE_CONNECTIONS + 10))
    servers.append(server)
    idle: list[socket.socket] = []
    try:
        for _ in range(IDLE_CONNECTIONS):
            idle.append(connect_raw(server.host, server.port, timeout_s=10.0))
        # Every idle client was accepted and greeted.
        for sock in idle:
            assert sock.recv(4096).startswith(GREETING)
        with StreamConverterClient(server.host, server.port) as active:
            for number in range(20):
                assert (
                    active.request(f"U:request {number}".encode()) == f"REQUEST {number}".encode()
                )
        for sock in (idle[0], idle[-1]):
            sock.sendall(b"L:AWAKE\n")
            assert sock.recv(4096) == b"awake\n"
    finally:
        for sock in idle:
            sock.close()


@pytest.mark.parametrize("model", MODELS)
def test_sigterm_stops_cleanly_and_the_port_is_free_at_once(
    model: str, servers: list[RunningServer]
) -> None:
    server = start_server(Case(model, "tcp", "line"))
    servers.append(server)
    with StreamConverterClient(server.host, server.port) as client:
        assert client.request(b"U:before stop") == b"BEFORE STOP"
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait() == 0
        assert client.maybe_receive_message() is None  # its connection was closed
    assert any(
        "Server stopped: 1 connection, 1 request served." in line
        for line in server.process.stdout_lines
    )
    # A restarted server can bind the same port at once (SO_REUSEADDR, as the server sets it):
    # nothing is left listening, and connections in TIME_WAIT do not hold the port.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((server.host, server.port))
        probe.listen()


@pytest.mark.parametrize("model", MODELS)
def test_idle_and_message_timeouts(model: str, servers: list[RunningServer]) -> None:
    server = start_server(
        Case(model, "tcp", "line"), "--idle-timeout", "1", "--message-timeout", "2"
    )
    servers.append(server)
    if model == "iterative":
        # One client at a time: the silent one holds the server until its idle timeout.
        silent = connect_raw(server.host, server.port)
        with silent:
            assert (
                read_until_closed(silent)
                == GREETING + b"\nE:idle timeout: closing an inactive connection\n"
            )
    else:
        silent = connect_raw(server.host, server.port)
        with silent:
            slow = _trickle_until_closed(server)
            assert (
                read_until_closed(silent)
                == GREETING + b"\nE:idle timeout: closing an inactive connection\n"
            )
        assert slow == GREETING + b"\nE:message timeout: the message did not arrive in time\n"
        return
    assert _trickle_until_closed(server) == (
        GREETING + b"\nE:message timeout: the message did not arrive in time\n"
    )


def _trickle_until_closed(server: RunningServer) -> bytes:
    """A slowloris: begin a message, then add a byte every 0.2 s and never end it."""
    sock = connect_raw(server.host, server.port)
    received = bytearray()
    deadline = time.monotonic() + 15.0
    with sock:
        sock.sendall(b"U:slow")
        while time.monotonic() < deadline:
            ready, _, _ = select.select([sock], [], [], 0.2)
            if ready:
                try:
                    chunk = sock.recv(4096)
                except ConnectionResetError:
                    return bytes(received)
                if not chunk:
                    return bytes(received)
                received += chunk
            else:
                with contextlib.suppress(OSError):
                    sock.send(b"w")
    raise AssertionError(f"the slow sender was never disconnected: {received!r}")


# More than every socket buffer on the way (client and server, both directions) can hold, by far:
# a server without backpressure would read it all and buffer the replies.
UNREAD_LIMIT_BYTES = 64 * 1024 * 1024


@pytest.mark.parametrize("model", MODELS)
def test_a_client_that_never_reads_is_stopped_and_disconnected(
    model: str, servers: list[RunningServer]
) -> None:
    server = start_server(
        Case(model, "tcp", "length"), "--write-timeout", "1", "--idle-timeout", "60"
    )
    servers.append(server)
    server_process = psutil.Process(server.process.pid)
    memory_before = server_process.memory_info().rss
    request = make_framer("length", 4096).encode(b"U:" + b"x" * 1000)
    burst = request * 256
    sent = 0
    pending = memoryview(burst)
    sock = connect_raw(server.host, server.port)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    deadline = time.monotonic() + 30.0
    with sock:
        sock.setblocking(False)
        while time.monotonic() < deadline and sent < UNREAD_LIMIT_BYTES:
            try:
                count = sock.send(pending)
            except BlockingIOError:
                select.select([], [sock], [], 0.2)
            except OSError:
                break  # reset: the server gave up on us
            else:
                sent += count
                pending = pending[count:] or memoryview(burst)  # whole requests only
        else:
            raise AssertionError(f"the server was not stopped from reading: {sent:,} bytes sent")
    growth = server_process.memory_info().rss - memory_before
    assert growth < 32 * 1024 * 1024, f"the server grew by {growth:,} bytes"
    # ... and it still serves everyone else.
    with StreamConverterClient(server.host, server.port, framing="length") as other:
        assert other.request(b"U:fine") == b"FINE"


@pytest.mark.parametrize("model", ["asyncio", "selectors", "threads"])
def test_timeout_notices_are_framed_for_the_framing(
    model: str, servers: list[RunningServer]
) -> None:
    # A length-prefix client reads the idle notice like any reply (it used to be a bare line).
    server = start_server(Case(model, "tcp", "length"), "--idle-timeout", "1")
    servers.append(server)
    with StreamConverterClient(server.host, server.port, framing="length", timeout_s=10) as client:
        assert client.receive_message() == b"E:idle timeout: closing an inactive connection"
        assert client.maybe_receive_message() is None


@pytest.mark.parametrize("model", MODELS)
def test_sigterm_with_a_reply_stuck_ends_after_the_grace(
    model: str, servers: list[RunningServer]
) -> None:
    # The client never reads, so replies are stuck in the server: the stop must not wait for
    # it longer than the shutdown grace, and still exit 0.
    server = start_server(Case(model, "tcp", "line"), "--shutdown-grace", "0.5")
    servers.append(server)
    sock = connect_raw(server.host, server.port)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    requests = b"U:" + b"y" * 1000 + b"\n"
    sock.setblocking(False)
    with sock:
        pending = memoryview(requests * 1024)
        deadline = time.monotonic() + 10.0
        stalls = 0
        while stalls < 3 and time.monotonic() < deadline:  # until the server stops reading
            try:
                pending = pending[sock.send(pending) :] or memoryview(requests * 1024)
            except BlockingIOError:
                _, writable, _ = select.select([], [sock], [], 0.3)
                stalls += not writable
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout_s=5.0) == 0
