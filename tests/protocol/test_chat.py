"""The chat core without sockets: frames, one session, and several nodes on a simulated network.

`SimulatedNetwork` plays the runtime for many `ChatNode`s at once: it carries out Dial and
CloseConnection actions, moves bytes between the two ends of each link (in chunks the test
chooses), and lets a test kill a node the way SIGKILL does (the kernel closes its sockets).
"""

from __future__ import annotations

import itertools
import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from socklab.errors import LocalProtocolError
from socklab.protocol.chat import (
    MAX_TEXT_BYTES,
    Ack,
    BuddyJoined,
    BuddyLeft,
    BuddyRenamed,
    Bye,
    ChatEvent,
    ChatNode,
    ChatSettings,
    CloseConnection,
    ConnectionRejected,
    Dial,
    EndKind,
    Frame,
    FrameRejected,
    Hello,
    LeaveKind,
    Message,
    MessageReceived,
    MessageUndeliverable,
    Nick,
    PeerEntry,
    Peers,
    PeerSession,
    PeerUnreachable,
    Ping,
    Pong,
    Presence,
    SelfConnection,
    SendProblem,
    SessionEnded,
    SessionState,
    SessionTimers,
    Undeliverable,
    decode_frame,
    encode_frame,
    printable_text,
)
from socklab.protocol.framing.length_prefix import LengthPrefixFramer

SAMPLE_FRAMES: list[Frame] = [
    Hello("alice", 1.5, "a1", ("127.0.0.1", 5000)),
    Hello("bob", 2.0, "b2", ("::1", 6000)),
    Peers("alice", 3.0, (PeerEntry("c3", "carol", ("127.0.0.1", 7000)),)),
    Peers("alice", 3.0, ()),
    Message("alice", 4.25, 1, "hello wörld 🙂"),
    Message("alice", 4.25, 7, "psst", to="bob"),
    Ack("bob", 5.0, 7),
    Ping("bob", 6.0, 3),
    Pong("alice", 6.5, 3),
    Nick("alicia", 7.0),
    Bye("alice", 8.0, "left"),
]


def framed(frame: Frame) -> bytes:
    return LengthPrefixFramer(1 << 20).encode(encode_frame(frame))


# -- frames -----------------------------------------------------------------------------------
@pytest.mark.parametrize("frame", SAMPLE_FRAMES, ids=lambda f: type(f).__name__.lower())
def test_every_frame_round_trips(frame: Frame) -> None:
    assert decode_frame(encode_frame(frame)) == frame


def test_wire_format_is_json_header_line_then_body() -> None:
    payload = encode_frame(Message("alice", 12.0, 3, "hi"))
    header_line, body = payload.split(b"\n", 1)
    assert json.loads(header_line) == {"type": "msg", "from": "alice", "id": 3, "time": 12.0}
    assert body == b"hi"
    assert framed(Message("alice", 12.0, 3, "hi"))[:4] == len(payload).to_bytes(4, "big")


@pytest.mark.parametrize(
    ("payload", "detail"),
    [
        (b"no newline", r"without the newline"),
        (b"x" * 5000, r"header longer than 4,096 bytes"),
        (b"{not json\n", r"not UTF-8 JSON"),
        (b"\xff\xfe\n", r"not UTF-8 JSON"),
        (b"[1,2]\n", r"not a JSON object"),
        (b'{"type":"shout","from":"a","id":0,"time":1}\n', r"unknown frame type 'shout'"),
        (b'{"type":"msg","from":"a b","id":1,"time":1}\nx', r"invalid 'from'"),
        (b'{"type":"msg","from":"a","id":-1,"time":1}\nx', r"invalid 'id'"),
        (b'{"type":"msg","from":"a","id":true,"time":1}\nx', r"invalid 'id'"),
        (b'{"type":"msg","from":"a","id":1,"time":NaN}\nx', r"not UTF-8 JSON"),
        (b'{"type":"msg","from":"a","id":1,"time":"now"}\nx', r"invalid 'time'"),
        (b'{"type":"msg","from":"a","id":0,"time":1}\nx', r"id 0"),
        (b'{"type":"msg","from":"a","id":1,"time":1}\n\xff', r"not UTF-8"),
        (b'{"type":"ping","from":"a","id":1,"time":1}\nbody', r"body of 4 bytes"),
        (b'{"type":"hello","from":"a","id":0,"time":1,"v":2}\n', r"version 2"),
        (b'{"type":"hello","from":"a","id":0,"time":1,"v":1,"node":"n"}\n', r"'listen'"),
        (b'{"type":"peers","from":"a","id":0,"time":1}\n{}', r"list"),
        (b'{"type":"peers","from":"a","id":0,"time":1}\n[{"node":"x"}]', r"valid node"),
        (b'{"type":"bye","from":"a","id":0,"time":1}\n', r"reason"),
        (b"[" * 3000 + b"\n", r"not UTF-8 JSON"),
    ],
)
def test_bad_frames_are_rejected_with_the_reason(payload: bytes, detail: str) -> None:
    result = decode_frame(payload)
    assert isinstance(result, FrameRejected)
    assert re.search(detail, result.detail), result.detail


