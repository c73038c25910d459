"""Serving TCP with blocking calls: what the iterative and threaded models share.

Both models run the lecture's loop, `accept()` then `recv()`/`send()` on the new socket, and
differ in one hook only, like `socketserver.BaseServer.process_request`: `dispatch()` serves the
connection inline (iterative) or in a thread of its own (threaded).

A blocking call must not wait forever, or deadlines and stop requests would go unnoticed. On
Linux and macOS one watchdog thread per server sweeps every connection's deadlines once per
`SWEEP_INTERVAL_S` and ends a late one by shutting its socket down, which wakes the thread
blocked on it; the connection threads themselves block with no timeout at all:

    accept() -> dispatch(sock) -> greeting -> [recv -> session -> send]* -> close
    watchdog:  every second, for every connection: deadline passed? -> shutdown(sock)

So a waiting connection costs no wake-ups (10,000 idle threads stay asleep), and a request
costs one recv() and one send() system call: a socket timeout would make CPython poll() before
each. A reply goes out with MSG_DONTWAIT; only when the peer does not read fast enough does the
thread wait for room in slices of one sweep interval, telling the watchdog whether any byte went
out (the write deadline counts sweeps without progress). Windows cannot wake a blocked call by
shutdown() from another thread, so there every wait is cut after one sweep interval by a socket
timeout instead, and each connection sweeps its own deadlines.

Backpressure needs no code here: while a reply waits in `send()` because the peer does not read,
this connection reads nothing, and the write deadline ends the wait.

Stopping: `request_stop()` sets a flag and shuts down the reading side of every connection,
which wakes a blocked `recv()` at once (on Linux and macOS; elsewhere the next slice notices).
The listener closes (stop accepting); a reply being sent may finish within `shutdown_grace_s`.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
import time
from abc import abstractmethod
from typing import NoReturn

from socklab.protocol.closing import TIMEOUTS, CloseReason
from socklab.protocol.live_session import as_live, makes_live_sessions
from socklab.protocol.session import Session
from socklab.runtimes.config import (
    ConnectionClosed,
    ConnectionOpened,
    MemoryExhausted,
    ServerConfig,
)
from socklab.runtimes.connections import (
    BLOCKING_MAX_CLIENTS,
    RECEIVE_BYTES,
    Admission,
    RateLimitedAlert,
    SpareDescriptor,
    WritingDeadlines,
    close_lingering_blocking,
    closing_reason,
    configure_accepted_socket_safely,
    notice_for_config,
    notify,
    peer_of,
    recover_from_accept_error,
    report_requests,
    report_stalled_message,
    resolve_client_limits,
    send_notice_nowait,
    stop_timeout_s,
    watch_requests,
)
from socklab.runtimes.deadlines import SWEEP_INTERVAL_S
from socklab.runtimes.handle import ServerHandle
from socklab.runtimes.listening import (
    bound_address,
    open_listening_socket,
)
from socklab.tracing import poll_quietly, shutdown_quietly

# accept() waits at most this long before looking at the stop flag again.
ACCEPT_WAIT_S = 0.5

# Whether the watchdog can serve: shutdown() from another thread wakes a thread blocked in
# recv() or send() on that socket on Linux, macOS and the BSDs, not on Windows; and a reply is
# sent with MSG_DONTWAIT (send what fits, never wait), which Windows lacks too.
SHUTDOWN_WAKES_BLOCKED_CALLS = sys.platform != "win32" and hasattr(socket, "MSG_DONTWAIT")

# 0 only where the watchdog does not serve, whose code path never sends with it.
_DONT_WAIT = getattr(socket, "MSG_DONTWAIT", 0)


class _Closed(Exception):
    """The connection ended on our side; `reason` is what the observer is told."""

    def __init__(self, reason: CloseReason) -> None:
        super().__init__(reason.value)
        self.reason = reason


class BlockingConnection:
    """One accepted TCP socket, served with blocking calls from greeting to close.

    Call order: `serve()` once, in the thread that owns the socket; `interrupt()`, `abort()`
    and `sweep_from_watchdog()` from any thread.
    """

    def __init__(
        self,
        sock: socket.socket,
        peer: tuple[str, int],
        server: BlockingServer,
        session: Session | None = None,
    ) -> None:
        self.sock = sock
        self.peer = peer
        self.server = server
        self._stats = server.stats
        config = server.config
        self.session = (
            session
            if session is not None
            else watch_requests(
                config,
                config.session_factory(
                    config.framing,
                    max_message_bytes=config.max_message_bytes,
                    greet=True,
                    record_events=False,
                ),
            )
        )
        self._deadlines = WritingDeadlines(config)
        self._bytes_received = 0
        self._lock = threading.Lock()
        self._closed = False
        self.adopted = False  # a dialled socket (handle.adopt()): it holds no admission slot
        # Set by another thread (the watchdog, a stop request) before it wakes this one: why
        # the server ends the connection, and whether the peer still reads a notice.
        self._ending: CloseReason | None = None
        self._notify = False
        # A reply waits for the peer to read: the watchdog runs the write deadline meanwhile.
        self._sending = False
        self._watched = server.watched
        if not self._watched:
            self._next_sweep = time.monotonic() + SWEEP_INTERVAL_S
            # Every wait ends after one sweep interval at most, so deadlines are checked at
            # least once per interval. Quietly: --trace does not show the server's machinery.
            poll_quietly(sock, SWEEP_INTERVAL_S)

    def serve(self) -> None:
        reason: CloseReason
        try:
            self._converse()
            reason = closing_reason(self.session)
        except _Closed as closed:
            reason = closed.reason
        except MemoryError:
            # This client's request could not be answered; the others are served on. One `E:`
            # line for the client (cached after the first), one (rate-limited) line for the
            # operator, no traceback.
            reason = CloseReason.OUT_OF_MEMORY
            send_notice_nowait(self.sock, notice_for_config(self.server.config, reason))
            self.server.memory_alert.count()
        except OSError:
            # Reset by the peer or broken; or shut down by the watchdog or the stop's abort.
            reason = self._ending or CloseReason.RESET
        finally:
            self._close()
            self.server.connection_finished(self, reason)

    def interrupt(self) -> None:
        """Wake a blocked recv() (the server is stopping); thread-safe, harmless once closed."""
        with self._lock:
            if not self._closed:
                if self._ending is None:
                    self._ending = CloseReason.SERVER_STOPPING
                shutdown_quietly(self.sock, socket.SHUT_RD)

    def abort(self) -> None:
        """Wake a blocked send() too: the shutdown grace is over."""
        with self._lock:
            if not self._closed:
                shutdown_quietly(self.sock, socket.SHUT_RDWR)

    def sweep_from_watchdog(self) -> bool:
        """One deadline sweep, by the server's watchdog; True when it ended the connection.

        Ending it: the reason and notice are left for the connection's thread, which a
        shutdown() wakes: of the reading side while it waits for a request (the notice can
        still be sent), of both while a reply is stuck (the peer would not read the notice).
        """
        with self._lock:
            if self._closed or self._ending is not None:
                return False
            sending = self._sending
            reason = self._deadlines.sweep_connection(
                bytes_received=self._bytes_received, session=self.session, output_pending=sending
            )
            if reason is None:
                report_stalled_message(self.server.config, self.peer, self.session, self._deadlines)
                return False
            # First: the connection's thread reads it once it sees _ending. While a reply is
            # stuck the peer would not read a notice either.
            self._notify = not sending
            self._ending = reason
            shutdown_quietly(self.sock, socket.SHUT_RDWR if sending else socket.SHUT_RD)
        return True

    # -- the loop ---------------------------------------------------------------------------------
    def _converse(self) -> None:
        session = self.session
        receive = self.sock.recv
        watched = self._watched
        config = self.server.config
        reporting = config.observer is not None
        greeting = session.data_to_send()
        if greeting:  # a session may have none (upper): then no empty send in a --trace
            self._send(greeting)
        while not session.should_close:
            if self._ending is not None:
                self._end()
            try:
                data = receive(RECEIVE_BYTES)
            except TimeoutError:
                data = None  # a slice ended without a byte (not watched): time to sweep
            if data:
                self._bytes_received += len(data)
                out = session.exchange(data)
                if reporting:
                    report_requests(config, self.peer, session)
                if out:
                    self._send(out)
            elif data is not None:
                if self._ending is not None:
                    self._end()  # the watchdog or a stop woke recv(): not the peer's EOF
                session.receive_eof()
                if reporting:
                    report_requests(config, self.peer, session)
                out = session.data_to_send()
                if out:
                    self._send(out)
            if not watched:
                self._sweep_if_due(sending=False)
        if session.expects_unread_input:
            # The reply is sent; closing with the peer's bytes unread would reset it away.
            close_lingering_blocking(self.sock)

    def _end(self) -> NoReturn:
        """Close as another thread decided (`_ending`), with the session's notice if any."""
        reason = self._ending
        assert reason is not None
        if reason is CloseReason.SERVER_STOPPING or self._notify:
            # The session makes the notice (a stop's only for a client in mid-request).
            self.session.abort(reason)
            notice = self.session.data_to_send()
            if notice:
                send_notice_nowait(self.sock, notice)
        raise _Closed(reason)

    def _send(self, data: bytes) -> None:
        """Send all of `data`, waiting while the peer does not read, within the write deadline."""
        size = len(data)
        if size > self._stats.largest_output_queue_bytes:
            self.server.note_output_queue(size)
        if not self._watched:
            self._send_in_slices(memoryview(data))
            return
        try:
            sent = self.sock.send(data, _DONT_WAIT)
        except BlockingIOError:
            sent = 0
        if sent == size:
            return  # the usual case: the socket buffer took all of it
        if sent:
            self._deadlines.sent_since_sweep = True
        with self._lock:
            if self._ending in TIMEOUTS:
                raise _Closed(self._ending)
            self._sending = True
        poll_quietly(self.sock, SWEEP_INTERVAL_S)
        self._send_in_slices(memoryview(data)[sent:])
        poll_quietly(self.sock, None)
        with self._lock:
            self._sending = False

    def _send_in_slices(self, view: memoryview) -> None:
        """Send all of `view` from a socket with a timeout, noting progress once per slice."""
        server = self.server
        watched = self._watched
        while view:
            if server.stopping:
                # Within the grace only: wait no longer than what is left of it.
                left_s = server.stop_deadline - time.monotonic()
                if left_s <= 0:
                    raise _Closed(CloseReason.SERVER_STOPPING)
                poll_quietly(self.sock, min(left_s, SWEEP_INTERVAL_S))
            try:
                sent = self.sock.send(view)
            except TimeoutError:
                sent = 0
            if sent:
                self._deadlines.sent_since_sweep = True
                view = view[sent:]
                if not view:
                    return  # all sent: the caller sweeps when due, and may still send a notice
            if not watched:
                self._sweep_if_due(sending=True)

    def _sweep_if_due(self, *, sending: bool) -> None:
        """The connection's own deadline sweep, where no watchdog can wake it (Windows)."""
        now = time.monotonic()
        if now < self._next_sweep:
            return
        self._next_sweep = now + SWEEP_INTERVAL_S
        reason = self._deadlines.sweep_connection(
            bytes_received=self._bytes_received, session=self.session, output_pending=sending
        )
        if reason is None:
            report_stalled_message(self.server.config, self.peer, self.session, self._deadlines)
            return
        self.server.count_timeout()
        if not sending:
            # While a send is stuck the peer would not read the notice either.
            self.session.abort(reason)
            notice = self.session.data_to_send()
            if notice:
                send_notice_nowait(self.sock, notice)
        raise _Closed(reason)

    def _close(self) -> None:
        with self._lock:
            self._closed = True
            self.sock.close()
        self.session.closed()


