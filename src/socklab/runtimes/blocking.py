"""Serving TCP with blocking calls: what the iterative and threaded models share.

Both models run the lecture's loop, `accept()` then `recv()`/`send()` on the new socket, and
differ in one hook only, like `socketserver.BaseServer.process_request`: `dispatch()` serves the
connection inline (iterative) or in a thread of its own (threaded).

A blocking call must not wait forever, or deadlines and stop requests would go unnoticed, so
every wait is cut after one deadline sweep interval (`SWEEP_INTERVAL_S`) by a socket timeout:

    accept() -> dispatch(sock) -> greeting -> [recv -> session -> sendall]* -> close
                                   ^ every wait ends within a sweep interval: deadlines, stop

Each waiting connection thus wakes once per interval, and CPython polls the socket before each
recv()/send() of a socket with a timeout: the price of deadlines that work on every platform
(waking a blocked recv() from another thread by shutdown() does not work on Windows). Letting
the kernel cut the wait instead (SO_RCVTIMEO on a blocking socket: one system call per call) was
measured 1.4x faster with 100 busy clients, but with 10,000 idle threads it did no better than
these timeouts (both erratic, at times stalled: 10,000 wake-ups a second), so it is not used;
docs/PERFORMANCE.md says what would remove the wake-ups instead.

Backpressure needs no code here: while a reply waits in `send()` because the peer does not read,
this connection reads nothing, and the write deadline ends the wait.

Stopping: `request_stop()` sets a flag and shuts down the reading side of every connection,
which wakes a blocked `recv()` at once (on Linux and macOS; elsewhere the next sweep notices).
The listener closes (stop accepting); a reply being sent may finish within `shutdown_grace_s`.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from abc import abstractmethod

from socklab.protocol.session import ConverterSession
from socklab.runtimes.config import ConnectionClosed, ConnectionOpened, ServerConfig
from socklab.runtimes.connections import (
    RECEIVE_BYTES,
    WritingDeadlines,
    accept_backoff_s,
    configure_accepted_socket_safely,
    frame_notice,
    notify,
    peer_of,
    send_notice_nowait,
    stop_timeout_s,
)
from socklab.runtimes.deadlines import SWEEP_INTERVAL_S
from socklab.runtimes.handle import ServerHandle
from socklab.runtimes.listening import (
    bound_address,
    open_listening_socket,
)
from socklab.tracing import poll_quietly

# accept() waits at most this long before looking at the stop flag again.
ACCEPT_WAIT_S = 0.5


class _Closed(Exception):
    """The connection ended on our side; `reason` is what the observer is told."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BlockingConnection:
    """One accepted TCP socket, served with blocking calls from greeting to close.

    Call order: `serve()` once, in the thread that owns the socket; `interrupt()` from any thread.
    """

    def __init__(self, sock: socket.socket, peer: tuple[str, int], server: BlockingServer) -> None:
        self.sock = sock
        self.peer = peer
        self.server = server
        config = server.config
        self.session = ConverterSession(
            config.framing, max_message_bytes=config.max_message_bytes, record_events=False
        )
        self._deadlines = WritingDeadlines(config)
        self._bytes_received = 0
        self._next_sweep = time.monotonic() + SWEEP_INTERVAL_S
        self._lock = threading.Lock()
        self._closed = False
        # Every wait ends after one sweep interval at most, so deadlines are checked at least
        # once per interval. Set once (settimeout() costs a system call), and quietly: these
        # waits are the server's machinery, which --trace does not show.
        poll_quietly(sock, SWEEP_INTERVAL_S)

    def serve(self) -> None:
        reason = "closed"
        try:
            self._converse()
        except _Closed as closed:
            reason = closed.reason
        except OSError:
            reason = "error"  # reset by the peer, or the socket broke
        finally:
            self._close()
            self.server.connection_finished(self, reason)

    def serve_nothing(self) -> None:
        """Close without serving (no thread could be started for it); instead of serve()."""
        self._close()
        self.server.connection_finished(self, "refused")

    def interrupt(self) -> None:
        """Wake a blocked recv() (the server is stopping); thread-safe, harmless once closed."""
        with self._lock:
            if not self._closed:
                with contextlib.suppress(OSError):
                    self.sock.shutdown(socket.SHUT_RD)

    def abort(self) -> None:
        """Wake a blocked send() too: the shutdown grace is over."""
        with self._lock:
            if not self._closed:
                with contextlib.suppress(OSError):
                    self.sock.shutdown(socket.SHUT_RDWR)

    # -- the loop ---------------------------------------------------------------------------------
    def _converse(self) -> None:
        session = self.session
        server = self.server
        self._send(session.data_to_send())
        while not session.should_close:
            if server.stopping:
                raise _Closed("server stopped")
            data = self._receive()
            if data:
                self._bytes_received += len(data)
                out = session.exchange(data)
            elif data is None:
                out = b""  # the wait reached the next sweep
            elif server.stopping:
                raise _Closed("server stopped")  # interrupt() woke recv(): not the peer's EOF
            else:
                session.receive_eof()
                out = session.data_to_send()
            if out:
                self._send(out)
            self._sweep_if_due(sending=False)

    def _receive(self) -> bytes | None:
        """Bytes received (b"" at EOF), or None when a sweep interval passed without any."""
        try:
            return self.sock.recv(RECEIVE_BYTES)
        except TimeoutError:
            return None

    def _send(self, data: bytes) -> None:
        """Send all of `data`, waiting while the peer does not read, within the write deadline."""
        server = self.server
        server.note_output_queue(len(data))
        view = memoryview(data)
        while view:
            if server.stopping:
                # Within the grace only: wait no longer than what is left of it.
                left_s = server.stop_deadline - time.monotonic()
                if left_s <= 0:
                    raise _Closed("server stopped")
                poll_quietly(self.sock, min(left_s, SWEEP_INTERVAL_S))
            try:
                sent = self.sock.send(view)
            except TimeoutError:
                sent = 0
            if sent:
                self._deadlines.sent_since_sweep = True
                if sent == len(view):
                    return  # the usual case: all of it at once; the caller sweeps when due
                view = view[sent:]
            self._sweep_if_due(sending=True)

    def _sweep_if_due(self, *, sending: bool) -> None:
        now = time.monotonic()
        if now < self._next_sweep:
            return
        self._next_sweep = now + SWEEP_INTERVAL_S
        notice = self._deadlines.sweep_connection(
            bytes_received=self._bytes_received, session=self.session, output_pending=sending
        )
        if notice is None:
            return
        self.server.count_timeout()
        if not sending:
            # While a send is stuck the peer would not read the notice either.
            send_notice_nowait(self.sock, frame_notice(self.server.config.framing, notice))
        raise _Closed("timeout")

    def _close(self) -> None:
        with self._lock:
            self._closed = True
            self.sock.close()
        self.session.closed()


