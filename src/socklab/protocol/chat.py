"""The P2P chat of the lecture, sans I/O: frames, one session per socket, and the mesh of buddies.

Wire format (docs/PROTOCOL.md, "Chat protocol"): every frame is a 4-byte big-endian length, then
that many bytes: a JSON object on one line (the header: `type`, `from`, `id`, `time` and a few
type-specific keys), a newline, and the body (UTF-8 text of a message, or a JSON list of peers).

Three layers, each pure (time is passed in as `now`, a monotonic clock in seconds; random node
ids are made by the caller):

* `encode_frame` / `decode_frame`: one frame <-> one typed dataclass. Anything a peer could send
  that breaks a rule becomes a `FrameRejected` value, never an exception.
* `PeerSession`: one TCP connection. Call order, for a runtime:

      session = PeerSession(outbound=..., now=now)
      session.send(Hello(...))
      (receive_data(chunk, now) | tick(now, name) | send(frame))* -> receive_eof(now)? -> closed()

  It frames, decodes, checks that `hello` comes first, answers `ping` with `pong`, sends a
  `ping` when the line has been quiet for the keepalive interval and gives up when nothing at
  all arrived for the keepalive timeout. States (the table `_SESSION_TRANSITIONS`):

      AWAITING_HELLO --hello--> ESTABLISHED
      AWAITING_HELLO | ESTABLISHED --bye/garbage/timeout/finish--> CLOSING
      any --closed()--> CLOSED

* `ChatNode`: the whole peer. It owns the sessions (a runtime knows only connection ids), the
  buddies (keyed by a random node id, so a restarted peer with the same name is a new buddy),
  per-sender message ids for exactly-once delivery in order, acknowledgements and the queue of
  unacknowledged messages, introductions (`peers` frames) that grow a group into a full mesh,
  the rule that keeps exactly one connection when two peers dial each other at once, reconnect
  with capped exponential backoff, and the orderly `bye`. A runtime does only this:

      cid = node.connection_accepted(address, now)        # or, for Dial actions:
      node.connection_made(action.cid, now) / node.connect_failed(action.cid, detail, now)
      node.receive_data(cid, data, now) / node.receive_eof(cid, now) / node.tick(now)
      send node.data_to_send(cid); carry out node.take_actions() (Dial, CloseConnection)
      node.connection_closed(cid, now, detail)            # whenever a socket is gone
      show node.take_events()

  Messages reach a buddy exactly once and in order: each sender numbers its messages 1, 2, ...;
  a receiver delivers an id only when it is above the last one it delivered from that node and
  acknowledges cumulatively; the sender keeps every unacknowledged message and sends them again,
  in order, whenever the connection it uses changes. Two peers that dial each other at once end
  up with two sockets: the peer with the smaller node id keeps the newest and closes the older
  with `bye` (reason `duplicate`), the other side follows; both always send on their newest.
"""

from __future__ import annotations

import enum
import json
import math
import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from socklab.errors import LocalProtocolError
from socklab.protocol.framing.base import FrameTooLong, TruncatedFrame
from socklab.protocol.framing.length_prefix import LengthPrefixFramer
from socklab.protocol.limits import DEFAULT_MAX_MESSAGE_BYTES

PROTOCOL_VERSION = 1
# A frame is a typed chat line plus a small header: asyncio's 64 KiB stream limit is generous.
MAX_FRAME_BYTES = DEFAULT_MAX_MESSAGE_BYTES
# The header is a handful of short fields; 4 KiB leaves room and stops a peer from making us
# parse a 64 KiB JSON document before we know what it is.
MAX_HEADER_BYTES = 4096
# One typed line. IRC allows 512 bytes, Matrix 64 KiB events; 16 KiB fits any paste of a line.
MAX_TEXT_BYTES = 16 * 1024
# A chat group on a lecture's loopback is small; this bounds a `peers` body and our sockets.
MAX_BUDDIES = 64
MAX_CONNECTIONS = 2 * MAX_BUDDIES
# Unacknowledged messages kept per buddy before the oldest is reported as undeliverable.
MAX_PENDING_PER_BUDDY = 256
NAME_PATTERN = re.compile(r"[\w.\-]{1,32}")
NODE_PATTERN = re.compile(r"[0-9A-Za-z_\-]{1,64}")

FRAME_TYPES = ("hello", "peers", "msg", "ack", "ping", "pong", "nick", "bye")


def is_valid_name(name: str) -> bool:
    """Letters, digits, `.`, `_`, `-`; 1-32 characters (so `[name] text` stays unambiguous)."""
    return NAME_PATTERN.fullmatch(name) is not None


def printable_text(text: str) -> str:
    """Control characters (escape sequences, newlines) replaced, so a buddy cannot paint on our
    terminal or forge a second `[name] text` line."""
    return "".join("\ufffd" if (ord(ch) < 32 or 0x7F <= ord(ch) < 0xA0) else ch for ch in text)


