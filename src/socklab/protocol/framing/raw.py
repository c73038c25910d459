"""Raw framing: the naive server of the live-coding slides, kept broken on purpose.

The slide's server reads a command with `conn.recv(2)` and the text with `conn.recv(1500)`,
trusting that one `send()` by the client arrives as one `recv()` at the server. TCP promises no
such thing: it delivers a byte stream, and segment boundaries are the network's choice.

This framer reproduces exactly that behaviour from the chunks a runtime hands it (one chunk =
what one `recv()` returned): the first 2 bytes are the command; the text is whatever else that
chunk held (up to 1500 bytes), or else the next chunk. `C:` carries no text, as on the slide.
It works when every request arrives as its own chunk, and breaks when:

* two requests arrive in one chunk (Nagle's algorithm, a busy server, a proxy): the text of the
  first swallows the second, so `U:a` and `L:B` sent back to back are answered with one reply,
  `AL:B`, and the second request is lost;
* a request is split over chunks (`L:` and `UPPER\\n` sent apart works by luck, `U:hel` + `lo`
  does not: the server answers `HEL` and then reads `lo` as a command);
* the text is longer than 1500 bytes: the rest is read as the next command.

It never fails with an error: a naive server has no way to notice.

Replies are sent as they are, with no delimiter, so the client cannot find their ends either:
`RawReplyFramer` is the client's side, and treats each chunk it receives as one reply.
"""

from __future__ import annotations

from socklab.protocol.framing.base import FrameEvent, TruncatedFrame
from socklab.protocol.limits import RAW_COMMAND_BYTES, RAW_RECEIVE_BYTES

# Commands the slide's server answers without a second recv(): it closes right after `C:`.
COMMANDS_WITHOUT_TEXT = frozenset({b"C:"})


class RawFramer:
    """The lecture's naive server side: a 2-byte command, then the text that same recv()
    returned (the module docstring lists how it breaks). It never reports an error."""

    name = "raw"
    delimits_messages = False

    def __init__(self, max_message_bytes: int) -> None:
        self.max_message_bytes = max_message_bytes
        self._text_bytes = min(RAW_RECEIVE_BYTES, max_message_bytes)
        self._buffer = bytearray()
        self._command: bytes | None = None

    @property
    def has_partial_message(self) -> bool:
        """True while a command waits for its text, or bytes for the next command."""
        return self._command is not None or bool(self._buffer)

    @property
    def buffered_bytes(self) -> int:
        """Bytes held for the next command."""
        return len(self._buffer)

    def receive_data(self, data: bytes) -> list[FrameEvent]:
        """The requests found as the slide's server would find them, one chunk per recv()."""
        if not data:
            return []
        events: list[FrameEvent] = []
        if self._command is not None:
            # The previous chunk ended right after the command: this recv() returns the text.
            text, rest = data[: self._text_bytes], data[self._text_bytes :]
            events.append(self._command + text)
            self._command = None
            self._buffer += rest
        else:
            self._buffer += data
        while len(self._buffer) >= RAW_COMMAND_BYTES:
            command = bytes(self._buffer[:RAW_COMMAND_BYTES])
            del self._buffer[:RAW_COMMAND_BYTES]
            if command in COMMANDS_WITHOUT_TEXT:
                events.append(command)
                continue
            if not self._buffer:
                self._command = command
                break
            text = bytes(self._buffer[: self._text_bytes])
            del self._buffer[: self._text_bytes]
            events.append(command + text)
        return events

    def receive_eof(self) -> list[FrameEvent]:
        """A `TruncatedFrame` if a command or its text was cut off, else nothing."""
        pending = len(self._buffer) + (len(self._command) if self._command else 0)
        self._buffer.clear()
        self._command = None
        return [TruncatedFrame(pending)] if pending else []

    def encode(self, message: bytes) -> bytes:
        """`message` as it is: no delimiter, so the reader cannot find its end either."""
        return message


class RawReplyFramer:
    """The client's naive side: every chunk received is taken as one whole reply."""

    name = "raw"
    delimits_messages = False

    def __init__(self, max_message_bytes: int) -> None:
        self.max_message_bytes = max_message_bytes

    @property
    def has_partial_message(self) -> bool:
        return False

    @property
    def buffered_bytes(self) -> int:
        return 0

    def receive_data(self, data: bytes) -> list[FrameEvent]:
        return [data] if data else []

    def receive_eof(self) -> list[FrameEvent]:
        return []

    def encode(self, message: bytes) -> bytes:
        return message