class BlockingServer(ServerHandle):
    """Accepts with a blocking listener and hands each connection to `dispatch()`."""

    def __init__(self, config: ServerConfig, thread_name: str) -> None:
        self.config = config
        self._listener = open_listening_socket(config, blocking=True)
        super().__init__(bound_address(self._listener))
        self._stop_requested = threading.Event()
        # Read on every request by every connection thread: a plain attribute, not the Event.
        self.stopping = False
        self.stop_deadline = float("inf")
        self.stats_lock = threading.Lock()
        self.connections: set[BlockingConnection] = set()
        self.start_thread(f"{thread_name}-{self.address[1]}")

    @abstractmethod
    def dispatch(self, sock: socket.socket, peer: tuple[str, int]) -> None:
        """Serve (or refuse) the accepted `sock`: the one thing the blocking models do differently."""

    def finish_connections(self) -> None:
        """After accepting stopped: wait for connections still being served (threaded)."""

    def run(self) -> None:
        listener = self._listener
        poll_quietly(listener, ACCEPT_WAIT_S)
        try:
            while not self.stopping:
                try:
                    sock, address = listener.accept()
                except TimeoutError:
                    continue
                except OSError as exc:
                    if self.stopping:
                        break  # request_stop() shut the listener down to wake accept()
                    backoff_s = accept_backoff_s(exc)
                    if backoff_s:
                        self._stop_requested.wait(backoff_s)
                    continue
                configure_accepted_socket_safely(sock, self.config)
                self.dispatch(sock, peer_of(address))
        finally:
            listener.close()  # stop accepting: clients still in the backlog are reset
            self.finish_connections()

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

    def open_connection(self, sock: socket.socket, peer: tuple[str, int]) -> BlockingConnection:
        connection = BlockingConnection(sock, peer, self)
        with self.stats_lock:
            self.connections.add(connection)
            self.stats.connections_accepted += 1
            self.stats.connections_active += 1
        notify(self.config, ConnectionOpened(peer))
        if self.stopping:  # stop was requested between accept() and now
            connection.interrupt()
        return connection

    def connection_finished(self, connection: BlockingConnection, reason: str) -> None:
        with self.stats_lock:
            self.connections.discard(connection)
            self.stats.connections_active -= 1
            self.stats.requests_served += connection.session.requests_served
        notify(self.config, ConnectionClosed(connection.peer, reason))

    def note_output_queue(self, size: int) -> None:
        """Replies waiting to be sent to one client (they are sent before reading more)."""
        if size > self.stats.largest_output_queue_bytes:
            with self.stats_lock:
                self.stats.largest_output_queue_bytes = max(
                    self.stats.largest_output_queue_bytes, size
                )

    def count_timeout(self) -> None:
        with self.stats_lock:
            self.stats.connections_timed_out += 1
