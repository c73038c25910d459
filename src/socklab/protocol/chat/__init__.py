"""The P2P chat of the lecture, sans I/O: frames, one session per socket, and the mesh of buddies.

Five modules, each pure (time is passed in as `now`, a monotonic clock in seconds; random node
ids are made by the caller), each importing only the ones listed before it:

* `frames`: the wire format, one frame <-> one typed dataclass, the limits and the name rules.
* `session`: `PeerSession`, one TCP connection (hello first, keepalive, violations).
* `policy`: what a buddy may make us do: which introduced addresses are dialled (IP literals
  in the introducer's scope, no port below 1024, budgets), handshake slots, message rates.
* `events`: what a node tells its runtime (actions) and its user (events, answers).
* `node`: `ChatNode`, the whole peer (buddies, introductions, message ids, acknowledgements,
  duplicate connections, reconnect, leaving).

This package re-exports what runtimes, the CLI and the tests use, so they import from here.
"""

from __future__ import annotations

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
    MAX_TEXT_BYTES,
    Ack,
    Bye,
    Frame,
    FrameRejected,
    Hello,
    Message,
    Nick,
    PeerEntry,
    Peers,
    Ping,
    Pong,
    decode_frame,
    encode_frame,
    format_address,
    is_valid_name,
    printable_text,
)
from socklab.protocol.chat.node import ChatNode, ChatSettings
from socklab.protocol.chat.policy import (
    IntroductionPolicy,
    MessageLimiter,
    NoticeBatcher,
    PolicyLimits,
    Refusal,
    Scope,
    TokenBucket,
    address_scope,
)
from socklab.protocol.chat.session import (
    EndKind,
    PeerSession,
    SessionEnded,
    SessionEvent,
    SessionState,
    SessionTimers,
)

__all__ = [
    "MAX_TEXT_BYTES",
    "Ack",
    "Action",
    "BuddyInfo",
    "BuddyJoined",
    "BuddyLeft",
    "BuddyRenamed",
    "Bye",
    "ChatEvent",
    "ChatNode",
    "ChatSettings",
    "CloseConnection",
    "ConnectionRejected",
    "ConnectionsRefused",
    "Dial",
    "EndKind",
    "Frame",
    "FrameRejected",
    "Hello",
    "IntroductionPolicy",
    "IntroductionsIgnored",
    "LeaveKind",
    "Message",
    "MessageLimiter",
    "MessageReceived",
    "MessageUndeliverable",
    "MessagesDropped",
    "Nick",
    "NoticeBatcher",
    "PeerEntry",
    "PeerSession",
    "PeerUnreachable",
    "Peers",
    "Ping",
    "PolicyLimits",
    "Pong",
    "Presence",
    "Refusal",
    "Scope",
    "SelfConnection",
    "SendProblem",
    "SendResult",
    "SessionEnded",
    "SessionEvent",
    "SessionState",
    "SessionTimers",
    "TokenBucket",
    "Undeliverable",
    "address_scope",
    "decode_frame",
    "encode_frame",
    "format_address",
    "is_valid_name",
    "printable_text",
]