def test_message_text_over_the_limit_is_rejected() -> None:
    payload = encode_frame(Message("a", 1.0, 1, "x" * (MAX_TEXT_BYTES + 1)))
    result = decode_frame(payload)
    assert isinstance(result, FrameRejected)
    assert "exceeds the 16,384-byte limit" in result.detail


def test_printable_text_neutralises_terminal_escapes_and_newlines() -> None:
    # Made visible by the project's one escaper (they were U+FFFD, which hid what was sent).
    assert printable_text("a\x1b[2Jb\nc\u0085d\tüñ🙂") == "a\\x1b[2Jb\\nc\\u0085d\\tüñ🙂"


# -- one session ------------------------------------------------------------------------------
def _session_stream() -> bytes:
    return b"".join(framed(f) for f in [SAMPLE_FRAMES[0], *SAMPLE_FRAMES[2:10]])


def _feed(chunks: list[bytes]) -> list[object]:
    session = PeerSession(outbound=False, now=0.0)
    events: list[object] = []
    for chunk in chunks:
        events.extend(session.receive_data(chunk, 1.0))
    return events


def test_session_whole_and_byte_by_byte_decode_the_same() -> None:
    stream = _session_stream()
    whole = _feed([stream])
    assert whole == [SAMPLE_FRAMES[0], *SAMPLE_FRAMES[2:10]]
    assert _feed([stream[i : i + 1] for i in range(len(stream))]) == whole


def test_session_says_when_it_has_bytes_and_when_a_frame_is_half_received() -> None:
    # A runtime wakes a connection only when it has bytes, and runs the message deadline
    # while a frame is half received.
    session = PeerSession(outbound=True, now=0.0)
    assert not session.has_data_to_send
    session.send(SAMPLE_FRAMES[0], 0.0)
    assert session.has_data_to_send
    session.data_to_send()
    assert not session.has_data_to_send
    hello = framed(SAMPLE_FRAMES[1])
    session.receive_data(hello[:5], 1.0)
    assert session.has_partial_frame
    session.receive_data(hello[5:], 1.0)
    assert not session.has_partial_frame


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=len(_session_stream())), max_size=30))
def test_any_chunking_decodes_the_same(cuts: list[int]) -> None:
    stream = _session_stream()
    points = sorted({0, len(stream), *cuts})
    chunks = [stream[a:b] for a, b in itertools.pairwise(points)]
    assert _feed(chunks) == _feed([stream])


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.lists(st.integers(0, 300), max_size=5))
def test_garbage_never_raises_and_ends_in_closing_or_waiting(
    garbage: bytes, cuts: list[int]
) -> None:
    session = PeerSession(outbound=True, now=0.0)
    points = sorted({0, len(garbage), *(c for c in cuts if c <= len(garbage))})
    events = []
    for a, b in itertools.pairwise(points):
        events.extend(session.receive_data(garbage[a:b], 1.0))
    events.extend(session.tick(100.0, "me", 100.0))  # handshake deadline passes
    assert session.state is SessionState.CLOSING
    ends = [e for e in events if isinstance(e, SessionEnded)]
    assert len(ends) == 1
    assert ends[0].kind is EndKind.VIOLATION


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=1, max_size=200))
def test_garbage_after_hello_is_a_violation_never_an_exception(garbage: bytes) -> None:
    session = PeerSession(outbound=True, now=0.0)
    session.receive_data(framed(SAMPLE_FRAMES[0]), 0.5)
    events = session.receive_data(len(garbage).to_bytes(4, "big") + garbage, 1.0)
    assert session.is_established or session.should_close
    if session.should_close:
        assert isinstance(events[-1], SessionEnded)


