"""A library user's protocol as a session: one function maps each whole message to its reply.

`socklab.serve(reply)` takes a function `reply(message: bytes) -> bytes | None` and serves it on
any runtime. This module is what makes that work without the function ever seeing a byte
stream: `ReplySession` cuts the stream into messages with the framing of the registry, hands
each whole message to `reply`, frames what comes back, and keeps every rule a converter session
keeps (the message limit, the `E:` reply to an over-long message, the `E:server stopping`
notice to a client cut off mid-message, the closing states). `datagram_handler` is the same
adapter for UDP, where one datagram is one message; whether its reply is sent at all stays the
decision of `socklab.protocol.reflection` (no answer that could start a loop).

The user's function is the one part not written here, so its failures are contained: an
exception (or a reply that is not bytes) is answered `E:server error`, the connection closes,
and the exception goes to the `report_error` callback the shell passes in (the library logs
it). Without a callback it propagates, as misuse of a pure object should.

Call order of a `ReplySession` (the `Session` protocol's):

    session = ReplySession(reply, "line", greeting=b"hello")
    send(session.data_to_send())                  # the greeting, if any
    loop:
        session.receive_data(chunk)  or  session.receive_eof()
        send(session.data_to_send())
        if session.should_close: close the socket once the bytes are sent

States and transitions:

    OPEN    --message (replied or not)---------> OPEN
    OPEN    --over-long / EOF / reply failed---> CLOSING   (replies before it are still sent)
    OPEN    --server_stopping()----------------> CLOSING   (`E:server stopping` if mid-message)
    OPEN or CLOSING --closed()-----------------> CLOSED    (receive_* after it is our bug)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from socklab.errors import LocalProtocolError
from socklab.protocol.closing import CloseReason, notice_for
from socklab.protocol.converter import ERROR_PREFIX
from socklab.protocol.framing import FrameTooLong, FramingName, TruncatedFrame, make_framer
from socklab.protocol.framing.base import FrameEvent
from socklab.protocol.limits import DEFAULT_MAX_MESSAGE_BYTES, MAX_UDP_PAYLOAD_BYTES
from socklab.protocol.session import (
    SERVER_STOPPING_REPLY,
    RequestRejected,
    SessionClosing,
    SessionEvent,
    SessionFactory,
    SessionState,
)

ReplyFunction = Callable[[bytes], bytes | None]
"""A protocol as one function: a whole message in, its reply out (None: no reply)."""

ErrorReporter = Callable[[Exception], None]
"""Told about every exception a reply function raised (the client got `E:server error`)."""

# What the client learns when the user's function failed: not the exception's text, which may
# hold anything (paths, secrets); the server's log has the traceback. HTTP's 500 says as little.
REPLY_FAILED: Final = ERROR_PREFIX + b"server error"


def _checked_reply(
    reply: ReplyFunction,
    message: bytes,
    report_error: ErrorReporter | None,
    check_message: Callable[[bytes], None] | None = None,
) -> bytes | Exception | None:
    """`reply(message)`, or the exception it raised: a TypeError for a reply that is not bytes,
    the framer's ValueError for one it cannot frame (a line holding a newline)."""
    try:
        answer = reply(message)
        if answer is None:
            return None
        if not isinstance(answer, bytes | bytearray | memoryview):
            raise TypeError(
                f"reply() returned {type(answer).__name__}, not bytes or None "
                f"(encode text first, e.g. text.encode())"
            )
        answer = bytes(answer)
        if check_message is not None:
            check_message(answer)
    except Exception as exc:
        if report_error is None:
            raise
        report_error(exc)
        return exc
    return answer


