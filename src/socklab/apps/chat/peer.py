"""The chat peer, served by a shared runtime: the node behind a lock, one session per socket.

The pure `ChatNode` (protocol/chat/node.py) decides everything: whom to dial, what each socket
carries, when one closes. This module only connects it to a runtime (`runtimes.RUNTIMES`):

- every socket, accepted or dialled, is served by the runtime with a `ChatConnection`, a
  `LiveSession` whose four verbs call into the node under the peer's one lock;
- the node's `Dial` actions become `dial_in_background()` threads whose sockets are handed to
  the runtime with `handle.adopt()`;
- a timer thread runs the node's deadlines (keepalive, handshake, reconnect, leaving).

Cross-connection sends: anything that changes the node (bytes received on one socket, the user
typing, a tick) may give *other* sockets something to send (a relayed introduction, a broadcast
message, a bye). After every call into the node, under the lock, `_pump_locked` rings the
doorbell (`wake()`) of each connection the node has bytes for, or wants closed. `wake()` is
the runtime's, thread-safe and non-blocking; the runtime then takes the bytes with
`data_to_send()` in its own thread and sends them under its own backpressure and write deadline.
The bytes wait in the node's per-socket session until then, never in a second buffer.

Call order for the user of a peer:

    peer = start_chat_peer(model, config, observer)   # bound and listening, served by the runtime
    peer.send_text(...) | peer.rename(...) | peer.buddies() ...
    peer.leave(grace_s); peer.wait(timeout_s)          # orderly: acknowledgements, then bye
    peer.stop()                                        # always: closes whatever is left

`observer` is called with each `ChatEvent`, in order, under the lock: it must only show
things (print, queue), never call back into the peer.
"""

from __future__ import annotations

import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from socklab.errors import (
    HostNotFoundError,
    NetworkError,
    NetworkTimeoutError,
    RefusedError,
    UnreachableError,
)
from socklab.i18n import Deferred, lazy_gettext
from socklab.protocol.chat import (
    BuddyInfo,
    ChatEvent,
    ChatNode,
    ChatSettings,
    CloseConnection,
    Dial,
    SendResult,
)
from socklab.protocol.chat.frames import MAX_FRAME_BYTES
from socklab.protocol.closing import CloseReason
from socklab.protocol.framing import FramingName
from socklab.protocol.live_session import Wake
from socklab.runtimes import RUNTIMES, ServerConfig, ServerHandle, connections
from socklab.runtimes.dialing import dial_in_background
from socklab.runtimes.oserrors import translate_oserror


@dataclass(frozen=True, slots=True)
class ChatConfig:
    name: str
    listen_host: str = "127.0.0.1"
    listen_port: int = 0
    peers: tuple[tuple[str, int], ...] = ()
    settings: ChatSettings = field(default_factory=ChatSettings)
    connect_timeout_s: float = 5.0


ChatObserver = Callable[[ChatEvent], None]

# The runtime's deadlines, for chat sockets. Idle: the node's keepalive (a ping every 5 s, gone
# after 15 s of silence) ends a quiet buddy long before; this only catches what it cannot.
IDLE_TIMEOUT_S = 60.0
# A buddy that does not read its messages for this long is disconnected (and reconnected).
WRITE_TIMEOUT_S = 10.0
# After our last bytes and a FIN, the runtime waits this long for the buddy's FIN before
# closing (a lingering close): closing with unread data makes the kernel send RST, which can
# destroy the bye we just sent.
LINGER_S = connections.LINGER_S
# stop(): what is queued gets this long to go out.
SHUTDOWN_GRACE_S = 1.0
# The timer thread wakes at least this often, so a stop is noticed.
MAX_TIMER_WAIT_S = 0.5