def test_too_long_frame_is_a_violation_before_its_body_arrives() -> None:
    session = PeerSession(outbound=False, now=0.0)
    events = session.receive_data(b"GET / HTTP/1.1\r\n", 1.0)
    assert events == [
        SessionEnded(
            EndKind.VIOLATION, "message of 1,195,725,856 bytes exceeds the 65,536-byte limit"
        )
    ]
    assert session.should_close
    assert session.receive_data(b"more", 2.0) == []


def test_a_frame_before_hello_is_a_violation() -> None:
    session = PeerSession(outbound=False, now=0.0)
    events = session.receive_data(framed(Message("a", 1.0, 1, "hi")), 1.0)
    assert events == [SessionEnded(EndKind.VIOLATION, "message frame before hello")]


def test_keepalive_pings_when_quiet_and_gives_up_after_silence() -> None:
    timers = SessionTimers(keepalive_interval_s=1.0, keepalive_timeout_s=3.0)
    session = PeerSession(outbound=True, now=0.0, timers=timers)
    session.receive_data(framed(SAMPLE_FRAMES[0]), 0.0)
    assert session.tick(0.5, "me", 0.5) == []
    assert session.data_to_send() == b""
    assert session.tick(1.0, "me", 1.0) == []
    sent = LengthPrefixFramer(1 << 16).receive_data(session.data_to_send())
    assert [decode_frame(p) for p in sent if isinstance(p, bytes)] == [Ping("me", 1.0, 1)]
    assert session.next_deadline() == 2.0
    session.receive_data(framed(Pong("a", 1.0, 1)), 2.5)
    ended = session.tick(5.5, "me", 5.5)
    assert ended == [SessionEnded(EndKind.TIMEOUT, "nothing received for 3.0 s")]


def test_session_misuse_raises() -> None:
    session = PeerSession(outbound=True, now=0.0)
    session.closed()
    with pytest.raises(LocalProtocolError):
        session.receive_data(b"x", 1.0)
    with pytest.raises(LocalProtocolError):
        session.send(Ping("a", 1.0, 1), 1.0)


# -- several nodes on a simulated network -----------------------------------------------------
FAST = ChatSettings(
    timers=SessionTimers(
        keepalive_interval_s=1.0, keepalive_timeout_s=3.0, handshake_timeout_s=2.0
    ),
    introduction_grace_s=0.5,
    undeliverable_after_s=30.0,
)