def format_address(address: tuple[str, int]) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_address(text: str) -> tuple[str, int] | None:
    """`HOST:PORT` or `[V6]:PORT` as written by `format_address`; None when it is not one."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit() or len(port_text) > 5:
        return None
    port = int(port_text)
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host or not 0 < port <= 65535 or len(host) > 255 or not host.isprintable():
        return None
    return host, port


# -- frames -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Hello:
    sender: str
    time: float
    node: str
    listen: tuple[str, int]


@dataclass(frozen=True, slots=True)
class PeerEntry:
    node: str
    name: str
    listen: tuple[str, int]


@dataclass(frozen=True, slots=True)
class Peers:
    sender: str
    time: float
    entries: tuple[PeerEntry, ...]


@dataclass(frozen=True, slots=True)
class Message:
    sender: str
    time: float
    id: int
    text: str
    to: str | None = None  # a private message (/msg) names its one recipient


@dataclass(frozen=True, slots=True)
class Ack:
    sender: str
    time: float
    id: int  # every message up to this id was delivered


@dataclass(frozen=True, slots=True)
class Ping:
    sender: str
    time: float
    id: int


@dataclass(frozen=True, slots=True)
class Pong:
    sender: str
    time: float
    id: int


@dataclass(frozen=True, slots=True)
class Nick:
    sender: str  # the new name; the receiver knows the old one
    time: float


@dataclass(frozen=True, slots=True)
class Bye:
    sender: str
    time: float
    reason: str  # "left", "duplicate", or a protocol violation's description


Frame = Hello | Peers | Message | Ack | Ping | Pong | Nick | Bye


@dataclass(frozen=True, slots=True)
class FrameRejected:
    """A frame that breaks the rules; `detail` says which, with the numbers."""

    detail: str


def encode_frame(frame: Frame) -> bytes:
    """The frame's payload (header line, newline, body), without the length prefix."""
    header: dict[str, Any] = {"from": frame.sender, "id": 0, "time": round(frame.time, 3)}
    body = b""
    match frame:
        case Hello(node=node, listen=listen):
            header.update(type="hello", v=PROTOCOL_VERSION, node=node)
            header["listen"] = format_address(listen)
        case Peers(entries=entries):
            header["type"] = "peers"
            body = json.dumps(
                [
                    {"node": e.node, "name": e.name, "listen": format_address(e.listen)}
                    for e in entries
                ],
                ensure_ascii=False,
            ).encode()
        case Message(id=message_id, text=text, to=to):
            header.update(type="msg", id=message_id)
            if to is not None:
                header["to"] = to
            body = text.encode()
        case Ack(id=message_id):
            header.update(type="ack", id=message_id)
        case Ping(id=ping_id):
            header.update(type="ping", id=ping_id)
        case Pong(id=ping_id):
            header.update(type="pong", id=ping_id)
        case Nick():
            header["type"] = "nick"
        case Bye(reason=reason):
            header.update(type="bye", reason=reason)
    return json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode() + b"\n" + body


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")


def _loads(data: bytes | str) -> Any:
    return json.loads(data, parse_constant=_reject_constant)


def decode_frame(payload: bytes) -> Frame | FrameRejected:
    """One frame's payload -> a typed frame, or FrameRejected saying what is wrong."""
    newline = payload.find(b"\n", 0, MAX_HEADER_BYTES + 1)
    if newline < 0:
        if len(payload) > MAX_HEADER_BYTES:
            return FrameRejected(f"frame header longer than {MAX_HEADER_BYTES:,} bytes")
        return FrameRejected("frame without the newline after its JSON header")
    try:
        header = _loads(payload[:newline].decode("utf-8"))
    except (ValueError, RecursionError):
        return FrameRejected("frame header is not UTF-8 JSON")
    if not isinstance(header, dict):
        return FrameRejected("frame header is not a JSON object")
    body = payload[newline + 1 :]
    kind, sender, frame_id, sent_at = (header.get(k) for k in ("type", "from", "id", "time"))
    if kind not in FRAME_TYPES:
        return FrameRejected(f"unknown frame type {str(kind)[:40]!r}")
    if not isinstance(sender, str) or not is_valid_name(sender):
        return FrameRejected(f"{kind} frame with an invalid 'from' name")
    if not isinstance(frame_id, int) or isinstance(frame_id, bool) or not 0 <= frame_id < 2**63:
        return FrameRejected(f"{kind} frame with an invalid 'id'")
    if (
        isinstance(sent_at, bool)
        or not isinstance(sent_at, int | float)
        or not math.isfinite(sent_at)
    ):
        return FrameRejected(f"{kind} frame with an invalid 'time'")
    sent_at = float(sent_at)
    if kind not in ("msg", "peers") and body:
        return FrameRejected(f"{kind} frame with a body of {len(body):,} bytes")
    match kind:
        case "hello":
            node, listen_text = header.get("node"), header.get("listen")
            if header.get("v") != PROTOCOL_VERSION:
                return FrameRejected(f"hello for protocol version {header.get('v')!r}, not 1")
            if not isinstance(node, str) or NODE_PATTERN.fullmatch(node) is None:
                return FrameRejected("hello with an invalid 'node'")
            listen = parse_address(listen_text) if isinstance(listen_text, str) else None
            if listen is None:
                return FrameRejected("hello with an invalid 'listen' address")
            return Hello(sender, sent_at, node, listen)
        case "peers":
            return _decode_peers(sender, sent_at, body)
        case "msg":
            to = header.get("to")
            if to is not None and not (isinstance(to, str) and is_valid_name(to)):
                return FrameRejected("msg frame with an invalid 'to' name")
            if frame_id == 0:
                return FrameRejected("msg frame with id 0 (message ids start at 1)")
            if len(body) > MAX_TEXT_BYTES:
                return FrameRejected(
                    f"message text of {len(body):,} bytes exceeds the {MAX_TEXT_BYTES:,}-byte limit"
                )
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                return FrameRejected("message text is not UTF-8")
            return Message(sender, sent_at, frame_id, text, to)
        case "ack":
            return Ack(sender, sent_at, frame_id)
        case "ping":
            return Ping(sender, sent_at, frame_id)
        case "pong":
            return Pong(sender, sent_at, frame_id)
        case "nick":
            return Nick(sender, sent_at)
        case _:
            reason = header.get("reason")
            if not isinstance(reason, str) or len(reason) > 200:
                return FrameRejected("bye frame without a short 'reason'")
            return Bye(sender, sent_at, printable_text(reason))