class ChatConnection:
    """The `LiveSession` of one chat socket: a connection id of the node, and nothing else.

    Made by the runtime for an accepted socket (the factory `ChatPeer.make_session`), or by the
    peer for a dialled one (then handed to `adopt()`). Every verb takes the peer's lock.
    """

    __slots__ = (
        "_peer",
        "_wake",
        "cid",
        "close_reason",
        "close_requested",
        "requests_served",
        "stopped",
    )

    def __init__(self, peer: ChatPeer, cid: int | None) -> None:
        self._peer = peer
        self.cid = cid  # None until an accepted socket is known to the node
        self._wake: Wake | None = None
        self.close_requested = False
        self.stopped = False  # the runtime is stopping (the peer's stop())
        self.requests_served = 0
        self.close_reason: CloseReason | None = None  # set when the runtime ends it (abort)

    # -- LiveSession ------------------------------------------------------------------------------
    def connection_made(self, peer: tuple[str, int], wake: Wake) -> None:
        self._wake = wake
        self._peer.connection_made(self, peer)

    def wake(self) -> None:
        if self._wake is not None:
            self._wake()

    def receive_data(self, data: bytes) -> None:
        self._peer.received(self, data)

    def exchange(self, data: bytes) -> bytes:
        self.receive_data(data)
        return self.data_to_send()

    def receive_eof(self) -> None:
        self._peer.received(self, b"")

    def data_to_send(self) -> bytes:
        return self._peer.data_for(self)

    def closed(self) -> None:
        self._peer.connection_closed(self)

    def server_stopping(self) -> None:
        self.stopped = self.close_requested = True

    def abort(self, reason: CloseReason) -> None:
        """The runtime ends the connection (a deadline passed): the chat frames no notice for
        it; the node hears of the close in `closed()`, as for any lost buddy."""
        self.close_requested = True
        self.close_reason = reason

    @property
    def should_close(self) -> bool:
        return self.close_requested

    @property
    def expects_unread_input(self) -> bool:
        # Always a lingering close: the buddy answers our bye with its own, or still sends.
        return self.close_requested

    @property
    def has_partial_message(self) -> bool:
        return self._peer.has_partial_frame(self)