class SimulatedNetwork:
    def __init__(self, chunk_bytes: int | None = None) -> None:
        self.now = 0.0
        self.nodes: dict[str, ChatNode] = {}
        self.events: dict[str, list[ChatEvent]] = {}
        # (node name, cid) -> (node name, cid) of the other end
        self.links: dict[tuple[str, int], tuple[str, int]] = {}
        self.closing: set[tuple[str, int]] = set()
        self.chunk_bytes = chunk_bytes
        self.down = False  # the network is gone: no bytes move, dials time out
        self._port = 40000

    def add(self, name: str, node_id: str, peers: list[str] = ()) -> ChatNode:  # type: ignore[assignment]
        self._port += 1
        node = ChatNode(name, node_id, ("127.0.0.1", self._port), now=self.now, settings=FAST)
        self.nodes[name] = node
        self.events[name] = []
        for other in peers:
            node.add_peer(self.nodes[other].listen, self.now)
        return node

    def _by_listen(self, address: tuple[str, int]) -> str | None:
        return next((n for n, node in self.nodes.items() if node.listen == address), None)

    def raw_connect(self, target: str) -> int:
        """A non-chat client connects; returns the target's connection id for it."""
        return self.nodes[target].connection_accepted(("127.0.0.1", 9), self.now)

    def pump(self, rounds: int = 50) -> None:
        for _ in range(rounds):
            moved = False
            for name, node in list(self.nodes.items()):
                for action in node.take_actions():
                    moved = True
                    if isinstance(action, Dial):
                        remote = self._by_listen(action.address)
                        if remote is None or self.down:
                            node.connect_failed(action.cid, "refused", self.now)
                            continue
                        rcid = self.nodes[remote].connection_accepted(node.listen, self.now)
                        node.connection_made(action.cid, self.now)
                        self.links[(name, action.cid)] = (remote, rcid)
                        self.links[(remote, rcid)] = (name, action.cid)
                    else:
                        assert isinstance(action, CloseConnection)
                        self.closing.add((name, action.cid))
                self.events[name].extend(node.take_events())
            for (name, cid), (rname, rcid) in list(self.links.items()):
                if name not in self.nodes:
                    continue
                if self.down:
                    continue
                data = self.nodes[name].data_to_send(cid)
                if data and rname in self.nodes and (rname, rcid) in self.links:
                    moved = True
                    step = self.chunk_bytes or len(data)
                    for i in range(0, len(data), step):
                        if rcid in self.nodes[rname].connection_ids():
                            self.nodes[rname].receive_data(rcid, data[i : i + step], self.now)
            for name, cid in list(self.closing):
                self.closing.discard((name, cid))
                other = self.links.pop((name, cid), None)
                if name in self.nodes:
                    self.nodes[name].connection_closed(cid, self.now)
                if other is not None:
                    self.links.pop(other, None)
                    oname, ocid = other
                    if oname in self.nodes and ocid in self.nodes[oname].connection_ids():
                        self.nodes[oname].receive_eof(ocid, self.now)
                moved = True
            for name, node in self.nodes.items():
                self.events[name].extend(node.take_events())
            if not moved:
                return

    def advance(self, seconds: float, step: float = 0.25) -> None:
        end = self.now + seconds
        while self.now < end:
            self.now = min(end, self.now + step)
            for node in self.nodes.values():
                node.tick(self.now)
            self.pump()

    def kill(self, name: str) -> None:
        """SIGKILL: the kernel closes every socket of the process; the others see EOF."""
        del self.nodes[name]
        for (owner, cid), (other, ocid) in list(self.links.items()):
            if owner == name:
                del self.links[(owner, cid)]
                self.links.pop((other, ocid), None)
                node = self.nodes.get(other)
                if node is not None and ocid in node.connection_ids():
                    node.receive_eof(ocid, self.now)
                    node.connection_closed(ocid, self.now)
        self.pump()

    def received(self, name: str) -> list[tuple[str, str]]:
        return [(e.sender, e.text) for e in self.events[name] if isinstance(e, MessageReceived)]

    def of(self, name: str, kind: type) -> list[ChatEvent]:
        return [e for e in self.events[name] if isinstance(e, kind)]

    def socket_pairs(self) -> int:
        return len(self.links) // 2


def _online(node: ChatNode) -> set[str]:
    return {b.name for b in node.buddies() if b.presence is Presence.ONLINE}


@pytest.mark.parametrize("chunk_bytes", [None, 1, 7], ids=["whole", "bytewise", "chunks7"])
def test_a_chain_becomes_a_full_mesh_and_messages_arrive_once_in_order(
    chunk_bytes: int | None,
) -> None:
    net = SimulatedNetwork(chunk_bytes)
    net.add("alice", "n1")
    net.add("bob", "n2", ["alice"])
    net.pump()
    net.add("carol", "n3", ["bob"])  # carol knows only bob; alice is introduced
    net.pump()
    net.add("dave", "n0", ["carol"])  # the smallest id joins last, through the last one
    net.advance(1.0)
    for name, node in net.nodes.items():
        assert _online(node) == set(net.nodes) - {name}, name
        assert node.is_settled, name
    assert net.socket_pairs() == 6
    for round_ in range(3):
        for name, node in net.nodes.items():
            result = node.send_text(f"{name} {round_}", net.now)
            assert len(result.sent_to) == 3
        net.pump()
    for name in net.nodes:
        got = net.received(name)
        for sender in set(net.nodes) - {name}:
            assert [t for s, t in got if s == sender] == [f"{sender} {r}" for r in range(3)]
        assert len(got) == 9
    net.advance(2.0)
    assert not any(node.has_pending for node in net.nodes.values())


