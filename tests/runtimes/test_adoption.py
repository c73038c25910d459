"""Live sessions and dialled connections (`ServerHandle.adopt()`), for every model that has them.

A tiny relay protocol stands in for any mesh: each session greets on its own, forwards every
line it receives to the other sessions of its hub (a cross-connection send: bytes pushed into
another connection's session, whose runtime is woken), and a line `bye` closes the connection.
The hub's lock guards every session, as a real application's would.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import psutil
import pytest

from socklab.errors import UsageError
from socklab.protocol.closing import CloseReason
from socklab.protocol.live_session import LiveSession, Wake
from socklab.runtimes import RUNTIMES, ServerHandle, serve
from socklab.runtimes.config import ServerConfig
from socklab.runtimes.dialing import connect_blocking

ADOPTING = sorted(name for name, info in RUNTIMES.items() if info.adopts_connections)
# uvloop where installed is the asyncio model's default; the standard loop is served too.
LOOPS = [*ADOPTING, "asyncio/asyncio"]
WAIT_S = 5.0


class Hub:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sessions: list[RelaySession] = []
        self.closed: list[RelaySession] = []
        self.threads: set[int] = set()

    def make_session(
        self, framing: str, *, max_message_bytes: int, greet: bool, record_events: bool
    ) -> RelaySession:
        return RelaySession(self, b"accepted")

    make_session.makes_live_sessions = True  # type: ignore[attr-defined]

    def push_to_all(self, line: bytes, *, but: RelaySession | None = None) -> None:
        """From any thread: queue `line` on every other session and ring its doorbell."""
        with self.lock:
            targets = [s for s in self.sessions if s is not but]
            for session in targets:
                session.out.append(line)
        for session in targets:
            session.ring()


class RelaySession:
    def __init__(self, hub: Hub, greeting: bytes) -> None:
        self.hub = hub
        self.greeting = greeting
        self.out: list[bytes] = []
        self.buffer = b""
        self.close_requested = False
        self.requests_served = 0
        self.peer: tuple[str, int] | None = None
        self.close_reason: CloseReason | None = None
        self._wake: Wake | None = None

    def connection_made(self, peer: tuple[str, int], wake: Wake) -> None:
        self.peer, self._wake = peer, wake
        with self.hub.lock:
            self.hub.sessions.append(self)
            self.out.append(b"hello from " + self.greeting + b"\n")

    def ring(self) -> None:
        assert self._wake is not None
        self._wake()

    def receive_data(self, data: bytes) -> None:
        self.buffer += data
        while b"\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\n", 1)
            if line == b"bye":
                with self.hub.lock:
                    self.out.append(b"goodbye\n")
                    self.close_requested = True
            else:
                self.requests_served += 1
                self.hub.push_to_all(line + b"\n", but=self)

    def exchange(self, data: bytes) -> bytes:
        self.receive_data(data)
        return self.data_to_send()

    def receive_eof(self) -> None:
        with self.hub.lock:
            self.close_requested = True

    def abort(self, reason: CloseReason) -> None:
        with self.hub.lock:
            self.close_requested = True
            self.close_reason = reason

    def data_to_send(self) -> bytes:
        self.hub.threads.add(threading.get_ident())
        with self.hub.lock:
            data = b"".join(self.out)
            self.out.clear()
            return data

    def closed(self) -> None:
        with self.hub.lock:
            if self in self.hub.sessions:
                self.hub.sessions.remove(self)
            self.hub.closed.append(self)

    def server_stopping(self) -> None:
        with self.hub.lock:
            self.close_requested = True

    @property
    def should_close(self) -> bool:
        return self.close_requested

    @property
    def expects_unread_input(self) -> bool:
        return False

    @property
    def has_partial_message(self) -> bool:
        return bool(self.buffer)


def read_line(sock: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(1)
        if not chunk:
            return data
        data += chunk
    return data


def wait_for(predicate: object, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


@pytest.fixture
def remote() -> Iterator[socket.socket]:
    """A plain listening socket: the far end of a dial."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(WAIT_S)
    yield listener
    listener.close()


def start(model: str, hub: Hub) -> ServerHandle:
    """`model`, or `asyncio/asyncio`: the asyncio model on the standard loop (not uvloop)."""
    model, _, event_loop = model.partition("/")
    config = ServerConfig(
        port=0,
        shutdown_grace_s=0.5,
        session_factory=hub.make_session,
        event_loop=event_loop or "auto",
    )
    return serve(model, config)


def test_the_registry_names_the_models_that_adopt() -> None:
    assert ADOPTING == ["asyncio", "selectors", "threads"]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("model", LOOPS)
