"""Connection deadlines counted in sweeps, shared by every runtime.

A runtime sweeps its connections once per `SWEEP_INTERVAL_S` and asks each connection's
`Deadlines` whether one has passed. Nothing is timed per read: the hot path only adds to a byte
counter, and precision is one sweep interval, which is plenty for timeouts of seconds.

A deadline never fires early: the event that starts it happens somewhere between two sweeps,
so the first sweep that sees it may come at once. A deadline of N sweeps therefore fires at
the (N+1)-th sweep that sees the condition, i.e. between N and N+1 sweep intervals after it
began (the robustness suite's slowloris test measures this).

Three deadlines (ServerConfig explains their defaults):
  idle     no byte received for idle_timeout_s
  message  a message begun but unfinished for message_timeout_s (a total deadline, so a
           slowloris trickling bytes cannot extend it)
  write    output stuck because the peer does not read, for write_timeout_s

A passed deadline is reported as its `CloseReason`; the session makes the notice to send
(`Session.abort`), so the runtime never writes protocol bytes of its own.
"""

from __future__ import annotations

import functools

from socklab.protocol.closing import CloseReason
from socklab.runtimes.config import ServerConfig

SWEEP_INTERVAL_S = 1.0

# A begun message still unfinished at this many sweeps in a row has been held at least
# (this - 1) sweep intervals: 2 s, long enough for any client that frames its messages (a
# line typed at a terminal is sent whole with its newline) and far below the message
# deadline, so a server's -v names a client without framing while it still waits.
STALLED_MESSAGE_SWEEPS = 3
STALLED_MESSAGE_S = (STALLED_MESSAGE_SWEEPS - 1) * SWEEP_INTERVAL_S

# Module globals: the sweep returns them without a lookup through the Enum class.
_IDLE_TIMEOUT = CloseReason.IDLE_TIMEOUT
_MESSAGE_TIMEOUT = CloseReason.MESSAGE_TIMEOUT
_WRITE_TIMEOUT = CloseReason.WRITE_TIMEOUT


@functools.lru_cache(maxsize=64)
def sweeps_for(seconds: float) -> int:
    # Cached: every connection then shares one int object (300 sweeps is not one of the small
    # ints CPython shares by itself; 10,000 idle connections would hold 10,000 copies).
    return max(1, round(seconds / SWEEP_INTERVAL_S))


class Deadlines:
    """The three deadline counters of one connection, advanced by `sweep()` once per interval."""

    __slots__ = (
        "_idle",
        "_idle_limit",
        "_message",
        "_message_limit",
        "_seen",
        "_write",
        "_write_limit",
    )

    def __init__(self, config: ServerConfig) -> None:
        self._idle_limit = sweeps_for(config.idle_timeout_s)
        self._message_limit = sweeps_for(config.message_timeout_s)
        self._write_limit = sweeps_for(config.write_timeout_s)
        self._seen = 0
        self._idle = self._message = self._write = 0

    def sweep(
        self, *, bytes_received: int, partial_message: bool, output_blocked: bool
    ) -> CloseReason | None:
        """Advance one sweep; the timeout to close for when a deadline passed, else None."""
        if output_blocked:
            self._write += 1
            if self._write > self._write_limit:
                return _WRITE_TIMEOUT
        else:
            self._write = 0
        if partial_message:
            self._message += 1
            if self._message > self._message_limit:
                return _MESSAGE_TIMEOUT
        else:
            self._message = 0
        if bytes_received == self._seen:
            self._idle += 1
            if self._idle > self._idle_limit:
                return _IDLE_TIMEOUT
        else:
            self._seen = bytes_received
            self._idle = 0
        return None

    @property
    def message_stalled_now(self) -> bool:
        """True at the one sweep at which a begun message has been held `STALLED_MESSAGE_S`:
        a runtime tells its observer then, once per message."""
        return self._message == STALLED_MESSAGE_SWEEPS