def test_two_peers_dialing_each_other_keep_exactly_one_socket() -> None:
    net = SimulatedNetwork()
    alice = net.add("alice", "n1")
    bob = net.add("bob", "n2")
    alice.add_peer(bob.listen, 0.0)
    bob.add_peer(alice.listen, 0.0)
    alice.send_text("early", 0.0)  # nobody yet: reported, not lost silently
    net.pump()
    assert net.socket_pairs() == 1
    assert alice.is_settled and bob.is_settled
    assert len(net.of("alice", BuddyJoined)) == len(net.of("bob", BuddyJoined)) == 1
    assert not net.of("alice", BuddyLeft)
    assert not net.of("bob", BuddyLeft)
    for i in range(5):
        alice.send_text(f"a{i}", net.now)
        bob.send_text(f"b{i}", net.now)
    net.advance(4.0)
    assert net.received("bob") == [("alice", f"a{i}") for i in range(5)]
    assert net.received("alice") == [("bob", f"b{i}") for i in range(5)]
    assert net.socket_pairs() == 1


def test_messages_sent_while_the_duplicate_is_resolved_arrive_once() -> None:
    net = SimulatedNetwork()
    alice = net.add("alice", "n1")
    bob = net.add("bob", "n2")
    alice.add_peer(bob.listen, 0.0)
    bob.add_peer(alice.listen, 0.0)
    sent = []
    for i in range(8):  # interleave sending with single pump rounds
        net.pump(rounds=1)
        if alice.send_text(f"a{i}", net.now).message_id:
            sent.append(f"a{i}")
    net.advance(2.0)
    assert len(sent) >= 6
    assert [t for _, t in net.received("bob")] == sent
    assert net.socket_pairs() == 1


def test_a_killed_peer_is_reported_left_and_the_rest_carry_on() -> None:
    net = SimulatedNetwork()
    net.add("alice", "n1")
    net.add("bob", "n2", ["alice"])
    net.add("carol", "n3", ["alice"])
    net.advance(1.0)
    net.kill("bob")
    for name in ("alice", "carol"):
        left = net.of(name, BuddyLeft)
        assert [(e.name, e.kind) for e in left] == [("bob", LeaveKind.LOST)]
    result = net.nodes["alice"].send_text("still here?", net.now)
    assert result.sent_to == ("carol",)
    assert result.queued_for == ("bob",)
    net.advance(1.0)
    assert net.received("carol")[-1] == ("alice", "still here?")
    # leaving reports what bob never got
    net.nodes["alice"].leave(net.now, grace_s=1.0)
    net.advance(2.0)
    undelivered = net.of("alice", MessageUndeliverable)
    assert [(e.recipient, e.text, e.reason) for e in undelivered] == [
        ("bob", "still here?", Undeliverable.AWAY)
    ]
    assert net.nodes["alice"].finished
    assert [(e.name, e.kind) for e in net.of("carol", BuddyLeft)][-1] == ("alice", LeaveKind.LEFT)


def test_a_vanished_peer_is_detected_by_keepalive_and_reconnected_when_back() -> None:
    net = SimulatedNetwork()
    alice = net.add("alice", "n1")
    bob = net.add("bob", "n2", ["alice"])
    net.pump()
    # The network goes away: bytes stop flowing, nobody sees an EOF.
    net.down = True
    net.advance(4.0)
    assert [(e.name, e.kind) for e in net.of("alice", BuddyLeft)] == [("bob", LeaveKind.TIMEOUT)]
    result = alice.send_text("queued", net.now)
    assert result.queued_for == ("bob",)
    net.down = False
    # It comes back: alice's reconnect attempt (backoff) finds bob listening again.
    net.advance(12.0)
    assert [e.returned for e in net.of("alice", BuddyJoined)] == [False, True]
    assert ("alice", "queued") in net.received("bob")
    assert _online(bob) == {"alice"}


