"""The per-connection state machine of the converter server, shared by every runtime, and the
`Session` surface a runtime drives (the converter's is the default; `upper`'s is another).

Call order (a runtime does only this):

    session = ConverterSession(framing="line")
    send(session.data_to_send())                  # the greeting
    loop:
        session.receive_data(chunk)  or  session.receive_eof()
        send(session.data_to_send())
        if session.should_close: close the socket once the bytes are sent

Peer faults never raise: they become an `E:` reply, a `SessionEvent` from `take_events()`, and
the CLOSING state. Calling `receive_*` after CLOSED is our own bug and raises
LocalProtocolError.

States and transitions (the table `_TRANSITIONS` is the single source of truth):

    OPEN    --request--------------> OPEN
    OPEN    --C: / over-long / EOF--> CLOSING   (replies before it are still sent)
    OPEN    --server_stopping()----> CLOSING   (`E:server stopping` first, mid-message)
    CLOSING --closed()-------------> CLOSED
    OPEN    --closed()-------------> CLOSED     (the runtime gave up: reset, timeout, stop)
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from socklab.errors import LocalProtocolError
from socklab.protocol.converter import (
    GREETING,
    CloseRequest,
    ErrorReply,
    answer_ascii_in_place,
    handle_request,
)
from socklab.protocol.framing import FrameTooLong, TruncatedFrame, make_framer
from socklab.protocol.limits import (
    DEFAULT_MAX_MESSAGE_BYTES,
    MAX_ERRORS_IN_A_ROW,
)

TOO_MANY_ERRORS_REPLY = b"E:too many bad requests in a row; closing"
# To a client whose request was cut off by the server's stop, so that it reads why instead of a
# bare end of stream (HTTP/2 sends GOAWAY, and SMTP's 421 says "service closing channel").
SERVER_STOPPING_REPLY = b"E:server stopping"


class SessionState(enum.Enum):
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


# The states the per-request checks compare with, as module globals: reading an Enum member
# through its class costs a metaclass lookup, a global does not (docs/PERFORMANCE.md).
_OPEN = SessionState.OPEN
_CLOSING = SessionState.CLOSING


class CloseReason(enum.Enum):
    CLIENT_REQUESTED = "client sent C:"
    TOO_MANY_ERRORS = "too many bad requests in a row"
    MESSAGE_TOO_LONG = "message too long"
    PEER_EOF = "client closed its side"
    TRUNCATED = "connection ended inside a message"
    LOCAL = "closed by the server"
    SERVER_STOPPING = "server stopping"


_REASONS_WITH_UNREAD_INPUT = frozenset({CloseReason.MESSAGE_TOO_LONG, CloseReason.TOO_MANY_ERRORS})


@dataclass(frozen=True, slots=True)
class RequestRejected:
    """A request was answered with `E:`; the connection stays usable."""

    reason: str


@dataclass(frozen=True, slots=True)
class SessionClosing:
    """The session wants the connection closed after its pending bytes are sent."""

    reason: CloseReason
    detail: str = ""


SessionEvent = RequestRejected | SessionClosing

_TRANSITIONS: dict[tuple[SessionState, str], SessionState] = {
    (SessionState.OPEN, "request"): SessionState.OPEN,
    (SessionState.OPEN, "finish"): SessionState.CLOSING,
    (SessionState.OPEN, "closed"): SessionState.CLOSED,
    (SessionState.CLOSING, "closed"): SessionState.CLOSED,
    (SessionState.CLOSED, "closed"): SessionState.CLOSED,
}


class Session(Protocol):
    """What a runtime calls on the session of one connection (the call order above).

    A runtime may greet before it makes a session (`greet=False`, see `greeting_of`), and makes
    the session when the first byte arrives, so a connection that never speaks costs none.
    """

    requests_served: int

    def receive_data(self, data: bytes) -> None: ...

    def exchange(self, data: bytes) -> bytes: ...

    def receive_eof(self) -> None: ...

    def data_to_send(self) -> bytes: ...

    def closed(self) -> None: ...

    def server_stopping(self) -> None: ...

    @property
    def should_close(self) -> bool: ...

    @property
    def expects_unread_input(self) -> bool: ...

    @property
    def has_partial_message(self) -> bool: ...


class SessionFactory(Protocol):
    """Makes the session of one connection; `ConverterSession` itself is one."""

    def __call__(
        self, framing: str, *, max_message_bytes: int, greet: bool, record_events: bool
    ) -> Session: ...


def greeting_of(factory: SessionFactory, framing: str, max_message_bytes: int) -> bytes:
    """The bytes a session of `factory` greets with (b"" for none): for a runtime that encodes
    the greeting once per server and greets before it makes a session."""
    session = factory(framing, max_message_bytes=max_message_bytes, greet=True, record_events=False)
    return session.data_to_send()


def encoded_greeting(framing: str, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> bytes:
    """The greeting as a session sends it: for a runtime that greets before creating a session
    (`greet=False`), so a connection that never speaks needs no session at all."""
    return make_framer(framing, max_message_bytes).encode(GREETING)


class ConverterSession:
    """One TCP connection of the converter server, independent of any I/O model."""

    # Slots: a server holding 10,000 idle connections holds 10,000 sessions.
    __slots__ = (
        "_encode",
        "_errors_in_a_row",
        "_events",
        "_framer",
        "_holds_one_bare_line",
        "_maybe_single_message",
        "_out",
        "_served_at_last_error",
        "close_reason",
        "requests_served",
        "state",
    )

    def __init__(
        self,
        framing: str = "line",
        *,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        greet: bool = True,
        record_events: bool = True,
    ) -> None:
        self._framer = make_framer(framing, max_message_bytes)
        self._encode = self._framer.encode
        # Optional framer capability: hand over a chunk that is exactly one message without
        # building a list (see LineFramer). Framings without it take the general path.
        self._maybe_single_message: Callable[[bytes], bytes | None] | None = getattr(
            self._framer, "maybe_single_message", None
        )
        # Optional too: a chunk that is one message whose terminator no case mapping touches
        # (LineFramer: a bare LF) is answered in place by `answer_ascii_in_place`.
        self._holds_one_bare_line: Callable[[bytes], bool] | None = getattr(
            self._framer, "holds_one_bare_line", None
        )
        self.state = SessionState.OPEN
        self.requests_served = 0
        self.close_reason: CloseReason | None = None
        # A server that never asks for events (every converter runtime) must not collect them:
        # a client sending bad requests for hours would grow the list without bound.
        self._events: list[SessionEvent] | None = [] if record_events else None
        # Errors in a row, counted without a store per successful request: the run goes on
        # while no request was served since the previous error.
        self._errors_in_a_row = 0
        self._served_at_last_error = 0
        self._out: list[bytes] = [self._framer.encode(GREETING)] if greet else []

    # -- feeding ------------------------------------------------------------------------------
    def receive_data(self, data: bytes) -> None:
        """Feed bytes received from the peer; replies accumulate for `data_to_send()`."""
        if self.state is not SessionState.OPEN:
            if self.state is SessionState.CLOSED:
                raise LocalProtocolError("receive_data() after the session was closed")
            return  # CLOSING: input after C: or an error is ignored, as the socket is closing
        reply = self._answer_whole_request(data)
        if reply is not None:
            self._out.append(reply)
            return
        self._process(self._framer.receive_data(data))

    def exchange(self, data: bytes) -> bytes:
        """`receive_data(data)`, then `data_to_send()`, in one call: every driver's hot path.

        A chunk that is one whole request, with no earlier reply waiting, is answered without
        the reply list: the closed-loop case of every benchmark and most clients. An ASCII
        `U:`/`L:` line is answered in place, its LF kept (one slice, one case map).
        """
        if self._out or self.state is not _OPEN:
            self.receive_data(data)
            return self.data_to_send()
        reply = self._answer_whole_request(data)
        if reply is not None:
            return reply
        self._process(self._framer.receive_data(data))
        return self.data_to_send()

    def receive_eof(self) -> None:
        """The peer will send nothing more (it closed or shut down its writing side)."""
        if self.state is SessionState.CLOSED:
            raise LocalProtocolError("receive_eof() after the session was closed")
        if self.state is SessionState.OPEN:
            self._process(self._framer.receive_eof())
        if self.state is SessionState.OPEN:
            self._finish(CloseReason.PEER_EOF)

    def server_stopping(self) -> None:
        """The server is stopping: close once the pending replies are sent.

        A client in the middle of a request (part of a message received) gets
        `E:server stopping` first, where the framing can tell a notice from a reply; with the
        raw framing it only sees the close. An idle client asked nothing: no notice. Harmless
        once the session is already closing or closed.
        """
        if self.state is not _OPEN:
            return
        if self._framer.delimits_messages and self._framer.has_partial_message:
            self._out.append(self._encode(SERVER_STOPPING_REPLY))
        self._finish(CloseReason.SERVER_STOPPING)

    def closed(self) -> None:
        """The runtime closed the connection (after should_close, or on its own account)."""
        self._move("closed")

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
        return self.state is _CLOSING

    @property
    def expects_unread_input(self) -> bool:
        """Closing while the peer may still be sending: a message refused half-way (its body
        is on the wire) or a run of bad requests. Closing a socket with unread input makes the
        kernel answer with a RST (RFC 1122 4.2.2.13), which can destroy the `E:` reply before
        the peer reads it; the runtime drains a bounded amount first (a lingering close)."""
        return self.state is _CLOSING and self.close_reason in _REASONS_WITH_UNREAD_INPUT

    @property
    def has_partial_message(self) -> bool:
        """A message has begun but not ended: the runtime's message deadline applies."""
        return self.state is _OPEN and self._framer.has_partial_message

    # -- internals ----------------------------------------------------------------------------
    def _process(self, frames: list[bytes | FrameTooLong | TruncatedFrame]) -> None:
        encode = self._framer.encode
        out = self._out
        for frame in frames:
            if isinstance(frame, bytes):
                reply = handle_request(frame)
                if isinstance(reply, bytes):
                    out.append(encode(reply))
                    self.requests_served += 1
                elif isinstance(reply, ErrorReply):
                    out.append(encode(reply.payload))
                    if self._events is not None:
                        self._events.append(RequestRejected(reply.reason))
                    if self._count_error_in_a_row() >= MAX_ERRORS_IN_A_ROW:
                        out.append(encode(TOO_MANY_ERRORS_REPLY))
                        self._finish(CloseReason.TOO_MANY_ERRORS)
                        return
                else:
                    assert isinstance(reply, CloseRequest)
                    self._finish(CloseReason.CLIENT_REQUESTED)
                    return
            elif isinstance(frame, FrameTooLong):
                out.append(encode(b"E:" + frame.describe().encode()))
                self._finish(CloseReason.MESSAGE_TOO_LONG, frame.describe())
                return
            else:
                self._finish(CloseReason.TRUNCATED, frame.describe())
                return

    def _answer_whole_request(self, data: bytes) -> bytes | None:
        """The framed reply when `data` is exactly one request that gets an answer, counted as
        served; None otherwise (nothing consumed: the caller takes the general path).

        The fast paths for the most frequent chunk, one whole request: an ASCII `U:`/`L:` line
        answered in place (its LF kept: one slice, one case map), else the framer's single
        message, converted and framed without building a frame list.
        """
        bare_line = self._holds_one_bare_line
        if bare_line is not None and bare_line(data):
            in_place = answer_ascii_in_place(data)
            if in_place is not None:
                self.requests_served += 1
                return in_place
        single = self._maybe_single_message
        if single is not None:
            message = single(data)
            if message is not None:
                reply = handle_request(message)
                if type(reply) is bytes:
                    self.requests_served += 1
                    return self._encode(reply)
        return None

    def _count_error_in_a_row(self) -> int:
        if self.requests_served != self._served_at_last_error:
            self._errors_in_a_row = 0
            self._served_at_last_error = self.requests_served
        self._errors_in_a_row += 1
        return self._errors_in_a_row

    def _finish(self, reason: CloseReason, detail: str = "") -> None:
        self._move("finish")
        self.close_reason = reason
        if self._events is not None:
            self._events.append(SessionClosing(reason, detail))

    def _move(self, trigger: str) -> None:
        try:
            self.state = _TRANSITIONS[(self.state, trigger)]
        except KeyError:
            raise LocalProtocolError(
                f"{trigger!r} is not allowed in state {self.state.value}"
            ) from None
