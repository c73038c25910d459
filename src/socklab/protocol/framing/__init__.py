"""Framings: how a byte stream is cut into messages. One interface, one registry.

A new framing is one module plus one entry in `FRAMINGS`. Every framer is bounded: it never
buffers more than its message limit plus one chunk handed to it.
"""

from __future__ import annotations

from collections.abc import Callable

from socklab.protocol.framing.base import (
    FrameEvent,
    Framer,
    FrameTooLong,
    TruncatedFrame,
)
from socklab.protocol.framing.length_prefix import LengthPrefixFramer
from socklab.protocol.framing.lines import LineFramer
from socklab.protocol.framing.raw import RawFramer

FramerFactory = Callable[[int], Framer]

# name -> factory(max_message_bytes); the CLI's --framing choices come from these keys.
FRAMINGS: dict[str, FramerFactory] = {
    "line": LineFramer,
    "length": LengthPrefixFramer,
    "raw": RawFramer,
}


def make_framer(name: str, max_message_bytes: int) -> Framer:
    """A fresh framer for one connection; `name` must be a key of FRAMINGS."""
    try:
        factory = FRAMINGS[name]
    except KeyError:
        raise ValueError(f"unknown framing {name!r}; choose one of {', '.join(FRAMINGS)}") from None
    return factory(max_message_bytes)


__all__ = [
    "FRAMINGS",
    "FrameEvent",
    "FrameTooLong",
    "Framer",
    "FramerFactory",
    "LengthPrefixFramer",
    "LineFramer",
    "RawFramer",
    "TruncatedFrame",
    "make_framer",
]
