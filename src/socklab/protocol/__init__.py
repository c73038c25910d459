"""The sans-I/O core: what bytes mean, with no sockets, threads, clocks or randomness.

Everything here is synchronous and deterministic; runtimes feed it bytes and write out what it
hands back. An architecture test fails if anything in this package imports socket, selectors,
asyncio, threading or time.

The names in `__all__` are the core's public API (also exported by `socklab` itself): the
framers and their events, the `Session` protocol every runtime drives, and the sessions socklab
ships. Everything else here is internal and may change.
"""

from socklab.protocol.closing import CloseReason
from socklab.protocol.framing import (
    Framer,
    FrameTooLong,
    LengthPrefixFramer,
    LineFramer,
    RawFramer,
    TruncatedFrame,
    make_framer,
)
from socklab.protocol.reply_session import ReplySession
from socklab.protocol.session import ConverterSession, Session, SessionFactory

__all__ = [
    "CloseReason",
    "ConverterSession",
    "FrameTooLong",
    "Framer",
    "LengthPrefixFramer",
    "LineFramer",
    "RawFramer",
    "ReplySession",
    "Session",
    "SessionFactory",
    "TruncatedFrame",
    "make_framer",
]