class ChatPeer:
    """One running chat peer: thread-safe verbs for the user, a shared runtime underneath."""

    def __init__(self, model: str, config: ChatConfig, observer: ChatObserver) -> None:
        self.model = model
        self.config = config
        self._observer = observer
        self._lock = threading.RLock()
        self._finished = threading.Event()
        self._stopping = threading.Event()
        self._sessions: dict[int, ChatConnection] = {}
        # The runtime starts serving at once; its first connection waits for the node under
        # the lock, which is made once the runtime knows its address.
        with self._lock:
            self._handle: ServerHandle = RUNTIMES[model].serve(
                ServerConfig(
                    host=config.listen_host,
                    port=config.listen_port,
                    framing="length",
                    max_message_bytes=MAX_FRAME_BYTES,
                    backlog=64,
                    idle_timeout_s=IDLE_TIMEOUT_S,
                    write_timeout_s=WRITE_TIMEOUT_S,
                    shutdown_grace_s=SHUTDOWN_GRACE_S,
                    session_factory=self._make_session,
                )
            )
            self.address = self._handle.address
            now = time.monotonic()
            self.node = ChatNode(
                config.name,
                secrets.token_hex(8),
                self.address,
                now=now,
                wall_clock_offset_s=time.time() - now,
                settings=config.settings,
            )
        self._timer = threading.Thread(target=self._run_timers, name="chat-timers", daemon=True)

    # -- the user's verbs (any thread) -------------------------------------------------------
    def start(self) -> None:
        self._timer.start()
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
        self._handle.stop()
        if self._timer.is_alive() and self._timer is not threading.current_thread():
            self._timer.join(2 * MAX_TIMER_WAIT_S)

    # -- for the sessions (the runtime's threads) -------------------------------------------
    def _make_session(
        self, framing: FramingName, *, max_message_bytes: int, greet: bool, record_events: bool
    ) -> ChatConnection:
        return ChatConnection(self, None)

    _make_session.makes_live_sessions = True  # type: ignore[attr-defined]

    def connection_made(self, session: ChatConnection, address: tuple[str, int]) -> None:
        with self._lock:
            now = time.monotonic()
            if session.cid is None:
                session.cid = self.node.connection_accepted(address, now)
            elif not self.node.connection_made(session.cid, now, address):
                session.close_requested = True
                self._sessions.pop(session.cid, None)
                session.cid = None
            if session.cid is not None:
                self._sessions[session.cid] = session
            self._pump_locked()
            session.wake()

    def received(self, session: ChatConnection, data: bytes) -> None:
        with self._lock:
            cid = session.cid
            if cid is None or self._sessions.get(cid) is not session:
                return
            if data:
                self.node.receive_data(cid, data, time.monotonic())
            else:
                self.node.receive_eof(cid, time.monotonic())
            self._pump_locked()

    def data_for(self, session: ChatConnection) -> bytes:
        with self._lock:
            if session.cid is None:
                return b""
            return self.node.data_to_send(session.cid)

    def has_partial_frame(self, session: ChatConnection) -> bool:
        with self._lock:
            return session.cid is not None and self.node.has_partial_frame(session.cid)

    def connection_closed(self, session: ChatConnection) -> None:
        with self._lock:
            cid = session.cid
            if cid is None:
                return
            session.cid = None
            if self._sessions.get(cid) is session:
                del self._sessions[cid]
                # Unless stopped: closed without an end of stream first, so reset, broken, or
                # timed out by the runtime (a reason the runtime does not pass to sessions yet).
                detail = (
                    lazy_gettext("stopped")
                    if session.stopped
                    else lazy_gettext("the connection broke")
                )
                self.node.connection_closed(cid, time.monotonic(), detail)
            else:  # a dialled socket the runtime never served (it was stopping)
                self.node.connect_failed(cid, "stopped", time.monotonic())
            self._pump_locked()

    # -- dialling -----------------------------------------------------------------------------
    def _start_dial(self, action: Dial) -> None:
        def connected(sock: socket.socket) -> None:
            # Served from now on by the runtime; the node hears of it in connection_made().
            self._handle.adopt(sock, ChatConnection(self, action.cid))

        def failed(exc: OSError) -> None:
            error = translate_oserror(exc, host=action.address[0], port=action.address[1])
            with self._lock:
                self.node.connect_failed(action.cid, _dial_failure(error), time.monotonic())
                self._pump_locked()

        dial_in_background(
            action.address,
            timeout_s=self.config.connect_timeout_s,
            may_resolve=action.may_resolve,
            connected=connected,
            failed=failed,
            name=f"chat-dial-{action.cid}",
        )

    # -- timers and the pump ----------------------------------------------------------------------
    def _run_timers(self) -> None:
        while not self._stopping.is_set():
            with self._lock:
                now = time.monotonic()
                self.node.tick(now)
                self._pump_locked()
                deadline = self.node.next_deadline()
            wait_s = MAX_TIMER_WAIT_S if deadline is None else deadline - time.monotonic()
            self._stopping.wait(min(max(wait_s, 0.01), MAX_TIMER_WAIT_S))

    def _pump_locked(self) -> None:
        """Carry out the node's actions, wake the sockets it has bytes for, show its events."""
        for _round in range(8):  # a close can produce new events; a few rounds settle it
            actions = self.node.take_actions()
            for action in actions:
                if isinstance(action, Dial):
                    if not self._stopping.is_set():
                        self._start_dial(action)
                    else:
                        self.node.connect_failed(action.cid, "stopped", time.monotonic())
                else:
                    assert isinstance(action, CloseConnection)
                    session = self._sessions.get(action.cid)
                    if session is not None and not session.close_requested:
                        session.close_requested = True
                        session.wake()
            events = self.node.take_events()
            for event in events:
                self._observer(event)
            if not actions and not events:
                break
        for cid, session in self._sessions.items():
            if self.node.has_data_to_send(cid):
                session.wake()
        if self.node.finished:
            self._finished.set()


def _dial_failure(error: NetworkError) -> str:
    """Why a dial failed, in words the chat translates when it shows them (the system's own
    text, such as strerror, for the rarer errors)."""
    words: Deferred | None = None
    if isinstance(error, RefusedError):
        words = lazy_gettext("connection refused")
    elif isinstance(error, NetworkTimeoutError):
        words = lazy_gettext("no answer in time")
    elif isinstance(error, HostNotFoundError):
        words = lazy_gettext("host not found")
    elif isinstance(error, UnreachableError):
        words = lazy_gettext("no route to it")
    return words if words is not None else str(error)
