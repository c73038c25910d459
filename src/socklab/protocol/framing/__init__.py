"""Framings: how a byte stream is cut into messages. One interface, one registry.

A new framing is one module plus one entry in `FRAMINGS`. Every framer is bounded: it never
buffers more than its message limit plus one chunk handed to it.

The entry carries what callers need besides a framer, so no caller branches on a framing's
name: whether the framing delimits messages (a reader can tell where a reply ends, and a notice
the peer did not ask for from a reply) and the size of a header that precedes each message (a
checker splits a request inside it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, get_args

from socklab.i18n import _
from socklab.protocol.framing.base import (
    FrameEvent,
    Framer,
    FrameTooLong,
    TruncatedFrame,
)
from socklab.protocol.framing.length_prefix import HEADER_BYTES, LengthPrefixFramer
from socklab.protocol.framing.lines import LineFramer
from socklab.protocol.framing.raw import RawFramer, RawReplyFramer

FramerFactory = Callable[[int], Framer]

# The names a stream framing is chosen by (`--framing`); a new framing adds its name here too,
# and mypy then asks for its registry entry.
FramingName = Literal["line", "length", "raw"]
FRAMING_NAMES: tuple[FramingName, ...] = get_args(FramingName)


@dataclass(frozen=True, slots=True)
class FramingInfo:
    """One framing as callers see it: how to make its framer, and what they may rely on."""

    make: FramerFactory  # factory(max_message_bytes) -> a fresh framer for one connection
    # Messages have ends a reader can find (lines, length prefixes); the naive raw framing's
    # reader takes whatever one recv() returns as one message.
    delimits_messages: bool
    # Bytes of a header before each message's body (0: none), the part a reader must collect
    # whole before it knows anything.
    header_bytes: int = 0
    # The client's side, where it reads differently from the server's (raw: every chunk is
    # one reply); None: `make` serves both sides.
    make_reply_framer: FramerFactory | None = None

    def reply_framer(self, max_message_bytes: int) -> Framer:
        """A fresh framer for the replies a client reads."""
        return (self.make_reply_framer or self.make)(max_message_bytes)

    def count_messages(self, data: bytes, *, at_eof: bool = False) -> int:
        """Complete messages in `data`, a whole stream received so far; without delimiters any
        bytes count as one. `at_eof`: the stream ended, so a last message without its
        terminator counts too, where the framing allows one (a line)."""
        if not self.delimits_messages:
            return 1 if data else 0
        framer = self.make(max(len(data), 1))
        events = framer.receive_data(data)
        if at_eof:
            events += framer.receive_eof()
        return sum(1 for event in events if isinstance(event, bytes))

    def first_message(self, data: bytes) -> bytes:
        """The first message in `data` (a whole stream received), or `data` when none ends."""
        if not self.delimits_messages:
            return data
        framer = self.make(max(len(data), 1))
        for event in [*framer.receive_data(data), *framer.receive_eof()]:
            if isinstance(event, bytes):
                return event
        return data


# name -> what a caller needs; the CLI's --framing choices come from these keys.
FRAMINGS: dict[FramingName, FramingInfo] = {
    "line": FramingInfo(LineFramer, delimits_messages=True),
    "length": FramingInfo(LengthPrefixFramer, delimits_messages=True, header_bytes=HEADER_BYTES),
    "raw": FramingInfo(RawFramer, delimits_messages=False, make_reply_framer=RawReplyFramer),
}
assert set(FRAMINGS) == set(FRAMING_NAMES), "every FramingName has one FRAMINGS entry"


def framing_info(name: str) -> FramingInfo:
    """The registry entry of `name`; ValueError naming the choices for an unknown one."""
    try:
        return FRAMINGS[name]  # type: ignore[index]  # any str is looked up; unknown: KeyError
    except KeyError:
        raise ValueError(f"unknown framing {name!r}; choose one of {', '.join(FRAMINGS)}") from None


def describe_framing(name: str) -> str:
    """A framing's name (or "datagram") as the word the user's language puts before "framing".

    English keeps the --framing value ("line framing"); German says "Zeilen-Framing". An unknown
    name is shown as it is.
    """
    labels = {
        "line": _("line"),
        "length": _("length"),
        "raw": _("raw"),
        "datagram": _("datagram"),
    }
    return labels.get(name, name)


def make_framer(name: str, max_message_bytes: int) -> Framer:
    """A fresh framer for one connection; `name` must be a key of FRAMINGS."""
    return framing_info(name).make(max_message_bytes)


__all__ = [
    "FRAMINGS",
    "FRAMING_NAMES",
    "FrameEvent",
    "FrameTooLong",
    "Framer",
    "FramerFactory",
    "FramingInfo",
    "FramingName",
    "LengthPrefixFramer",
    "LineFramer",
    "RawFramer",
    "TruncatedFrame",
    "framing_info",
    "make_framer",
]
