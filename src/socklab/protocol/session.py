"""The `Session` surface every runtime drives, and the converter's session, the default one
(`upper`'s is another; a library user's protocol is a third).

A runtime serves any session: it never knows which protocol it moves bytes for. It reads,
feeds the session, writes what the session hands back, and closes when the session says so
(socketserver's `RequestHandlerClass`, websockets' drivers over one sans-I/O `Protocol`).

Call order (a runtime does only this):

    session = factory(framing, max_message_bytes=..., greet=True, record_events=False)
    send(session.data_to_send())                  # the greeting (b"" for none)
    loop:
        session.receive_data(chunk)  or  session.receive_eof()    (or exchange(chunk))
        send(session.data_to_send())
        if session.should_close: close the socket once the bytes are sent
    the runtime gives up on its own (a deadline, a stop):
        session.abort(reason)  or  session.server_stopping()
        send(session.data_to_send()) if the peer still reads, then close
    session.closed()                              # always, once the socket is closed
    report session.close_reason (None: the runtime's own reason)

Peer faults never raise: they become an `E:` reply, a `SessionEvent` from `take_events()`, and
the CLOSING state. Calling `receive_*` after CLOSED is our own bug and raises
LocalProtocolError. Every byte sent is made here, notices included: the runtime's deadlines and
refusals name a `CloseReason` and the session turns it into bytes (`abort`, `notice_of`).

States and transitions of the converter's session (the table `_TRANSITIONS` is the single
source of truth):

    OPEN    --request--------------> OPEN
    OPEN    --C: / over-long / EOF--> CLOSING   (replies before it are still sent)
    OPEN    --server_stopping()----> CLOSING   (`E:server stopping` first, mid-message)
    OPEN    --abort(reason)--------> CLOSING   (the reason's `E:` notice first, if it has one)
    CLOSING --closed()-------------> CLOSED
    OPEN    --closed()-------------> CLOSED     (the runtime gave up: reset, stop)
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from socklab.errors import LocalProtocolError
from socklab.protocol.closing import CloseReason, notice_for
from socklab.protocol.converter import (
    ERROR_PREFIX,
    GREETING,
    CloseRequest,
    ErrorReply,
    answer_ascii_in_place,
    handle_request,
)
from socklab.protocol.framing import FrameTooLong, FramingName, TruncatedFrame, make_framer
from socklab.protocol.limits import (
    DEFAULT_MAX_MESSAGE_BYTES,
    MAX_ERRORS_IN_A_ROW,
)

TOO_MANY_ERRORS_REPLY = notice_for(CloseReason.TOO_MANY_ERRORS) or b""
# To a client whose request was cut off by the server's stop, so that it reads why instead of a
# bare end of stream.
SERVER_STOPPING_REPLY = notice_for(CloseReason.SERVER_STOPPING) or b""


class SessionState(enum.Enum):
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


# The states the per-request checks compare with, as module globals: reading an Enum member
# through its class costs a metaclass lookup, a global does not (docs/PERFORMANCE.md).
_OPEN = SessionState.OPEN
_CLOSING = SessionState.CLOSING


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


@dataclass(frozen=True, slots=True)
class RequestHandled:
    """One request served or refused, for a server's `-v` line: its first two bytes (the
    command, as the peer sent them), its size, and the reply's size or the `E:` line sent
    (`error`, unframed). `C:` has no reply: `closes` is set and `bytes_out` is 0."""

    command: bytes
    bytes_in: int
    bytes_out: int
    error: bytes | None = None
    closes: bool = False


_TRANSITIONS: dict[tuple[SessionState, str], SessionState] = {
    (SessionState.OPEN, "request"): SessionState.OPEN,
    (SessionState.OPEN, "finish"): SessionState.CLOSING,
    (SessionState.OPEN, "closed"): SessionState.CLOSED,
    (SessionState.CLOSING, "closed"): SessionState.CLOSED,
    (SessionState.CLOSED, "closed"): SessionState.CLOSED,
}


class Session(Protocol):
    """What a runtime calls on the session of one connection (the call order in the module
    docstring); the runtime knows nothing else about the protocol it serves.

    A runtime may greet before it makes a session (`greet=False`, see `greeting_of`), and makes
    the session when the first byte arrives, so a connection that never speaks costs none.
    `requests_served` feeds the server's statistics; `close_reason` is the session's own reason
    once it is closing (None while open, or when the runtime ended the connection).
    """

    requests_served: int
    close_reason: CloseReason | None

    def receive_data(self, data: bytes) -> None:
        """Feed bytes received from the peer (never empty); replies wait in `data_to_send()`."""
        ...

    def exchange(self, data: bytes) -> bytes:
        """`receive_data(data)` then `data_to_send()` in one call: a driver's hot path."""
        ...

    def receive_eof(self) -> None:
        """The peer will send nothing more."""
        ...

    def data_to_send(self) -> bytes:
        """Every byte the peer should receive now (b"" for none), taken: a second call is b""."""
        ...

    def abort(self, reason: CloseReason) -> None:
        """The runtime ends the connection for `reason` (a deadline passed, a refusal): close
        after `data_to_send()`, which holds the reason's notice if the protocol has one."""
        ...

    def server_stopping(self) -> None:
        """The server stops: close after `data_to_send()` (a notice where the protocol wants
        one, e.g. to a client in the middle of a request)."""
        ...

    def closed(self) -> None:
        """The runtime closed the socket; `receive_*` after it is our bug and raises."""
        ...

    @property
    def should_close(self) -> bool:
        """The runtime closes once `data_to_send()` is sent."""
        ...

    @property
    def expects_unread_input(self) -> bool:
        """Closing while the peer may still be sending: the runtime lingers (drains a bounded
        amount) so that the close does not reset the last reply away."""
        ...

    @property
    def has_partial_message(self) -> bool:
        """A message has begun but not ended: the runtime's message deadline runs."""
        ...


