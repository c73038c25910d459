"""asyncio model: one thread, an event loop, and a Protocol object per connection.

Protocol callbacks (not streams) are used for speed: the loop calls `data_received` with each
chunk and we answer in the same call, with no Task, Future or buffer copy per request. The
session is the whole protocol; this driver only moves bytes:

    connection_made -> send greeting
    data_received   -> (first time: create the session) session.receive_data, write the replies, close if the session says so
    eof_received    -> session.receive_eof, write, close
    pause_writing   -> the peer does not read: stop reading its requests too (backpressure)
    connection_lost -> forget the connection

Timeouts cost nothing per request: one sweep per second walks the connections and compares
counters (bytes seen, whether a message is partial) with the previous sweep, instead of arming
a timer per read as `asyncio.wait_for` would.

Memory per idle connection is kept small, since 10,000 idle clients are a scenario the course
measures: the greeting is encoded once per server, and a connection's session (framer, buffers)
is created when its first byte arrives, so a silent connection costs its Protocol object (which
is its own deadline counter) only.

UDP reads the socket until it is empty on each readiness event (`add_reader` + `recvfrom` until
EAGAIN) instead of using DatagramProtocol, whose transport reads one datagram per event-loop
iteration (the figures: docs/PERFORMANCE.md). Loops without `add_reader` (Windows' Proactor),
and a traced server, get the DatagramProtocol path.

Live sessions (`protocol/live_session.py`, the chat's) are made in `connection_made` and told
their doorbell: `wake()` schedules `flush_live()` on the loop (`call_soon_threadsafe` from another
thread, at most one pending call per connection), which writes what the session has to say under
the same write-buffer limits. `adopt()` hands the loop a socket this program dialled; it becomes
a transport like an accepted socket (`connect_accepted_socket`), without a --max-clients slot.

uvloop is used when installed (Linux, macOS) unless `event_loop="asyncio"`; Windows gets the
standard loop (ProactorEventLoop), which supports the same Protocol API.
"""

from __future__ import annotations

import asyncio
import asyncio.selector_events
import contextlib
import socket
import sys
import threading
from typing import Any

from socklab.errors import UsageError
from socklab.protocol.closing import CloseReason
from socklab.protocol.limits import MAX_UDP_PAYLOAD_BYTES
from socklab.protocol.live_session import LiveSession, makes_live_sessions
from socklab.protocol.session import Session, greeting_of
from socklab.runtimes.config import (
    ConnectionClosed,
    ConnectionOpened,
    ConnectionRefusedBusy,
    EventLoopName,
    ServerConfig,
)
from socklab.runtimes.connections import (
    EVENT_LOOP_MAX_CLIENTS,
    RECEIVE_BYTES,
    Admission,
    Lingering,
    SpareDescriptor,
    closing_reason,
    notice_for_config,
    peer_of,
    recover_from_accept_error,
    refuse_busy,
    report_requests,
    report_stalled_message,
    resolve_client_limits,
    stop_timeout_s,
    watch_requests,
)
from socklab.runtimes.datagrams import (
    DATAGRAM_BUDGET,
    answer_pending_datagrams,
    reply_to_datagram,
)
from socklab.runtimes.deadlines import SWEEP_INTERVAL_S, Deadlines
from socklab.runtimes.event_loop_handle import EventLoopHandle
from socklab.runtimes.listening import (
    bound_address,
    configure_accepted_socket,
    open_datagram_socket,
    open_listening_socket,
)

# Input is fed to the session at most this much at a time while the peer reads its replies
# slowly: the output one slice can produce (3x, UTF-8 case mapping) stays well under the
# 256 KiB output bound. Typical reads are smaller and are fed whole.
FEED_SLICE_BYTES = 16 * 1024

# A connection's `queued_mark`: its write buffer's size at the previous sweep (or when writing
# paused since), to tell whether any byte went out; or one of these two.
_NO_MARK = 0  # writing was not paused at the previous sweep
_DRAINED = sys.maxsize  # writing resumed since the previous sweep, so bytes went out


# The peer of a connection whose address nobody needs (no observer, no per-host bound): 10,000
# idle connections need not keep 10,000 tuples.
_UNKNOWN_PEER = ("?", 0)

# Connections accepted per readiness event of the listener (asyncio's own loop accepts up to
# `backlog` at once), so a connection storm cannot starve the clients already connected.
ACCEPT_BATCH = 128


