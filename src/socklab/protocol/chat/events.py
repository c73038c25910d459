"""What a `ChatNode` tells its runtime and its user: actions, events and answers.

Actions (`Dial`, `CloseConnection`) are work for the runtime: open or close a socket. Events
(`ChatEvent`) are news for the user: a buddy joined, left or changed its name, a message arrived
or was given up on. `SendResult` and `BuddyInfo` answer the user's own calls. All are frozen
dataclasses and enums holding plain values, so a runtime or a view may keep them as it likes.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from socklab.protocol.chat.frames import MAX_TEXT_BYTES
from socklab.protocol.chat.policy import Refusal


@dataclass(frozen=True, slots=True)
class Dial:
    """Open a connection to `address`, then call connection_made or connect_failed with `cid`."""

    cid: int
    address: tuple[str, int]
    # Only an address the user typed may be a host name to resolve; every address learned from
    # a buddy is an IP literal, and a runtime must not hand it to a resolver (AI_NUMERICHOST).
    may_resolve: bool = False


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
    GONE = "gone"  # away so long that reconnecting stopped


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


@dataclass(frozen=True, slots=True)
class IntroductionsIgnored:
    """Addresses a buddy introduced that we will not dial, summed since the last report."""

    sender: str  # the buddy's name
    counts: tuple[tuple[Refusal, int], ...]  # why, and how many, in `Refusal` order


@dataclass(frozen=True, slots=True)
class MessagesDropped:
    """A buddy sent more than the rate limit allows; the excess was dropped (and acknowledged,
    so it is not sent again)."""

    sender: str
    messages: int
    size_bytes: int


@dataclass(frozen=True, slots=True)
class ConnectionsRefused:
    """Connections from `host` refused at once: it holds every handshake slot of its address."""

    host: str
    count: int
    slots: int


ChatEvent = (
    BuddyJoined
    | BuddyLeft
    | BuddyRenamed
    | MessageReceived
    | MessageUndeliverable
    | ConnectionRejected
    | PeerUnreachable
    | SelfConnection
    | IntroductionsIgnored
    | MessagesDropped
    | ConnectionsRefused
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