class ReportingSession(Session, Protocol):
    """A session that can tell a server's `-v` what it does: optional, a runtime asks for
    these members with getattr, and only when it has an observer (the converter's session
    has them; a session without them is served the same, with fewer lines).

    `take_requests_handled` is filled once `record_requests()` was called (a runtime calls it
    right after making the session); `partial_message_bytes` is what a runtime names when a
    begun message stays unfinished for seconds (a peer that sends no terminator: the
    commonest framing mismatch)."""

    @property
    def partial_message_bytes(self) -> int:
        """Bytes of the message begun but not ended (0 for none)."""
        ...

    def record_requests(self) -> None:
        """From now on, list what each request was."""
        ...

    def take_requests_handled(self) -> list[RequestHandled]:
        """The requests handled since the last call, in order, taken."""
        ...


class SessionFactory(Protocol):
    """Makes the session of one connection; `ConverterSession` itself is one (socketserver's
    `RequestHandlerClass`). `greet=False`: the runtime sent the greeting already; with
    `record_events=False` the session keeps no event list (every runtime). Hashable (a class,
    a function, a `functools.partial`): a server's notices are cached per factory.

    A runtime may also make a session that serves no connection, to learn the bytes it would
    send (`greeting_of`: greet=True, then `data_to_send()`; `notice_of`: greet=False, then
    `abort()`): a session must not count itself as a connection before it is fed."""

    def __hash__(self) -> int: ...

    def __call__(
        self, framing: FramingName, *, max_message_bytes: int, greet: bool, record_events: bool
    ) -> Session: ...


def greeting_of(factory: SessionFactory, framing: FramingName, max_message_bytes: int) -> bytes:
    """The bytes a session of `factory` greets with (b"" for none): for a runtime that encodes
    the greeting once per server and greets before it makes a session."""
    session = factory(framing, max_message_bytes=max_message_bytes, greet=True, record_events=False)
    return session.data_to_send()


@functools.lru_cache(maxsize=64)
def notice_of(
    factory: SessionFactory, framing: FramingName, max_message_bytes: int, reason: CloseReason
) -> bytes:
    """The bytes a session of `factory` sends when aborted for `reason` before it was made
    (b"" for none): for a runtime refusing a client (busy, out of memory) or ending one that
    never spoke. Cached: a refusal during a connection storm or a shortage of memory makes
    no session."""
    session = factory(
        framing, max_message_bytes=max_message_bytes, greet=False, record_events=False
    )
    session.abort(reason)
    notice = session.data_to_send()
    session.closed()
    return notice


def encoded_greeting(framing: str, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> bytes:
    """The converter's greeting as its session sends it."""
    return make_framer(framing, max_message_bytes).encode(GREETING)


class ConverterSession:
    """One TCP connection of the converter server, independent of any I/O model: the default
    `Session` (its call order and transitions in the module docstring)."""

    # Slots: a server holding 10,000 idle connections holds 10,000 sessions.
    __slots__ = (
        "_encode",
        "_errors_in_a_row",
        "_events",
        "_framer",
        "_handled",
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
        framing: FramingName = "line",
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
        # What each request was, for a server's -v (`record_requests`); None: not recorded.
        self._handled: list[RequestHandled] | None = None
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

    def abort(self, reason: CloseReason) -> None:
        """The runtime ends the connection for `reason`: its `E:` notice (if it has one) is
        framed into `data_to_send()`, then CLOSING. Harmless once closing or closed."""
        if reason is CloseReason.SERVER_STOPPING:
            self.server_stopping()
            return
        if self.state is not _OPEN:
            return
        notice = notice_for(reason)
        if notice is not None:
            self._out.append(self._encode(notice))
        self._finish(reason)

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

    def record_requests(self) -> None:
        """From now on, list what each request was (`take_requests_handled`): what a runtime
        with an observer (a server's -v) asks for. The fast paths skip the record, so they are
        turned off: a recording session takes the general path for every chunk."""
        if self._handled is None:
            self._handled = []
            self._maybe_single_message = self._holds_one_bare_line = None

    def take_requests_handled(self) -> list[RequestHandled]:
        """The requests handled since the last call, taken (empty until `record_requests`):
        the runtime drains them after each chunk it feeds, so the list stays short."""
        handled = self._handled
        if not handled:
            return []
        self._handled = []
        return handled

    @property
    def should_close(self) -> bool:
        """The connection should close once `data_to_send()` has been sent."""
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

    @property
    def partial_message_bytes(self) -> int:
        """Bytes of the message begun but not ended (0 for none)."""
        return self._framer.buffered_bytes if self.state is _OPEN else 0

    # -- internals ----------------------------------------------------------------------------
    def _process(self, frames: list[bytes | FrameTooLong | TruncatedFrame]) -> None:
        encode = self._framer.encode
        out = self._out
        handled = self._handled
        for frame in frames:
            if isinstance(frame, bytes):
                reply = handle_request(frame)
                if handled is not None:
                    handled.append(_describe_handled(frame, reply))
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
                notice = ERROR_PREFIX + frame.describe().encode()
                if handled is not None:
                    handled.append(RequestHandled(b"", frame.size, 0, notice))
                out.append(encode(notice))
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


def _describe_handled(request: bytes, reply: bytes | ErrorReply | CloseRequest) -> RequestHandled:
    command = request[:2]
    if isinstance(reply, bytes):
        return RequestHandled(command, len(request), len(reply))
    if isinstance(reply, ErrorReply):
        return RequestHandled(command, len(request), 0, reply.payload)
    return RequestHandled(command, len(request), 0, closes=True)