def _decode_peers(sender: str, sent_at: float, body: bytes) -> Peers | FrameRejected:
    try:
        items = _loads(body.decode("utf-8"))
    except (ValueError, RecursionError):
        return FrameRejected("peers body is not UTF-8 JSON")
    if not isinstance(items, list) or len(items) > MAX_BUDDIES:
        return FrameRejected(f"peers body is not a list of at most {MAX_BUDDIES} entries")
    entries: list[PeerEntry] = []
    for item in items:
        if not isinstance(item, dict):
            return FrameRejected("peers entry is not a JSON object")
        node, name, listen_text = item.get("node"), item.get("name"), item.get("listen")
        listen = parse_address(listen_text) if isinstance(listen_text, str) else None
        if (
            not isinstance(node, str)
            or NODE_PATTERN.fullmatch(node) is None
            or not isinstance(name, str)
            or not is_valid_name(name)
            or listen is None
        ):
            return FrameRejected("peers entry without a valid node, name and listen address")
        entries.append(PeerEntry(node, name, listen))
    return Peers(sender, sent_at, tuple(entries))


# -- one connection ---------------------------------------------------------------------------
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


class EndKind(enum.Enum):
    EOF = "connection closed"
    VIOLATION = "protocol violation"
    TIMEOUT = "no sign of life"
    BYE = "said bye"
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
    ) -> None:
        self.outbound = outbound
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

    def send(self, frame: Frame, now: float) -> None:
        """Queue a frame; frames after the session started closing are dropped (it is going)."""
        if self.state is SessionState.CLOSED:
            raise LocalProtocolError("send() on a closed chat session")
        if self.state is SessionState.CLOSING and not isinstance(frame, Bye):
            return
        self._out.append(self._framer.encode(encode_frame(frame)))
        self._last_sent = now

    def data_to_send(self) -> bytes:
        data = b"".join(self._out)
        self._out.clear()
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
                    detail = f"{type(frame).__name__.lower()} frame before hello"
                    return [*events, self._end(EndKind.VIOLATION, detail)]
                self.hello = frame
                self._move("hello")
            elif isinstance(frame, Hello):
                return [*events, self._end(EndKind.VIOLATION, "a second hello")]
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
        detail = "the buddy closed the connection"
        for item in self._framer.receive_eof():
            if isinstance(item, TruncatedFrame):
                detail = item.describe()
        return [self._end(EndKind.EOF, detail)]

    def tick(self, now: float, sender: str, wall_time: float) -> list[SessionEvent]:
        """Keepalive and handshake deadlines; call at least every `next_deadline()`."""
        if self.state is SessionState.AWAITING_HELLO:
            if now - self._opened_at >= self.timers.handshake_timeout_s:
                detail = f"no hello within {self.timers.handshake_timeout_s:g} s"
                return [self._end(EndKind.VIOLATION, detail)]
        elif self.state is SessionState.ESTABLISHED:
            silent_s = now - self._last_received
            if silent_s >= self.timers.keepalive_timeout_s:
                detail = f"nothing received for {silent_s:.1f} s"
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


# -- what the node tells its runtime and its user ---------------------------------------------
@dataclass(frozen=True, slots=True)
class Dial:
    """Open a connection to `address`, then call connection_made or connect_failed with `cid`."""

    cid: int
    address: tuple[str, int]


@dataclass(frozen=True, slots=True)
class CloseConnection:
    """Send what data_to_send still holds, then close; call connection_closed afterwards."""

    cid: int


Action = Dial | CloseConnection


class Presence(enum.Enum):
    ONLINE = "online"
    AWAY = "away"  # the connection was lost; reconnecting with backoff


class LeaveKind(enum.Enum):
    LEFT = "left"  # said bye
    LOST = "lost"  # connection closed or reset without bye (killed, crashed)
    TIMEOUT = "timeout"  # keepalive: nothing heard for too long
    VIOLATION = "violation"  # sent garbage
    RESTARTED = "restarted"  # a new process answers at the same address


class Undeliverable(enum.Enum):
    AWAY = "away"
    LEFT = "left"
    NO_ACK = "no acknowledgement"
    QUEUE_FULL = "too many messages waiting"
    EXPIRED = "waited too long"


@dataclass(frozen=True, slots=True)
class BuddyJoined:
    name: str
    address: tuple[str, int]
    returned: bool  # it was away and is back


@dataclass(frozen=True, slots=True)
class BuddyLeft:
    name: str
    kind: LeaveKind
    detail: str


@dataclass(frozen=True, slots=True)
class BuddyRenamed:
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class MessageReceived:
    sender: str
    text: str  # already made printable
    private: bool
    sent_at: float  # the sender's wall clock


@dataclass(frozen=True, slots=True)
class MessageUndeliverable:
    recipient: str
    message_id: int
    text: str
    reason: Undeliverable