class BlockingServer(ServerHandle):
    """Accepts with a blocking listener and hands each connection to `dispatch()`."""

    def __init__(
        self,
        config: ServerConfig,
        thread_name: str,
        default_max_clients: int = BLOCKING_MAX_CLIENTS,
    ) -> None:
        self.config = config
        self.limits = resolve_client_limits(config, default_max_clients)
        self.admission = Admission(config, self.limits)
        self.memory_alert = RateLimitedAlert(config, MemoryExhausted)
        self._listener = open_listening_socket(config, blocking=True)
        try:
            self._spare = SpareDescriptor()
        except BaseException:
            self._listener.close()
            raise
        super().__init__(bound_address(self._listener))
        self.client_limits = self.limits
        self.alerts += [self.admission.descriptor_alert, self.memory_alert]
        self._stop_requested = threading.Event()
        # Read on every request by every connection thread: a plain attribute, not the Event.
        self.stopping = False
        self.stop_deadline = float("inf")
        self.stats_lock = threading.Lock()
        self.connections: set[BlockingConnection] = set()
        self.watched = SHUTDOWN_WAKES_BLOCKED_CALLS
        self._watchdog_name = f"{thread_name}-watchdog-{self.address[1]}"
        self.start_thread(f"{thread_name}-{self.address[1]}")

    @abstractmethod
    def dispatch(self, sock: socket.socket, peer: tuple[str, int]) -> None:
        """Serve (or refuse) the accepted `sock`: the one thing the blocking models do differently."""

    def finish_connections(self) -> None:
        """After accepting stopped: wait for connections still being served (threaded)."""

    def run(self) -> None:
        listener = self._listener
        watchdog = None
        try:
            if self.watched:
                watchdog = threading.Thread(
                    target=self._watch, name=self._watchdog_name, daemon=True
                )
                watchdog.start()
            poll_quietly(listener, ACCEPT_WAIT_S)
            while not self.stopping:
                try:
                    sock, address = listener.accept()
                except TimeoutError:
                    continue
                except OSError as exc:
                    if self.stopping:
                        break  # request_stop() shut the listener down to wake accept()
                    backoff_s, refused = recover_from_accept_error(
                        exc, listener, self.config, self.admission, self._spare
                    )
                    if refused:
                        with self.stats_lock:
                            self.stats.connections_refused_busy += 1
                    if backoff_s:
                        self._stop_requested.wait(backoff_s)
                    continue
                configure_accepted_socket_safely(sock, self.config)
                self.dispatch(sock, peer_of(address))
        finally:
            # Also when run() failed: the watchdog and the connections must stop with it.
            self.request_stop()
            listener.close()  # stop accepting: clients still in the backlog are reset
            self._spare.close()
            self.finish_connections()
            if watchdog is not None:
                watchdog.join()  # request_stop() ended its wait

    def _watch(self) -> None:
        """Sweep every connection's deadlines once per interval, until the server stops.

        Should a sweep fail (a bug), the server stops with that error, as when its own thread
        fails: a server whose deadlines silently stopped would hold idle clients forever.
        """
        try:
            while not self._stop_requested.wait(SWEEP_INTERVAL_S):
                with self.stats_lock:
                    connections = list(self.connections)
                for connection in connections:
                    if connection.sweep_from_watchdog():
                        self.count_timeout()
        except BaseException as exc:
            self.fail(exc)

    def stop(self, timeout_s: float | None = None) -> None:
        super().stop(stop_timeout_s(self.config) if timeout_s is None else timeout_s)

    def request_stop(self) -> None:
        if not self.stopping:
            self.stop_deadline = time.monotonic() + self.config.shutdown_grace_s
            self.stopping = True
            self._stop_requested.set()
            # Wakes a blocked accept() at once on Linux; elsewhere it returns within ACCEPT_WAIT_S.
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RD)
        with self.stats_lock:
            connections = list(self.connections)
        for connection in connections:
            connection.interrupt()

    def make_connection(
        self, sock: socket.socket, peer: tuple[str, int], session: Session | None = None
    ) -> BlockingConnection:
        """The connection object serving `sock`: a live session gets a writer thread too
        (`runtimes/live_blocking.py`); `session` is given for an adopted socket."""
        if session is None and makes_live_sessions(self.config.session_factory):
            config = self.config
            session = config.session_factory(
                config.framing,
                max_message_bytes=config.max_message_bytes,
                greet=True,
                record_events=False,
            )
        live = as_live(session) if session is not None else None
        if live is not None:
            from socklab.runtimes.live_blocking import LiveBlockingConnection

            return LiveBlockingConnection(sock, peer, self, live)
        return BlockingConnection(sock, peer, self, session)

    def open_connection(self, sock: socket.socket, peer: tuple[str, int]) -> BlockingConnection:
        """A connection about to be served in this thread, counted and told to the observer."""
        connection = self.make_connection(sock, peer)
        with self.stats_lock:
            self.connections.add(connection)
        self.admit(connection)
        return connection

    def admit(self, connection: BlockingConnection) -> None:
        """Count `connection` as served, once it is sure to be (the thread serving it runs).

        Called after it joined `connections`, the set a stop interrupts. A connection refused
        for want of a thread is counted as refused only: the stop line's "connections" are
        those served (as in the selectors and asyncio models).
        """
        with self.stats_lock:
            self.stats.connections_accepted += 1
            self.stats.connections_active += 1
        notify(self.config, ConnectionOpened(connection.peer))
        if self.stopping:  # stop was requested between accept() and now
            connection.interrupt()

    def connection_finished(self, connection: BlockingConnection, reason: CloseReason) -> None:
        with self.stats_lock:
            self.connections.discard(connection)
            if not connection.adopted:
                self.admission.release(connection.peer[0])
            self.stats.connections_active -= 1
            self.stats.requests_served += connection.session.requests_served
        notify(self.config, ConnectionClosed(connection.peer, reason, connection.session))

    def note_output_queue(self, size: int) -> None:
        """Replies waiting to be sent to one client (they are sent before reading more); called
        when `size` is more than the largest so far."""
        with self.stats_lock:
            self.stats.largest_output_queue_bytes = max(self.stats.largest_output_queue_bytes, size)

    def count_timeout(self) -> None:
        with self.stats_lock:
            self.stats.connections_timed_out += 1
