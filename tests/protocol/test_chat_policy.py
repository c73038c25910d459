"""The chat's defences against a hostile buddy, without sockets (issue 15 §2).

First the pure rules of `protocol/chat/policy.py` one by one (scope, ports, host names, the
per-buddy budget, the failure cool-down, the lifetime bound, token buckets, report batching),
then a `ChatNode` fed the frames a hostile buddy sends, checking what it would dial and print.
"""

from __future__ import annotations

import pytest

from socklab.protocol.chat import (
    BuddyJoined,
    BuddyLeft,
    BuddyRenamed,
    ChatEvent,
    ChatNode,
    ConnectionRejected,
    ConnectionsRefused,
    Dial,
    Hello,
    IntroductionPolicy,
    IntroductionsIgnored,
    LeaveKind,
    Message,
    MessageLimiter,
    MessageReceived,
    MessagesDropped,
    Nick,
    NoticeBatcher,
    PeerEntry,
    Peers,
    PolicyLimits,
    Refusal,
    Scope,
    TokenBucket,
    address_scope,
    encode_frame,
)
from socklab.protocol.chat.frames import Frame
from socklab.protocol.framing.length_prefix import LengthPrefixFramer

HOSTILE = ("10.98.0.1", 40000)  # where the hostile buddy's connection comes from


def framed(frame: Frame) -> bytes:
    return LengthPrefixFramer(1 << 20).encode(encode_frame(frame))


# -- scopes ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("host", "scope"),
    [
        ("127.0.0.1", Scope.LOOPBACK),
        ("127.3.4.5", Scope.LOOPBACK),
        ("::1", Scope.LOOPBACK),
        ("::ffff:127.0.0.1", Scope.LOOPBACK),
        ("169.254.10.1", Scope.LINK_LOCAL),
        ("fe80::1", Scope.LINK_LOCAL),
        ("10.99.1.2", Scope.PRIVATE),
        ("172.16.0.1", Scope.PRIVATE),
        ("192.168.1.1", Scope.PRIVATE),
        ("100.64.0.1", Scope.PRIVATE),
        ("fd12:3456::1", Scope.PRIVATE),
        ("::ffff:10.1.1.1", Scope.PRIVATE),
        ("8.8.8.8", Scope.GLOBAL),
        ("2001:db8::1", Scope.GLOBAL),  # documentation range: nobody's LAN
        ("2a00:1450::1", Scope.GLOBAL),
        ("0.0.0.0", None),
        ("::", None),
        ("224.0.0.1", None),
        ("ff02::1", None),
        ("255.255.255.255", None),
        ("240.0.0.1", None),
        ("localhost", None),
        ("exfil-0.attacker.example", None),
    ],
)
def test_address_scope(host: str, scope: Scope | None) -> None:
    assert address_scope(host) is scope


# -- which introduced addresses are dialled --------------------------------------------------
def test_host_names_are_refused_and_counted() -> None:
    policy = IntroductionPolicy()
    for i in range(3):
        assert policy.admit("n1", "10.98.0.1", (f"exfil-{i}.attacker.example", 4000), 0.0) is (
            Refusal.HOST_NAME
        )
    assert policy.admit("n1", "127.0.0.1", ("localhost", 4000), 0.0) is Refusal.HOST_NAME
    assert policy.refused[Refusal.HOST_NAME] == 4
    assert policy.learned_targets == 0


@pytest.mark.parametrize(
    ("introducer", "address", "refusal"),
    [
        ("10.98.0.1", ("10.99.1.1", 5000), None),
        ("10.98.0.1", ("192.168.1.1", 5000), None),
        ("10.98.0.1", ("127.0.0.1", 5555), Refusal.OTHER_SCOPE),
        ("10.98.0.1", ("2001:db8::1", 4443), Refusal.OTHER_SCOPE),
        ("10.98.0.1", ("8.8.8.8", 5000), Refusal.OTHER_SCOPE),
        ("10.98.0.1", ("169.254.1.1", 5000), Refusal.OTHER_SCOPE),
        ("10.98.0.1", ("224.0.0.1", 5000), Refusal.OTHER_SCOPE),
        ("127.0.0.1", ("127.0.0.1", 5555), None),
        ("127.0.0.1", ("::1", 5555), None),
        ("127.0.0.1", ("10.99.1.1", 5000), Refusal.OTHER_SCOPE),
        ("::1", ("fd00::5", 5000), Refusal.OTHER_SCOPE),
        ("2a00:1450::1", ("8.8.4.4", 5000), None),
        ("10.98.0.1", ("10.99.1.1", 22), Refusal.LOW_PORT),
        ("10.98.0.1", ("10.99.1.1", 1023), Refusal.LOW_PORT),
        ("127.0.0.1", ("127.0.0.1", 1), Refusal.LOW_PORT),
        ("10.98.0.1", ("10.99.1.1", 1024), None),
    ],
)
def test_only_the_introducers_scope_and_ports_from_1024(
    introducer: str, address: tuple[str, int], refusal: Refusal | None
) -> None:
    assert IntroductionPolicy().admit("n1", introducer, address, 0.0) is refusal