def new_event_loop(choice: EventLoopName) -> asyncio.AbstractEventLoop:
    """An event loop of the requested kind: "uvloop", "asyncio" or "auto" (uvloop if present)."""
    if choice not in ("auto", "uvloop", "asyncio"):
        raise UsageError(f"unknown event loop {choice!r}; choose auto, asyncio or uvloop")
    if choice != "asyncio":
        try:
            import uvloop
        except ImportError:
            if choice == "uvloop":
                raise UsageError(
                    "uvloop is not installed (it exists for Linux and macOS): pip install uvloop"
                ) from None
        else:
            loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
            return loop
    return asyncio.new_event_loop()


def loop_name(loop: asyncio.AbstractEventLoop) -> str:
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"


class _Connection(Deadlines, asyncio.Protocol):
    """One TCP connection; it is its own `Deadlines` (one object per connection, not two)."""

    __slots__ = (
        "accepted",
        "admitted",
        "bytes_received",
        "dialled",
        "ending",
        "lingering",
        "live",
        "peer",
        "pending_input",
        "queued_mark",
        "server",
        "session",
        "transport",
        "wake_pending",
        "writing_paused",
    )

    def __init__(
        self,
        server: AsyncioServer,
        peer: tuple[str, int] | None = None,
        dialled: LiveSession | None = None,
    ) -> None:
        """`peer`: given when our own accept loop admitted the connection already (or adopted
        it: then `dialled` is its session)."""
        self.server = server
        self.dialled = dialled is not None
        self.live: LiveSession | None = dialled
        self.wake_pending = False
        self.transport: Any = None
        self.session: Session | None = None  # created by the first byte received
        self.accepted = False
        self.admitted = peer is not None
        self.peer: tuple[str, int] = peer if peer is not None else _UNKNOWN_PEER
        self.bytes_received = 0
        Deadlines.__init__(self, server.config)
        self.writing_paused = False
        self.queued_mark = _NO_MARK
        self.pending_input = b""
        # Set once the sending side is shut down after a refusal: reads are drained, not served.
        self.lingering: Lingering | None = None
        # Why the server ends it, when the server decided (a deadline, the stop).
        self.ending: CloseReason | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        server = self.server
        config = server.config
        if self.admitted:
            server.adopting -= 1
            admitted = not server.stopping
        else:  # a loop without add_reader serves through create_server: admitted here
            if server.needs_peer:
                peername = transport.get_extra_info("peername")
                if peername:
                    self.peer = (str(peername[0]), int(peername[1]))
            admitted = not server.stopping and server.admission.admit(
                len(server.connections), self.peer[0]
            )
        if not admitted:
            if self.live is not None:  # dialled, and the server is stopping
                transport.close()
                self.live.closed()
                return
            if self.admitted:
                server.admission.release(self.peer[0])
            server.stats.connections_refused_busy += 1
            server.notify(ConnectionRefusedBusy(self.peer))
            transport.write(notice_for_config(config, CloseReason.BUSY))  # type: ignore[attr-defined]
            transport.close()
            return
        if config.user_timeout_s is not None:
            # Only then: TCP_NODELAY is set by asyncio (3.7+) and uvloop on every TCP connection,
            # and asking for the socket makes uvloop keep one more object per connection.
            sock = transport.get_extra_info("socket")
            if sock is not None:
                # The peer may already have reset the connection: then connection_lost follows.
                with contextlib.suppress(OSError):
                    configure_accepted_socket(sock, config)
        high = config.max_buffered_output_bytes // 4
        transport.set_write_buffer_limits(high=high, low=high // 4)  # type: ignore[attr-defined]
        self.accepted = True
        server.connections.add(self)
        server.stats.connections_accepted += 1
        if config.observer is not None:
            server.notify(ConnectionOpened(self.peer))
        if server.live or self.live is not None:
            self.start_live()
        elif server.greeting:  # a session may have none (upper): then no empty send in a --trace
            transport.write(server.greeting)  # type: ignore[attr-defined]

    def start_live(self) -> None:
        """Make (or take) the live session, tell it its connection, send what it says first."""
        session = self.live
        if session is None:
            made = self.start_session()
            assert isinstance(made, LiveSession)
            session = self.live = made
        self.session = session
        session.connection_made(self.peer, self.wake)
        self.flush_live()

    def wake(self) -> None:
        """The doorbell handed to a live session: thread-safe, never blocks."""
        if self.wake_pending:
            return  # a flush is scheduled and will take these bytes too
        self.wake_pending = True
        loop = self.server.loop
        with contextlib.suppress(RuntimeError):  # the loop closed: the connection is gone
            if threading.get_ident() == self.server.loop_thread_id:
                loop.call_soon(self.flush_live)
            else:
                loop.call_soon_threadsafe(self.flush_live)

    def flush_live(self) -> None:
        self.wake_pending = False
        session = self.live
        transport = self.transport
        if session is None or self.lingering is not None or transport.is_closing():
            return
        if self.writing_paused:
            # Backpressure: the peer does not read what we wrote. The bytes stay in the session,
            # which bounds them; resume_writing() takes them once the buffer drains.
            return
        out = session.data_to_send()
        if out:
            transport.write(out)
        if session.should_close:
            self.close_after_replies()

    def start_session(self) -> Session:
        config = self.server.config
        session = watch_requests(
            config,
            config.session_factory(
                config.framing,
                max_message_bytes=config.max_message_bytes,
                greet=False,
                record_events=False,
            ),
        )
        self.session = session
        return session

    def data_received(self, data: bytes) -> None:
        session = self.session
        if session is None:
            if not self.accepted:
                return  # refused as busy: closing
            session = self.start_session()
        elif self.lingering is not None:
            if not self.lingering.drained(len(data)):
                self.transport.close()
            return
        size = len(data)
        self.bytes_received += size
        if self.pending_input:  # reading is paused; a loop may still hand over what it had read
            self.pending_input += data
            return
        if size > FEED_SLICE_BYTES:
            self._feed(data)
            return
        # The common case, one read of at most one slice, inline (same steps as `_feed`).
        out = session.exchange(data)
        if self.server.reporting:
            report_requests(self.server.config, self.peer, session)
        if out:
            transport = self.transport
            transport.write(out)  # may call pause_writing() at once
            queued = transport.get_write_buffer_size()
            if queued:
                stats = self.server.stats
                if queued > stats.largest_output_queue_bytes:
                    stats.largest_output_queue_bytes = queued
        if session.should_close:
            self.close_after_replies()

    def close_after_replies(self) -> None:
        """Close once the replies are out; lingering when the peer may still be sending, so
        closing with its bytes unread does not reset the `E:` reply away."""
        session = self.session
        transport = self.transport
        if session is not None and session.expects_unread_input and transport.can_write_eof():
            transport.write_eof()  # after the buffered replies, like close()
            self.lingering = Lingering(self.server.loop.time())
        else:
            transport.close()

    def _feed(self, data: bytes) -> None:
        """Feed `data` in slices, stopping once the peer stops reading its replies.

        One read may hold 256 KiB (asyncio) and a reply may be 3x its request (`ΐ` upper-cases
        to 6 UTF-8 bytes from 2), so feeding a whole chunk at once could queue ~768 KiB for a
        peer that never reads. Slices bound that to the high-water mark plus one slice's
        replies; the rest waits (bounded: reading is paused) until the peer reads.
        """
        session = self.session
        assert session is not None
        offset = 0
        while offset < len(data):
            piece = (
                data if len(data) <= FEED_SLICE_BYTES else data[offset : offset + FEED_SLICE_BYTES]
            )
            offset += len(piece)
            session.receive_data(piece)
            if self.server.reporting:
                report_requests(self.server.config, self.peer, session)
            out = session.data_to_send()
            if out:
                self.transport.write(out)  # may call pause_writing() at once
                queued = self.transport.get_write_buffer_size()
                stats = self.server.stats
                if queued > stats.largest_output_queue_bytes:
                    stats.largest_output_queue_bytes = queued
            if session.should_close:
                self.close_after_replies()
                return
            if self.writing_paused and offset < len(data):
                self.pending_input = data[offset:]
                return

    def eof_received(self) -> bool:
        # A connection that never sent a byte has nothing to answer: no session is made for it
        # (10,000 idle clients leaving at once would otherwise create 10,000 sessions to close).
        session = self.session
        if session is not None and not session.should_close:
            if self.pending_input:  # input held back for a slow reader comes before the EOF
                pending, self.pending_input = self.pending_input, b""
                session.receive_data(pending)
            session.receive_eof()
            if self.server.reporting:
                report_requests(self.server.config, self.peer, session)
            out = session.data_to_send()
            if out:
                self.transport.write(out)
        self.transport.close()
        return True  # we close ourselves once the replies are flushed

    def pause_writing(self) -> None:
        # The peer is not reading its replies: stop reading its requests, so it cannot make us
        # produce (and buffer) more. The sweep disconnects it after write_timeout_s.
        self.writing_paused = True
        if self.queued_mark == _NO_MARK:
            self.queued_mark = self.transport.get_write_buffer_size()
        self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.writing_paused = False
        self.queued_mark = _DRAINED  # the buffer drained to its low-water mark: progress
        if self.transport.is_closing():
            return
        pending, self.pending_input = self.pending_input, b""
        if pending:
            self._feed(pending)
        if self.live is not None:
            self.flush_live()  # what the live session held back while the peer lagged
        if not self.writing_paused and not self.transport.is_closing():
            self.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        server = self.server
        if self in server.connections:
            server.connections.discard(self)
            if not self.dialled:
                server.admission.release(self.peer[0])
            session = self.session
            if session is not None:
                server.stats.requests_served += session.requests_served
                session.closed()
            if self.ending is not None:
                reason = self.ending
            elif exc is not None:
                reason = CloseReason.RESET
            else:
                reason = closing_reason(session)
            server.notify(ConnectionClosed(self.peer, reason, session))

    def output_blocked(self) -> bool:
        """For the sweep: replies wait and not a byte of them went out since the previous sweep.

        Paused writing alone is no proof: a peer that reads slowly but steadily keeps the
        buffer near its high-water mark, pausing and resuming many times a second.
        """
        if not self.writing_paused:
            self.queued_mark = _NO_MARK
            return False
        queued: int = self.transport.get_write_buffer_size()
        blocked = queued >= self.queued_mark
        self.queued_mark = queued
        return blocked

    def abort(self, reason: CloseReason) -> None:
        """Give up on this connection for `reason`: the session's notice if the peer still
        reads (it fits in the buffer), then close."""
        self.ending = reason
        if self.accepted and not self.writing_paused:
            session = self.session
            if session is None:
                notice = notice_for_config(self.server.config, reason)
            else:
                session.abort(reason)
                notice = session.data_to_send()
            if notice:
                self.transport.write(notice)
            self.transport.close()
        else:
            self.transport.abort()


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, server: AsyncioServer) -> None:
        self.server = server
        self.transport: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        config = self.server.config
        reply = reply_to_datagram(data, addr, config.datagram_handler, config.observer)
        if reply is None:
            return
        self.transport.sendto(reply, addr)
        self.server.stats.requests_served += 1

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable from a client that went away: nothing to do for a datagram server.
        pass