@dataclass(frozen=True, slots=True)
class ConnectionRejected:
    """A connection that never became a buddy was closed (garbage, no hello, too many)."""

    address: tuple[str, int]
    detail: str


@dataclass(frozen=True, slots=True)
class PeerUnreachable:
    """A dial failed; `retry_in_s` is None when we give up on this address."""

    address: tuple[str, int]
    detail: str
    retry_in_s: float | None


@dataclass(frozen=True, slots=True)
class SelfConnection:
    address: tuple[str, int]


ChatEvent = (
    BuddyJoined
    | BuddyLeft
    | BuddyRenamed
    | MessageReceived
    | MessageUndeliverable
    | ConnectionRejected
    | PeerUnreachable
    | SelfConnection
)


class SendProblem(enum.Enum):
    LEAVING = "leaving the chat"
    EMPTY = "empty message"
    TOO_LONG = f"message longer than the {MAX_TEXT_BYTES:,}-byte limit"
    ALONE = "nobody else is in the chat"
    NO_SUCH_NAME = "nobody of that name is here"


@dataclass(frozen=True, slots=True)
class SendResult:
    """What happened to a typed message: who got it now, who will get it on return."""

    message_id: int
    sent_to: tuple[str, ...]
    queued_for: tuple[str, ...]
    problem: SendProblem | None = None  # nothing was sent, and why


@dataclass(frozen=True, slots=True)
class BuddyInfo:
    name: str
    presence: Presence
    address: tuple[str, int]
    pending: int


@dataclass(frozen=True, slots=True)
class ChatSettings:
    timers: SessionTimers = SessionTimers()
    # Reconnect after 0.5 s, doubling to at most 10 s: quick when a buddy restarts, and a
    # vanished buddy costs one refused connect every 10 s (the shape of TCP's SYN retries).
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 10.0
    # A peer we were only introduced to is tried this often, then forgotten.
    introduced_attempts: int = 3
    # Told about a newcomer, wait this long for it to dial us before dialing it ourselves.
    introduction_grace_s: float = 1.0
    # A message still unacknowledged after this long is reported as undeliverable.
    undeliverable_after_s: float = 60.0
    max_frame_bytes: int = MAX_FRAME_BYTES


@dataclass(slots=True)
class _Pending:
    message: Message
    queued_at: float


@dataclass(slots=True)
class _Buddy:
    node: str
    name: str
    listen: tuple[str, int]
    presence: Presence = Presence.ONLINE
    sessions: list[int] = field(default_factory=list)  # established connections, newest last
    pending: deque[_Pending] = field(default_factory=deque)
    last_delivered: int = 0
    introduced: bool = False  # its list of buddies arrived (since it last came online)


@dataclass(slots=True)
class _Connection:
    cid: int
    session: PeerSession
    address: tuple[str, int]  # the remote end as the socket sees it
    dialed: tuple[str, int] | None = None  # for outbound connections: the address we dialed
    node: str | None = None  # set once the hello arrived and was accepted
    connected: bool = True  # False while a Dial is in progress
    introduced: bool = False  # its first peers frame (the full list) arrived


class _Why(enum.Enum):
    PEER = "peer"  # given on the command line: retried until it answers
    INTRODUCED = "introduced"  # named in a peers frame: a few tries
    RECONNECT = "reconnect"  # a lost buddy: retried while it is away


@dataclass(slots=True)
class _Target:
    address: tuple[str, int]
    why: _Why
    retry_at: float
    backoff_s: float
    attempts: int = 0
    dialing: int | None = None  # cid of the dial in progress
    reported: bool = False  # a failure was shown once; later ones are quiet


class NodeState(enum.Enum):
    CHATTING = "chatting"
    LEAVING = "leaving"  # waiting for acknowledgements before bye
    LEFT = "left"  # bye sent, connections closing


