"""Checks for a chat peer (docs/PROTOCOL.md, "Chat protocol"): `socklab check chat-peer HOST:PORT`.

The checker plays buddies of the peer under test, on connections of its own, with socklab's
own frame codec (`protocol.chat.frames`, the length framing): it greets, expects a greeting and
the list of buddies, pings, sends a message, brings in a second buddy (the peer must introduce
it to the first), sends a malformed frame (the peer must answer `bye` with a reason and close),
and leaves (the peer must close in turn). Same core as every check (`results.run_checks`): a
root cause once, its dependants "not reached". What the peer sent is shown escaped and bounded.

The checker's buddies claim the port of a socket it really listens on (and never accepts on),
so a peer that dials them back reaches a real port, not a stranger's.
"""

from __future__ import annotations

import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from socklab.i18n import _, format_number, lazy_ngettext, translate
from socklab.protocol.chat.frames import (
    MAX_FRAME_BYTES,
    Ack,
    Bye,
    Frame,
    FrameRejected,
    Hello,
    Message,
    Peers,
    Ping,
    Pong,
    decode_frame,
    encode_frame,
)
from socklab.protocol.framing import make_framer
from socklab.tools.check.course import CourseCheck, run_course_checks
from socklab.tools.check.probe import MAX_RECEIVED_BYTES, Deadline, Ending, StreamProbe
from socklab.tools.check.results import CheckObserver, CheckReport, Finding, show_bytes
from socklab.tools.check.server import ServerTarget

HEADER_BYTES = 4
PING_ID = 42
MESSAGE_TEXT = "hello from socklab check"
# A header that is not JSON: every peer must reject it with a `bye` naming the fault.
MALFORMED_PAYLOAD = b"this is not JSON\n"


def frame_bytes(frame: Frame) -> bytes:
    return make_framer("length", MAX_FRAME_BYTES).encode(encode_frame(frame))


class FrameStream:
    """Frames decoded as their bytes come, each once: a flood of small frames costs time in
    proportion to its size (decoding everything again at every recv was quadratic, and a
    flooding peer held the checker busy until its deadline, reported as silence).

    A length over MAX_FRAME_BYTES loses the stream: nothing after it is a frame boundary any
    more, so no further bytes are decoded (they were read as the lengths of made-up frames).
    """

    def __init__(self) -> None:
        self.pending = bytearray()
        self.lost = False

    def feed(self, data: bytes) -> list[Frame | FrameRejected]:
        """The frames that `data` completes, in order."""
        if self.lost:
            return []
        self.pending += data
        frames: list[Frame | FrameRejected] = []
        offset = 0
        while len(self.pending) - offset >= HEADER_BYTES:
            size = int.from_bytes(self.pending[offset : offset + HEADER_BYTES], "big")
            if size > MAX_FRAME_BYTES:
                frames.append(
                    FrameRejected(
                        lazy_ngettext("a frame of {count} byte", "a frame of {count} bytes", size)
                    )
                )
                self.lost = True
                self.pending.clear()
                return frames
            end = offset + HEADER_BYTES + size
            if len(self.pending) < end:
                break
            frames.append(decode_frame(bytes(self.pending[offset + HEADER_BYTES : end])))
            offset = end
        del self.pending[:offset]
        return frames


def describe_frame(frame: Frame | FrameRejected) -> str:
    if isinstance(frame, FrameRejected):
        return _("a malformed frame ({detail})").format(
            detail=show_bytes(translate(frame.detail).encode())
        )
    kind = type(frame).__name__.lower()
    number = getattr(frame, "id", None)
    return f"{kind} {number}" if number is not None and kind != "hello" else kind


