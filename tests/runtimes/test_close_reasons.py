"""Every model reports why a connection closed with the same `CloseReason` member.

In-process servers on loopback, port 0, one per model from RUNTIMES; the observer's
`ConnectionClosed` events are the record. A new model is held to this by adding it there.
"""

from __future__ import annotations

import queue
import socket
import struct
import time
from collections.abc import Callable, Iterator

import pytest

from socklab.protocol.closing import CloseReason
from socklab.protocol.converter import GREETING
from socklab.protocol.upper import UpperSession
from socklab.runtimes import RUNTIMES, serve
from socklab.runtimes.config import ConnectionClosed, ServerConfig, ServerEvent
from socklab.runtimes.handle import ServerHandle

MODELS = sorted(name for name, info in RUNTIMES.items() if "tcp" in info.transports)
# Test ids read as runtime-transport-framing (the framing does not change a reason).
MODELS_AS_CASES = pytest.mark.parametrize("model", MODELS, ids=lambda model: f"{model}-tcp-line")
# Two sweeps and a margin: a 1 s deadline fires between 1 and 2 s after it began.
EVENT_WAIT_S = 6.0

pytestmark = pytest.mark.timeout(30)


class Observed:
    """A server of one model with a 1 s deadline, and the reasons it reported."""

    def __init__(self, model: str, **settings: object) -> None:
        self.closed: queue.Queue[CloseReason] = queue.Queue()
        config = ServerConfig(port=0, observer=self._observe, **settings)  # type: ignore[arg-type]
        self.handle: ServerHandle = serve(model, config)

    def _observe(self, event: ServerEvent) -> None:
        if isinstance(event, ConnectionClosed):
            self.closed.put(event.reason)

    def connect(self) -> socket.socket:
        sock = socket.create_connection(self.handle.address, timeout=EVENT_WAIT_S)
        greeting = GREETING + b"\n"
        received = b""
        while len(received) < len(greeting):
            chunk = sock.recv(len(greeting) - len(received))
            assert chunk, received
            received += chunk
        assert received == greeting
        return sock

    def next_reason(self) -> CloseReason:
        return self.closed.get(timeout=EVENT_WAIT_S)


@pytest.fixture
def observed() -> Iterator[Callable[..., Observed]]:
    started: list[Observed] = []

    def start(model: str, **settings: object) -> Observed:
        server = Observed(model, **settings)
        started.append(server)
        return server

    yield start
    for server in started:
        server.handle.stop()


def read_until_closed(sock: socket.socket) -> bytes:
    received = b""
    try:
        while chunk := sock.recv(4096):
            received += chunk
    except ConnectionResetError:
        pass
    return received


@MODELS_AS_CASES
def test_idle_timeout(model: str, observed: Callable[..., Observed]) -> None:
    server = observed(model, idle_timeout_s=1.0)
    with server.connect() as sock:
        assert read_until_closed(sock).startswith(b"E:idle timeout")
        assert server.next_reason() is CloseReason.IDLE_TIMEOUT


@MODELS_AS_CASES
def test_message_timeout(model: str, observed: Callable[..., Observed]) -> None:
    server = observed(model, message_timeout_s=1.0)
    with server.connect() as sock:
        sock.sendall(b"U:half a mess")
        assert read_until_closed(sock).startswith(b"E:message timeout")
        assert server.next_reason() is CloseReason.MESSAGE_TIMEOUT


@MODELS_AS_CASES
def test_server_stopping(model: str, observed: Callable[..., Observed]) -> None:
    server = observed(model)
    with server.connect() as sock:
        sock.sendall(b"U:half")
        time.sleep(0.3)  # the server reads it: a request in progress gets the notice
        server.handle.stop()
        assert read_until_closed(sock) == b"E:server stopping\n"
        assert server.next_reason() is CloseReason.SERVER_STOPPING


@MODELS_AS_CASES
def test_peer_close(model: str, observed: Callable[..., Observed]) -> None:
    server = observed(model)
    with server.connect() as sock:
        sock.sendall(b"U:a\n")
        assert sock.recv(16) == b"A\n"
    assert server.next_reason() is CloseReason.PEER_EOF
    server.connect().close()  # never sent a byte: no session was made, the same reason
    assert server.next_reason() is CloseReason.PEER_EOF


@MODELS_AS_CASES
def test_reset(model: str, observed: Callable[..., Observed]) -> None:
    server = observed(model)
    sock = server.connect()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()  # an RST, no FIN
    assert server.next_reason() is CloseReason.RESET


@MODELS_AS_CASES
def test_client_request(model: str, observed: Callable[..., Observed]) -> None:
    server = observed(model)
    with server.connect() as sock:
        sock.sendall(b"C:\n")
        assert read_until_closed(sock) == b""
    assert server.next_reason() is CloseReason.CLIENT_REQUESTED


@pytest.mark.parametrize("model", MODELS, ids=lambda model: f"{model}-tcp-raw")
def test_another_session_gets_its_own_notices(model: str) -> None:
    """A runtime knows no protocol: the upper session's notice is its own (unframed)."""
    reasons: queue.Queue[CloseReason] = queue.Queue()

    def observe(event: ServerEvent) -> None:
        if isinstance(event, ConnectionClosed):
            reasons.put(event.reason)

    config = ServerConfig(
        port=0, framing="raw", idle_timeout_s=1.0, session_factory=UpperSession, observer=observe
    )
    with serve(model, config) as handle:
        with socket.create_connection(handle.address, timeout=EVENT_WAIT_S) as sock:
            assert read_until_closed(sock) == b"E:idle timeout: closing an inactive connection"
        assert reasons.get(timeout=EVENT_WAIT_S) is CloseReason.IDLE_TIMEOUT
        with socket.create_connection(handle.address, timeout=EVENT_WAIT_S) as sock:
            sock.sendall(b"hello")
            assert read_until_closed(sock) == b"HELLO"
        assert reasons.get(timeout=EVENT_WAIT_S) is CloseReason.LOCAL