def test_each_buddy_adds_at_most_50_addresses_in_any_minute() -> None:
    policy = IntroductionPolicy()
    admitted = [policy.admit("n1", "10.98.0.1", ("10.99.0.1", 2000 + i), 0.0) for i in range(64)]
    assert admitted.count(None) == 50
    assert admitted[50:] == [Refusal.BUDGET] * 14
    # Another buddy has its own budget.
    assert policy.admit("n2", "10.98.0.2", ("10.99.0.2", 2000), 1.0) is None
    # A sliding window: nothing new until the first 50 are a minute old.
    assert policy.admit("n1", "10.98.0.1", ("10.99.0.1", 3000), 59.9) is Refusal.BUDGET
    assert policy.admit("n1", "10.98.0.1", ("10.99.0.1", 3000), 60.0) is None
    assert policy.refused[Refusal.BUDGET] == 15


def test_an_address_that_failed_3_times_rests_10_minutes_whoever_introduces_it() -> None:
    policy = IntroductionPolicy()
    target = ("10.99.7.7", 5000)
    for attempt in range(3):
        assert policy.admit(f"n{attempt}", "10.98.0.1", target, attempt * 10.0) is None
        policy.dial_failed(target, attempt * 10.0 + 1)
    for introducer in ("n0", "n9", "n10"):
        assert policy.admit(introducer, "10.98.0.5", target, 100.0) is Refusal.FAILED
    assert policy.cooldown_ends(target) == 21.0 + 600.0
    assert policy.admit("n9", "10.98.0.5", target, 620.9) is Refusal.FAILED
    assert policy.admit("n9", "10.98.0.5", target, 621.0) is None
    assert policy.cooldown_ends(target) is None


def test_a_success_clears_the_failures() -> None:
    policy = IntroductionPolicy()
    target = ("10.99.7.7", 5000)
    assert policy.admit("n1", "10.98.0.1", target, 0.0) is None
    policy.dial_failed(target, 1.0)
    policy.dial_failed(target, 2.0)
    policy.dial_succeeded(target)
    policy.dial_failed(target, 3.0)
    assert not policy.is_cooling_down(target, 4.0)


def test_failures_of_the_users_own_peers_are_not_held_against_them() -> None:
    policy = IntroductionPolicy()
    for second in range(5):
        policy.dial_failed(("10.99.7.7", 5000), float(second))  # never admitted: a --peer
    assert policy.admit("n1", "10.98.0.1", ("10.99.7.7", 5000), 10.0) is None


def test_distinct_learned_targets_are_bounded_over_the_whole_life() -> None:
    limits = PolicyLimits()
    policy = IntroductionPolicy(limits)
    results = []
    # A buddy that comes back with a new node id every time gets a fresh per-buddy budget...
    for i in range(400):
        now = float(i)
        results.append(policy.admit(f"n{i}", "10.98.0.1", ("10.99.0.1", 2000 + i), now))
    # ... but the peer dials only so many distinct learned addresses in its life.
    assert results.count(None) == limits.max_learned_targets == 128
    assert set(results[128:]) == {Refusal.LIFETIME}
    assert policy.learned_targets == 128
    # An address learned before may still be dialled again (a buddy that comes back).
    assert policy.admit("n0", "10.98.0.1", ("10.99.0.1", 2000), 10_000.0) is None


def test_tracked_budgets_are_bounded() -> None:
    limits = PolicyLimits(max_tracked_introducers=4)
    policy = IntroductionPolicy(limits)
    for i in range(100):
        policy.admit(f"n{i}", "10.98.0.1", ("10.99.0.1", 2000), 0.0)
    assert len(policy._recent) <= 4