def test_a_dialled_connection_is_served_like_an_accepted_one(
    model: str, remote: socket.socket
) -> None:
    hub = Hub()
    with start(model, hub) as handle:
        dialled = connect_blocking(remote.getsockname(), timeout_s=WAIT_S, may_resolve=False)
        handle.adopt(dialled, RelaySession(hub, b"dialled"))
        far, _ = remote.accept()
        far.settimeout(WAIT_S)
        with far:
            # The session spoke first, on its own: the greeting needs no received byte.
            assert read_line(far) == b"hello from dialled\n"
            with socket.create_connection(handle.address, timeout=WAIT_S) as client:
                assert read_line(client) == b"hello from accepted\n"
                # Accepted -> dialled and back: each line crosses to the other connection.
                client.sendall(b"from the client\n")
                assert read_line(far) == b"from the client\n"
                far.sendall(b"from the dialled side\n")
                assert read_line(client) == b"from the dialled side\n"
                # The dialled connection closes as its session says, after its last bytes.
                far.sendall(b"bye\n")
                assert read_line(far) == b"goodbye\n"
                assert far.recv(100) == b""
                wait_for(lambda: len(hub.closed) == 1, "the dialled session was not closed")
                assert hub.closed[0].greeting == b"dialled"


@pytest.mark.timeout(30)
@pytest.mark.parametrize("model", LOOPS)
def test_bytes_pushed_from_another_thread_wake_the_runtime(model: str) -> None:
    hub = Hub()
    with start(model, hub) as handle:
        clients = [socket.create_connection(handle.address, timeout=WAIT_S) for _ in range(3)]
        try:
            for client in clients:
                assert read_line(client) == b"hello from accepted\n"
            wait_for(lambda: len(hub.sessions) == 3, "three sessions")
            # Not a runtime thread, and no client sent a byte: only the doorbell moves them.
            for n in range(50):
                hub.push_to_all(b"broadcast %d\n" % n)
            for client in clients:
                for n in range(50):
                    assert read_line(client) == b"broadcast %d\n" % n
        finally:
            for client in clients:
                client.close()
    assert threading.get_ident() not in hub.threads  # the runtime took the bytes itself


@pytest.mark.timeout(30)
@pytest.mark.parametrize("model", ADOPTING)
def test_a_session_closed_from_outside_sends_its_last_bytes_then_closes(model: str) -> None:
    hub = Hub()
    with (
        start(model, hub) as handle,
        socket.create_connection(handle.address, timeout=WAIT_S) as client,
    ):
        assert read_line(client) == b"hello from accepted\n"
        wait_for(lambda: len(hub.sessions) == 1, "one session")
        session = hub.sessions[0]
        with hub.lock:
            session.out.append(b"last words\n")
            session.close_requested = True
        session.ring()
        assert read_line(client) == b"last words\n"
        assert client.recv(100) == b""
        wait_for(lambda: hub.closed == [session], "the session was not closed")


@pytest.mark.timeout(30)
@pytest.mark.parametrize("model", ADOPTING)
def test_adopting_after_stop_closes_the_socket_and_the_session(
    model: str, remote: socket.socket
) -> None:
    hub = Hub()
    handle = start(model, hub)
    handle.stop()
    dialled = connect_blocking(remote.getsockname(), timeout_s=WAIT_S, may_resolve=False)
    session = RelaySession(hub, b"late")
    handle.adopt(dialled, session)
    assert dialled.fileno() == -1
    assert hub.closed == [session]


@pytest.mark.parametrize("model", sorted(set(RUNTIMES) - set(ADOPTING)))
def test_a_model_that_cannot_adopt_says_so(model: str, remote: socket.socket) -> None:
    with serve(model, ServerConfig(port=0)) as handle:
        dialled = connect_blocking(remote.getsockname(), timeout_s=WAIT_S, may_resolve=False)
        with pytest.raises(UsageError, match=r"cannot serve a connection it did not accept"):
            handle.adopt(dialled, RelaySession(Hub(), b"x"))
        assert dialled.fileno() == -1


def test_a_live_session_type_check() -> None:
    assert isinstance(RelaySession(Hub(), b"x"), LiveSession)


class Amplifier(RelaySession):
    """Answers every line with 1 KiB: a peer that never reads must not make it answer forever."""

    def receive_data(self, data: bytes) -> None:
        self.buffer += data
        lines = self.buffer.count(b"\n")
        self.buffer = self.buffer.rpartition(b"\n")[2]
        with self.hub.lock:
            self.requests_served += lines
            self.out.append(b"x" * 1023 * lines + b"\n")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("model", ADOPTING)
