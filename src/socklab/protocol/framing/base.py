"""The framer interface shared by every framing, and the events a framer reports.

Call order for one connection (one framer object per direction and connection):

    receive_data(chunk)* -> receive_eof()

`receive_data` returns the complete messages found so far, in order; a message is `bytes`.
A rule broken by the peer (a message over the limit) is returned as a `FrameTooLong` event
after the messages before it; from then on the framer is finished and ignores input, because a
byte stream cannot be resynchronised once a boundary is lost. "Need more data" is simply an
empty list. `receive_eof` returns a last message (where the framing allows one without a
terminator) or a `TruncatedFrame` event when the stream ended inside a message.
`encode(message)` frames one outgoing message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from socklab.i18n import Deferred, lazy_ngettext


@dataclass(frozen=True, slots=True)
class FrameTooLong:
    """The peer's message is longer than the limit (`size` is how much was seen, at least)."""

    size: int
    limit: int
    exact: bool  # True when `size` is the announced length, False when it is only a lower bound
    # The length header that announced `size` (b"": the framing has none): kept so that a
    # reader can tell a header from text sent without length framing ("Hi I" announces
    # 1,214,849,097 bytes).
    header: bytes = field(default=b"", compare=False)

    @property
    def header_looks_like_text(self) -> bool:
        """The header is printable ASCII: most likely the start of a line of text from a peer
        that does not use length framing, not a length."""
        return bool(self.header) and all(_is_text_byte(byte) for byte in self.header)

    def describe(self) -> Deferred:
        """One line with the numbers: English as a `str` (for an `E:` reply), translated by
        `translated()` (for the terminal)."""
        if self.exact:
            return lazy_ngettext(
                "message of {count} byte exceeds the {limit}-byte limit",
                "message of {count} bytes exceeds the {limit}-byte limit",
                self.size,
                limit=self.limit,
            )
        return lazy_ngettext(
            "message of over {count} byte exceeds the {limit}-byte limit",
            "message of over {count} bytes exceeds the {limit}-byte limit",
            self.limit,
            limit=self.limit,
        )


def _is_text_byte(byte: int) -> bool:
    # Printable ASCII, and the tab and line ends text holds.
    return 0x20 <= byte < 0x7F or byte in b"\t\r\n"


@dataclass(frozen=True, slots=True)
class TruncatedFrame:
    """The stream ended inside a message: `pending` bytes of it had arrived."""

    pending: int

    def describe(self) -> Deferred:
        """One line with the number of bytes that arrived: English as a `str`, translated by
        `translated()`."""
        return lazy_ngettext(
            "connection closed in the middle of a message ({count} byte received)",
            "connection closed in the middle of a message ({count} bytes received)",
            self.pending,
        )


FrameEvent = bytes | FrameTooLong | TruncatedFrame


class Framer(Protocol):
    """Cuts one direction of a byte stream into messages and frames outgoing ones."""

    name: str
    max_message_bytes: int
    # Whether a message the peer did not ask for (an `E:` notice) can be told apart from the
    # rest of the stream: true for lines and length prefixes, not for the naive raw framing,
    # whose reader takes whatever one recv() returns as the reply.
    delimits_messages: bool

    def receive_data(self, data: bytes) -> list[FrameEvent]:
        """The messages `data` completes, in order (empty: need more data), then a
        `FrameTooLong` if the peer broke the limit; after that, input is ignored."""
        ...

    def receive_eof(self) -> list[FrameEvent]:
        """At end of stream: a last message the framing allows without its end, or a
        `TruncatedFrame`, or nothing."""
        ...

    def encode(self, message: bytes) -> bytes:
        """`message` framed for the wire."""
        ...

    @property
    def has_partial_message(self) -> bool:
        """True while part of a message is buffered: the runtime's message deadline runs."""
        ...

    @property
    def buffered_bytes(self) -> int:
        """Bytes held for a message not yet complete (bounded by the limit plus one chunk)."""
        ...
