"""Why a connection closed: one enum for every session and every runtime, and the notices a
server sends when it ends a connection on its own account.

The same word in every model: a runtime reports a `CloseReason` in `ConnectionClosed`, taken
from the session when the session decided to close (`C:`, an over-long message, the peer's
end of stream) and from the runtime when it gave up (a deadline, a reset, a stop, a refusal).
The CLI translates it; nothing here is shown to a user as is.

The notices are plain `E:` lines (`ERROR_PREFIX`), unframed: the session frames them as it
frames every message (`Session.abort`), so a length-prefix client can read them too. Which
reasons get one is decided here, once: a peer that closed or reset cannot read a notice, and a
client that asked to close needs none.
"""

from __future__ import annotations

import enum
from typing import Final

from socklab.protocol.converter import ERROR_PREFIX


class CloseReason(enum.Enum):
    """Why a connection closed. The values are English keys for logs and tests; the CLI
    translates the members, never the values."""

    # The peer's doing.
    PEER_EOF = "peer closed"  # it closed (or shut down) its sending side
    RESET = "reset"  # the connection was reset or broken (RST, EPIPE, TCP_USER_TIMEOUT)
    CLIENT_REQUESTED = "client requested close"  # the protocol's own close (the converter's C:)
    # The peer broke the protocol.
    PROTOCOL_ERROR = "protocol error"  # a session's generic reason for a peer's fault
    TOO_MANY_ERRORS = "too many bad requests in a row"
    MESSAGE_TOO_LONG = "message too long"
    TRUNCATED = "connection ended inside a message"
    # The server's doing.
    LOCAL = "closed by the server"  # the session was done (the upper service after its reply)
    IDLE_TIMEOUT = "idle timeout"
    MESSAGE_TIMEOUT = "message timeout"
    WRITE_TIMEOUT = "write timeout"
    SERVER_STOPPING = "server stopping"
    BUSY = "server busy"
    OUT_OF_MEMORY = "out of memory"


# Which reasons are timeouts: one `connections_timed_out` counter and one line for all three.
TIMEOUTS: Final = frozenset(
    {CloseReason.IDLE_TIMEOUT, CloseReason.MESSAGE_TIMEOUT, CloseReason.WRITE_TIMEOUT}
)

# The notice for each reason a server ends a connection with (unframed; no entry: no notice).
# memcached answers a connection over its `-c` bound with "ERROR Too many open connections"
# (the advice to come back is ours: the condition is temporary); Redis answers "-OOM command
# not allowed" when out of memory; HTTP/2 sends GOAWAY and SMTP's 421 says "service closing
# channel" when the server stops.
_NOTICES: Final[dict[CloseReason, bytes]] = {
    CloseReason.IDLE_TIMEOUT: ERROR_PREFIX + b"idle timeout: closing an inactive connection",
    CloseReason.MESSAGE_TIMEOUT: ERROR_PREFIX
    + b"message timeout: the message did not arrive in time",
    CloseReason.WRITE_TIMEOUT: ERROR_PREFIX + b"write timeout: the replies were not read",
    CloseReason.SERVER_STOPPING: ERROR_PREFIX + b"server stopping",
    CloseReason.BUSY: ERROR_PREFIX + b"server busy, try again later",
    CloseReason.OUT_OF_MEMORY: ERROR_PREFIX + b"server out of memory, try again later",
    CloseReason.TOO_MANY_ERRORS: ERROR_PREFIX + b"too many bad requests in a row; closing",
}


def notice_for(reason: CloseReason) -> bytes | None:
    """The `E:` line (unframed) a server sends before closing for `reason`; None for none."""
    return _NOTICES.get(reason)


__all__ = ["TIMEOUTS", "CloseReason", "notice_for"]
