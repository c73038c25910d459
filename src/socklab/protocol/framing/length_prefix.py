"""Length-prefix framing: a 4-byte unsigned big-endian length, then that many bytes.

The header is checked against the limit before any of the body is buffered, so an announced
4 GiB message costs nothing but an error. Bytes are kept in one bytearray and consumed by
advancing an offset; the consumed prefix is deleted once per chunk (wsproto's `Buffer` idea),
which keeps a chunk of many small messages linear in its size.
"""

from __future__ import annotations

from socklab.i18n import lazy_gettext
from socklab.protocol.framing.base import FrameEvent, FrameTooLong, TruncatedFrame

HEADER_BYTES = 4
# The largest length the header can announce.
MAX_ANNOUNCED_BYTES = 0xFFFF_FFFF


class LengthPrefixFramer:
    """Messages after a 4-byte big-endian length; any bytes may be in a message. A length over
    `max_message_bytes` is a `FrameTooLong` at once, before any of the body is buffered."""

    name = "length"
    delimits_messages = True

    def __init__(self, max_message_bytes: int) -> None:
        if not 1 <= max_message_bytes <= 0xFFFF_FFFF:
            raise ValueError("max_message_bytes must be between 1 and 4,294,967,295")
        self.max_message_bytes = max_message_bytes
        self._buffer = bytearray()
        self._failed = False

    @property
    def has_partial_message(self) -> bool:
        """True while part of a header or body is buffered."""
        return bool(self._buffer)

    @property
    def buffered_bytes(self) -> int:
        """Bytes of the message not yet complete, header included."""
        return len(self._buffer)

    def receive_data(self, data: bytes) -> list[FrameEvent]:
        """The messages `data` completes, without their headers (see `Framer`)."""
        if self._failed or not data:
            return []
        buffer = self._buffer
        buffer += data
        events: list[FrameEvent] = []
        offset = 0
        available = len(buffer)
        while available - offset >= HEADER_BYTES:
            length = int.from_bytes(buffer[offset : offset + HEADER_BYTES], "big")
            if length > self.max_message_bytes:
                header = bytes(buffer[offset : offset + HEADER_BYTES])
                self._failed = True
                buffer.clear()
                events.append(
                    FrameTooLong(length, self.max_message_bytes, exact=True, header=header)
                )
                return events
            end = offset + HEADER_BYTES + length
            if end > available:
                break
            events.append(bytes(buffer[offset + HEADER_BYTES : end]))
            offset = end
        if offset:
            del buffer[:offset]
        return events

    def receive_eof(self) -> list[FrameEvent]:
        """A `TruncatedFrame` if the stream ended inside a message, else nothing."""
        if self._failed or not self._buffer:
            return []
        pending = len(self._buffer)
        self._buffer.clear()
        return [TruncatedFrame(pending)]

    def encode(self, message: bytes) -> bytes:
        """`message` after its 4-byte big-endian length."""
        return len(message).to_bytes(HEADER_BYTES, "big") + message

    def check_message(self, message: bytes) -> None:
        """Raise ValueError if `message` is too long for the 4-byte header to announce."""
        if len(message) > MAX_ANNOUNCED_BYTES:
            raise ValueError(
                lazy_gettext(
                    "a message of {size} bytes exceeds the length framing's {limit}-byte maximum",
                    size=len(message),
                    limit=MAX_ANNOUNCED_BYTES,
                )
            )