# -- rates ----------------------------------------------------------------------------------
def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    bucket = TokenBucket(rate_per_s=20.0, capacity=20.0, now=0.0)
    assert sum(bucket.take(1, 0.0) for _ in range(100)) == 20
    assert not bucket.take(1, 0.01)
    assert sum(bucket.take(1, 0.5) for _ in range(100)) == 10
    assert sum(bucket.take(1, 100.0) for _ in range(100)) == 20  # never more than the burst


def test_message_limiter_bounds_messages_and_bytes() -> None:
    limiter = MessageLimiter(PolicyLimits(), now=0.0)
    assert sum(limiter.allow(10, 0.0) for _ in range(100)) == 20
    limiter = MessageLimiter(PolicyLimits(), now=0.0)
    big = 16 * 1024
    assert sum(limiter.allow(big, 0.0) for _ in range(100)) == 16  # 256 KiB / 16 KiB
    # Over 10 s a flood gets about ten seconds' worth, not more.
    allowed = sum(limiter.allow(big, i / 1000) for i in range(1, 10_001))
    assert allowed <= 16 * 10 + 1


def test_a_refused_message_spends_nothing() -> None:
    limiter = MessageLimiter(PolicyLimits(messages_per_s=2.0, bytes_per_s=100.0), now=0.0)
    assert not limiter.allow(1000, 0.0)  # too large for the byte bucket: no message token spent
    assert limiter.allow(10, 0.0)
    assert limiter.allow(10, 0.0)
    assert not limiter.allow(10, 0.0)  # out of message tokens: its bytes are given back
    assert limiter.allow(70, 0.5)  # 80 bytes left + 50 refilled, one message token refilled


def test_notices_are_batched_at_most_once_per_interval() -> None:
    batcher = NoticeBatcher(1.0)
    assert batcher.next_due() is None
    batcher.add("a", 0.0)
    assert batcher.take_due(0.0) == [("a", 1, 0)]  # the first report at once
    for i in range(1, 100):
        batcher.add("a", i / 100, 1, 10)
    assert batcher.take_due(0.99) == []
    assert batcher.next_due() == 1.0
    assert batcher.take_due(1.0) == [("a", 99, 990)]
    assert batcher.take_due(5.0) == []


# -- the node under a hostile buddy ---------------------------------------------------------
def _victim(now: float = 0.0, listen: tuple[str, int] = ("10.98.0.2", 5000)) -> ChatNode:
    return ChatNode("victim", "v1", listen, now=now)


def _hostile_buddy(
    node: ChatNode,
    now: float,
    *,
    source: tuple[str, int] = HOSTILE,
    node_id: str = "h1",
    listen: str = "10.98.0.1:40001",
) -> int:
    cid = node.connection_accepted(source, now)
    host, _, port = listen.rpartition(":")
    node.receive_data(
        cid, framed(Hello("mallory", now, node_id, (host.strip("[]"), int(port)))), now
    )
    node.data_to_send(cid)
    return cid


def _dials(node: ChatNode) -> list[Dial]:
    return [a for a in node.take_actions() if isinstance(a, Dial)]


def _of(events: list[ChatEvent], kind: type) -> list[ChatEvent]:
    return [e for e in events if isinstance(e, kind)]


def _hostile_entries(batch: int) -> tuple[PeerEntry, ...]:
    entries = [PeerEntry(f"s{batch}x{i}", "ghost", (f"10.99.{batch}.{i}", 22)) for i in range(20)]
    entries += [
        PeerEntry(f"d{batch}x{i}", "ghost", (f"exfil-{batch}-{i}.attacker.example", 4000))
        for i in range(12)
    ]
    entries += [
        PeerEntry(f"l{batch}", "ghost", ("127.0.0.1", 5555)),
        PeerEntry(f"m{batch}", "ghost", ("127.0.0.1", 1)),
        PeerEntry(f"g{batch}", "ghost", ("2001:db8::1", 4443)),
    ]
    return tuple(entries)


