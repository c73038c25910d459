"""`ChatNode`: the whole chat peer, sans I/O, and the bookkeeping it keeps per buddy.

The node owns the sessions (a runtime knows only connection ids), the buddies (keyed by a random
node id, so a restarted peer with the same name is a new buddy), per-sender message ids for
exactly-once delivery in order, acknowledgements and the queue of unacknowledged messages,
introductions (`peers` frames) that grow a group into a full mesh, the rule that keeps exactly
one connection when two peers dial each other at once, reconnect with capped exponential
backoff, and the orderly `bye`. What a buddy may make the node do — which introduced addresses
it dials, how many connections may wait for hello, how many messages reach the user — is
decided by `policy.py`; the node only asks it and reports refusals once a second. Time is passed
in as `now` and random node ids are made by the caller. A runtime does only this:

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
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from socklab.errors import LocalProtocolError
from socklab.i18n import lazy_gettext
from socklab.protocol.chat.events import (
    Action,
    BuddyInfo,
    BuddyJoined,
    BuddyLeft,
    BuddyRenamed,
    ChatEvent,
    CloseConnection,
    ConnectionRejected,
    ConnectionsRefused,
    Dial,
    IntroductionsIgnored,
    LeaveKind,
    MessageReceived,
    MessagesDropped,
    MessageUndeliverable,
    PeerUnreachable,
    Presence,
    SelfConnection,
    SendProblem,
    SendResult,
    Undeliverable,
)
from socklab.protocol.chat.frames import (
    MAX_BUDDIES,
    MAX_FRAME_BYTES,
    MAX_TEXT_BYTES,
    NODE_PATTERN,
    Ack,
    Bye,
    Hello,
    Message,
    Nick,
    PeerEntry,
    Peers,
    Ping,
    Pong,
    is_valid_name,
    printable_text,
)
from socklab.protocol.chat.policy import (
    MIN_LEARNED_PORT,
    IntroductionPolicy,
    MessageLimiter,
    NoticeBatcher,
    PolicyLimits,
    Refusal,
)
from socklab.protocol.chat.session import (
    EndKind,
    PeerSession,
    SessionEnded,
    SessionEvent,
    SessionState,
    SessionTimers,
)

# Room for two sockets per buddy: both may dial at once, or reconnect before the old one died.
MAX_CONNECTIONS = 2 * MAX_BUDDIES
# Unacknowledged messages kept per buddy before the oldest is reported as undeliverable.
MAX_PENDING_PER_BUDDY = 256


@dataclass(frozen=True, slots=True)
class ChatSettings:
    timers: SessionTimers = SessionTimers()  # noqa: RUF009 (frozen, so one shared default is safe)
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
    # A buddy away this long is gone: reconnecting stops, so no address is redialled without
    # end (the cool-down of a learned address that keeps failing, policy.py).
    reconnect_give_up_s: float = 600.0
    max_frame_bytes: int = MAX_FRAME_BYTES
    # What a buddy may make us do: dial budgets, handshake slots, message rates (policy.py).
    limits: PolicyLimits = PolicyLimits()  # noqa: RUF009 (frozen, so one shared default is safe)


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
    limiter: MessageLimiter | None = None  # its messages' rate limit, made on its first message
    away_since: float = 0.0  # when it last went away


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
    since: float = 0.0  # when we started wanting this address


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
        self.policy = IntroductionPolicy(settings.limits)
        self._reports = NoticeBatcher(settings.limits.report_interval_s)

    # -- runtime side ------------------------------------------------------------------------
    def connection_accepted(self, address: tuple[str, int], now: float) -> int:
        """A buddy connected to us; returns the connection id to use from now on."""
        self._now = now
        # Counted before this one joins them: a source address holding every handshake slot
        # is refused at once, so idle connections from one host never lock out the others.
        unidentified = sum(
            1
            for conn in self._connections.values()
            if conn.dialed is None
            and conn.node is None
            and not conn.session.should_close
            and conn.address[0] == address[0]
        )
        cid = self._new_connection(address, outbound=False, now=now)
        slots = self.settings.limits.handshake_slots_per_source
        if self.state is not NodeState.CHATTING:
            self._finish(cid, EndKind.LOCAL, "leaving", bye="left")
        elif unidentified >= slots:
            self._finish(cid, EndKind.LOCAL, "too many", bye="too many connections")
            self._reports.add(("handshakes", address[0]), now)
        elif self._open_connections() > MAX_CONNECTIONS:
            self._finish(cid, EndKind.LOCAL, "too many", bye="too many connections")
            self._events.append(ConnectionRejected(address, lazy_gettext("too many connections")))
        self._flush_reports(now)
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
        self.policy.dial_failed(target.address, now)
        give_up = target.why is _Why.INTRODUCED and (
            target.attempts >= self.settings.introduced_attempts
        )
        if target.why is _Why.RECONNECT and now - target.since >= self.settings.reconnect_give_up_s:
            del self._targets[target.address]
            for buddy in list(self._buddies.values()):
                if buddy.listen == target.address and buddy.presence is Presence.AWAY:
                    minutes = self.settings.reconnect_give_up_s / 60
                    self._forget(
                        buddy,
                        LeaveKind.GONE,
                        lazy_gettext("away for {minutes} min", minutes=minutes),
                    )
            return
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
        self._flush_reports(now)

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

    def has_data_to_send(self, cid: int) -> bool:
        """Whether `data_to_send(cid)` would return bytes (a runtime wakes only those)."""
        conn = self._connections.get(cid)
        return conn is not None and conn.session.has_data_to_send

    def has_partial_frame(self, cid: int) -> bool:
        """Whether a frame from `cid` has begun but not ended."""
        conn = self._connections.get(cid)
        return conn is not None and conn.connected and conn.session.has_partial_frame

    def take_actions(self) -> list[Action]:
        """What the driver must do now. Also the node's safe point for sessions a send gave
        up on (a buddy that does not read): they end here, not inside the loops that sent."""
        for conn in list(self._connections.values()):
            overflow = conn.session.take_overflow()
            if overflow is not None:
                self._session_ended(conn, overflow)
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
        self._flush_reports(now)

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
        report_due = self._reports.next_due()
        if report_due is not None:
            times.append(report_due)
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
        if self._open_connections() >= MAX_CONNECTIONS:
            target.retry_at = self._now + target.backoff_s
            return
        cid = self._new_connection(target.address, outbound=True, now=self._now)
        target.dialing = cid
        self._actions.append(Dial(cid, target.address, may_resolve=target.why is _Why.PEER))

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
                        # The name changes anyway; a flood of nicks is not a flood of notices.
                        if self._within_rate(buddy, 0):
                            self._events.append(BuddyRenamed(old, buddy.name))
                case Ping():
                    pong = Pong(self.name, self._wall(self._now), event.id)
                    conn.session.send(pong, self._now)
                case Pong() | Bye():
                    pass  # liveness was noted by the session; a bye ends it right after

    def _buddy_of(self, conn: _Connection) -> _Buddy | None:
        return self._buddies.get(conn.node) if conn.node is not None else None

    def _hello_received(self, conn: _Connection, hello: Hello) -> None:
        # The host in a hello is the sender's word; the connection's source address is a fact.
        # Trusting the host made us redial whatever it named ("10.99.200.1:445") without end,
        # so only the port is taken from the hello, and a dialled buddy is where we reached it.
        if conn.dialed is not None:
            listen = (conn.address[0], conn.dialed[1])
            self.policy.dial_succeeded(conn.dialed)
            target = self._targets.get(conn.dialed)
            if target is not None and target.dialing == conn.cid:
                del self._targets[conn.dialed]
        else:
            listen = (conn.address[0], hello.listen[1])
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
            away = [b for b in self._buddies.values() if b.presence is Presence.AWAY]
            if len(self._buddies) >= MAX_BUDDIES and away:
                # Buddies that are gone must not keep a real one out: a buddy coming back with
                # a new node id every time would otherwise fill the table for 10 minutes.
                oldest = min(away, key=lambda b: b.away_since)
                self._forget(oldest, LeaveKind.GONE, lazy_gettext("making room for a new buddy"))
            if len(self._buddies) >= MAX_BUDDIES:
                self._events.append(
                    ConnectionRejected(conn.address, lazy_gettext("too many buddies"))
                )
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
            # Judged against the introducer's own connection: a buddy on the LAN may introduce
            # LAN addresses, not our loopback or the internet; only IP literals, never a port
            # below 1024, within budgets (policy.py says which and why).
            refusal = self.policy.admit(buddy.node, conn.address[0], entry.listen, self._now)
            if refusal is not None:
                self._reports.add(("introductions", buddy.name, refusal), self._now)
                continue
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

    def _within_rate(self, buddy: _Buddy, size_bytes: int) -> bool:
        """The buddy's token buckets allow this message (or nick); else it is counted."""
        if buddy.limiter is None:
            buddy.limiter = MessageLimiter(self.settings.limits, self._now)
        if buddy.limiter.allow(size_bytes, self._now):
            return True
        self._reports.add(("messages", buddy.name), self._now, 1, size_bytes)
        return False

    def _message_received(self, conn: _Connection, message: Message) -> None:
        buddy = self._buddy_of(conn)
        if buddy is None:
            return
        if message.id > buddy.last_delivered:
            buddy.last_delivered = message.id
            # Over the rate, the message is dropped but acknowledged like any other: sending
            # it again would only flood us again.
            if not self._within_rate(buddy, len(message.text.encode())):
                conn.session.send(
                    Ack(self.name, self._wall(self._now), buddy.last_delivered), self._now
                )
                return
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
        buddy.away_since = self._now
        buddy.introduced = False
        kind = LeaveKind.TIMEOUT if ended.kind is EndKind.TIMEOUT else LeaveKind.LOST
        self._events.append(BuddyLeft(buddy.name, kind, ended.detail))
        if self.state is NodeState.CHATTING and self._may_redial(buddy):
            self._targets.setdefault(
                buddy.listen,
                _Target(
                    buddy.listen,
                    _Why.RECONNECT,
                    self._now + self.settings.backoff_initial_s,
                    self.settings.backoff_initial_s * 2,
                    since=self._now,
                ),
            )
        elif buddy.pending:
            self._report_undeliverable(
                buddy, [p.message for p in buddy.pending], Undeliverable.AWAY
            )
            buddy.pending.clear()

    def _open_connections(self) -> int:
        """Connections not already closing: refused ones linger a moment for their bye, and a
        flood of them must not count against a real buddy."""
        return sum(1 for conn in self._connections.values() if not conn.session.should_close)

    def _may_redial(self, buddy: _Buddy) -> bool:
        """A lost buddy is reconnected only where a learned address could be dialled: never a
        port below 1024 (its hello's word), never an address cooling down after failures."""
        if buddy.listen[1] < MIN_LEARNED_PORT:
            return False
        return not self.policy.is_cooling_down(buddy.listen, self._now)

    def _flush_reports(self, now: float) -> None:
        """Refusals and drops summed since the last report, at most once a report interval."""
        ignored: dict[str, list[tuple[Refusal, int]]] = {}
        for key, count, size in self._reports.take_due(now):
            match key:
                case ("introductions", str(sender), Refusal() as refusal):
                    ignored.setdefault(sender, []).append((refusal, count))
                case ("messages", str(sender)):
                    self._events.append(MessagesDropped(sender, count, size))
                case ("handshakes", str(host)):
                    slots = self.settings.limits.handshake_slots_per_source
                    self._events.append(ConnectionsRefused(host, count, slots))
        order = list(Refusal)
        for sender, counts in ignored.items():
            counts.sort(key=lambda item: order.index(item[0]))
            self._events.append(IntroductionsIgnored(sender, tuple(counts)))

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