def test_garbage_from_a_raw_socket_is_rejected_and_chatting_goes_on() -> None:
    net = SimulatedNetwork()
    alice = net.add("alice", "n1")
    net.add("bob", "n2", ["alice"])
    net.pump()
    cid = net.raw_connect("alice")
    alice.receive_data(cid, b"hello? \x00\xff garbage\n", net.now)
    net.pump()
    rejected = net.of("alice", ConnectionRejected)
    assert len(rejected) == 1
    assert "exceeds the 65,536-byte limit" in rejected[0].detail
    assert cid not in alice.connection_ids()
    alice.send_text("fine", net.now)
    net.pump()
    assert net.received("bob") == [("alice", "fine")]


def test_a_silent_raw_socket_is_closed_after_the_handshake_deadline() -> None:
    net = SimulatedNetwork()
    alice = net.add("alice", "n1")
    cid = net.raw_connect("alice")
    net.advance(3.0)
    assert cid not in alice.connection_ids()
    assert "no hello within 2 s" in net.of("alice", ConnectionRejected)[0].detail


def test_a_buddy_sending_garbage_is_disconnected_and_forgotten() -> None:
    net = SimulatedNetwork()
    alice = net.add("alice", "n1")
    net.add("bob", "n2", ["alice"])
    net.pump()
    bob_cid = next(iter(alice.connection_ids()))
    alice.receive_data(bob_cid, (3).to_bytes(4, "big") + b"{}\n", net.now)
    net.pump()
    left = net.of("alice", BuddyLeft)
    assert [(e.name, e.kind) for e in left] == [("bob", LeaveKind.VIOLATION)]
    assert alice.buddies() == []


def test_private_messages_reach_only_their_recipient() -> None:
    net = SimulatedNetwork()
    alice = net.add("alice", "n1")
    net.add("bob", "n2", ["alice"])
    net.add("carol", "n3", ["alice"])
    net.advance(1.0)
    result = alice.send_text("for bob", net.now, to="bob")
    assert result.sent_to == ("bob",)
    alice.send_text("for all", net.now)
    net.pump()
    assert net.received("bob") == [("alice", "for bob"), ("alice", "for all")]
    assert net.received("carol") == [("alice", "for all")]
    assert alice.send_text("x", net.now, to="zed").problem is SendProblem.NO_SUCH_NAME


def test_nick_changes_are_announced() -> None:
    net = SimulatedNetwork()
    alice = net.add("alice", "n1")
    net.add("bob", "n2", ["alice"])
    net.pump()
    alice.rename("alicia", net.now)
    alice.send_text("new me", net.now)
    net.pump()
    assert net.of("bob", BuddyRenamed) == [BuddyRenamed("alice", "alicia")]
    assert net.received("bob") == [("alicia", "new me")]
    with pytest.raises(LocalProtocolError):
        alice.rename("bad name", net.now)


def test_unreachable_peer_is_reported_once_and_retried_with_capped_backoff() -> None:
    net = SimulatedNetwork()
    alice = net.add("alice", "n1")
    alice.add_peer(("127.0.0.1", 1), net.now)
    net.pump()
    net.advance(30.0, step=0.1)
    unreachable = net.of("alice", PeerUnreachable)
    assert len(unreachable) == 1
    assert unreachable[0].retry_in_s == 0.5
    assert alice.is_settled
    deadline = alice.next_deadline()
    assert deadline is not None and deadline - net.now <= 10.0


def test_connecting_to_itself_is_noticed() -> None:
    net = SimulatedNetwork()
    alice = net.add("alice", "n1")
    alice.add_peer(alice.listen, net.now)
    net.pump()
    assert net.of("alice", SelfConnection)
    assert alice.buddies() == []


