"""`LiveSession`: a session that also speaks on its own, and how a runtime tells one apart.

The converter's session only ever answers: a runtime feeds it bytes and sends what it hands
back. Some protocols have more to say than answers: a chat connection carries what the user
typed, what another connection received (a relay) and its own keepalives. Such a session is
*live*: the runtime tells it its connection once (`connection_made`, asyncio's Protocol has the
same verb), handing it `wake`, and from then on anyone may change what the session has to send,
from any thread, and then call `wake()`. The runtime, woken, takes `data_to_send()` and looks at
`should_close`, exactly as after feeding received bytes.

Call order (in addition to `Session`'s):

    session = factory(...)                       # or: handed to the runtime's adopt()
    session.connection_made(peer, wake)          # once, before anything else, runtime's thread
    (receive_data | receive_eof | <anyone>: change output, wake())* -> closed()

`wake()` is thread-safe, never blocks and never calls back into the session, so it may be called
while holding the lock that guards the session's own state. A wake after `closed()` is ignored.
A live session is made when its connection opens (never lazily on the first byte), since it
may speak first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from socklab.protocol.session import Session

Wake = Callable[[], None]


@runtime_checkable
class LiveSession(Session, Protocol):
    """A `Session` that may have bytes to send without having received any."""

    def connection_made(self, peer: tuple[str, int], wake: Wake) -> None:
        """The runtime serves this session on a connection to `peer`; `wake` is its doorbell."""


def makes_live_sessions(factory: object) -> bool:
    """Whether a session factory makes `LiveSession`s: it says so with a true
    `makes_live_sessions` attribute (the converter's factory, a class, has none)."""
    return bool(getattr(factory, "makes_live_sessions", False))


def as_live(session: Session) -> LiveSession | None:
    """`session` as a live session, or None for one that only answers."""
    return session if isinstance(session, LiveSession) else None
