"""What both chat drivers share: the listening socket, the node behind a lock, the user's verbs.

A `ChatPeer` wraps one `ChatNode` (protocol/chat/node.py). Every call into the node happens under
one lock, from whichever thread has something to say (a reader thread, the selector loop, the
user's input); after each call `_pump_locked` carries out what the node asked for: dial, queue
bytes, close, show events. The drivers (`threaded.py`, `selector_loop.py`) differ only in how
they wait for sockets, which is the lecture's point: a thread per socket, or one selector.

Call order for the user of a peer:

    peer = start_chat_peer(model, config, observer)   # bound and listening, serving in threads
    peer.send_text(...) | peer.rename(...) | peer.buddies() ...
    peer.leave(grace_s); peer.wait(timeout_s)          # orderly: acknowledgements, then bye
    peer.stop()                                        # always: closes whatever is left

`observer` is called with each `ChatEvent`, in order, under the lock: it must only show
things (print, queue), never call back into the peer.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field

from socklab.protocol.chat import (
    BuddyInfo,
    ChatEvent,
    ChatNode,
    ChatSettings,
    CloseConnection,
    Dial,
    SendResult,
)
from socklab.runtimes.config import ServerConfig
from socklab.runtimes.listening import bound_address, open_listening_socket
from socklab.runtimes.oserrors import translate_oserror

ChatObserver = Callable[[ChatEvent], None]

RECEIVE_BYTES = 64 * 1024
# Bytes queued for a buddy that does not read before we give up on it: 64 frames of the
# largest size, far more than any human types (asyncio's high-water mark is 64 KiB).
MAX_OUTBOX_BYTES = 4 * 1024 * 1024
# After our last bytes and a FIN, wait this long for the buddy's FIN before closing: closing
# with unread data makes the kernel send RST, which can destroy the bye we just sent.
LINGER_S = 2.0
# A blocking send that makes no progress for this long means the buddy stopped reading.
WRITE_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class ChatConfig:
    name: str
    listen_host: str = "127.0.0.1"
    listen_port: int = 0
    peers: tuple[tuple[str, int], ...] = ()
    settings: ChatSettings = field(default_factory=ChatSettings)
    connect_timeout_s: float = 5.0


@dataclass(slots=True)
class PeerConnection:
    """A driver's view of one socket; the node knows it by `cid`."""

    cid: int
    sock: socket.socket
    outbox: bytearray = field(default_factory=bytearray)
    close_requested: bool = False
    write_done: bool = False  # our FIN is sent (after close_requested and an empty outbox)
    eof: bool = False
    linger_until: float | None = None
    closed: bool = False


def dial_target(action: Dial) -> tuple[int, int, int, tuple[object, ...]]:
    """Family, type, protocol and socket address for a Dial; raises OSError (socket.gaierror).

    An address learned from a buddy goes to getaddrinfo() with AI_NUMERICHOST, so even if a
    host name slipped through, it is refused here instead of becoming a DNS query the buddy
    chose; only an address the user typed (`may_resolve`) is looked up.
    """
    flags = 0 if action.may_resolve else socket.AI_NUMERICHOST
    infos = socket.getaddrinfo(*action.address, type=socket.SOCK_STREAM, flags=flags)
    family, kind, proto, _canonical, sockaddr = infos[0]
    return family, kind, proto, tuple(sockaddr)


def peer_address_of(sock: socket.socket) -> tuple[str, int] | None:
    """The connected socket's remote IP and port (the fact the node judges introductions by)."""
    try:
        remote = sock.getpeername()
    except OSError:
        return None
    return str(remote[0]), int(remote[1])


