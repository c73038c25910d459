"""What a chat peer believes from a buddy: the rules that keep it from being a scanner or a flood.

A buddy is a stranger on the network. Its `peers` frames name addresses for us to dial and its
`hello` names where it listens; its messages end up on our terminal. Without limits a hostile
buddy turns a peer into a port scanner that works for it (five `peers` frames made a peer send
900 SYNs to 300 hosts), into a DNS oracle (60 queries for names it chose), and into a firehose
onto the user's terminal (270 MB in 20 s). This module holds the rules, all pure: time is passed
in as `now` (monotonic seconds), nothing here opens a socket or reads a clock.

* `address_scope`: an IP literal's scope (loopback, link-local, private, global); a host name has
  none, so it is never resolved on a buddy's word.
* `IntroductionPolicy.admit`: may an address a buddy introduced be dialled? Only an IP literal,
  in the scope of the introducing buddy's own connection, on a port from 1024 up; at most 50
  new addresses per buddy in any 60 s (BitTorrent's peer exchange, BEP 11); not an address that
  failed 3 times in the last 10 minutes, whoever introduces it; and only while the peer has dialled
  fewer than `max_learned_targets` distinct learned addresses over its whole life.
* `TokenBucket` / `MessageLimiter`: a buddy's messages, at most 20 a second and 256 KiB a
  second (bursts of one second's worth); the excess is dropped.
* `NoticeBatcher`: counts what was refused or dropped and lets the node report it at most once
  a second, so the report of a flood is not a flood itself.
"""

from __future__ import annotations

import enum
import ipaddress
from collections import Counter, deque
from collections.abc import Hashable
from dataclasses import dataclass

from socklab.protocol.chat.frames import MAX_BUDDIES


class Scope(enum.Enum):
    LOOPBACK = "loopback"
    LINK_LOCAL = "link-local"
    PRIVATE = "private"  # RFC 1918, shared address space (RFC 6598), unique local (RFC 4193)
    GLOBAL = "global"


# Written out rather than `ipaddress`'s is_private, which also counts documentation and
# benchmarking ranges (2001:db8::/32, 198.18.0.0/15) as private: those are not anyone's LAN.
_PRIVATE_NETWORKS = tuple(
    ipaddress.ip_network(text)
    for text in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
)


