"""selectors model: one thread, non-blocking sockets, and a selector that says which are ready.

The lecture's alternative to threads: ask the operating system which sockets can be read or
written without blocking (`selectors.DefaultSelector`: epoll on Linux, kqueue on macOS, select
on Windows), and handle just those. Each connection's state travels in its selector key's
`data`: the session, the output not yet sent, and the deadline counters. As in the asyncio
model, the greeting is encoded once per server and a session is made by a connection's first
byte, so 10,000 silent clients cost one small object each.

    select() -> listener readable   -> accept() (busy beyond max_clients, or out of
                                       descriptors: the spare one), register the socket
             -> connection readable -> recv -> session -> send what fits, keep the rest
             -> connection writable -> send the rest; close when the session said so
             -> wake-up readable    -> a stop was requested
    every second: the deadline sweep

Backpressure: output the peer does not read stays in the connection's buffer. Once the replies
to one more read (up to 64 KiB, replies up to 3 times that) might not fit under
`max_buffered_output_bytes`, the connection is no longer selected for reading, so it cannot make
us produce more, until the buffer has drained to half that level. If nothing at all could be sent
for `write_timeout_s`, the connection is closed.

Live sessions (`protocol/live_session.py`, the chat's): made when the connection opens, and told
their doorbell. `wake()` from any thread queues the connection on `_woken` (a deque: appends are
atomic) and, from another thread, writes the wake-up byte; after each turn the loop takes what
each woken session has to send, under the same backpressure. `adopt()` hands the loop a socket
this program connected (a dial): queued the same way, then served like an accepted one, except
that it takes no --max-clients slot (the program chose to open it).

    wake-up readable -> a stop was requested, a session was woken, or a socket adopted
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
import time
from collections import deque

from socklab.protocol.closing import CloseReason
from socklab.protocol.live_session import LiveSession, makes_live_sessions
from socklab.protocol.session import Session, greeting_of
from socklab.runtimes.config import (
    ConnectionClosed,
    ConnectionOpened,
    ConnectionRefusedBusy,
    ServerConfig,
)
from socklab.runtimes.connections import (
    EVENT_LOOP_MAX_CLIENTS,
    RECEIVE_BYTES,
    Admission,
    Lingering,
    SpareDescriptor,
    WritingDeadlines,
    closing_reason,
    configure_accepted_socket_safely,
    notice_for_config,
    notify,
    peer_of,
    recover_from_accept_error,
    refuse_busy,
    report_requests,
    report_stalled_message,
    resolve_client_limits,
    stop_timeout_s,
    watch_requests,
)
from socklab.runtimes.datagrams import DATAGRAM_BUDGET, answer_pending_datagrams
from socklab.runtimes.deadlines import SWEEP_INTERVAL_S
from socklab.runtimes.handle import ServerHandle
from socklab.runtimes.listening import (
    bound_address,
    open_datagram_socket,
    open_listening_socket,
)

# Connections accepted per readiness event of the listener, so a connection storm cannot starve
# the clients already connected.
ACCEPT_BATCH = 64

# Replies can be up to 3 times their request: UTF-8 case mapping grows `ΐ` (2 bytes) to 6.
REPLY_GROWTH = 3

# key.data of the two sockets that are not connections.
_LISTENER = "listener"
_WAKEUP = "wakeup"

_READ = selectors.EVENT_READ
_WRITE = selectors.EVENT_WRITE


class _Connection(WritingDeadlines):
    """What the selector key's `data` holds for one client; it is its own deadline counter."""

    __slots__ = (
        "adopted",
        "bytes_received",
        "closing",
        "ending",
        "interest",
        "lingering",
        "output",
        "peer",
        "session",
        "sock",
    )

    def __init__(self, sock: socket.socket, peer: tuple[str, int], config: ServerConfig) -> None:
        WritingDeadlines.__init__(self, config)
        self.sock = sock
        self.peer = peer
        self.session: Session | None = None  # made by the first byte received
        self.output = bytearray()
        self.bytes_received = 0
        self.closing = False  # send what is buffered, then close; read nothing more
        # Why the server ends it, when the server decided (a deadline, the stop); else the
        # session's reason (or the peer's) applies.
        self.ending: CloseReason | None = None
        self.interest = 0
        # Set once the sending side is shut down after a refusal: reads are drained, not served.
        self.lingering: Lingering | None = None
        self.adopted = False  # a dialled socket: it holds no admission slot