def test_introductions_of_names_other_scopes_and_low_ports_are_never_dialled() -> None:
    node = _victim()
    cid = _hostile_buddy(node, 0.0)
    node.take_events()
    for batch in range(5):
        node.receive_data(cid, framed(Peers("mallory", 0.0, _hostile_entries(batch))), 0.0)
    node.tick(2.0)  # past the introduction grace period: every admitted address is dialled
    assert _dials(node) == []
    ignored = _of(node.take_events(), IntroductionsIgnored)
    assert ignored, "refusals are reported"
    totals: dict[Refusal, int] = {}
    for event in ignored:
        assert isinstance(event, IntroductionsIgnored)
        assert event.sender == "mallory"
        for refusal, count in event.counts:
            totals[refusal] = totals.get(refusal, 0) + count
    # 127.0.0.1:1 is in another scope before its port is looked at.
    assert totals == {Refusal.HOST_NAME: 60, Refusal.OTHER_SCOPE: 15, Refusal.LOW_PORT: 100}
    assert node.policy.refused[Refusal.HOST_NAME] == 60


def test_one_buddy_makes_us_dial_at_most_50_new_addresses_a_minute() -> None:
    node = _victim()
    cid = _hostile_buddy(node, 0.0)
    dialled: set[tuple[str, int]] = set()
    now = 0.0
    for batch in range(60):  # a peers frame of 64 fresh addresses every second for a minute
        entries = tuple(
            PeerEntry(f"b{batch}x{i}", "ghost", ("10.99.0.1", 2000 + batch * 64 + i))
            for i in range(64)
        )
        node.receive_data(cid, framed(Peers("mallory", now, entries)), now)
        node.tick(now)
        for dial in _dials(node):
            dialled.add(dial.address)
            node.connect_failed(dial.cid, "refused", now)
        node.data_to_send(cid)
        now += 1.0
    assert len(dialled) == 50


def test_a_failed_address_is_not_dialled_again_for_10_minutes_whoever_introduces_it() -> None:
    node = _victim()
    target = ("10.99.5.5", 6000)
    attempts = 0
    now = 0.0
    for round_ in range(40):  # a new buddy (new node id) introduces it every 10 s
        cid = _hostile_buddy(node, now, node_id=f"h{round_}", source=("10.98.0.1", 30000 + round_))
        node.receive_data(cid, framed(Peers("mallory", now, (PeerEntry("t", "t", target),))), now)
        for _ in range(40):  # 10 s in 0.25 s steps: retries, keepalives
            node.tick(now)
            for dial in _dials(node):
                # Earlier buddies time out and are redialled at their own address: fail those.
                attempts += dial.address == target
                node.connect_failed(dial.cid, "refused", now)
            now += 0.25
    assert now >= 400.0
    assert attempts == 3


def test_the_hello_host_is_ignored_and_a_low_port_is_never_redialled() -> None:
    node = _victim()
    cid = _hostile_buddy(node, 0.0, listen="10.99.200.1:445")
    joined = _of(node.take_events(), BuddyJoined)
    assert [e.address for e in joined if isinstance(e, BuddyJoined)] == [("10.98.0.1", 445)]
    node.receive_eof(cid, 1.0)
    node.connection_closed(cid, 1.0)
    now = 1.0
    while now < 700.0:
        node.tick(now)
        assert _dials(node) == []
        now += 0.5


def test_a_lost_buddy_is_redialled_at_its_source_address_with_the_hello_port() -> None:
    node = _victim()
    cid = _hostile_buddy(node, 0.0, listen="10.99.200.1:40001")
    node.receive_eof(cid, 1.0)
    node.connection_closed(cid, 1.0)
    node.tick(2.0)
    assert [d.address for d in _dials(node)] == [("10.98.0.1", 40001)]


def test_dials_of_learned_addresses_must_not_be_resolved() -> None:
    node = _victim()
    node.add_peer(("buddy.example", 5000), 0.0)  # the user's own: may be a name
    cid = _hostile_buddy(node, 0.0)
    node.receive_data(
        cid, framed(Peers("mallory", 0.0, (PeerEntry("x", "x", ("10.99.0.1", 5000)),))), 0.0
    )
    node.tick(2.0)
    dials = {d.address: d.may_resolve for d in _dials(node)}
    assert dials == {("buddy.example", 5000): True, ("10.99.0.1", 5000): False}


