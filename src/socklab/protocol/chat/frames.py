"""Chat frames: the wire format, one frame <-> one typed dataclass, the limits and name rules.

Wire format (docs/PROTOCOL.md, "Chat protocol"): every frame is a 4-byte big-endian length, then
that many bytes: a JSON object on one line (the header: `type`, `from`, `id`, `time` and a few
type-specific keys), a newline, and the body (UTF-8 text of a message, or a JSON list of peers).

`encode_frame` / `decode_frame` turn one frame's payload (the `length` framer adds and strips
the prefix) into one typed dataclass and back. Anything a peer could send that breaks a rule
becomes a `FrameRejected` value, never an exception. Names and addresses travel in frames, so
their rules and their text form live here too.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from socklab.i18n import lazy_gettext, lazy_ngettext
from socklab.protocol.endpoints import format_endpoint, parse_endpoint
from socklab.protocol.escaping import escape_for_terminal
from socklab.protocol.limits import DEFAULT_MAX_MESSAGE_BYTES

PROTOCOL_VERSION = 1
# A frame is a typed chat line plus a small header: asyncio's 64 KiB stream limit is generous.
MAX_FRAME_BYTES = DEFAULT_MAX_MESSAGE_BYTES
# The header is a handful of short fields; 4 KiB leaves room and stops a peer from making us
# parse a 64 KiB JSON document before we know what it is.
MAX_HEADER_BYTES = 4096
# One typed line. IRC allows 512 bytes, Matrix 64 KiB events; 16 KiB fits any paste of a line.
MAX_TEXT_BYTES = 16 * 1024
# A chat group on a lecture's loopback is small; this bounds a `peers` body, and a node's
# buddies and sockets.
MAX_BUDDIES = 64
NAME_PATTERN = re.compile(r"[\w.\-]{1,32}")
NODE_PATTERN = re.compile(r"[0-9A-Za-z_\-]{1,64}")

FRAME_TYPES = ("hello", "peers", "msg", "ack", "ping", "pong", "nick", "bye")


def is_valid_name(name: str) -> bool:
    """Letters, digits, `.`, `_`, `-`; 1-32 characters (so `[name] text` stays unambiguous)."""
    return NAME_PATTERN.fullmatch(name) is not None


def printable_text(text: str) -> str:
    """Control characters (escape sequences, newlines) made visible, so a buddy cannot paint on
    our terminal or forge a second `[name] text` line: the project's one escaper."""
    return escape_for_terminal(text)


def format_address(address: tuple[str, int]) -> str:
    """A listen address as a frame writes it, the inverse of `parse_address`."""
    return format_endpoint(address[0], address[1])


def parse_address(text: str) -> tuple[str, int] | None:
    """`HOST:PORT` or `[V6]:PORT` as written by `format_address`; None when it is not one."""
    return parse_endpoint(text)


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
            return FrameRejected(
                lazy_ngettext(
                    "frame header longer than {count} byte",
                    "frame header longer than {count} bytes",
                    MAX_HEADER_BYTES,
                )
            )
        return FrameRejected(lazy_gettext("frame without the newline after its JSON header"))
    try:
        header = _loads(payload[:newline].decode("utf-8"))
    except (ValueError, RecursionError):
        return FrameRejected(lazy_gettext("frame header is not UTF-8 JSON"))
    if not isinstance(header, dict):
        return FrameRejected(lazy_gettext("frame header is not a JSON object"))
    body = payload[newline + 1 :]
    kind, sender, frame_id, sent_at = (header.get(k) for k in ("type", "from", "id", "time"))
    if kind not in FRAME_TYPES:
        return FrameRejected(lazy_gettext("unknown frame type {kind}", kind=repr(str(kind)[:40])))
    if not isinstance(sender, str) or not is_valid_name(sender):
        return FrameRejected(lazy_gettext("{kind} frame with an invalid 'from' name", kind=kind))
    if not isinstance(frame_id, int) or isinstance(frame_id, bool) or not 0 <= frame_id < 2**63:
        return FrameRejected(lazy_gettext("{kind} frame with an invalid 'id'", kind=kind))
    if (
        isinstance(sent_at, bool)
        or not isinstance(sent_at, int | float)
        or not math.isfinite(sent_at)
    ):
        return FrameRejected(lazy_gettext("{kind} frame with an invalid 'time'", kind=kind))
    sent_at = float(sent_at)
    if kind not in ("msg", "peers") and body:
        return FrameRejected(
            lazy_ngettext(
                "{kind} frame with a body of {count} byte",
                "{kind} frame with a body of {count} bytes",
                len(body),
                kind=kind,
            )
        )
    match kind:
        case "hello":
            node, listen_text = header.get("node"), header.get("listen")
            if header.get("v") != PROTOCOL_VERSION:
                return FrameRejected(
                    lazy_gettext(
                        "hello for protocol version {version}, not 1",
                        version=repr(header.get("v"))[:40],
                    )
                )
            if not isinstance(node, str) or NODE_PATTERN.fullmatch(node) is None:
                return FrameRejected(lazy_gettext("hello with an invalid 'node'"))
            listen = parse_address(listen_text) if isinstance(listen_text, str) else None
            if listen is None:
                return FrameRejected(lazy_gettext("hello with an invalid 'listen' address"))
            return Hello(sender, sent_at, node, listen)
        case "peers":
            return _decode_peers(sender, sent_at, body)
        case "msg":
            to = header.get("to")
            if to is not None and not (isinstance(to, str) and is_valid_name(to)):
                return FrameRejected(lazy_gettext("msg frame with an invalid 'to' name"))
            if frame_id == 0:
                return FrameRejected(lazy_gettext("msg frame with id 0 (message ids start at 1)"))
            if len(body) > MAX_TEXT_BYTES:
                return FrameRejected(
                    lazy_ngettext(
                        "message text of {count} byte exceeds the {limit}-byte limit",
                        "message text of {count} bytes exceeds the {limit}-byte limit",
                        len(body),
                        limit=MAX_TEXT_BYTES,
                    )
                )
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                return FrameRejected(lazy_gettext("message text is not UTF-8"))
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
                return FrameRejected(lazy_gettext("bye frame without a short 'reason'"))
            return Bye(sender, sent_at, printable_text(reason))


def _decode_peers(sender: str, sent_at: float, body: bytes) -> Peers | FrameRejected:
    try:
        items = _loads(body.decode("utf-8"))
    except (ValueError, RecursionError):
        return FrameRejected(lazy_gettext("peers body is not UTF-8 JSON"))
    if not isinstance(items, list) or len(items) > MAX_BUDDIES:
        return FrameRejected(
            lazy_ngettext(
                "peers body is not a list of at most {count} entry",
                "peers body is not a list of at most {count} entries",
                MAX_BUDDIES,
            )
        )
    entries: list[PeerEntry] = []
    for item in items:
        if not isinstance(item, dict):
            return FrameRejected(lazy_gettext("peers entry is not a JSON object"))
        node, name, listen_text = item.get("node"), item.get("name"), item.get("listen")
        listen = parse_address(listen_text) if isinstance(listen_text, str) else None
        if (
            not isinstance(node, str)
            or NODE_PATTERN.fullmatch(node) is None
            or not isinstance(name, str)
            or not is_valid_name(name)
            or listen is None
        ):
            return FrameRejected(
                lazy_gettext("peers entry without a valid node, name and listen address")
            )
        entries.append(PeerEntry(node, name, listen))
    return Peers(sender, sent_at, tuple(entries))
