"""`PeerSession`: one TCP connection between two chat peers, its states, timers and events.

Pure like the rest of the chat core: time is passed in as `now`, a monotonic clock in seconds.
Call order, for a runtime:

    session = PeerSession(outbound=..., now=now)
    session.send(Hello(...))
    (receive_data(chunk, now) | tick(now, name) | send(frame))* -> receive_eof(now)? -> closed()

It frames, decodes, checks that `hello` comes first, answers `ping` with `pong`, sends a
`ping` when the line has been quiet for the keepalive interval and gives up when nothing at
all arrived for the keepalive timeout. States (the table `_SESSION_TRANSITIONS`):

    AWAITING_HELLO --hello--> ESTABLISHED
    AWAITING_HELLO | ESTABLISHED --bye/garbage/timeout/finish--> CLOSING
    any --closed()--> CLOSED
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from socklab.errors import LocalProtocolError
from socklab.i18n import Fixed, lazy_gettext, lazy_ngettext
from socklab.protocol.chat.frames import (
    MAX_FRAME_BYTES,
    Bye,
    Frame,
    FrameRejected,
    Hello,
    Ping,
    decode_frame,
    encode_frame,
)
from socklab.protocol.framing.base import FrameTooLong, TruncatedFrame
from socklab.protocol.framing.length_prefix import LengthPrefixFramer


class SessionState(enum.Enum):
    AWAITING_HELLO = "awaiting hello"
    ESTABLISHED = "established"
    CLOSING = "closing"
    CLOSED = "closed"


_SESSION_TRANSITIONS: dict[tuple[SessionState, str], SessionState] = {
    (SessionState.AWAITING_HELLO, "hello"): SessionState.ESTABLISHED,
    (SessionState.AWAITING_HELLO, "finish"): SessionState.CLOSING,
    (SessionState.ESTABLISHED, "finish"): SessionState.CLOSING,
    (SessionState.CLOSING, "finish"): SessionState.CLOSING,
    (SessionState.AWAITING_HELLO, "closed"): SessionState.CLOSED,
    (SessionState.ESTABLISHED, "closed"): SessionState.CLOSED,
    (SessionState.CLOSING, "closed"): SessionState.CLOSED,
    (SessionState.CLOSED, "closed"): SessionState.CLOSED,
}


# Frames queued for one buddy that does not read them, before we give up on that connection:
# 64 frames of the largest size, far more than people type (asyncio's stream high-water mark is
# 64 KiB). The runtime stops taking bytes while the peer lags, so this is where they wait.
MAX_QUEUED_BYTES = 64 * MAX_FRAME_BYTES


class EndKind(enum.Enum):
    EOF = "connection closed"
    VIOLATION = "protocol violation"
    TIMEOUT = "no sign of life"
    BYE = "said bye"
    SLOW_READER = "does not read"  # more than MAX_QUEUED_BYTES waited for it
    LOCAL = "closed by us"  # detail: "duplicate", "leaving", "itself", "forgotten", ...


@dataclass(frozen=True, slots=True)
class SessionEnded:
    """The session went to CLOSING: the runtime should close the socket once data is sent."""

    kind: EndKind
    detail: str


SessionEvent = Frame | SessionEnded


@dataclass(frozen=True, slots=True)
class SessionTimers:
    # A keepalive every 5 s, dead after 15 s of silence: three missed pings, the ratio TCP
    # keepalive (tcp_keepalive_intvl x tcp_keepalive_probes) and WebSocket servers use.
    keepalive_interval_s: float = 5.0
    keepalive_timeout_s: float = 15.0
    # A connection that never says hello is not a buddy: close it (slowloris, port scanners).
    handshake_timeout_s: float = 10.0


class PeerSession:
    """One socket between two peers: framing, decoding, hello first, keepalive."""

    def __init__(
        self,
        *,
        outbound: bool,
        now: float,
        timers: SessionTimers = SessionTimers(),
        max_frame_bytes: int = MAX_FRAME_BYTES,
        max_queued_bytes: int = MAX_QUEUED_BYTES,
    ) -> None:
        self.outbound = outbound
        self.max_queued_bytes = max_queued_bytes
        self._queued_bytes = 0
        # Set when the peer let more than `max_queued_bytes` wait: the node ends the session
        # at its next safe point (`take_overflow`), not inside the send that found it.
        self._overflow: SessionEnded | None = None
        self.timers = timers
        self.state = SessionState.AWAITING_HELLO
        self.hello: Hello | None = None
        self._framer = LengthPrefixFramer(max_frame_bytes)
        self._out: list[bytes] = []
        self._opened_at = now
        self._last_received = now
        self._last_sent = now
        self._ping_counter = 0

    @property
    def should_close(self) -> bool:
        return self.state is SessionState.CLOSING

    @property
    def is_established(self) -> bool:
        return self.state is SessionState.ESTABLISHED

    @property
    def has_data_to_send(self) -> bool:
        """Frames are queued for `data_to_send()`."""
        return bool(self._out)

    @property
    def has_partial_frame(self) -> bool:
        """A frame has begun to arrive but not ended (a runtime's message deadline runs)."""
        return self.state is not SessionState.CLOSED and self._framer.has_partial_message

    def send(self, frame: Frame, now: float) -> None:
        """Queue a frame; frames after the session started closing are dropped (it is going)."""
        if self.state is SessionState.CLOSED:
            raise LocalProtocolError("send() on a closed chat session")
        if self.state is SessionState.CLOSING and not isinstance(frame, Bye):
            return
        encoded = self._framer.encode(encode_frame(frame))
        if self._queued_bytes + len(encoded) > self.max_queued_bytes:
            if self.state is SessionState.CLOSING:
                return  # already given up on (or leaving): nothing more is queued
            # The buddy stopped reading: drop what waits and end the session (a lost buddy,
            # reconnected by the node's rules), instead of holding ever more for it.
            self._out.clear()
            self._queued_bytes = 0
            self._overflow = self._end(
                EndKind.SLOW_READER,
                lazy_ngettext(
                    "over {count} byte waited for it to read",
                    "over {count} bytes waited for it to read",
                    self.max_queued_bytes,
                ),
            )
            return
        self._out.append(encoded)
        self._queued_bytes += len(encoded)
        self._last_sent = now

    def take_overflow(self) -> SessionEnded | None:
        """The end a send found (the peer does not read), once; None otherwise."""
        overflow, self._overflow = self._overflow, None
        return overflow

    def data_to_send(self) -> bytes:
        data = b"".join(self._out)
        self._out.clear()
        self._queued_bytes = 0
        return data

    def receive_data(self, data: bytes, now: float) -> list[SessionEvent]:
        if self.state is SessionState.CLOSED:
            raise LocalProtocolError("receive_data() on a closed chat session")
        if self.state is SessionState.CLOSING or not data:
            return []
        self._last_received = now
        events: list[SessionEvent] = []
        for item in self._framer.receive_data(data):
            if isinstance(item, FrameTooLong):
                return [*events, self._end(EndKind.VIOLATION, item.describe())]
            assert not isinstance(item, TruncatedFrame)
            frame = decode_frame(item)
            if isinstance(frame, FrameRejected):
                return [*events, self._end(EndKind.VIOLATION, frame.detail)]
            if self.state is SessionState.AWAITING_HELLO:
                if not isinstance(frame, Hello):
                    detail = lazy_gettext(
                        "{kind} frame before hello", kind=type(frame).__name__.lower()
                    )
                    return [*events, self._end(EndKind.VIOLATION, detail)]
                self.hello = frame
                self._move("hello")
            elif isinstance(frame, Hello):
                return [*events, self._end(EndKind.VIOLATION, lazy_gettext("a second hello"))]
            events.append(frame)
            if isinstance(frame, Bye):
                events.append(self._end(EndKind.BYE, frame.reason))
                return events
        return events

    def receive_eof(self, now: float) -> list[SessionEvent]:
        if self.state is SessionState.CLOSED:
            raise LocalProtocolError("receive_eof() on a closed chat session")
        if self.state is SessionState.CLOSING:
            return []
        detail: str = lazy_gettext("the buddy closed the connection")
        for item in self._framer.receive_eof():
            if isinstance(item, TruncatedFrame):
                detail = item.describe()
        return [self._end(EndKind.EOF, detail)]

    def tick(self, now: float, sender: str, wall_time: float) -> list[SessionEvent]:
        """Keepalive and handshake deadlines; call at least every `next_deadline()`."""
        if self.state is SessionState.AWAITING_HELLO:
            if now - self._opened_at >= self.timers.handshake_timeout_s:
                detail = lazy_gettext(
                    "no hello within {seconds} s", seconds=float(self.timers.handshake_timeout_s)
                )
                return [self._end(EndKind.VIOLATION, detail)]
        elif self.state is SessionState.ESTABLISHED:
            silent_s = now - self._last_received
            if silent_s >= self.timers.keepalive_timeout_s:
                detail = lazy_gettext(
                    "nothing received for {seconds} s", seconds=Fixed(silent_s, 1)
                )
                return [self._end(EndKind.TIMEOUT, detail)]
            if now - self._last_sent >= self.timers.keepalive_interval_s:
                self._ping_counter += 1
                self.send(Ping(sender, wall_time, self._ping_counter), now)
        return []

    def next_deadline(self) -> float | None:
        if self.state is SessionState.AWAITING_HELLO:
            return self._opened_at + self.timers.handshake_timeout_s
        if self.state is SessionState.ESTABLISHED:
            return min(
                self._last_received + self.timers.keepalive_timeout_s,
                self._last_sent + self.timers.keepalive_interval_s,
            )
        return None

    def finish(self, kind: EndKind, detail: str) -> SessionEnded:
        """We close this session on our own account (after a bye, a duplicate, leaving)."""
        return self._end(kind, detail)

    def closed(self) -> None:
        """The runtime closed the socket."""
        self._move("closed")

    def _end(self, kind: EndKind, detail: str) -> SessionEnded:
        self._move("finish")
        return SessionEnded(kind, detail)

    def _move(self, trigger: str) -> None:
        try:
            self.state = _SESSION_TRANSITIONS[(self.state, trigger)]
        except KeyError:
            raise LocalProtocolError(
                f"{trigger!r} is not allowed in chat session state {self.state.value}"
            ) from None