class ChatPeer(ABC):
    """One running chat peer; thread-safe verbs for the user, a driver underneath."""

    model = "?"

    def __init__(self, config: ChatConfig, observer: ChatObserver) -> None:
        self.config = config
        self._observer = observer
        self._lock = threading.RLock()
        self._finished = threading.Event()
        self._stopping = threading.Event()
        self._listener = open_listening_socket(
            ServerConfig(host=config.listen_host, port=config.listen_port, backlog=64)
        )
        self.address = bound_address(self._listener)
        now = time.monotonic()
        self.node = ChatNode(
            config.name,
            secrets.token_hex(8),
            self.address,
            now=now,
            wall_clock_offset_s=time.time() - now,
            settings=config.settings,
        )
        self._connections: dict[int, PeerConnection] = {}

    # -- the user's verbs (any thread) -------------------------------------------------------
    def start(self) -> None:
        self._start_driver()
        with self._lock:
            for address in self.config.peers:
                self.node.add_peer(address, time.monotonic())
            self._pump_locked()

    def send_text(self, text: str, to: str | None = None) -> SendResult:
        with self._lock:
            result = self.node.send_text(text, time.monotonic(), to)
            self._pump_locked()
            return result

    def rename(self, name: str) -> None:
        with self._lock:
            self.node.rename(name, time.monotonic())
            self._pump_locked()

    def add_peer(self, address: tuple[str, int]) -> None:
        with self._lock:
            self.node.add_peer(address, time.monotonic())
            self._pump_locked()

    def buddies(self) -> list[BuddyInfo]:
        with self._lock:
            return self.node.buddies()

    @property
    def name(self) -> str:
        with self._lock:
            return self.node.name

    @property
    def is_settled(self) -> bool:
        with self._lock:
            return self.node.is_settled

    def leave(self, grace_s: float) -> None:
        """Wait up to `grace_s` for acknowledgements, then say bye (returns at once)."""
        with self._lock:
            self.node.leave(time.monotonic(), grace_s)
            self._pump_locked()

    def wait(self, timeout_s: float | None = None) -> bool:
        """True once the peer has left and every connection is closed."""
        return self._finished.wait(timeout_s)

    def stop(self) -> None:
        """Close everything now (after leave() and wait(), nothing is left to close)."""
        self._stopping.set()
        with self._lock:
            for conn in list(self._connections.values()):
                self._close_locked(conn, "stopped")
            self._pump_locked()
        self._stop_driver()
        self._listener.close()

    # -- for the drivers (hold the lock) -----------------------------------------------------
    @abstractmethod
    def _start_driver(self) -> None: ...

    @abstractmethod
    def _stop_driver(self) -> None: ...

    @abstractmethod
    def _start_dial(self, action: Dial) -> None:
        """Begin connecting; later call `_dial_succeeded` or `_dial_failed` under the lock."""

    @abstractmethod
    def _output_changed(self) -> None:
        """Outboxes or close requests changed: wake whoever writes."""

    @abstractmethod
    def _forget_socket(self, sock: socket.socket) -> None:
        """The socket is about to be closed: drop any registration the driver holds for it."""

    def _register(self, conn: PeerConnection) -> None:
        self._connections[conn.cid] = conn

    def _accepted_locked(self, sock: socket.socket, address: tuple[str, int]) -> PeerConnection:
        cid = self.node.connection_accepted((str(address[0]), int(address[1])), time.monotonic())
        conn = PeerConnection(cid, sock)
        self._register(conn)
        return conn

    def _dial_succeeded_locked(self, cid: int, sock: socket.socket) -> PeerConnection | None:
        if not self.node.connection_made(cid, time.monotonic(), peer_address_of(sock)):
            sock.close()
            return None
        conn = PeerConnection(cid, sock)
        self._register(conn)
        return conn

    def _dial_failed_locked(self, cid: int, exc: OSError, address: tuple[str, int]) -> None:
        error = translate_oserror(exc, host=address[0], port=address[1])
        self.node.connect_failed(cid, str(error), time.monotonic())

    def _received_locked(self, conn: PeerConnection, data: bytes) -> None:
        if conn.closed or conn.cid not in self._connections:
            return
        now = time.monotonic()
        if data:
            self.node.receive_data(conn.cid, data, now)
            return
        conn.eof = True
        self.node.receive_eof(conn.cid, now)
        if conn.write_done:
            self._close_locked(conn)

    def _sent_everything_locked(self, conn: PeerConnection) -> None:
        """The outbox is empty and a close was requested: send FIN, linger for the buddy's."""
        if conn.closed or conn.write_done:
            return
        conn.write_done = True
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._close_locked(conn)
            return
        if conn.eof:
            self._close_locked(conn)
        else:
            conn.linger_until = time.monotonic() + LINGER_S

    def _close_locked(self, conn: PeerConnection, detail: str = "") -> None:
        if conn.closed:
            return
        conn.closed = True
        self._connections.pop(conn.cid, None)
        self._forget_socket(conn.sock)
        # shutdown() wakes a thread blocked in recv(); it fails on a socket already reset.
        with contextlib.suppress(OSError):
            conn.sock.shutdown(socket.SHUT_RDWR)
        conn.sock.close()
        self.node.connection_closed(conn.cid, time.monotonic(), detail)

    def _tick_locked(self) -> float:
        """Run timers; returns seconds until the next one (bounded, so stop is noticed)."""
        now = time.monotonic()
        self.node.tick(now)
        for conn in list(self._connections.values()):
            if conn.linger_until is not None and now >= conn.linger_until:
                self._close_locked(conn)
        self._pump_locked()
        deadline = self.node.next_deadline()
        lingering = [c.linger_until for c in self._connections.values() if c.linger_until]
        if lingering:
            deadline = min([deadline, *lingering]) if deadline is not None else min(lingering)
        wait_s = 0.5 if deadline is None else deadline - time.monotonic()
        return min(max(wait_s, 0.01), 0.5)

    def _pump_locked(self) -> None:
        """Carry out the node's actions, move its bytes to outboxes, show its events."""
        for _round in range(8):  # closing a socket can produce new events; a few rounds settle it
            actions = self.node.take_actions()
            for action in actions:
                if isinstance(action, Dial):
                    self._start_dial(action)
                else:
                    assert isinstance(action, CloseConnection)
                    conn = self._connections.get(action.cid)
                    if conn is not None:
                        conn.close_requested = True
            for conn in list(self._connections.values()):
                data = self.node.data_to_send(conn.cid)
                if data and not conn.write_done:
                    conn.outbox += data
                if len(conn.outbox) > MAX_OUTBOX_BYTES:
                    conn.outbox.clear()
                    self._close_locked(conn, "the buddy does not read its messages")
            events = self.node.take_events()
            for event in events:
                self._observer(event)
            if not actions and not events:
                break
        self._output_changed()
        if self.node.finished:
            self._finished.set()