class ReplySession:
    """One connection of a server whose protocol is a reply function, driven in `Session`'s call
    order (the module docstring draws its states).

    Every message arrives whole, whatever the framing: `reply` is called once per message, in
    order, and what it returns is sent framed the same way; None sends nothing. A message over
    `max_message_bytes` is answered `E:message of … exceeds the …-byte limit` and the connection
    closes, because a byte stream cannot be resynchronised once a boundary is lost.

    `framing`, `max_message_bytes`, `greet` and `record_events` are what every runtime passes
    to a `SessionFactory`; `reply_session_factory` binds the rest.
    """

    __slots__ = (
        "_check_message",
        "_events",
        "_framer",
        "_out",
        "_reply",
        "_report_error",
        "close_reason",
        "requests_served",
        "state",
    )

    def __init__(
        self,
        reply: ReplyFunction,
        framing: str = "line",
        *,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        greet: bool = True,
        record_events: bool = True,
        greeting: bytes | None = None,
        report_error: ErrorReporter | None = None,
    ) -> None:
        self._reply = reply
        self._report_error = report_error
        self._framer = make_framer(framing, max_message_bytes)
        # Optional framer capability: refuse a reply the framing would cut in two (a line
        # holding a newline), instead of sending the peer one message more than it asked for.
        self._check_message: Callable[[bytes], None] | None = getattr(
            self._framer, "check_message", None
        )
        self.state = SessionState.OPEN
        self.requests_served = 0
        self.close_reason: CloseReason | None = None
        # Only a caller that takes them gets events: a server never does, and a client sending
        # over-long messages for hours must not grow a list.
        self._events: list[SessionEvent] | None = [] if record_events else None
        self._out: list[bytes] = []
        if greet and greeting is not None:
            self._out.append(self._framer.encode(greeting))

    # -- feeding ------------------------------------------------------------------------------
    def receive_data(self, data: bytes) -> None:
        """Feed bytes received from the peer; replies accumulate for `data_to_send()`."""
        if self.state is not SessionState.OPEN:
            if self.state is SessionState.CLOSED:
                raise LocalProtocolError("receive_data() after the session was closed")
            return  # CLOSING: the connection is going away, its input is not served
        self._process(self._framer.receive_data(data))

    def exchange(self, data: bytes) -> bytes:
        """`receive_data(data)`, then `data_to_send()`, in one call."""
        self.receive_data(data)
        return self.data_to_send()

    def receive_eof(self) -> None:
        """The peer will send nothing more; a last unterminated line is still answered."""
        if self.state is SessionState.CLOSED:
            raise LocalProtocolError("receive_eof() after the session was closed")
        if self.state is SessionState.OPEN:
            self._process(self._framer.receive_eof())
        if self.state is SessionState.OPEN:
            self._finish(CloseReason.PEER_EOF)

    def server_stopping(self) -> None:
        """The server is stopping: close once pending replies are sent.

        A client in the middle of a message gets `E:server stopping` first, where the framing
        can tell a notice from a reply; an idle client gets no notice. Harmless once closing.
        """
        if self.state is not SessionState.OPEN:
            return
        if self._framer.delimits_messages and self._framer.has_partial_message:
            self._out.append(self._framer.encode(SERVER_STOPPING_REPLY))
        self._finish(CloseReason.SERVER_STOPPING)

    def abort(self, reason: CloseReason) -> None:
        """The runtime ends the connection for `reason` (a deadline passed, a refusal): its
        `E:` notice, where the framing can carry one, then CLOSING. Harmless once closing."""
        if reason is CloseReason.SERVER_STOPPING:
            self.server_stopping()
            return
        if self.state is not SessionState.OPEN:
            return
        notice = notice_for(reason)
        if notice is not None and self._framer.delimits_messages:
            self._out.append(self._framer.encode(notice))
        self._finish(reason)

    def closed(self) -> None:
        """The runtime closed the connection (after `should_close`, or on its own account)."""
        self.state = SessionState.CLOSED

    # -- taking ---------------------------------------------------------------------------------
    def data_to_send(self) -> bytes:
        """All bytes the peer should receive now (possibly b"")."""
        out = self._out
        if not out:
            return b""
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        return data

    def take_events(self) -> list[SessionEvent]:
        """Events since the last call; always empty for a session made with record_events=False."""
        if self._events is None:
            return []
        events, self._events = self._events, []
        return events

    @property
    def should_close(self) -> bool:
        """The connection should close once `data_to_send()` has been sent."""
        return self.state is SessionState.CLOSING

    @property
    def expects_unread_input(self) -> bool:
        """Closing with the rest of a refused message still on its way: the runtime drains a
        bounded amount before closing, so the kernel's RST does not destroy the `E:` reply
        (RFC 1122 4.2.2.13)."""
        return (
            self.state is SessionState.CLOSING and self.close_reason is CloseReason.MESSAGE_TOO_LONG
        )

    @property
    def has_partial_message(self) -> bool:
        """A message has begun but not ended: the runtime's message deadline applies."""
        return self.state is SessionState.OPEN and self._framer.has_partial_message

    # -- internals ----------------------------------------------------------------------------
    def _process(self, frames: list[FrameEvent]) -> None:
        encode = self._framer.encode
        for frame in frames:
            if isinstance(frame, FrameTooLong):
                self._reject(frame.describe())
                self._finish(CloseReason.MESSAGE_TOO_LONG, frame.describe())
                return
            if isinstance(frame, TruncatedFrame):
                self._finish(CloseReason.TRUNCATED, frame.describe())
                return
            answer = _checked_reply(self._reply, frame, self._report_error, self._check_message)
            if isinstance(answer, Exception):
                self._reject(f"reply() raised {type(answer).__name__}", REPLY_FAILED)
                self._finish(CloseReason.LOCAL, str(answer))
                return
            self.requests_served += 1
            if answer is not None:
                self._out.append(encode(answer))

    def _reject(self, reason: str, payload: bytes | None = None) -> None:
        wire = ERROR_PREFIX + reason.encode() if payload is None else payload
        self._out.append(self._framer.encode(wire))
        if self._events is not None:
            self._events.append(RequestRejected(reason))

    def _finish(self, reason: CloseReason, detail: str = "") -> None:
        self.state = SessionState.CLOSING
        self.close_reason = reason
        if self._events is not None:
            self._events.append(SessionClosing(reason, detail))