class SelectorServer(ServerHandle):
    """The converter served by one selector loop in a background thread."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        # -v: sessions report each request, and the sweep names a message left unfinished.
        self._reporting = config.observer is not None
        self._spare: SpareDescriptor | None = None
        if config.transport == "udp":
            self._sock = open_datagram_socket(config)
        else:
            self._limits = resolve_client_limits(config, EVENT_LOOP_MAX_CLIENTS)
            self._admission = Admission(config, self._limits)
            self._sock = open_listening_socket(config)
            try:
                self._spare = SpareDescriptor()
            except BaseException:
                self._sock.close()
                raise
        super().__init__(bound_address(self._sock))
        if config.transport != "udp":
            self.client_limits = self._limits
            self.alerts.append(self._admission.descriptor_alert)
        # The self-pipe trick: request_stop() writes a byte, which makes select() return.
        self._wakeup_receiver, self._wakeup_sender = socket.socketpair()
        self._wakeup_receiver.setblocking(False)
        self._wakeup_sender.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._connections: set[_Connection] = set()
        self._stop_requested = False
        self._stopping = False
        self._stop_deadline = float("inf")
        self._accept_paused_until = 0.0
        self._live = makes_live_sessions(config.session_factory)
        self._greeting = (
            b""
            if self._live
            else greeting_of(config.session_factory, config.framing, config.max_message_bytes)
        )
        self._woken: deque[_Connection] = deque()
        self._adopted: deque[tuple[socket.socket, LiveSession]] = deque()
        self._adopt_lock = threading.Lock()
        self._adopting = True  # False once the loop has ended: adopt() closes at once
        self._loop_thread_id: int | None = None
        self.start_thread(f"socklab-selectors-{self.address[1]}")

    def stop(self, timeout_s: float | None = None) -> None:
        super().stop(stop_timeout_s(self.config) if timeout_s is None else timeout_s)

    def request_stop(self) -> None:
        self._stop_requested = True
        self._ring()

    def _ring(self) -> None:
        """Make select() return (the self-pipe trick); a full pipe already has a byte waiting."""
        with contextlib.suppress(OSError):  # full, or the loop already ended and closed the pair
            self._wakeup_sender.send(b"\0")

    def adopt(self, sock: socket.socket, session: LiveSession) -> None:
        with self._adopt_lock:
            if self._adopting and not self._stop_requested:
                self._adopted.append((sock, session))
                self._ring()
                return
        sock.close()
        session.closed()

    def _wake_for(self, conn: _Connection) -> None:
        """The doorbell handed to a live session: thread-safe, never blocks."""
        self._woken.append(conn)
        if threading.get_ident() != self._loop_thread_id:
            self._ring()

    # -- the loop ---------------------------------------------------------------------------------
    def run(self) -> None:
        selector = self._selector
        self._loop_thread_id = threading.get_ident()
        try:
            selector.register(self._wakeup_receiver, selectors.EVENT_READ, _WAKEUP)
            selector.register(self._sock, selectors.EVENT_READ, _LISTENER)
            next_sweep = time.monotonic() + SWEEP_INTERVAL_S
            while True:
                if self._stop_requested and not self._stopping:
                    self._begin_stop()
                now = time.monotonic()
                if self._stopping and (not self._connections or now >= self._stop_deadline):
                    break
                until = min(next_sweep, self._stop_deadline)
                # Sessions woken by the loop itself (a close, the sweep) must not wait a turn.
                wait_s = 0.0 if self._woken or self._adopted else max(0.0, until - now)
                for key, mask in selector.select(wait_s):
                    data = key.data
                    if data.__class__ is _Connection:  # the usual case, inline
                        if mask & _WRITE:
                            self._write_ready(data)
                            if mask & _READ and data in self._connections:
                                self._read_ready(data)
                        else:
                            self._read_ready(data)
                    else:
                        self._handle_other(data)
                if self._adopted:
                    self._serve_adopted()
                while self._woken:
                    self._flush_live(self._woken.popleft())
                now = time.monotonic()
                if now >= next_sweep:
                    next_sweep = now + SWEEP_INTERVAL_S
                    self._sweep(now)
        finally:
            self._close_everything()

    def _handle_other(self, data: object) -> None:
        """The listener or the wake-up socket is ready."""
        if data is _LISTENER:
            if self.config.transport == "udp":
                answer_pending_datagrams(
                    self._sock,
                    self.stats,
                    self.config.datagram_handler,
                    DATAGRAM_BUDGET,
                    self.config.observer,
                )
            else:
                self._accept_ready()
        else:
            with contextlib.suppress(OSError):  # the wake-up byte of request_stop()
                self._wakeup_receiver.recv(64)

    def _accept_ready(self) -> None:
        config = self.config
        for _ in range(ACCEPT_BATCH):
            try:
                sock, address = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                assert self._spare is not None
                backoff_s, refused = recover_from_accept_error(
                    exc, self._sock, config, self._admission, self._spare
                )
                if refused:
                    self.stats.connections_refused_busy += 1
                    continue  # the next waiting client may find a descriptor freed meanwhile
                if backoff_s:
                    # Out of descriptors: stop watching the listener until the backoff is over.
                    self._selector.unregister(self._sock)
                    self._accept_paused_until = time.monotonic() + backoff_s
                    return
                continue
            peer = peer_of(address)
            if not self._admission.admit(len(self._connections), peer[0]):
                self.stats.connections_refused_busy += 1
                refuse_busy(sock, config)
                notify(config, ConnectionRefusedBusy(peer))
                continue
            sock.setblocking(False)
            configure_accepted_socket_safely(sock, self.config)
            conn = _Connection(sock, peer, config)
            self._connections.add(conn)
            self.stats.connections_accepted += 1
            self.stats.connections_active += 1
            notify(config, ConnectionOpened(peer))
            if self._live:
                session = config.session_factory(
                    config.framing,
                    max_message_bytes=config.max_message_bytes,
                    greet=True,
                    record_events=False,
                )
                assert isinstance(session, LiveSession)
                self._start_live(conn, session)
            else:
                self._queue_output(conn, self._greeting)

    # -- live sessions and adopted sockets ------------------------------------------------------
    def _serve_adopted(self) -> None:
        while self._adopted:
            sock, session = self._adopted.popleft()
            try:
                sock.setblocking(False)
                peer = peer_of(sock.getpeername())
            except OSError:  # reset before we got to it
                sock.close()
                session.closed()
                continue
            configure_accepted_socket_safely(sock, self.config)
            conn = _Connection(sock, peer, self.config)
            conn.adopted = True
            self._connections.add(conn)
            self.stats.connections_active += 1
            notify(self.config, ConnectionOpened(peer))
            self._start_live(conn, session)

    def _start_live(self, conn: _Connection, session: LiveSession) -> None:
        conn.session = session
        session.connection_made(conn.peer, lambda: self._wake_for(conn))
        self._flush_live(conn)

    def _flush_live(self, conn: _Connection) -> None:
        """Send what a woken live session has to say; close when it says so."""
        session = conn.session
        if conn not in self._connections or conn.closing or session is None:
            return
        if len(conn.output) > self.config.max_buffered_output_bytes:
            # Backpressure: the peer does not read what we queued. The bytes stay in the
            # session, which bounds them (DESIGN: a peer that never reads cannot make us
            # buffer without bound); `_write_ready` takes them once the queue drains.
            return
        out = session.data_to_send()
        if session.should_close:
            conn.closing = True
        self._queue_output(conn, out)

    def _read_ready(self, conn: _Connection) -> None:
        try:
            data = conn.sock.recv(RECEIVE_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(conn, CloseReason.RESET)
            return
        if conn.lingering is not None:
            if not conn.lingering.drained(len(data)):
                self._close(conn, self._reason(conn))
            return
        session = conn.session
        if session is None:
            if not data:
                # It never sent a byte: nothing to answer, no session to make just to close it.
                self._close(conn, CloseReason.PEER_EOF)
                return
            config = self.config
            session = conn.session = watch_requests(
                config,
                config.session_factory(
                    config.framing,
                    max_message_bytes=config.max_message_bytes,
                    greet=False,
                    record_events=False,
                ),
            )
        if data:
            conn.bytes_received += len(data)
            out = session.exchange(data)
        else:
            session.receive_eof()
            out = session.data_to_send()
        if self._reporting:
            report_requests(self.config, conn.peer, session)
        if session.should_close:
            conn.closing = True
        self._queue_output(conn, out)

    def _write_ready(self, conn: _Connection) -> None:
        try:
            sent = conn.sock.send(conn.output)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(conn, CloseReason.RESET)
            return
        if sent:
            conn.sent_since_sweep = True
            del conn.output[:sent]
            if not conn.output and (self._live or conn.adopted) and not conn.closing:
                self._flush_live(conn)  # what a live session held back while the peer lagged
                return
        self._update_interest(conn)

    def _queue_output(self, conn: _Connection, data: bytes) -> None:
        """Send `data` now if the socket takes it (the usual case), buffer the rest."""
        if data and not conn.output:
            try:
                sent = conn.sock.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                self._close(conn, CloseReason.RESET)
                return
            if sent:
                conn.sent_since_sweep = True
                if sent == len(data):
                    if conn.interest == _READ and not conn.closing:
                        return  # the usual case: all sent, keep reading as before
                    data = b""
                else:
                    data = data[sent:]
        if data:
            conn.output += data
            if len(conn.output) > self.stats.largest_output_queue_bytes:
                self.stats.largest_output_queue_bytes = len(conn.output)
        self._update_interest(conn)

    def _update_interest(self, conn: _Connection) -> None:
        """Register for what the connection waits for now; close it when it waits for nothing."""
        if conn.interest == _READ and not conn.output and not conn.closing:
            return  # the usual case: everything was sent, keep reading
        if conn.closing and not conn.output:
            session = conn.session
            if conn.lingering is None and session is not None and session.expects_unread_input:
                self._linger(conn)
            else:
                self._close(conn, self._reason(conn))
            return
        # Read only while the replies to one more read still fit under the bound.
        pause_above = max(0, self.config.max_buffered_output_bytes - REPLY_GROWTH * RECEIVE_BYTES)
        buffered = len(conn.output)
        reading = bool(conn.interest & _READ) or not conn.interest
        if conn.closing or buffered > pause_above:
            reading = False  # backpressure: the peer must read before we read its requests
        elif buffered <= pause_above // 2:
            reading = True
        interest = (_READ if reading else 0) | (_WRITE if conn.output else 0)
        if interest == conn.interest:
            return
        if not conn.interest:
            self._selector.register(conn.sock, interest, conn)
        else:
            self._selector.modify(conn.sock, interest, conn)
        conn.interest = interest

    def _linger(self, conn: _Connection) -> None:
        """The reply is out: shut down sending and drain what the peer still sends, bounded,
        so closing with its bytes unread does not reset the reply away."""
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._close(conn, self._reason(conn))
            return
        conn.lingering = Lingering(time.monotonic())
        if not conn.interest:
            self._selector.register(conn.sock, _READ, conn)
        elif conn.interest != _READ:
            self._selector.modify(conn.sock, _READ, conn)
        conn.interest = _READ

    @staticmethod
    def _reason(conn: _Connection) -> CloseReason:
        """Why `conn` closes normally: the server's reason if it ended it, else the session's."""
        return conn.ending or closing_reason(conn.session)

    def _close(self, conn: _Connection, reason: CloseReason) -> None:
        if conn not in self._connections:
            return
        self._connections.discard(conn)
        if not conn.adopted:
            self._admission.release(conn.peer[0])
        if conn.interest:
            self._selector.unregister(conn.sock)
            conn.interest = 0
        conn.sock.close()
        session = conn.session
        if session is not None:
            session.closed()
            self.stats.requests_served += session.requests_served
        self.stats.connections_active -= 1
        notify(self.config, ConnectionClosed(conn.peer, reason, session))

    # -- deadlines and stopping ---------------------------------------------------------------
    def _sweep(self, now: float) -> None:
        if self._accept_paused_until and now >= self._accept_paused_until and not self._stopping:
            self._accept_paused_until = 0.0
            self._selector.register(self._sock, selectors.EVENT_READ, _LISTENER)
        for conn in list(self._connections):
            if conn.lingering is not None:
                if now >= conn.lingering.deadline:
                    self._close(conn, self._reason(conn))
                continue
            session = conn.session
            reason = conn.sweep_connection(
                bytes_received=conn.bytes_received,
                session=session,
                output_pending=bool(conn.output),
            )
            if reason is None:
                report_stalled_message(self.config, conn.peer, session, conn)
                continue
            self.stats.connections_timed_out += 1
            if conn.output or conn.closing:
                self._close(conn, reason)  # the peer does not read: a notice would not help
            else:
                conn.closing = True
                conn.ending = reason
                if session is None:
                    notice = notice_for_config(self.config, reason)
                else:
                    session.abort(reason)
                    notice = session.data_to_send()
                self._queue_output(conn, notice)

    def _begin_stop(self) -> None:
        """Stop accepting; every connection sends what it has, then closes, within the grace."""
        self._stopping = True
        self._stop_deadline = time.monotonic() + self.config.shutdown_grace_s
        if not self._accept_paused_until:
            self._selector.unregister(self._sock)
        self._sock.close()
        for conn in list(self._connections):
            notice = b""
            session = conn.session
            if not conn.closing:
                conn.ending = CloseReason.SERVER_STOPPING
                if session is not None:
                    # The session says whether this client gets a notice (mid-request).
                    session.server_stopping()
                    notice = session.data_to_send()
            conn.closing = True
            self._queue_output(conn, notice)

    def _close_everything(self) -> None:
        with self._adopt_lock:
            self._adopting = False
        for sock, session in self._adopted:
            sock.close()
            session.closed()
        self._adopted.clear()
        for conn in list(self._connections):
            self._close(conn, conn.ending or CloseReason.SERVER_STOPPING)
        with contextlib.suppress(OSError):
            self._sock.close()
        if self._spare is not None:
            self._spare.close()
        self._selector.close()
        self._wakeup_receiver.close()
        self._wakeup_sender.close()


def serve(config: ServerConfig) -> SelectorServer:
    return SelectorServer(config)
