"""The upper/lowercase converter of the live-coding slides: commands, conversion, error replies.

Requests are `U:<text>` (upper-case), `L:<text>` (lower-case) and `C:` (close). Text is UTF-8 and
converted with Python's full Unicode case mapping (`straße` -> `STRASSE`). The converter never
knows the framing: it maps one whole request message to one reply message.

Fast path: ASCII text (the overwhelming case) is converted as bytes with `bytes.upper()`, which
is exact for ASCII and never allocates a `str`.

Over UDP the same conversion runs per datagram, with two extras (see docs/PROTOCOL.md):
an optional request id `#<id> ` that the reply echoes, so a client can match replies to
retransmitted requests, and a cap that keeps every reply no longer than its request, so the
server can never be used to amplify traffic towards a spoofed address.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

GREETING: Final = b"Hi I'm your upper/lowercase converter. Message format U|L:<message>"

UPPER: Final = b"U:"
LOWER: Final = b"L:"
CLOSE: Final = b"C:"
ERROR_PREFIX: Final = b"E:"


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """A request the converter cannot serve; `reason` is readable English (it goes on the wire)."""

    reason: str

    @property
    def payload(self) -> bytes:
        return ERROR_PREFIX + self.reason.encode()


@dataclass(frozen=True, slots=True)
class CloseRequest:
    """The client sent `C:`: the connection should close once earlier replies are sent."""


CLOSE_REQUEST: Final = CloseRequest()

Reply = bytes | ErrorReply | CloseRequest


def convert_text(text: bytes, *, upper: bool) -> bytes | ErrorReply:
    """Upper- or lower-case UTF-8 `text`; invalid UTF-8 becomes an ErrorReply naming the byte."""
    if text.isascii():
        return text.upper() if upper else text.lower()
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = text[exc.start]
        return ErrorReply(
            f"request is not valid UTF-8 (byte 0x{bad:02X} at offset {exc.start + 2})"
        )
    return (decoded.upper() if upper else decoded.lower()).encode("utf-8")


def handle_request(message: bytes) -> Reply:
    """The reply to one whole request message."""
    command = message[:2]
    if command == UPPER:
        text = message[2:]
        # ASCII inline (no call): this line runs once per request of every server.
        return text.upper() if text.isascii() else convert_text(text, upper=True)
    if command == LOWER:
        text = message[2:]
        return text.lower() if text.isascii() else convert_text(text, upper=False)
    if command == CLOSE:
        return CLOSE_REQUEST
    return ErrorReply(describe_unknown_command(message))


def answer_ascii_in_place(request: bytes) -> bytes | None:
    """The reply to a `U:`/`L:` request of ASCII text, its terminator kept in place; else None
    (then `handle_request` answers).

    Case mapping leaves non-letters alone, so a framed request (`U:abc` + LF) maps straight to
    its framed reply (`ABC` + LF): one slice and one case map, the cheapest answer there is, for
    the most frequent request. The caller guarantees that `request` holds one message and that
    what follows the message has no letters.
    """
    if request.isascii():
        command = request[:2]
        if command == UPPER:
            return request[2:].upper()
        if command == LOWER:
            return request[2:].lower()
    return None


def describe_unknown_command(message: bytes) -> str:
    if not message:
        return "empty request; send U:<text>, L:<text> or C:"
    shown = message[:2].decode("utf-8", "backslashreplace")
    if len(message) < 2 or message[1:2] != b":":
        return f"unknown command '{shown}'; a request starts with U:, L: or C:"
    return f"unknown command '{shown}'; use U:<text>, L:<text> or C:"


# --- UDP ---------------------------------------------------------------------------------------

REQUEST_ID_MARK: Final = b"#"
MAX_REQUEST_ID_DIGITS: Final = 20  # fits an unsigned 64-bit counter
UDP_REPLY_TOO_LONG: Final = b"E:reply longer than request"
UDP_REPLY_IS_A_REQUEST: Final = b"E:reply would be a request"
# Replies starting like a request (in either case, as the upper server upper-cases them) are
# not sent: `U:U:U:...` would otherwise bounce between two converters, one hop per `U:`.
_REQUEST_LIKE = frozenset({b"U:", b"L:", b"u:", b"l:"})


def handle_datagram(datagram: bytes) -> bytes | None:
    """The reply datagram to one request datagram, or None when nothing must be sent.

    `#<id> U:text` is answered `#<id> TEXT`: the id (1-20 decimal digits and one space) is
    echoed verbatim. A reply never has more bytes than the request: a conversion that grows
    (`U:ŉ` -> `ʼN`, 3 bytes for 2) is answered with a short error if that fits, else not at all,
    and so is an error reply longer than its request. Empty datagrams and `C:` get no reply,
    and neither does an `E:` datagram: it is some server's error reply, and answering it with
    an error of our own would bounce between two converters forever (RFC 1122 section 3.2.2:
    no ICMP error message is sent about an ICMP error message). A converted text that starts
    like a request (`U:U:x` -> `U:X`, `L:L:x` -> `l:x`) is answered with a short error instead:
    sent back to a converter, or via an upper server, it would be answered again, one hop per
    nested command. The other loop guards, for every UDP server, are in
    `socklab.protocol.reflection`.
    """
    if not datagram:
        return None
    request_id, message = split_request_id(datagram)
    if message.startswith(ERROR_PREFIX):
        return None
    reply = handle_request(message)
    if isinstance(reply, CloseRequest):
        return None
    if isinstance(reply, ErrorReply):
        payload = reply.payload
    elif split_request_id(reply)[1][:2] in _REQUEST_LIKE:
        payload = UDP_REPLY_IS_A_REQUEST
    else:
        payload = reply
    answer = request_id + payload
    if len(answer) <= len(datagram):
        return answer
    fallback = request_id + UDP_REPLY_TOO_LONG
    return fallback if len(fallback) <= len(datagram) else None


def split_request_id(datagram: bytes) -> tuple[bytes, bytes]:
    """(`#<id> ` prefix or b"", the request) — plain slide datagrams have no prefix."""
    if not datagram.startswith(REQUEST_ID_MARK):
        return b"", datagram
    space = datagram.find(b" ", 1, 2 + MAX_REQUEST_ID_DIGITS)
    if space < 2 or not datagram[1:space].isdigit():
        return b"", datagram
    return datagram[: space + 1], datagram[space + 1 :]


def build_datagram(message: bytes, request_id: int | None = None) -> bytes:
    """A request datagram, with the optional id prefix."""
    if request_id is None:
        return message
    if request_id < 0:
        raise ValueError("request ids are non-negative")
    return REQUEST_ID_MARK + str(request_id).encode() + b" " + message


def parse_reply_datagram(datagram: bytes) -> tuple[int | None, bytes]:
    """(request id or None, reply payload) of a reply datagram."""
    prefix, payload = split_request_id(datagram)
    return (int(prefix[1:-1]) if prefix else None), payload