def reply_session_factory(
    reply: ReplyFunction,
    *,
    greeting: bytes | None = None,
    report_error: ErrorReporter | None = None,
) -> SessionFactory:
    """A `SessionFactory` making a `ReplySession` of `reply` for each connection."""

    def make_session(
        framing: FramingName, *, max_message_bytes: int, greet: bool, record_events: bool
    ) -> ReplySession:
        return ReplySession(
            reply,
            framing,
            max_message_bytes=max_message_bytes,
            greet=greet,
            record_events=record_events,
            greeting=greeting,
            report_error=report_error,
        )

    return make_session


def datagram_handler(
    reply: ReplyFunction,
    *,
    max_message_bytes: int = MAX_UDP_PAYLOAD_BYTES,
    report_error: ErrorReporter | None = None,
) -> Callable[[bytes], bytes | None]:
    """`reply` as a UDP handler: one datagram is one whole message, its reply one datagram.

    The limits hold as over TCP: a datagram over `max_message_bytes` is answered with the same
    `E:` line, a failing `reply` with `E:server error`; a reply too long for one datagram is
    replaced by an `E:` line saying so (sending it would fail with EMSGSIZE, unseen). Whether
    the answer is sent is `reflection.answer_datagram`'s decision, which wraps this handler.
    """

    def handle(datagram: bytes) -> bytes | None:
        if len(datagram) > max_message_bytes:
            too_long = FrameTooLong(len(datagram), max_message_bytes, exact=True)
            return ERROR_PREFIX + too_long.describe().encode()
        answer = _checked_reply(reply, datagram, report_error)
        if isinstance(answer, Exception):
            return REPLY_FAILED
        if answer is not None and len(answer) > MAX_UDP_PAYLOAD_BYTES:
            return (
                ERROR_PREFIX
                + (
                    f"reply of {len(answer):,} bytes does not fit in one datagram "
                    f"({MAX_UDP_PAYLOAD_BYTES:,} bytes at most)"
                ).encode()
            )
        return answer

    return handle
