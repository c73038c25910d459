"""threads model: one thread per connection, bounded by max_clients.

The lecture's answer to "recv() blocks": give every socket a thread of its own, so a blocking
call stops only that client. The accept loop stays in the server thread; `dispatch()` starts a
thread that serves the connection with the same blocking loop as the iterative model:

    server thread:  accept() -> (over the bound? "E:server busy", close) -> Thread(serve).start()
    client thread:  greeting -> [recv -> session -> send]* -> close

Beyond `max_clients` threads (or `max_clients_per_host` from one address) a new connection is
answered `E:server busy` and closed at once, so it never hangs silently and a connection storm
cannot create unbounded threads. A thread that cannot start (no memory for its stack, the
thread limit) refuses its client the same way and tells the operator; a MemoryError while
answering ends that client with `E:server out of memory` and a line for the operator.

Costs: each thread reserves a stack (8 MiB of address space by default on Linux, touched only
as used) and a kernel task; only one thread runs Python at a time (the GIL), so threads give
concurrency for waiting, not parallelism for converting.
"""

from __future__ import annotations

import socket
import threading
import time

from socklab.protocol.live_session import LiveSession
from socklab.runtimes.blocking import BlockingConnection, BlockingServer
from socklab.runtimes.config import ConnectionRefusedBusy, ServerConfig, ThreadsExhausted
from socklab.runtimes.connections import (
    RateLimitedAlert,
    configure_accepted_socket_safely,
    notify,
    peer_of,
    refuse_busy,
)

# After the shutdown grace, blocked threads are woken by shutting their sockets down; they need
# only a moment to notice and end.
ABORT_JOIN_S = 1.0


class ThreadedServer(BlockingServer):
    """A thread per connection; the server thread only accepts."""

    def __init__(self, config: ServerConfig) -> None:
        self._threads: dict[BlockingConnection, threading.Thread] = {}
        self.thread_alert: RateLimitedAlert | None = None
        super().__init__(config, "socklab-threads")

    def dispatch(self, sock: socket.socket, peer: tuple[str, int]) -> None:
        with self.stats_lock:
            admitted = self.admission.admit(len(self.connections), peer[0])
            if not admitted:
                self.stats.connections_refused_busy += 1
        if not admitted:
            refuse_busy(sock, self.config)
            notify(self.config, ConnectionRefusedBusy(peer))
            return
        try:
            connection = self.make_connection(sock, peer)
        except MemoryError:
            with self.stats_lock:
                self.admission.release(peer[0])
            self._refuse_without_thread(sock, peer, "out of memory")
            return
        self._start_serving(connection, sock, peer)

    def adopt(self, sock: socket.socket, session: LiveSession) -> None:
        """Serve a dialled socket in a thread of its own, like an accepted one; it takes no
        --max-clients slot (the program chose to open it). Thread-safe."""
        with self.stats_lock:
            refused = self.stopping
        if refused:
            sock.close()
            session.closed()
            return
        connection = self.make_connection(sock, peer_of(_peer_address(sock)), session)
        connection.adopted = True
        configure_accepted_socket_safely(sock, self.config)
        self._start_serving(connection, sock, connection.peer)

    def _start_serving(
        self, connection: BlockingConnection, sock: socket.socket, peer: tuple[str, int]
    ) -> None:
        thread = threading.Thread(
            target=self._serve_and_forget,
            args=(connection,),
            name=f"socklab-client-{peer[0]}:{peer[1]}",
            daemon=True,
        )
        with self.stats_lock:
            # Before the thread starts: the --max-clients bound and a stop see it at once.
            self.connections.add(connection)
            self._threads[connection] = thread
        try:
            thread.start()
        except (RuntimeError, MemoryError) as exc:
            # "can't start new thread": no memory for its stack (ulimit -v) or the thread limit
            # (ulimit -u). Refuse this client like one over the bound, tell the operator, and
            # keep serving the others; it was never served, so it is not counted as a connection.
            with self.stats_lock:
                self.connections.discard(connection)
                self._threads.pop(connection, None)
                if not connection.adopted:
                    self.admission.release(peer[0])
            connection.session.closed()
            self._refuse_without_thread(sock, peer, str(exc) or type(exc).__name__)

    def _refuse_without_thread(
        self, sock: socket.socket, peer: tuple[str, int], detail: str
    ) -> None:
        with self.stats_lock:
            self.stats.connections_refused_busy += 1
        refuse_busy(sock, self.config)
        notify(self.config, ConnectionRefusedBusy(peer))
        self._report_thread_failure(detail)

    def _report_thread_failure(self, detail: str) -> None:
        alert = self.thread_alert
        if alert is None:
            alert = self.thread_alert = RateLimitedAlert(
                self.config, lambda refused: ThreadsExhausted(refused, detail)
            )
            self.alerts.append(alert)
        alert.count()

    def _serve_and_forget(self, connection: BlockingConnection) -> None:
        try:
            self.admit(connection)
            connection.serve()
        finally:
            with self.stats_lock:
                self._threads.pop(connection, None)

    def finish_connections(self) -> None:
        """Join every client thread: within the grace, then after waking blocked ones."""
        for _connection, thread in self._pending_threads():
            thread.join(max(0.0, self.stop_deadline - time.monotonic()))
        for connection, thread in self._pending_threads():
            connection.abort()
            thread.join(ABORT_JOIN_S)

    def _pending_threads(self) -> list[tuple[BlockingConnection, threading.Thread]]:
        with self.stats_lock:
            return list(self._threads.items())


def _peer_address(sock: socket.socket) -> object:
    try:
        return sock.getpeername()
    except OSError:  # reset already: the first recv() says so
        return ("", 0)


def serve(config: ServerConfig) -> ThreadedServer:
    return ThreadedServer(config)