def address_scope(host: str) -> Scope | None:
    """The scope of an IP literal; None for a host name, and for addresses nobody should dial
    (unspecified, multicast, broadcast, reserved)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_unspecified:
        return None
    # Before "reserved": Python counts ::/8, which holds ::1, as reserved.
    if address.is_loopback:
        return Scope.LOOPBACK
    if address.is_link_local:
        return Scope.LINK_LOCAL
    if address.is_multicast or address.is_reserved:
        return None  # 255.255.255.255 is in the reserved 240.0.0.0/4
    if any(address in network for network in _PRIVATE_NETWORKS):
        return Scope.PRIVATE
    return Scope.GLOBAL


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class Refusal(enum.Enum):
    """Why an introduced address is not dialled."""

    HOST_NAME = "host name"  # never resolved: that would make us a DNS oracle
    OTHER_SCOPE = "other scope"  # loopback, LAN and internet stay apart
    LOW_PORT = "port below 1024"  # where ssh, smb and web servers live, never a chat peer
    BUDGET = "over the budget per minute"
    FAILED = "failed recently"  # failed `failures_before_cooldown` times, cooling down
    LIFETIME = "over the lifetime budget"


# Ports below this are the privileged, well-known services (RFC 6335 §6): never a chat peer.
MIN_LEARNED_PORT = 1024


@dataclass(frozen=True, slots=True)
class PolicyLimits:
    # BitTorrent's peer exchange (BEP 11): at most 50 added peers per message and one message a
    # minute, so one buddy may make us dial at most 50 new addresses a minute.
    introductions_per_window: int = 50
    introduction_window_s: float = 60.0
    # An address that failed this often is not dialled again for the cool-down, whoever
    # introduces it (the shape of a circuit breaker; TCP gives up a connect after ~6 SYNs).
    failures_before_cooldown: int = 3
    cooldown_s: float = 600.0
    # Distinct learned addresses a peer ever dials: twice the largest group it can hold, so
    # people coming and going on new ports fit, and a hostile buddy with ever-new node ids
    # cannot make it dial more than this many hosts in its whole life.
    max_learned_targets: int = 2 * MAX_BUDDIES
    # Connections from one source address that have not said hello yet (nginx's limit_conn,
    # per address): 300 idle ones from one host locked a real buddy out.
    handshake_slots_per_source: int = 8
    # A person types a few lines a second; a paste of 20 lines at once still passes whole.
    messages_per_s: float = 20.0
    bytes_per_s: float = 256 * 1024
    # Refusals and drops are reported at most this often, summed.
    report_interval_s: float = 1.0
    # Buddies whose introduction budget is tracked at once; the oldest is forgotten first.
    max_tracked_introducers: int = 4 * MAX_BUDDIES


class IntroductionPolicy:
    """Decides which introduced addresses are dialled; remembers budgets and failures.

    Call order: `admit(...)` for each introduced address (it spends budget when it says yes),
    then, for each dial of an admitted address, `dial_failed` or `dial_succeeded`. Memory is
    bounded: failures are kept only for admitted addresses (at most `max_learned_targets`),
    budgets for at most `max_tracked_introducers` buddies.
    """

    def __init__(self, limits: PolicyLimits = PolicyLimits()) -> None:
        self.limits = limits
        self.refused: Counter[Refusal] = Counter()  # every refusal since the start
        self._learned: set[tuple[str, int]] = set()
        self._recent: dict[Hashable, deque[float]] = {}
        self._failures: dict[tuple[str, int], tuple[int, float]] = {}

    @property
    def learned_targets(self) -> int:
        """Distinct learned addresses admitted over the whole life."""
        return len(self._learned)

    def admit(
        self,
        introducer: Hashable,
        introducer_host: str,
        address: tuple[str, int],
        now: float,
    ) -> Refusal | None:
        """None: dial `address` (budget is spent); else the reason it must not be dialled."""
        refusal = self._check(introducer, introducer_host, address, now)
        if refusal is not None:
            self.refused[refusal] += 1
        return refusal

    def _check(
        self, introducer: Hashable, introducer_host: str, address: tuple[str, int], now: float
    ) -> Refusal | None:
        host, port = address
        if not is_ip_literal(host):
            return Refusal.HOST_NAME
        scope = address_scope(host)
        if scope is None or scope is not address_scope(introducer_host):
            return Refusal.OTHER_SCOPE
        if port < MIN_LEARNED_PORT:
            return Refusal.LOW_PORT
        if self.is_cooling_down(address, now):
            return Refusal.FAILED
        recent = self._recent_of(introducer, now)
        if len(recent) >= self.limits.introductions_per_window:
            return Refusal.BUDGET
        if address not in self._learned:
            if len(self._learned) >= self.limits.max_learned_targets:
                return Refusal.LIFETIME
            self._learned.add(address)
        recent.append(now)
        return None

    def _recent_of(self, introducer: Hashable, now: float) -> deque[float]:
        recent = self._recent.pop(introducer, None)
        if recent is None:
            recent = deque()
            while len(self._recent) >= self.limits.max_tracked_introducers:
                del self._recent[next(iter(self._recent))]
        # A sliding window, not a bucket: "at most 50 in any minute" holds exactly.
        while recent and now - recent[0] >= self.limits.introduction_window_s:
            recent.popleft()
        self._recent[introducer] = recent  # most recently used last
        return recent

    def is_cooling_down(self, address: tuple[str, int], now: float) -> bool:
        count, last = self._failures.get(address, (0, 0.0))
        if count < self.limits.failures_before_cooldown:
            return False
        if now - last < self.limits.cooldown_s:
            return True
        del self._failures[address]  # served its time: a fresh start
        return False

    def cooldown_ends(self, address: tuple[str, int]) -> float | None:
        count, last = self._failures.get(address, (0, 0.0))
        if count < self.limits.failures_before_cooldown:
            return None
        return last + self.limits.cooldown_s

    def dial_failed(self, address: tuple[str, int], now: float) -> None:
        if address not in self._learned:
            return  # only learned addresses are held to this; the user's --peer is theirs
        count, _last = self._failures.get(address, (0, now))
        self._failures[address] = (count + 1, now)

    def dial_succeeded(self, address: tuple[str, int]) -> None:
        self._failures.pop(address, None)


class TokenBucket:
    """`rate_per_s` tokens a second, holding at most `capacity` (the burst); starts full."""

    def __init__(self, rate_per_s: float, capacity: float, now: float) -> None:
        self.rate_per_s = rate_per_s
        self.capacity = capacity
        self._tokens = capacity
        self._updated = now

    def take(self, amount: float, now: float) -> bool:
        """Spend `amount` if the bucket holds it; False (nothing spent) when it does not."""
        elapsed = max(0.0, now - self._updated)
        self._tokens = min(self.capacity, self._tokens + elapsed * self.rate_per_s)
        self._updated = now
        if amount > self._tokens:
            return False
        self._tokens -= amount
        return True


class MessageLimiter:
    """A buddy's messages: both buckets must hold enough, or the message is dropped."""

    def __init__(self, limits: PolicyLimits, now: float) -> None:
        self._messages = TokenBucket(limits.messages_per_s, limits.messages_per_s, now)
        self._bytes = TokenBucket(limits.bytes_per_s, limits.bytes_per_s, now)

    def allow(self, size_bytes: int, now: float) -> bool:
        # Bytes first: a message too large for the byte bucket must not spend a message token.
        if not self._bytes.take(size_bytes, now):
            self._messages.take(0, now)
            return False
        if self._messages.take(1, now):
            return True
        self._bytes.take(-size_bytes, now)  # give the bytes back: nothing was delivered
        return False


class NoticeBatcher:
    """Sums counts per key and hands them out at most once per `interval_s`.

    `add(key, now, count, size)` any time; `take_due(now)` returns the sums gathered since the
    last hand-out once `interval_s` has passed since it (the first at once), else nothing;
    `next_due()` says when `take_due` will have something to hand out.
    """

    def __init__(self, interval_s: float, max_keys: int = 4 * MAX_BUDDIES) -> None:
        self.interval_s = interval_s
        self._max_keys = max_keys
        self._counts: dict[Hashable, list[int]] = {}
        self._last_report: float | None = None
        self._first_added = 0.0

    def add(self, key: Hashable, now: float, count: int = 1, size_bytes: int = 0) -> None:
        sums = self._counts.get(key)
        if sums is None:
            if len(self._counts) >= self._max_keys:
                return  # a report is due soon; more sources than this are not itemised
            if not self._counts:
                self._first_added = now
            sums = self._counts[key] = [0, 0]
        sums[0] += count
        sums[1] += size_bytes

    def next_due(self) -> float | None:
        if not self._counts:
            return None
        if self._last_report is None:
            return self._first_added
        return max(self._first_added, self._last_report + self.interval_s)

    def take_due(self, now: float) -> list[tuple[Hashable, int, int]]:
        due = self.next_due()
        if due is None or now < due:
            return []
        self._last_report = now
        items = [(key, sums[0], sums[1]) for key, sums in self._counts.items()]
        self._counts.clear()
        return items
