"""Live sessions on the blocking models: a reader thread and a writer thread per connection.

A blocking connection thread spends its life in `recv()`, so it cannot also send what a live
session (`protocol/live_session.py`) has to say on its own: the lecture's answer is a second
thread per socket, one per direction. `LiveBlockingConnection` keeps the connection's thread
as the reader and starts a writer beside it:

    reader:  connection_made(peer, wake) -> [recv -> receive_data -> ring]* -> EOF -> join writer
    writer:  [wait for the doorbell -> data_to_send() -> send]* -> should_close ->
             shutdown(SHUT_WR) -> linger for the reader's EOF (bounded) -> end

`wake()` only sets an Event: it never blocks, whoever rings it. Every byte goes out through the
writer with the connection's usual send (`BlockingConnection._send`), so the server's watchdog
runs the write deadline for it as for any reply; the idle and message deadlines watch the
reader. Backpressure as in the one-thread loop: while the writer is in a send, the reader reads
nothing, so a peer that does not read cannot make us produce (answers to its input) without
bound. Closing lingers as the chat's protocol needs: after our FIN the reader drains what the
peer still sends until its FIN (or `LINGER_S`), so our last bytes are not reset away.
"""

from __future__ import annotations

import socket
import threading

from socklab.protocol.closing import CloseReason
from socklab.protocol.live_session import LiveSession
from socklab.runtimes.blocking import BlockingConnection, BlockingServer, _Closed
from socklab.runtimes.connections import LINGER_S, RECEIVE_BYTES
from socklab.tracing import shutdown_quietly


class LiveBlockingConnection(BlockingConnection):
    """A `BlockingConnection` whose session may speak on its own (call order above)."""

    def __init__(
        self,
        sock: socket.socket,
        peer: tuple[str, int],
        server: BlockingServer,
        session: LiveSession,
    ) -> None:
        super().__init__(sock, peer, server, session)
        self._live = session
        self._rung = threading.Event()
        self._reader_done = threading.Event()
        self._writer: threading.Thread | None = None
        self._writer_failure: CloseReason | None = None
        self._not_sending = threading.Event()
        self._not_sending.set()

    def wake(self) -> None:
        """The session's doorbell: thread-safe, never blocks."""
        self._rung.set()

    def _converse(self) -> None:
        session = self._live
        session.connection_made(self.peer, self.wake)
        self._rung.set()  # what the session says first (a greeting) goes out at once
        self._writer = threading.Thread(
            target=self._write, name=f"{threading.current_thread().name}-writer", daemon=True
        )
        self._writer.start()
        clean = False
        try:
            self._read()
            clean = True
        finally:
            self._reader_done.set()
            self._rung.set()
            if not clean:
                shutdown_quietly(self.sock, socket.SHUT_RDWR)  # wakes a writer stuck in send()
            # Clean: the writer ends by itself once it sent everything (the watchdog's write
            # deadline ends a send the peer does not read).
            self._writer.join()
        if self._writer_failure is not None:
            raise _Closed(self._writer_failure)

    def _read(self) -> None:
        session = self._live
        receive = self.sock.recv
        while True:
            if self._ending is not None:
                self._end()
            self._not_sending.wait()  # backpressure: the peer reads our bytes before we read more
            try:
                data = receive(RECEIVE_BYTES)
            except TimeoutError:
                data = None  # the writer's send slices set a timeout, or not watched: sweep
            if data:
                self._bytes_received += len(data)
                if not session.should_close:  # closing: drained, not served (a linger)
                    session.receive_data(data)
                    self._rung.set()  # as after any feed: the answer goes out
            elif data is not None:
                if self._ending is not None:
                    self._end()  # the watchdog or a stop woke recv(): not the peer's EOF
                if self._writer_failure is not None:
                    return  # the writer shut the socket down
                session.receive_eof()
                self._rung.set()
                return
            if not self._watched:
                self._sweep_if_due(sending=False)

    def _write(self) -> None:
        session = self._live
        try:
            while True:
                self._rung.wait()
                self._rung.clear()
                while self._ending is None:
                    out = session.data_to_send()
                    if not out:
                        break
                    self._not_sending.clear()
                    try:
                        self._send(out)
                    finally:
                        self._not_sending.set()
                if self._ending is not None:
                    return  # the reader ends the connection
                if session.should_close or self._reader_done.is_set():
                    break
            # Everything is sent: our FIN, then the peer's within the linger time.
            shutdown_quietly(self.sock, socket.SHUT_WR)
            if not self._reader_done.wait(LINGER_S):
                shutdown_quietly(self.sock, socket.SHUT_RDWR)
        except _Closed as closed:
            self._fail_writer(closed.reason)
        except OSError:
            self._fail_writer(self._ending or CloseReason.RESET)

    def _fail_writer(self, reason: CloseReason) -> None:
        self._writer_failure = reason
        shutdown_quietly(self.sock, socket.SHUT_RDWR)  # wakes the reader