def _read_at_most(size: int) -> None:
    """Make the standard loop's TCP transports read `size` bytes at a time, not 256 KiB.

    recv(n) allocates n bytes before it knows how many arrive, and a 256 KiB buffer costs
    system calls of its own (why and how much: docs/PERFORMANCE.md, "Where the time goes"); the
    other models read 64 KiB. `max_size` is a class attribute of asyncio's selector transport
    (CPython 3.11 to 3.13), read on every read; where it is missing this does nothing.
    """
    transport_class = getattr(asyncio.selector_events, "_SelectorSocketTransport", None)
    if transport_class is not None and getattr(transport_class, "max_size", 0) > size:
        transport_class.max_size = size


class AsyncioServer(EventLoopHandle):
    """The converter served by an asyncio event loop in a background thread."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        limits = resolve_client_limits(config, EVENT_LOOP_MAX_CLIENTS)
        self._spare: SpareDescriptor | None = None
        self.loop = new_event_loop(config.event_loop)
        try:
            if config.transport == "udp":
                self._sock = open_datagram_socket(config)
                # Datagrams larger than the receive size would be truncated silently; asyncio
                # reads 256 KiB and uvloop 64 KiB at once, both above the UDP maximum.
                assert MAX_UDP_PAYLOAD_BYTES < 65536
            else:
                self._sock = open_listening_socket(config)
                self._spare = SpareDescriptor()
                if loop_name(self.loop) == "asyncio":
                    _read_at_most(RECEIVE_BYTES)
        except BaseException:
            if hasattr(self, "_sock"):
                self._sock.close()
            self.loop.close()
            raise
        super().__init__(bound_address(self._sock), self.loop)
        self.connections: set[_Connection] = set()
        self.live = makes_live_sessions(config.session_factory)
        self.greeting = (
            b""
            if self.live
            else greeting_of(config.session_factory, config.framing, config.max_message_bytes)
        )
        self.loop_thread_id: int | None = None
        self.admission = Admission(config, limits)
        if config.transport != "udp":
            self.client_limits = limits
            self.alerts.append(self.admission.descriptor_alert)
        # -v: sessions report each request, and the sweep names a message left unfinished.
        self.reporting = config.observer is not None
        self.needs_peer = (
            config.observer is not None or limits.max_clients_per_host is not None or self.live
        )
        # Accepted by our accept loop, handed to the loop, connection_made not yet called.
        self.adopting = 0
        self._adoptions: set[asyncio.Task[None]] = set()
        self._accept_paused_until = 0.0
        self.start_thread(f"socklab-asyncio-{self.address[1]}")

    @property
    def loop_name(self) -> str:
        return loop_name(self.loop)

    def notify(self, event: Any) -> None:
        observer = self.config.observer
        if observer is not None:
            observer(event)

    def stop(self, timeout_s: float | None = None) -> None:
        # The default bound follows --shutdown-grace, so a longer grace is not cut short.
        super().stop(stop_timeout_s(self.config) if timeout_s is None else timeout_s)

    def adopt(self, sock: socket.socket, session: LiveSession) -> None:
        try:
            self.loop.call_soon_threadsafe(self._adopt_dialled, sock, session)
        except RuntimeError:  # the loop has closed
            sock.close()
            session.closed()

    def _adopt_dialled(self, sock: socket.socket, session: LiveSession) -> None:
        try:
            if self.stopping:
                raise OSError("the server is stopping")
            sock.setblocking(False)
            peer = peer_of(sock.getpeername())
        except OSError:
            sock.close()
            session.closed()
            return
        self.adopting += 1
        task = self.loop.create_task(self._adopt(sock, peer, session))
        self._adoptions.add(task)
        task.add_done_callback(self._adoptions.discard)

    async def _serve(self) -> None:
        loop = self.loop
        self.loop_thread_id = threading.get_ident()
        stop_event = self._arm_stop_event()
        sock, protocols = self._socket_and_protocols()
        if self.config.transport == "udp":
            await self._serve_datagrams(sock, protocols)
            return
        server: asyncio.AbstractServer | None = None
        try:
            # Our own accept loop, not create_server: it refuses a client over the bound with
            # the busy notice before the loop makes a transport of it, and when out of
            # descriptors it uses the spare. The loops' own handling of EMFILE was silent:
            # uvloop closes the waiting clients (libuv's uv__emfile_trick), asyncio's loop
            # hands the error to its exception handler and stops accepting for a second.
            loop.add_reader(sock.fileno(), self._accept_ready, sock)
        except NotImplementedError:  # Windows' ProactorEventLoop has no add_reader
            server = await loop.create_server(protocols, sock=sock, backlog=self.config.backlog)
        sweeper = loop.create_task(self._sweep_forever())
        try:
            await stop_event.wait()
        finally:
            if server is None:
                self._stop_accepting(sock)
            else:
                server.close()  # stop accepting; established connections continue
            if self._spare is not None:
                self._spare.close()
        sweeper.cancel()
        if self._adoptions:
            # Accepted just before the stop: let their transports stand (and be refused), so
            # no task is left pending when the loop closes.
            await asyncio.wait(set(self._adoptions), timeout=self.config.shutdown_grace_s)
        await self._drain_connections()
        if server is not None:
            await server.wait_closed()

    def _stop_accepting(self, sock: socket.socket) -> None:
        if not self._accept_paused_until:
            self.loop.remove_reader(sock.fileno())
        sock.close()

    def _accept_ready(self, listener: socket.socket) -> None:
        """The listener is readable: accept a batch, admit or refuse each, adopt the admitted."""
        config = self.config
        admission = self.admission
        for _ in range(ACCEPT_BATCH):
            try:
                sock, address = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                assert self._spare is not None
                backoff_s, refused = recover_from_accept_error(
                    exc, listener, config, admission, self._spare
                )
                if refused:
                    self.stats.connections_refused_busy += 1
                    continue
                if backoff_s:
                    # Out of memory or buffers: stop watching the listener for a while.
                    self.loop.remove_reader(listener.fileno())
                    self._accept_paused_until = self.loop.time() + backoff_s
                    self.loop.call_later(backoff_s, self._resume_accepting, listener)
                    return
                continue
            peer = peer_of(address) if self.needs_peer else _UNKNOWN_PEER
            active = len(self.connections) + self.adopting
            if not admission.admit(active, peer[0]):
                self.stats.connections_refused_busy += 1
                refuse_busy(sock, config)
                self.notify(ConnectionRefusedBusy(peer))
                continue
            sock.setblocking(False)
            self.adopting += 1
            task = self.loop.create_task(self._adopt(sock, peer))
            self._adoptions.add(task)
            task.add_done_callback(self._adoptions.discard)

    def _resume_accepting(self, listener: socket.socket) -> None:
        self._accept_paused_until = 0.0
        if not self.stopping and listener.fileno() >= 0:
            self.loop.add_reader(listener.fileno(), self._accept_ready, listener)

    async def _adopt(
        self, sock: socket.socket, peer: tuple[str, int], dialled: LiveSession | None = None
    ) -> None:
        """Make a transport of an accepted (or dialled) socket; connection_made follows."""
        protocol = _Connection(self, peer, dialled)
        factory: Any = lambda: protocol  # noqa: E731
        tracer = self.config.tracer
        if tracer is not None:
            from socklab.tracing.transports import trace_stream_protocols

            factory = trace_stream_protocols(factory, tracer, self._listening_fd)
        try:
            await self.loop.connect_accepted_socket(factory, sock)
        except OSError:
            # Reset before its transport stood: nothing to serve, its slot is free again.
            sock.close()
            if protocol.transport is None:
                self.adopting -= 1
                if dialled is None:
                    self.admission.release(peer[0])
                else:
                    dialled.closed()

    def _socket_and_protocols(self) -> tuple[socket.socket, Any]:
        """The socket and protocol factory for the loop; with --trace, wrapped to report calls.

        Decided once per server, so an untraced server pays nothing per call. Traced, the loop
        gets the plain socket (it reads and writes out of our sight) and the protocols report.
        """
        udp = self.config.transport == "udp"
        plain: Any = (lambda: _Datagrams(self)) if udp else (lambda: _Connection(self))
        tracer = self.config.tracer
        if tracer is None:
            return self._sock, plain
        from socklab.tracing import plain_socket
        from socklab.tracing.transports import trace_datagram_protocols, trace_stream_protocols

        listening_fd = self._listening_fd = self._sock.fileno()
        if udp:
            return plain_socket(self._sock), trace_datagram_protocols(plain, tracer)
        return plain_socket(self._sock), trace_stream_protocols(plain, tracer, listening_fd)

    async def _serve_datagrams(self, sock: socket.socket, protocols: Any) -> None:
        assert self._stop_event is not None
        loop = self.loop
        if self.config.tracer is None:
            try:
                loop.add_reader(
                    sock.fileno(),
                    answer_pending_datagrams,
                    sock,
                    self.stats,
                    self.config.datagram_handler,
                    DATAGRAM_BUDGET,
                    self.config.observer,
                )
            except NotImplementedError:  # Windows' ProactorEventLoop has no add_reader
                pass
            else:
                try:
                    await self._stop_event.wait()
                finally:
                    loop.remove_reader(sock.fileno())
                    sock.close()
                return
        transport, _ = await loop.create_datagram_endpoint(protocols, sock=sock)
        await self._stop_event.wait()
        transport.close()

    async def _drain_connections(self) -> None:
        """Let in-flight replies go out (close() flushes), then abort what is still open."""
        for conn in list(self.connections):
            session = conn.session
            if conn.ending is None and (session is None or not session.should_close):
                conn.ending = CloseReason.SERVER_STOPPING
            if session is not None and not conn.writing_paused:
                # The session says whether this client gets a notice (it was mid-request); a
                # peer that does not read its replies would not read it either.
                session.server_stopping()
                notice = session.data_to_send()
                if notice:
                    conn.transport.write(notice)
            conn.transport.pause_reading()
            conn.transport.close()
        deadline = self.loop.time() + self.config.shutdown_grace_s
        while self.connections and self.loop.time() < deadline:
            await asyncio.sleep(0.02)
        for conn in list(self.connections):
            conn.transport.abort()
        await asyncio.sleep(0)

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_INTERVAL_S)
            now = self.loop.time()
            for conn in list(self.connections):
                if conn.lingering is not None:
                    if now >= conn.lingering.deadline:
                        conn.transport.close()
                    continue
                session = conn.session
                reason = conn.sweep(
                    bytes_received=conn.bytes_received,
                    partial_message=session is not None and session.has_partial_message,
                    output_blocked=conn.output_blocked(),
                )
                if reason is not None:
                    self.stats.connections_timed_out += 1
                    conn.abort(reason)
                elif self.reporting:
                    report_stalled_message(self.config, conn.peer, session, conn)


def serve(config: ServerConfig) -> AsyncioServer:
    return AsyncioServer(config)