class ChatNode:
    """One chat peer: every buddy, every connection, every message in flight."""

    def __init__(
        self,
        name: str,
        node_id: str,
        listen: tuple[str, int],
        *,
        now: float,
        wall_clock_offset_s: float = 0.0,
        settings: ChatSettings = ChatSettings(),
    ) -> None:
        if not is_valid_name(name):
            raise LocalProtocolError(f"invalid chat name {name!r}")
        if NODE_PATTERN.fullmatch(node_id) is None:
            raise LocalProtocolError(f"invalid node id {node_id!r}")
        self.name = name
        self.node_id = node_id
        self.listen = listen
        self.settings = settings
        self.state = NodeState.CHATTING
        self._wall_offset = wall_clock_offset_s
        self._now = now
        self._next_cid = 1
        self._next_message_id = 1
        self._connections: dict[int, _Connection] = {}
        self._buddies: dict[str, _Buddy] = {}
        self._targets: dict[tuple[str, int], _Target] = {}
        self._actions: list[Action] = []
        self._events: list[ChatEvent] = []
        self._leave_deadline: float | None = None

    # -- runtime side ------------------------------------------------------------------------
    def connection_accepted(self, address: tuple[str, int], now: float) -> int:
        """A buddy connected to us; returns the connection id to use from now on."""
        self._now = now
        cid = self._new_connection(address, outbound=False, now=now)
        if self.state is not NodeState.CHATTING:
            self._finish(cid, EndKind.LOCAL, "leaving", bye="left")
        elif len(self._connections) > MAX_CONNECTIONS:
            self._finish(cid, EndKind.LOCAL, "too many", bye="too many connections")
            self._events.append(ConnectionRejected(address, "too many connections"))
        return cid

    def connection_made(self, cid: int, now: float, address: tuple[str, int] | None = None) -> bool:
        """A Dial succeeded; False when the node no longer wants it (close the socket)."""
        self._now = now
        conn = self._connections.get(cid)
        if conn is None:
            return False
        if conn.connected:
            raise LocalProtocolError(f"connection_made() twice for connection {cid}")
        conn.connected = True
        conn.session = PeerSession(
            outbound=True,
            now=now,
            timers=self.settings.timers,
            max_frame_bytes=self.settings.max_frame_bytes,
        )
        if address is not None:
            conn.address = address
        conn.session.send(self._hello(), now)
        return True

    def connect_failed(self, cid: int, detail: str, now: float) -> None:
        """A Dial failed (refused, timed out, unreachable)."""
        self._now = now
        conn = self._connections.pop(cid, None)
        if conn is None:
            return  # we stopped wanting it (leaving)
        if conn.connected:
            raise LocalProtocolError(f"connect_failed() for connection {cid} that is connected")
        self._dial_failed(conn, detail)

    def _dial_failed(self, conn: _Connection, detail: str) -> None:
        """A dial that did not end in a hello: retry later, tell the user once."""
        assert conn.dialed is not None
        target = self._targets.get(conn.dialed)
        if target is None or target.dialing != conn.cid:
            return
        now = self._now
        target.dialing = None
        target.attempts += 1
        give_up = target.why is _Why.INTRODUCED and (
            target.attempts >= self.settings.introduced_attempts
        )
        if give_up:
            del self._targets[target.address]
        else:
            target.retry_at = now + target.backoff_s
        retry_in = None if give_up else target.backoff_s
        target.backoff_s = min(target.backoff_s * 2, self.settings.backoff_max_s)
        if not target.reported and target.why is not _Why.RECONNECT:
            target.reported = True
            self._events.append(PeerUnreachable(target.address, detail, retry_in))

    def receive_data(self, cid: int, data: bytes, now: float) -> None:
        self._now = now
        conn = self._connection(cid)
        self._handle(conn, conn.session.receive_data(data, now))
        if self.state is NodeState.LEAVING:
            self._maybe_say_bye(now)

    def receive_eof(self, cid: int, now: float) -> None:
        self._now = now
        conn = self._connection(cid)
        self._handle(conn, conn.session.receive_eof(now))

    def connection_closed(self, cid: int, now: float, detail: str = "") -> None:
        """The socket is gone (we closed it, or it broke: `detail` says how)."""
        self._now = now
        conn = self._connections.pop(cid, None)
        if conn is None:
            return
        if not conn.session.should_close and conn.session.state is not SessionState.CLOSED:
            self._session_ended(conn, SessionEnded(EndKind.EOF, detail or "connection lost"))
        conn.session.closed()

    def data_to_send(self, cid: int) -> bytes:
        conn = self._connections.get(cid)
        return conn.session.data_to_send() if conn is not None else b""

    def take_actions(self) -> list[Action]:
        actions, self._actions = self._actions, []
        return actions

    def take_events(self) -> list[ChatEvent]:
        events, self._events = self._events, []
        return events

    def connection_ids(self) -> list[int]:
        return list(self._connections)

    def tick(self, now: float) -> None:
        """Keepalives, handshake deadlines, reconnects, expiry, the end of leaving."""
        self._now = now
        wall = self._wall(now)
        for conn in list(self._connections.values()):
            if conn.connected and conn.cid in self._connections:
                self._handle(conn, conn.session.tick(now, self.name, wall))
        if self.state is NodeState.CHATTING:
            for target in list(self._targets.values()):
                if target.dialing is None and target.retry_at <= now:
                    self._dial(target)
            self._expire_pending(now)
        elif self.state is NodeState.LEAVING:
            self._maybe_say_bye(now)

    def next_deadline(self) -> float | None:
        """When tick() has work next (None: only input can change anything)."""
        times: list[float] = []
        for conn in self._connections.values():
            if conn.connected:
                deadline = conn.session.next_deadline()
                if deadline is not None:
                    times.append(deadline)
        if self.state is NodeState.CHATTING:
            times.extend(t.retry_at for t in self._targets.values() if t.dialing is None)
            times.extend(
                b.pending[0].queued_at + self.settings.undeliverable_after_s
                for b in self._buddies.values()
                if b.pending
            )
        if self._leave_deadline is not None and self.state is NodeState.LEAVING:
            times.append(self._leave_deadline)
        return min(times) if times else None

    # -- user side -----------------------------------------------------------------------------
    def add_peer(self, address: tuple[str, int], now: float) -> None:
        """Connect to a peer given by the user; retried with backoff until it answers."""
        self._now = now
        if address not in self._targets:
            self._targets[address] = _Target(
                address, _Why.PEER, now, self.settings.backoff_initial_s
            )
            self._dial(self._targets[address])

    def send_text(self, text: str, now: float, to: str | None = None) -> SendResult:
        """Send a typed line to every buddy (or, with `to`, to the buddies of that name)."""
        self._now = now
        size = len(text.encode())
        if self.state is not NodeState.CHATTING:
            return SendResult(0, (), (), SendProblem.LEAVING)
        if not text:
            return SendResult(0, (), (), SendProblem.EMPTY)
        if size > MAX_TEXT_BYTES:
            return SendResult(0, (), (), SendProblem.TOO_LONG)
        recipients = [b for b in self._buddies.values() if to is None or b.name == to]
        if not recipients:
            problem = SendProblem.ALONE if to is None else SendProblem.NO_SUCH_NAME
            return SendResult(0, (), (), problem)
        message = Message(self.name, self._wall(now), self._next_message_id, text, to)
        self._next_message_id += 1
        sent_to: list[str] = []
        queued_for: list[str] = []
        for buddy in recipients:
            if len(buddy.pending) >= MAX_PENDING_PER_BUDDY:
                oldest = buddy.pending.popleft().message
                self._report_undeliverable(buddy, [oldest], Undeliverable.QUEUE_FULL)
            buddy.pending.append(_Pending(message, now))
            if buddy.presence is Presence.ONLINE and buddy.sessions:
                self._connections[buddy.sessions[-1]].session.send(message, now)
                sent_to.append(buddy.name)
            else:
                queued_for.append(buddy.name)
        return SendResult(message.id, tuple(sent_to), tuple(queued_for))

    def rename(self, name: str, now: float) -> None:
        """Change our name (/nick); every buddy is told."""
        if not is_valid_name(name):
            raise LocalProtocolError(f"invalid chat name {name!r}")
        self._now = now
        self.name = name
        for buddy in self._buddies.values():
            if buddy.presence is Presence.ONLINE and buddy.sessions:
                self._connections[buddy.sessions[-1]].session.send(Nick(name, self._wall(now)), now)

    def buddies(self) -> list[BuddyInfo]:
        return sorted(
            (
                BuddyInfo(b.name, b.presence, b.listen, len(b.pending))
                for b in self._buddies.values()
            ),
            key=lambda info: (info.name.casefold(), info.address),
        )

    def leave(self, now: float, grace_s: float) -> None:
        """Stop chatting: wait up to `grace_s` for acknowledgements, then bye to everyone."""
        self._now = now
        if self.state is not NodeState.CHATTING:
            return
        self.state = NodeState.LEAVING
        self._leave_deadline = now + grace_s
        self._targets.clear()
        for buddy in self._buddies.values():
            if buddy.presence is Presence.AWAY and buddy.pending:
                self._report_undeliverable(
                    buddy, [p.message for p in buddy.pending], Undeliverable.AWAY
                )
                buddy.pending.clear()
        for conn in list(self._connections.values()):
            if not conn.connected:
                del self._connections[conn.cid]  # the runtime's dial result will be ignored
            elif conn.node is None:
                self._finish(conn.cid, EndKind.LOCAL, "leaving")
        self._maybe_say_bye(now)

    @property
    def is_settled(self) -> bool:
        """Startup is over: no dial in progress, every connection said hello and introduced
        its buddies, every peer given by the user answered or failed once."""
        if any(t.dialing is not None for t in self._targets.values()):
            return False
        if any(t.why is _Why.PEER and not t.reported for t in self._targets.values()):
            return False
        for conn in self._connections.values():
            if not conn.connected or conn.session.should_close:
                continue
            buddy = self._buddy_of(conn)
            if conn.node is None or (buddy is not None and not buddy.introduced):
                return False
        return True

    @property
    def has_pending(self) -> bool:
        return any(b.pending for b in self._buddies.values())

    @property
    def finished(self) -> bool:
        """We left and every connection is closed: the runtime may stop."""
        return self.state is NodeState.LEFT and not self._connections

    # -- internals ---------------------------------------------------------------------------
    def _wall(self, now: float) -> float:
        return now + self._wall_offset

    def _hello(self) -> Hello:
        return Hello(self.name, self._wall(self._now), self.node_id, self.listen)

    def _connection(self, cid: int) -> _Connection:
        conn = self._connections.get(cid)
        if conn is None:
            raise LocalProtocolError(f"unknown or closed chat connection {cid}")
        return conn

    def _new_connection(self, address: tuple[str, int], *, outbound: bool, now: float) -> int:
        cid = self._next_cid
        self._next_cid += 1
        session = PeerSession(
            outbound=outbound,
            now=now,
            timers=self.settings.timers,
            max_frame_bytes=self.settings.max_frame_bytes,
        )
        conn = _Connection(cid, session, address, dialed=address if outbound else None)
        conn.connected = not outbound
        self._connections[cid] = conn
        if not outbound:
            session.send(self._hello(), now)
        return cid

    def _dial(self, target: _Target) -> None:
        if len(self._connections) >= MAX_CONNECTIONS:
            target.retry_at = self._now + target.backoff_s
            return
        cid = self._new_connection(target.address, outbound=True, now=self._now)
        target.dialing = cid
        self._actions.append(Dial(cid, target.address))

    def _finish(self, cid: int, kind: EndKind, detail: str, bye: str | None = None) -> None:
        conn = self._connections[cid]
        if conn.session.should_close or conn.session.state is SessionState.CLOSED:
            return
        if bye is not None:
            conn.session.send(Bye(self.name, self._wall(self._now), bye), self._now)
        self._session_ended(conn, conn.session.finish(kind, detail))

    def _handle(self, conn: _Connection, events: Iterable[SessionEvent]) -> None:
        for event in events:
            if conn.cid not in self._connections:
                return
            match event:
                case SessionEnded():
                    if event.kind is EndKind.VIOLATION:
                        # Tell the offender why, then hang up (it may not understand, but a
                        # developer debugging their own peer will).
                        conn.session.send(
                            Bye(self.name, self._wall(self._now), event.detail[:200]),
                            self._now,
                        )
                    self._session_ended(conn, event)
                case Hello():
                    self._hello_received(conn, event)
                case Peers():
                    self._peers_received(conn, event)
                case Message():
                    self._message_received(conn, event)
                case Ack():
                    buddy = self._buddy_of(conn)
                    while buddy is not None and buddy.pending:
                        if buddy.pending[0].message.id > event.id:
                            break
                        buddy.pending.popleft()
                case Nick():
                    buddy = self._buddy_of(conn)
                    if buddy is not None and buddy.name != event.sender:
                        old, buddy.name = buddy.name, event.sender
                        self._events.append(BuddyRenamed(old, buddy.name))
                case Ping():
                    pong = Pong(self.name, self._wall(self._now), event.id)
                    conn.session.send(pong, self._now)
                case Pong() | Bye():
                    pass  # liveness was noted by the session; a bye ends it right after

    def _buddy_of(self, conn: _Connection) -> _Buddy | None:
        return self._buddies.get(conn.node) if conn.node is not None else None

    def _hello_received(self, conn: _Connection, hello: Hello) -> None:
        listen = hello.listen
        if listen[0] in ("0.0.0.0", "::", ""):
            # It listens on every interface: reach it where this connection came from.
            listen = (conn.address[0], listen[1])
        if conn.dialed is not None:
            target = self._targets.get(conn.dialed)
            if target is not None and target.dialing == conn.cid:
                del self._targets[conn.dialed]
        if hello.node == self.node_id:
            self._events.append(SelfConnection(conn.dialed or conn.address))
            self._finish(conn.cid, EndKind.LOCAL, "itself")
            return
        if self.state is not NodeState.CHATTING:
            self._finish(conn.cid, EndKind.LOCAL, "leaving", bye="left")
            return
        self._targets.pop(listen, None)
        buddy = self._buddies.get(hello.node)
        if buddy is None:
            if len(self._buddies) >= MAX_BUDDIES:
                self._events.append(ConnectionRejected(conn.address, "too many buddies"))
                self._finish(conn.cid, EndKind.LOCAL, "too many", bye="too many buddies")
                return
            for old in list(self._buddies.values()):
                if old.listen == listen and old.presence is Presence.AWAY:
                    self._forget(old, LeaveKind.RESTARTED, "a new process answers there")
            buddy = self._buddies[hello.node] = _Buddy(hello.node, hello.sender, listen)
            conn.node = hello.node
            buddy.sessions.append(conn.cid)
            self._events.append(BuddyJoined(buddy.name, listen, returned=False))
            self._introduce(buddy)
            return
        conn.node = hello.node
        buddy.listen = listen
        if buddy.name != hello.sender:
            old_name, buddy.name = buddy.name, hello.sender
            self._events.append(BuddyRenamed(old_name, buddy.name))
        buddy.sessions.append(conn.cid)
        if buddy.presence is Presence.AWAY:
            buddy.presence = Presence.ONLINE
            self._events.append(BuddyJoined(buddy.name, listen, returned=True))
            self._introduce(buddy)
        if (
            buddy.presence is Presence.ONLINE
            and len(buddy.sessions) > 1
            and self.node_id < buddy.node
        ):
            # Two sockets to one buddy (both dialed at once, or it reconnected before we noticed
            # the old one died): the smaller node id keeps the newest, the other side follows.
            for old_cid in buddy.sessions[:-1]:
                self._finish(old_cid, EndKind.LOCAL, "duplicate", bye="duplicate")
        self._resend_pending(buddy)

    def _introduce(self, buddy: _Buddy) -> None:
        """Tell the newcomer whom we know, and everyone else about the newcomer."""
        wall = self._wall(self._now)
        online = [b for b in self._buddies.values() if b.presence is Presence.ONLINE and b.sessions]
        others = tuple(PeerEntry(b.node, b.name, b.listen) for b in online if b is not buddy)
        newcomer = (PeerEntry(buddy.node, buddy.name, buddy.listen),)
        for other in online:
            # The newcomer always gets a list, even an empty one: its first peers frame tells
            # it that it now knows everyone we know.
            entries = others if other is buddy else newcomer
            session = self._connections[other.sessions[-1]].session
            session.send(Peers(self.name, wall, entries), self._now)

    def _peers_received(self, conn: _Connection, peers: Peers) -> None:
        first, conn.introduced = not conn.introduced, True
        buddy = self._buddy_of(conn)
        if buddy is None or self.state is not NodeState.CHATTING:
            return
        buddy.introduced = True
        for entry in peers.entries:
            if entry.node == self.node_id or entry.node in self._buddies:
                continue
            if entry.listen in self._targets or entry.listen == self.listen:
                continue
            if len(self._targets) >= MAX_BUDDIES:
                break  # a buddy flooding us with introductions cannot make us dial without end
            # The newcomer dials everyone on the full list it gets at once. Existing members
            # told about a newcomer wait a moment, as the newcomer is dialing them: they dial
            # only if it did not arrive (two groups merging), so a join makes one socket per pair.
            delay_s = 0.0 if first else self.settings.introduction_grace_s
            target = _Target(
                entry.listen, _Why.INTRODUCED, self._now + delay_s, self.settings.backoff_initial_s
            )
            self._targets[entry.listen] = target
            if not delay_s:
                self._dial(target)

    def _message_received(self, conn: _Connection, message: Message) -> None:
        buddy = self._buddy_of(conn)
        if buddy is None:
            return
        if message.id > buddy.last_delivered:
            buddy.last_delivered = message.id
            self._events.append(
                MessageReceived(
                    buddy.name, printable_text(message.text), message.to is not None, message.time
                )
            )
        conn.session.send(Ack(self.name, self._wall(self._now), buddy.last_delivered), self._now)

    def _session_ended(self, conn: _Connection, ended: SessionEnded) -> None:
        if conn.cid in self._connections:
            self._actions.append(CloseConnection(conn.cid))
        buddy = self._buddy_of(conn)
        if buddy is None:
            if conn.dialed is not None and ended.kind is not EndKind.LOCAL:
                # We dialed, the socket connected, but no hello came (a stopped process still
                # completes TCP handshakes from its listen backlog): a failed attempt.
                self._dial_failed(conn, ended.detail)
            elif ended.kind is EndKind.VIOLATION:
                self._events.append(ConnectionRejected(conn.address, ended.detail))
            return
        if conn.cid not in buddy.sessions:
            return
        was_active = buddy.sessions[-1] == conn.cid
        buddy.sessions.remove(conn.cid)
        duplicate = ended.detail == "duplicate" and ended.kind in (EndKind.LOCAL, EndKind.BYE)
        if ended.kind is EndKind.LOCAL and not duplicate:
            return  # we are leaving or forgetting it: already reported, if at all
        if ended.kind is EndKind.BYE and not duplicate:
            self._forget(buddy, LeaveKind.LEFT, ended.detail)
            return
        if ended.kind is EndKind.VIOLATION:
            self._forget(buddy, LeaveKind.VIOLATION, ended.detail)
            return
        if buddy.sessions:
            if was_active:
                self._resend_pending(buddy)
            return
        if buddy.presence is not Presence.ONLINE:
            return
        buddy.presence = Presence.AWAY
        buddy.introduced = False
        kind = LeaveKind.TIMEOUT if ended.kind is EndKind.TIMEOUT else LeaveKind.LOST
        self._events.append(BuddyLeft(buddy.name, kind, ended.detail))
        if self.state is NodeState.CHATTING:
            self._targets.setdefault(
                buddy.listen,
                _Target(
                    buddy.listen,
                    _Why.RECONNECT,
                    self._now + self.settings.backoff_initial_s,
                    self.settings.backoff_initial_s * 2,
                ),
            )
        elif buddy.pending:
            self._report_undeliverable(
                buddy, [p.message for p in buddy.pending], Undeliverable.AWAY
            )
            buddy.pending.clear()

    def _forget(self, buddy: _Buddy, kind: LeaveKind, detail: str) -> None:
        """The buddy is gone for good: report what it never got, stop reconnecting."""
        del self._buddies[buddy.node]
        target = self._targets.get(buddy.listen)
        if target is not None and target.why is _Why.RECONNECT:
            del self._targets[buddy.listen]
        reason = Undeliverable.LEFT
        self._report_undeliverable(buddy, [p.message for p in buddy.pending], reason)
        buddy.pending.clear()
        if kind is LeaveKind.RESTARTED and buddy.presence is Presence.AWAY:
            return  # its departure was reported when it went away
        self._events.append(BuddyLeft(buddy.name, kind, detail))
        for cid in list(buddy.sessions):
            if cid in self._connections:
                self._finish(cid, EndKind.LOCAL, "forgotten")
        buddy.sessions.clear()

    def _resend_pending(self, buddy: _Buddy) -> None:
        if not buddy.sessions or not buddy.pending:
            return
        session = self._connections[buddy.sessions[-1]].session
        for pending in buddy.pending:
            session.send(pending.message, self._now)

    def _report_undeliverable(
        self, buddy: _Buddy, messages: Iterable[Message], reason: Undeliverable
    ) -> None:
        for message in messages:
            self._events.append(MessageUndeliverable(buddy.name, message.id, message.text, reason))

    def _expire_pending(self, now: float) -> None:
        limit = self.settings.undeliverable_after_s
        for buddy in self._buddies.values():
            expired: list[Message] = []
            while buddy.pending and now - buddy.pending[0].queued_at >= limit:
                expired.append(buddy.pending.popleft().message)
            reason = Undeliverable.AWAY if buddy.presence is Presence.AWAY else Undeliverable.NO_ACK
            self._report_undeliverable(buddy, expired, reason)

    def _maybe_say_bye(self, now: float) -> None:
        online_pending = any(
            b.pending for b in self._buddies.values() if b.presence is Presence.ONLINE
        )
        assert self._leave_deadline is not None
        if online_pending and now < self._leave_deadline:
            return
        for buddy in self._buddies.values():
            if buddy.pending:
                reason = (
                    Undeliverable.NO_ACK
                    if buddy.presence is Presence.ONLINE
                    else Undeliverable.AWAY
                )
                self._report_undeliverable(buddy, [p.message for p in buddy.pending], reason)
                buddy.pending.clear()
        self.state = NodeState.LEFT
        for conn in list(self._connections.values()):
            if conn.connected:
                self._finish(conn.cid, EndKind.LOCAL, "leaving", bye="left")
