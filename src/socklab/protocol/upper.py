"""The uppercase service of the lecture slides (port 12000): one message in, upper-cased out;
over TCP as a session that any runtime serves (`UpperSession`).

The slides' Python 2 code upper-cases a byte string; socklab upper-cases UTF-8 text with full
Unicode rules and leaves bytes that are not valid UTF-8 as they are (ASCII letters still
upper-cased), so no input can make the service fail.
"""

from __future__ import annotations

from socklab.errors import LocalProtocolError
from socklab.protocol.closing import CloseReason, notice_for
from socklab.protocol.converter import convert_text
from socklab.protocol.framing import FramingName


def upper_case(message: bytes, *, max_reply_bytes: int | None = None) -> bytes:
    """`message` upper-cased; with `max_reply_bytes`, never longer than that (UDP: no amplification).

    `bytes.upper()` only touches ASCII and never changes the length, so it is the fallback both
    for invalid UTF-8 and for text whose Unicode upper case would be longer than allowed.
    """
    converted = convert_text(message, upper=True)
    if not isinstance(converted, bytes):
        return message.upper()
    if max_reply_bytes is not None and len(converted) > max_reply_bytes:
        return message.upper()
    return converted


def handle_upper_datagram(datagram: bytes) -> bytes:
    """The UDP server's reply: the datagram upper-cased, never longer than it (no amplification).

    Whether it is sent at all is `socklab.protocol.reflection`'s decision: `HELLO` upper-cases to
    itself, and answering it would bounce between two upper servers forever.
    """
    return upper_case(datagram, max_reply_bytes=len(datagram))


# The slides' TCP server reads the sentence with one recv(1024).
SENTENCE_BYTES = 1024


class UpperSession:
    """The slides' TCP uppercase server as a session: one sentence in, upper-cased out, close.

    As on the slides, the sentence is what the first read returned (up to `max_message_bytes`,
    by default the slides' 1024): the client sends its line without a terminator and waits for
    the reply, so there is no end to wait for. The server sends no greeting.

    Call order, as for every session (`socklab.protocol.session`):

        OPEN    --receive_data(first bytes)--> CLOSING   (the reply waits in data_to_send())
        OPEN    --receive_eof()--------------> CLOSING   (nothing was sent: nothing to answer)
        OPEN    --abort(reason)--------------> CLOSING   (the reason's bare `E:` line first)
        CLOSING --receive_*()----------------> CLOSING   (ignored: the connection is closing)
        any     --closed()-------------------> CLOSED    (receive_* after it is our bug)

    `request` and `reply` keep the one exchange (bounded: one sentence and its reply) for the
    server's log line. `framing`, `greet` and `record_events` are accepted so that any runtime
    can make it (`SessionFactory`); the slides' protocol has no framing, greeting or events.
    """

    __slots__ = (
        "_out",
        "_state",
        "close_reason",
        "max_sentence_bytes",
        "reply",
        "request",
        "requests_served",
    )

    def __init__(
        self,
        framing: FramingName = "raw",
        *,
        max_message_bytes: int = SENTENCE_BYTES,
        greet: bool = True,
        record_events: bool = True,
    ) -> None:
        self.max_sentence_bytes = min(max_message_bytes, SENTENCE_BYTES)
        self.request: bytes | None = None
        self.reply: bytes | None = None
        self.requests_served = 0
        self.close_reason: CloseReason | None = None
        self._out = b""
        self._state = "open"

    def receive_data(self, data: bytes) -> None:
        self._check_not_closed("receive_data")
        if self._state != "open" or not data:
            return
        self.request = data[: self.max_sentence_bytes]
        self.reply = upper_case(self.request)
        self.requests_served = 1
        self._out = self.reply
        self._close_for(CloseReason.LOCAL)

    def exchange(self, data: bytes) -> bytes:
        self.receive_data(data)
        return self.data_to_send()

    def receive_eof(self) -> None:
        self._check_not_closed("receive_eof")
        if self._state == "open":
            self._close_for(CloseReason.PEER_EOF)

    def data_to_send(self) -> bytes:
        out, self._out = self._out, b""
        return out

    def closed(self) -> None:
        self._state = "closed"

    def abort(self, reason: CloseReason) -> None:
        """The runtime gives up (a deadline, a refusal): the reason's `E:` line, unframed as
        everything on this service, then close. Harmless once closing or closed."""
        if reason is CloseReason.SERVER_STOPPING:
            self.server_stopping()
        elif self._state == "open":
            self._out = notice_for(reason) or b""
            self._close_for(reason)

    def server_stopping(self) -> None:
        """The slides' protocol has no notice for a stop: a stopping server just closes."""
        if self._state == "open":
            self._close_for(CloseReason.SERVER_STOPPING)

    @property
    def should_close(self) -> bool:
        return self._state == "closing"

    @property
    def expects_unread_input(self) -> bool:
        return False  # the sentence is the first read, whatever its length: nothing is refused

    @property
    def has_partial_message(self) -> bool:
        return False  # the first read is the whole sentence

    def _close_for(self, reason: CloseReason) -> None:
        self._state = "closing"
        self.close_reason = reason

    def _check_not_closed(self, call: str) -> None:
        if self._state == "closed":
            raise LocalProtocolError(f"{call}() after the session was closed")