def test_a_peer_that_never_reads_stops_being_read(model: str) -> None:
    hub = Hub()

    def make_amplifier(
        framing: str, *, max_message_bytes: int, greet: bool, record_events: bool
    ) -> Amplifier:
        return Amplifier(hub, b"amplifier")

    make_amplifier.makes_live_sessions = True  # type: ignore[attr-defined]
    config = ServerConfig(
        port=0,
        shutdown_grace_s=0.5,
        session_factory=make_amplifier,
        send_buffer_bytes=4096,
        receive_buffer_bytes=4096,
    )
    with serve(model, config) as handle:
        client = socket.socket()
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        client.connect(handle.address)
        client.setblocking(False)
        line = b"y" * 99 + b"\n"
        sent = 0
        last_progress = time.monotonic()
        # Send without reading until the server stops taking lines for a second.
        while time.monotonic() - last_progress < 1.0:
            try:
                sent += client.send(line * 100)
                last_progress = time.monotonic()
            except BlockingIOError:
                time.sleep(0.01)
            assert sent < 50_000_000, "the server kept reading from a peer that never reads"
        wait_for(lambda: len(hub.sessions) == 1, "one session")
        session = hub.sessions[0]
        with hub.lock:
            served = session.requests_served
        client.close()
    # What it read is bounded by what its buffers hold, not by how long the peer keeps sending:
    # a few reads of at most 64 KiB (650 lines) each, before its answers filled every buffer.
    assert served < 5_000, f"{served} lines answered for a peer that reads nothing"


@pytest.mark.timeout(30)
@pytest.mark.parametrize("model", ADOPTING)
def test_stop_closes_dialled_connections_and_leaves_no_thread(
    model: str, remote: socket.socket
) -> None:
    start(model, Hub()).stop()  # one-time costs first (uvloop keeps a pipe for the process)
    threads_before = set(threading.enumerate())
    descriptors_before = psutil.Process().num_fds()
    hub = Hub()
    handle = start(model, hub)
    dialled = connect_blocking(remote.getsockname(), timeout_s=WAIT_S, may_resolve=False)
    handle.adopt(dialled, RelaySession(hub, b"dialled"))
    far, _ = remote.accept()
    far.settimeout(WAIT_S)
    with far, socket.create_connection(handle.address, timeout=WAIT_S) as client:
        assert read_line(far) == b"hello from dialled\n"
        assert read_line(client) == b"hello from accepted\n"
        handle.stop()
        assert far.recv(100) == b""
        assert client.recv(100) == b""
    assert sorted(s.greeting for s in hub.closed) == [b"accepted", b"dialled"]
    assert not hub.sessions
    wait_for(lambda: set(threading.enumerate()) <= threads_before, "a thread outlived stop()")
    assert psutil.Process().num_fds() == descriptors_before


class Talker(RelaySession):
    """Says 64 KiB at a time, 10 MiB in all, whether the peer reads or not (as a chat peer
    relays its buddies' messages to a buddy that stopped reading)."""

    def talk(self) -> None:
        for _ in range(160):
            with self.hub.lock:
                self.out.append(b"z" * 65_536)
            self.ring()
            time.sleep(0.005)  # paced: the runtime gets to take each chunk, if it will

    def waiting_bytes(self) -> int:
        with self.hub.lock:
            return sum(len(chunk) for chunk in self.out)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("model", ["asyncio", "selectors"])
def test_an_event_loop_takes_no_more_from_a_live_session_than_its_output_bound(
    model: str,
) -> None:
    # The threads model's writer blocks in send(), so it takes nothing more either; the event
    # loops must stop taking by themselves, or a peer that never reads would have them buffer
    # everything the session says (the session is where the protocol bounds it).
    hub = Hub()

    def make_talker(
        framing: str, *, max_message_bytes: int, greet: bool, record_events: bool
    ) -> Talker:
        return Talker(hub, b"talker")

    make_talker.makes_live_sessions = True  # type: ignore[attr-defined]
    config = ServerConfig(
        port=0,
        shutdown_grace_s=0.5,
        session_factory=make_talker,
        send_buffer_bytes=4096,
        max_buffered_output_bytes=64 * 1024,
    )
    with serve(model, config) as handle:
        client = socket.socket()
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        client.connect(handle.address)
        wait_for(lambda: len(hub.sessions) == 1, "one session")
        talker = hub.sessions[0]
        assert isinstance(talker, Talker)
        talker.talk()
        # Wait until the runtime stops taking (nothing moves for half a second).
        last, since = talker.waiting_bytes(), time.monotonic()
        deadline = time.monotonic() + 20
        while time.monotonic() - since < 0.5 and time.monotonic() < deadline:
            time.sleep(0.05)
            now_waiting = talker.waiting_bytes()
            if now_waiting != last:
                last, since = now_waiting, time.monotonic()
        taken = 160 * 65_536 - talker.waiting_bytes()
        # The output bound, one chunk taken past it and the socket buffers: far below 10 MiB.
        assert taken < 2 * 1024 * 1024, f"{taken:,} bytes taken for a peer that reads nothing"
        # Reading drains the rest: nothing was lost, the runtime takes it as the peer reads.
        client.settimeout(10)
        received = 0
        while received < 160 * 65_536 + len(b"hello from talker\n"):
            chunk = client.recv(1 << 20)
            assert chunk, "the server closed before sending everything"
            received += len(chunk)
        client.close()