class Buddy:
    """One connection of a buddy the checker plays: frames in, frames out."""

    def __init__(self, target: ServerTarget, name: str, listen_port: int) -> None:
        self.name = name
        self.node = f"socklab-check-{secrets.token_hex(6)}"
        self.deadline = Deadline(target.timeout_s)
        self.probe = StreamProbe(target.host, target.port, self.deadline)
        self.listen = ("127.0.0.1", listen_port)
        self.frames: list[Frame | FrameRejected] = []
        self.ending = Ending.COMPLETE
        self._stream = FrameStream()

    def send(self, frame: Frame) -> None:
        self.probe.send(frame_bytes(frame))

    def greet(self) -> None:
        self.send(Hello(self.name, time.time(), self.node, self.listen))

    def wait_for(
        self, wanted: Callable[[Frame | FrameRejected], bool]
    ) -> Frame | FrameRejected | None:
        """The first frame so far or to come that is `wanted`; None at EOF or the deadline."""
        found = next((frame for frame in self.frames if wanted(frame)), None)
        if found is not None:
            return found

        fed = 0  # bytes of this wait given to the stream so far (the probe passes them all)
        start = len(self.frames)

        def feed(data: bytes) -> list[Frame | FrameRejected]:
            nonlocal fed
            frames = self._stream.feed(data[fed:])
            fed = len(data)
            self.frames += frames
            return frames

        def complete(data: bytes) -> bool:
            return any(wanted(frame) for frame in feed(data))

        received = self.probe.receive_until(complete)
        self.ending = received.ending
        feed(received.data)  # the last bytes, if the wait ended on a close or a flood
        return next((frame for frame in self.frames[start:] if wanted(frame)), None)

    def seen(self) -> str:
        """What came so far, readably, and how the wait ended."""
        shown = ", ".join(describe_frame(frame) for frame in self.frames[:8]) or _("no frame")
        match self.ending:
            case Ending.CLOSED:
                return _("{frames}, then the connection was closed").format(frames=shown)
            case Ending.RESET:
                return _("{frames}, then the connection was reset").format(frames=shown)
            case Ending.TIMEOUT:
                return _("{frames}, then nothing more within {seconds} s").format(
                    frames=shown, seconds=format_number(self.deadline.timeout_s, None)
                )
            case Ending.FLOOD:
                return _("{data}, and more: over {size} bytes in all").format(
                    data=shown, size=format_number(MAX_RECEIVED_BYTES)
                )
            case _:
                return shown

    def close(self) -> None:
        self.probe.close()


@dataclass
class ChatRun:
    """The buddies of one run, shared by the checks in order (the first buddy stays on)."""

    target: ServerTarget
    listen_port: int
    first: Buddy | None = None
    others: list[Buddy] = field(default_factory=list)

    def buddy(self, name: str) -> Buddy:
        buddy = Buddy(self.target, name, self.listen_port)
        self.others.append(buddy)
        return buddy

    def close(self) -> None:
        for buddy in [self.first, *self.others]:
            if buddy is not None:
                buddy.close()


def _is(kind: type) -> Callable[[Frame | FrameRejected], bool]:
    return lambda frame: isinstance(frame, kind)


def judge_greets(run: ChatRun) -> Finding:
    # Refused here is raised: nothing listens at all (one line, no report).
    buddy = run.first = Buddy(run.target, "checker", run.listen_port)
    buddy.greet()
    buddy.wait_for(lambda frame: True)
    first = buddy.frames[0] if buddy.frames else None
    return Finding(
        _("a hello frame first (type, from, id, time, v, node, listen)"),
        buddy.seen(),
        isinstance(first, Hello),
        _("Each side sends hello first on every connection: 4-byte length, JSON header, newline."),
    )


def judge_introduces(run: ChatRun) -> Finding:
    buddy = run.first
    assert buddy is not None
    found = buddy.wait_for(_is(Peers))
    return Finding(
        _("a peers frame: the list of the other buddies (possibly empty)"),
        describe_frame(found) if found is not None else buddy.seen(),
        found is not None,
        _("When a buddy comes online, send it one peers frame listing every other online buddy."),
    )


def judge_answers_ping(run: ChatRun) -> Finding:
    buddy = run.first
    assert buddy is not None
    buddy.send(Ping(buddy.name, time.time(), PING_ID))
    found = buddy.wait_for(lambda frame: isinstance(frame, Pong) and frame.id == PING_ID)
    return Finding(
        _("pong {number}").format(number=PING_ID),
        describe_frame(found) if found is not None else buddy.seen(),
        found is not None,
        _("Answer every ping with a pong of the same id."),
    )