def test_idle_connections_from_one_address_cannot_lock_a_real_buddy_out() -> None:
    node = _victim(listen=("127.0.0.1", 5000))
    idle = [node.connection_accepted(("127.0.0.2", 30000 + i), 0.0) for i in range(300)]
    events = node.take_events()
    refused = _of(events, ConnectionsRefused)
    assert refused == [ConnectionsRefused("127.0.0.2", 1, 8)]  # the first report at once
    assert not _of(events, ConnectionRejected)
    closing = [a.cid for a in node.take_actions()]
    assert len(set(idle) - set(closing)) == 8
    # A real buddy from another address gets in.
    cid = node.connection_accepted(("127.0.0.1", 41000), 0.5)
    node.receive_data(cid, framed(Hello("bob", 0.5, "b1", ("127.0.0.1", 6000))), 0.5)
    assert [e.name for e in _of(node.take_events(), BuddyJoined)] == ["bob"]  # type: ignore[attr-defined]
    node.tick(1.0)
    assert _of(node.take_events(), ConnectionsRefused) == [ConnectionsRefused("127.0.0.2", 291, 8)]


def test_a_flood_of_messages_is_rate_limited_acknowledged_and_reported_once_a_second() -> None:
    node = _victim()
    cid = _hostile_buddy(node, 0.0)
    node.take_events()
    text = "x" * 16_000
    received = dropped_reports = dropped = 0
    now = 0.0
    next_id = 1
    for step in range(200):  # 10 s, 100 messages of 16 KB every 50 ms
        now = step * 0.05
        payload = b"".join(framed(Message("mallory", now, next_id + i, text)) for i in range(100))
        next_id += 100
        node.receive_data(cid, payload, now)
        node.tick(now)
        for event in node.take_events():
            if isinstance(event, MessageReceived):
                received += 1
            elif isinstance(event, MessagesDropped):
                dropped_reports += 1
                dropped += event.messages
    node.tick(now + 1.0)
    dropped += sum(e.messages for e in node.take_events() if isinstance(e, MessagesDropped))
    assert received + dropped == 20_000
    # The burst of one second's worth, then 256 KiB a second.
    assert received <= 256 * 1024 * (1 + now) // 16_000 + 1
    assert dropped_reports <= 11  # at most once a second
    assert node.data_to_send(cid)  # every message is acknowledged, none is sent again


def test_a_flood_of_nick_changes_renames_but_is_not_a_flood_of_notices() -> None:
    node = _victim()
    cid = _hostile_buddy(node, 0.0)
    node.take_events()
    payload = b"".join(framed(Nick(f"m{i}", 0.0)) for i in range(1000))
    node.receive_data(cid, payload, 0.0)
    events = node.take_events()
    assert len(_of(events, BuddyRenamed)) == 20
    assert [b.name for b in node.buddies()] == ["m999"]


def test_a_lost_buddy_is_not_redialled_without_end() -> None:
    node = _victim()
    cid = _hostile_buddy(node, 0.0, listen="10.99.200.1:40001")
    node.receive_eof(cid, 1.0)
    node.connection_closed(cid, 1.0)
    node.take_events()
    dial_times: list[float] = []
    now = 1.0
    while now < 2000.0:
        node.tick(now)
        for dial in _dials(node):
            assert dial.address == ("10.98.0.1", 40001)
            dial_times.append(now)
            node.connect_failed(dial.cid, "refused", now)
        now += 0.5
    # Backoff up to 10 s between tries, and none after 10 minutes away.
    assert dial_times and max(dial_times) <= 1.0 + 600.0 + 10.0
    assert len(dial_times) <= 70
    left = [e for e in node.take_events() if isinstance(e, BuddyLeft)]
    assert [(e.name, e.kind) for e in left] == [("mallory", LeaveKind.GONE)]
    assert node.buddies() == []


def test_buddies_that_went_away_make_room_for_a_real_one() -> None:
    node = _victim()
    now = 0.0
    for i in range(64):  # a buddy that comes back with a new node id and port, and hangs up
        cid = _hostile_buddy(node, now, node_id=f"h{i}", listen=f"10.98.0.1:{41000 + i}")
        node.receive_eof(cid, now)
        node.connection_closed(cid, now)
        now += 0.1
    assert len(node.buddies()) == 64
    node.take_events()
    cid = node.connection_accepted(("10.98.0.9", 50000), now)
    node.receive_data(cid, framed(Hello("bob", now, "b1", ("10.98.0.9", 6000))), now)
    events = node.take_events()
    assert [e.name for e in events if isinstance(e, BuddyJoined)] == ["bob"]
    gone = [(e.name, e.kind) for e in events if isinstance(e, BuddyLeft)]
    assert gone == [("mallory", LeaveKind.GONE)]
    assert len(node.buddies()) == 64
