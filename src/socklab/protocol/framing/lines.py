"""Line framing: every message ends in b"\\n"; a peer's b"\\r\\n" is accepted as well.

Strategy: complete lines are cut with one `bytes.split` per chunk (fast when a chunk holds whole
lines, the common case). A partial line is kept in a bytearray; while no newline arrives, new
chunks are appended without re-scanning old bytes, so a long line fed one byte at a time costs
O(n), not O(n²). The partial line is checked against the limit on every chunk: memory stays
below `max_message_bytes` plus one chunk, the bound asyncio's `readline` keeps too.

Fast paths: a chunk that is exactly one complete line while nothing is buffered (a closed-loop
client's request, by far the most frequent chunk) is returned by `maybe_single_message` without
building a list; if it ends in a bare LF, `holds_one_bare_line` lets the session answer it in
place, terminator and all. The session falls back to `receive_data` for every other chunk.

At end of stream an unterminated last line is still a message, as `file.readline()` returns it:
`printf 'U:abc' | ncat HOST PORT` gets its answer.
"""

from __future__ import annotations

from socklab.i18n import lazy_gettext
from socklab.protocol.framing.base import FrameEvent, FrameTooLong

_CR = ord("\r")


class LineFramer:
    """Messages end in LF (a peer's CRLF is accepted); a line over `max_message_bytes` is a
    `FrameTooLong`, found before more than the limit plus one chunk is buffered."""

    __slots__ = ("_failed", "_partial", "max_message_bytes")
    name = "line"
    delimits_messages = True

    def __init__(self, max_message_bytes: int) -> None:
        if max_message_bytes < 1:
            raise ValueError("max_message_bytes must be at least 1")
        self.max_message_bytes = max_message_bytes
        self._partial = bytearray()
        self._failed = False

    @property
    def has_partial_message(self) -> bool:
        """True while part of a line is buffered."""
        return bool(self._partial)

    @property
    def buffered_bytes(self) -> int:
        """Bytes of the line not yet complete."""
        return len(self._partial)

    def holds_one_bare_line(self, data: bytes) -> bool:
        """True if `data` is exactly one complete line ending in a bare LF, within the limit,
        with nothing buffered: its reply can be made in place, LF included."""
        last = len(data) - 1
        return (
            data.find(b"\n") == last
            and last >= 0
            and not self._partial
            and not self._failed
            and last <= self.max_message_bytes
            and data[last - 1] != _CR  # an int, no one-byte slice (b"\n" alone: data[-1] is the LF)
        )

    def maybe_single_message(self, data: bytes) -> bytes | None:
        """The message if `data` is exactly one complete, allowed line and nothing is buffered.

        None means "take the general path" (`receive_data`), never "no message": nothing is
        consumed then, so the caller must feed the same chunk to `receive_data`.
        """
        end = data.find(b"\n")
        if end < 0 or end != len(data) - 1 or self._partial or self._failed:
            return None
        message = data[:-2] if data.endswith(b"\r\n") else data[:-1]
        if len(message) > self.max_message_bytes:
            return None  # the general path reports it
        return message

    def receive_data(self, data: bytes) -> list[FrameEvent]:
        """The lines `data` completes, without their terminators (see `Framer`)."""
        if self._failed or not data:
            return []
        if self._partial:
            if b"\n" not in data:
                self._partial += data
                return self._check_partial()
            self._partial += data
            data = bytes(self._partial)
            self._partial.clear()
        lines: list[FrameEvent] = list(data.split(b"\n"))
        tail = lines.pop()
        limit = self.max_message_bytes
        for index, line in enumerate(lines):
            assert isinstance(line, bytes)
            if line.endswith(b"\r"):
                line = lines[index] = line[:-1]
            if len(line) > limit:
                self._failed = True
                del lines[index:]
                # Not exact=True even though the whole line is here: had TCP delivered it in
                # smaller pieces, only "over the limit" would be known, and the reply must not
                # depend on how the stream was cut (the fuzz harness checks this).
                lines.append(FrameTooLong(len(line), limit, exact=False))
                return lines
        if tail:
            assert isinstance(tail, bytes)
            self._partial += tail
            lines.extend(self._check_partial())
        return lines

    def _check_partial(self) -> list[FrameEvent]:
        # A CR may still be followed by LF, so it does not count towards the limit yet.
        size = len(self._partial) - (1 if self._partial.endswith(b"\r") else 0)
        if size > self.max_message_bytes:
            self._failed = True
            self._partial.clear()
            return [FrameTooLong(size, self.max_message_bytes, exact=False)]
        return []

    def receive_eof(self) -> list[FrameEvent]:
        """An unterminated last line is still a message, as `file.readline()` returns it."""
        if self._failed or not self._partial:
            return []
        last = bytes(self._partial).removesuffix(b"\r")
        self._partial.clear()
        return [last]

    def encode(self, message: bytes) -> bytes:
        """`message` as one line: with its LF appended (the caller keeps LF out of it)."""
        return message + b"\n"

    def check_message(self, message: bytes) -> None:
        """Raise ValueError if `message` cannot be sent as one line: a LF inside it would end
        the line early, and the peer would read two messages. Not on the converter's hot path:
        its replies are case-mapped request lines, which hold no LF."""
        position = message.find(b"\n")
        if position >= 0:
            raise ValueError(
                lazy_gettext(
                    "a message with the line framing cannot contain a newline (byte {position} of {size}); use the length framing for arbitrary bytes",
                    position=position,
                    size=len(message),
                )
            )
