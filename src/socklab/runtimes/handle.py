"""The handle every runtime returns: a context manager that knows its address and stops cleanly.

A runtime binds its socket in the caller's thread (so "address in use" is raised right there),
then serves in one background thread of its own. The caller's thread stays free for signals:
the CLI waits on the handle and calls `stop()` on Ctrl+C or SIGTERM.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import socket

    from socklab.protocol.live_session import LiveSession
    from socklab.runtimes.connections import ClientLimits, RateLimitedAlert


@dataclass(slots=True)
class ServerStats:
    """Counters a runtime keeps; read them after stop() for exact figures."""

    connections_accepted: int = 0
    connections_active: int = 0
    connections_refused_busy: int = 0
    connections_timed_out: int = 0
    requests_served: int = 0
    # Bytes of replies queued in the server for one client at the worst moment (backpressure
    # keeps it under ServerConfig.max_buffered_output_bytes); the robustness suite reads it.
    largest_output_queue_bytes: int = 0


class ServerHandle(ABC):
    """A running server. Use as `with serve(...) as handle: ...` or call stop().

    `address` is the (host, port) it is bound to (the real port when 0 was asked for), `stats`
    its counters; `stop()` stops it within a bound, `wait()` blocks until it has stopped.
    """

    def __init__(self, address: tuple[str, int]) -> None:
        self.address = address
        self.stats = ServerStats()
        # The bounds it serves with (TCP servers set it; --verbose prints it).
        self.client_limits: ClientLimits | None = None
        # Shortage alerts still holding a count when the server stops: reported by stop().
        self.alerts: list[RateLimitedAlert] = []
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None

    def start_thread(self, name: str) -> None:
        """Run `run()` in a daemon thread called `name` (runtimes call it once, when bound)."""
        self._thread = threading.Thread(target=self._run_guarded, name=name, daemon=True)
        self._thread.start()

    def _run_guarded(self) -> None:
        try:
            self.run()
        except BaseException as exc:  # kept for wait()/stop() to re-raise in the caller
            self._failure = exc
        finally:
            self._stopped.set()

    def fail(self, exc: BaseException) -> None:
        """A helper thread of the server failed: stop serving; wait() and stop() raise `exc`."""
        if self._failure is None:
            self._failure = exc
        self.request_stop()

    @abstractmethod
    def run(self) -> None:
        """Serve until request_stop() is called; runs in the background thread."""

    @abstractmethod
    def request_stop(self) -> None:
        """Ask run() to stop accepting, drain in-flight replies and close everything. Thread-safe."""

    def adopt(self, sock: socket.socket, session: LiveSession) -> None:
        """Serve `session` on `sock`, a connection this program opened (a dialled one), beside the
        accepted ones: the same loop, backpressure and deadlines. Thread-safe; the handle owns
        `sock` from now on (if the server is stopping: closed at once, and the session told
        `closed()`). `runtimes/dialing.py` opens such sockets. Models that cannot serve a
        connection they did not accept (`RuntimeInfo.adopts_connections` is False) raise
        UsageError."""
        from socklab.errors import UsageError

        sock.close()
        raise UsageError(f"{type(self).__name__} cannot serve a connection it did not accept")

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until the server stopped (True) or the timeout passed (False)."""
        stopped = self._stopped.wait(timeout_s)
        if stopped and self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure
        return stopped

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop serving within `timeout_s` and join the background thread."""
        if not self._stopped.is_set():
            self.request_stop()
        self.wait(timeout_s)
        if self._thread is not None:
            self._thread.join(timeout_s)
        for alert in self.alerts:
            alert.flush()

    @property
    def is_running(self) -> bool:
        """True until the server has stopped (asked to, or failed)."""
        return not self._stopped.is_set()

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