def judge_acknowledges(run: ChatRun) -> Finding:
    buddy = run.first
    assert buddy is not None
    buddy.send(Message(buddy.name, time.time(), 1, MESSAGE_TEXT))
    found = buddy.wait_for(lambda frame: isinstance(frame, Ack) and frame.id >= 1)
    return Finding(
        _("ack 1"),
        describe_frame(found) if found is not None else buddy.seen(),
        found is not None,
        _("Answer each msg with an ack naming the last id delivered from that buddy."),
    )


def judge_relays(run: ChatRun) -> Finding:
    """A second buddy joins: the first must be told about it in a peers frame."""
    first = run.first
    assert first is not None
    newcomer = run.buddy("checker2")
    newcomer.greet()

    def names_newcomer(frame: Frame | FrameRejected) -> bool:
        return isinstance(frame, Peers) and any(e.node == newcomer.node for e in frame.entries)

    first.deadline = Deadline(run.target.timeout_s)
    first.probe.deadline = first.deadline
    found = first.wait_for(names_newcomer)
    return Finding(
        _("a peers frame naming the new buddy {node}").format(node=newcomer.node),
        _("the new buddy was introduced") if found is not None else first.seen(),
        found is not None,
        _("When a buddy comes online, send every other buddy a peers frame naming it."),
    )


def judge_rejects(run: ChatRun) -> Finding:
    buddy = run.buddy("checker3")
    buddy.greet()
    buddy.probe.send(make_framer("length", MAX_FRAME_BYTES).encode(MALFORMED_PAYLOAD))
    found = buddy.wait_for(lambda frame: isinstance(frame, Bye) and bool(frame.reason))
    if found is not None:
        buddy.wait_for(lambda frame: False)  # then the close
    closed = buddy.ending in (Ending.CLOSED, Ending.RESET)
    received = (
        _("bye ({reason}), then closed").format(reason=show_bytes(found.reason.encode()))
        if isinstance(found, Bye) and closed
        else buddy.seen()
    )
    return Finding(
        _("a bye frame naming the fault, then the connection closed"),
        received,
        found is not None and closed,
        _("A frame that breaks the rules is answered with bye (its reason) and the close."),
    )


def judge_leaves(run: ChatRun) -> Finding:
    buddy = run.first
    assert buddy is not None
    buddy.deadline = Deadline(run.target.timeout_s)
    buddy.probe.deadline = buddy.deadline
    buddy.send(Bye(buddy.name, time.time(), "left"))
    buddy.wait_for(lambda frame: False)
    closed = buddy.ending is Ending.CLOSED
    return Finding(
        _("the connection closed after our bye (FIN)"),
        _("closed normally") if closed else buddy.seen(),
        closed,
        _("After a buddy's bye, close the connection (and do not reconnect to it)."),
    )


def chat_checks(run: ChatRun) -> list[CourseCheck]:
    return [
        CourseCheck("greets", _("greets with hello first"), lambda: judge_greets(run)),
        CourseCheck(
            "introduces", _("lists its buddies"), lambda: judge_introduces(run), ("greets",)
        ),
        CourseCheck(
            "answers-ping", _("answers a ping"), lambda: judge_answers_ping(run), ("greets",)
        ),
        CourseCheck(
            "acknowledges",
            _("acknowledges a message"),
            lambda: judge_acknowledges(run),
            ("greets",),
        ),
        CourseCheck(
            "relays",
            _("introduces a new buddy to the others"),
            lambda: judge_relays(run),
            ("introduces",),
        ),
        CourseCheck("rejects", _("answers a malformed frame with bye"), lambda: judge_rejects(run)),
        CourseCheck(
            "leaves", _("closes after a buddy's bye"), lambda: judge_leaves(run), ("greets",)
        ),
    ]


def check_chat_peer(target: ServerTarget, observer: CheckObserver | None = None) -> CheckReport:
    """Raises RefusedError if nothing listens at all (the first check's connection)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as claimed:
        claimed.bind(("127.0.0.1", 0))
        claimed.listen(1)
        run = ChatRun(target, int(claimed.getsockname()[1]))
        try:
            return run_course_checks(
                "chat-peer", target.address, "tcp", chat_checks(run), observer, framing="length"
            )
        finally:
            run.close()


def chat_check_ids() -> list[str]:
    run = ChatRun(ServerTarget(host="127.0.0.1", port=0), 0)
    return [check.check_id for check in chat_checks(run)]