def test_leave_waits_for_acknowledgements_then_says_bye() -> None:
    net = SimulatedNetwork()
    alice = net.add("alice", "n1")
    net.add("bob", "n2", ["alice"])
    net.pump()
    alice.send_text("last words", net.now)
    alice.leave(net.now, grace_s=5.0)
    assert alice.send_text("too late", net.now).problem is SendProblem.LEAVING
    net.pump()
    assert net.received("bob") == [("alice", "last words")]
    assert alice.finished
    assert not net.of("alice", MessageUndeliverable)
    assert [(e.name, e.kind) for e in net.of("bob", BuddyLeft)] == [("alice", LeaveKind.LEFT)]


def test_node_rejects_unknown_connection_ids() -> None:
    node = ChatNode("alice", "n1", ("127.0.0.1", 1), now=0.0)
    with pytest.raises(LocalProtocolError):
        node.receive_data(99, b"x", 0.0)
    assert node.connection_made(99, 0.0) is False
    with pytest.raises(LocalProtocolError):
        ChatNode("two words", "n1", ("127.0.0.1", 1), now=0.0)


def test_introductions_are_bounded() -> None:
    net = SimulatedNetwork()
    alice = net.add("alice", "n1")
    net.add("bob", "n2", ["alice"])
    net.pump()
    bob_cid = next(iter(alice.connection_ids()))
    for batch in range(5):
        entries = tuple(
            PeerEntry(f"x{batch}-{i}", "ghost", ("127.0.0.1", 20000 + batch * 64 + i))
            for i in range(64)
        )
        alice.receive_data(bob_cid, framed(Peers("bob", 1.0, entries)), net.now)
    dials = [a for a in alice.take_actions() if isinstance(a, Dial)]
    assert len(dials) <= 64


def test_node_says_which_connections_have_bytes_to_send() -> None:
    node = ChatNode("alice", "n1", ("127.0.0.1", 1), now=0.0)
    cid = node.connection_accepted(("127.0.0.1", 40000), 0.0)
    assert node.has_data_to_send(cid)  # its hello
    assert node.data_to_send(cid)
    assert not node.has_data_to_send(cid)
    assert not node.has_partial_frame(cid)
    assert not node.has_data_to_send(cid + 1)  # unknown: nothing, no error


def test_a_session_whose_peer_does_not_read_ends_instead_of_queueing_without_bound() -> None:
    session = PeerSession(outbound=False, now=0.0, max_queued_bytes=2_000)
    frame = Ping("alice", 0.0, 1)
    frame_bytes = len(LengthPrefixFramer(65_536).encode(encode_frame(frame)))
    for _ in range(2_000 // frame_bytes):
        session.send(frame, 0.0)
    assert session.take_overflow() is None and not session.should_close  # up to the bound
    session.send(frame, 0.0)  # one over
    ended = session.take_overflow()
    assert ended is not None and ended.kind is EndKind.SLOW_READER
    assert re.fullmatch(r"over 2,000 bytes waited for it to read", ended.detail)
    # Everything waiting was dropped, the session is closing, and it says so once.
    assert session.should_close
    assert session.data_to_send() == b""
    assert session.take_overflow() is None
    session.send(frame, 0.0)  # a closing session takes nothing more
    assert session.data_to_send() == b""


def test_a_session_that_is_read_never_overflows() -> None:
    session = PeerSession(outbound=False, now=0.0, max_queued_bytes=2_000)
    for _ in range(1_000):
        session.send(Ping("alice", 0.0, 1), 0.0)
        assert session.data_to_send()
    assert session.take_overflow() is None
    assert not session.should_close


def test_a_buddy_that_does_not_read_is_disconnected_not_buffered_for() -> None:
    net = SimulatedNetwork()
    alice = net.add("alice", "n1")
    net.add("bob", "n2", ["alice"])
    net.pump()
    assert _online(alice) == {"bob"}
    (cid,) = alice.connection_ids()
    alice._connections[cid].session.max_queued_bytes = 4_000  # bob's socket: 4 KB, then gone
    # Bob reads nothing: alice's messages for him pile up in her node, not the network.
    for index in range(100):
        alice.send_text(f"message {index} " + "x" * 100, net.now)
    actions = alice.take_actions()
    assert CloseConnection(cid) in actions
    assert alice.data_to_send(cid) == b""  # what waited was dropped
