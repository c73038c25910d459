"""Lesson `stream`: the live-coding sequence `L:` + `UPPER\\n` + `L:CONT\\n`, raw vs line framing.

The slides' client sends three pieces; whether they reach the server as three recv() results
or one is TCP's choice, so a demo that merely sent them could show either. This lesson makes
both outcomes certain: "apart" waits until the server's recv() has returned each piece before
sending the next (the server's trace says when), "merged" sends all three in one send() call,
one segment on loopback. The raw server (the slides' recv(2) + recv(1500)) answers "apart"
correctly and "merged" wrongly; the line server answers both correctly.
"""

from __future__ import annotations

import socket
import threading
import time

from socklab.apps.demo_topics.narration import TIMEOUT_S, Say, heading, observe, show_bytes, step
from socklab.i18n import _
from socklab.protocol.framing import FramingName
from socklab.runtimes import DEFAULT_RUNTIME, serve
from socklab.runtimes.config import ServerConfig
from socklab.tracing import Call, TraceEvent

PIECES = (b"L:", b"UPPER\n", b"L:CONT\n")
CORRECT_REPLIES = b"upper\ncont\n"


class ServerCalls:
    """The server's traced calls, with waits on them (the lesson's only synchronisation)."""

    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.sent: list[bytes] = []
        self._changed = threading.Condition()

    def __call__(self, event: TraceEvent) -> None:
        with self._changed:
            if event.call is Call.RECV and event.nbytes:
                self.received.append(event.data)
            elif event.call is Call.SEND:
                self.sent.append(event.data)
            self._changed.notify_all()

    def wait_received(self, count: int) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: len(self.received) >= count, TIMEOUT_S)

    def wait_sent(self, count: int) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: len(self.sent) >= count, TIMEOUT_S)

    def wait_sent_lines(self, first: int, lines: int) -> bool:
        """Until the sends from number `first` on hold `lines` newlines (one write or several)."""
        with self._changed:
            return self._changed.wait_for(
                lambda: sum(data.count(b"\n") for data in self.sent[first:]) >= lines, TIMEOUT_S
            )


def _receive_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    deadline = time.monotonic() + TIMEOUT_S
    while len(data) < size and time.monotonic() < deadline:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _run_framing(say: Say, framing: FramingName) -> tuple[bytes, bytes]:
    """(replies when sent apart, replies when merged) from a converter with `framing`."""
    calls = ServerCalls()
    config = ServerConfig(port=0, framing=framing, tracer=calls)
    with (
        serve(DEFAULT_RUNTIME, config) as handle,
        socket.create_connection(handle.address, timeout=TIMEOUT_S) as client,
    ):
        calls.wait_sent(1)
        _receive_exactly(client, len(calls.sent[0]))  # the greeting
        replies: list[bytes] = []
        step(say, _("client: three send() calls, each after the server's recv() returned the last"))
        for number, piece in enumerate(PIECES, start=1):
            client.sendall(piece)
            calls.wait_received(number)
        calls.wait_sent_lines(1, CORRECT_REPLIES.count(b"\n"))
        apart = _receive_exactly(client, sum(len(reply) for reply in calls.sent[1:]))
        step(
            say,
            _("server recv() returned: {chunks}").format(
                chunks=", ".join(show_bytes(chunk) for chunk in calls.received)
            ),
        )
        step(say, _("replies: {replies}").format(replies=show_bytes(apart)))
        replies.append(apart)
        merged_request = b"".join(PIECES)
        step(
            say,
            _("client: the same bytes in one send() call: {data}").format(
                data=show_bytes(merged_request)
            ),
        )
        sent_before = len(calls.sent)
        client.sendall(merged_request)
        calls.wait_received(len(PIECES) + 1)
        # Both framings answer with two newlines in all (raw: one reply holding both).
        calls.wait_sent_lines(sent_before, CORRECT_REPLIES.count(b"\n"))
        merged = _receive_exactly(client, sum(len(reply) for reply in calls.sent[sent_before:]))
        step(
            say,
            _("server recv() returned: {chunks}").format(chunks=show_bytes(calls.received[-1])),
        )
        step(say, _("replies: {replies}").format(replies=show_bytes(merged)))
        replies.append(merged)
    return replies[0], replies[1]


def demo_stream(say: Say) -> bool:
    heading(say, _("Why framing matters: the live-coding sequence L: + UPPER\\n + L:CONT\\n"))
    say("")
    step(
        say, _("raw framing: the slides' server, recv(2) for the command, recv(1500) for the text")
    )
    raw_apart, raw_merged = _run_framing(say, "raw")
    raw_ok = raw_apart == CORRECT_REPLIES and raw_merged != CORRECT_REPLIES
    if raw_ok:
        observe(
            say,
            _(
                "apart, raw framing works by luck; merged, the text of the first request swallowed the second: {reply} is wrong."
            ).format(reply=show_bytes(raw_merged)),
        )
    say("")
    step(say, _("line framing: a message ends at the newline, wherever recv() cuts the stream"))
    line_apart, line_merged = _run_framing(say, "line")
    line_ok = line_apart == CORRECT_REPLIES and line_merged == CORRECT_REPLIES
    if line_ok:
        observe(
            say,
            _(
                "line framing answers both correctly: TCP keeps the bytes in order, not the boundaries of send() calls."
            ),
        )
    return raw_ok and line_ok
