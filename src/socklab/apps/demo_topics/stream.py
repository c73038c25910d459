"""Lesson `stream`: the live-coding sequence `L:` + `UPPER\\n` + `L:CONT\\n`, raw vs line framing.

The slides' client sends three pieces; whether they reach the server as three recv() results
or one is TCP's choice, so a demo that merely sent them could show either. This lesson makes
both outcomes certain: "apart" waits until the server has received each piece before sending
the next (its trace says when), "merged" sends all three in one send() call, one segment on
loopback.

Every recv() shown is one the server really made, with its size: the raw part runs the slides'
own server loop (`recv(2)` for the command, `recv(1500)` for the text) on a traced socket, so
the lesson shows recv(2) returning 2 bytes and recv(1500) the rest; the line part runs the
converter's threads runtime, whose recv(65536) returns whatever has arrived. The raw server
answers "apart" correctly and "merged" wrongly; the line server answers both correctly.
"""

from __future__ import annotations

import socket
import threading
import time

from socklab.apps.demo_topics.narration import TIMEOUT_S, Say, heading, observe, show_bytes, step
from socklab.i18n import _
from socklab.protocol.converter import GREETING, handle_request
from socklab.protocol.limits import RAW_COMMAND_BYTES, RAW_RECEIVE_BYTES
from socklab.runtimes import serve
from socklab.runtimes.config import ServerConfig
from socklab.tracing import Call, TraceEvent, new_socket

PIECES = (b"L:", b"UPPER\n", b"L:CONT\n")
CORRECT_REPLIES = b"upper\ncont\n"
# The line part: a runtime whose recv() calls are the socket's own (the event loop's are not).
LINE_RUNTIME = "threads"


class ServerCalls:
    """The server's traced calls, with waits on them (the lesson's only synchronisation)."""

    def __init__(self) -> None:
        self.received: list[tuple[int | None, bytes]] = []  # (recv's size argument, bytes)
        self.sent: list[bytes] = []
        self._changed = threading.Condition()

    def __call__(self, event: TraceEvent) -> None:
        with self._changed:
            if event.call is Call.RECV and event.nbytes:
                size = event.argument if isinstance(event.argument, int) else None
                self.received.append((size, event.data))
            elif event.call is Call.SEND:
                self.sent.append(event.data)
            self._changed.notify_all()

    def wait_received_bytes(self, total: int) -> bool:
        with self._changed:
            return self._changed.wait_for(
                lambda: sum(len(data) for _size, data in self.received) >= total, TIMEOUT_S
            )

    def wait_sent(self, count: int) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: len(self.sent) >= count, TIMEOUT_S)

    def wait_sent_lines(self, first: int, lines: int) -> bool:
        """Until the sends from number `first` on hold `lines` newlines (one write or several)."""
        with self._changed:
            return self._changed.wait_for(
                lambda: sum(data.count(b"\n") for data in self.sent[first:]) >= lines, TIMEOUT_S
            )

    def describe_received(self, first: int) -> str:
        """The receive calls from number `first` on, as `recv(2) -> b'L:', ...`."""
        return ", ".join(
            f"recv({'' if size is None else size}) -> {show_bytes(data)}"
            for size, data in self.received[first:]
        )


def serve_like_the_slides(listener: socket.socket) -> None:
    """The slides' naive server loop, for one connection: recv(2) is the command, one
    recv(1500) the text, replies without a delimiter. Only the conversion is the converter's
    (so a request that is not UTF-8 cannot crash it); the calls are the slides'. Every wait
    is bounded: a lesson whose client went missing ends the loop instead of hanging."""
    try:
        connection, _address = listener.accept()
        with connection:
            connection.settimeout(TIMEOUT_S)
            connection.send(GREETING)
            while True:
                command = connection.recv(RAW_COMMAND_BYTES)
                if not command:
                    break
                text = connection.recv(RAW_RECEIVE_BYTES)
                reply = handle_request(command + text)
                if not isinstance(reply, bytes):
                    break
                connection.send(reply)
    except OSError:
        return  # timed out or reset: the lesson sees the replies missing and says so


def _receive_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    deadline = time.monotonic() + TIMEOUT_S
    while len(data) < size and time.monotonic() < deadline:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _converse(say: Say, calls: ServerCalls, address: tuple[str, int]) -> tuple[bytes, bytes]:
    """(replies when sent apart, replies when merged) from the server at `address`."""
    with socket.create_connection(address, timeout=TIMEOUT_S) as client:
        calls.wait_sent(1)
        _receive_exactly(client, len(calls.sent[0]))  # the greeting
        step(say, _("client: three send() calls, each after the server has received the last"))
        sent_bytes = 0
        for piece in PIECES:
            client.sendall(piece)
            sent_bytes += len(piece)
            calls.wait_received_bytes(sent_bytes)
        calls.wait_sent_lines(1, CORRECT_REPLIES.count(b"\n"))
        apart = _receive_exactly(client, sum(len(reply) for reply in calls.sent[1:]))
        step(say, _("server: {calls}").format(calls=calls.describe_received(0)))
        step(say, _("replies: {replies}").format(replies=show_bytes(apart)))
        merged_request = b"".join(PIECES)
        step(
            say,
            _("client: the same bytes in one send() call: {data}").format(
                data=show_bytes(merged_request)
            ),
        )
        sent_before, received_before = len(calls.sent), len(calls.received)
        client.sendall(merged_request)
        calls.wait_received_bytes(sent_bytes + len(merged_request))
        # Both framings answer with two newlines in all (raw: one reply holding both).
        calls.wait_sent_lines(sent_before, CORRECT_REPLIES.count(b"\n"))
        merged = _receive_exactly(client, sum(len(reply) for reply in calls.sent[sent_before:]))
        step(say, _("server: {calls}").format(calls=calls.describe_received(received_before)))
        step(say, _("replies: {replies}").format(replies=show_bytes(merged)))
    return apart, merged


def _run_raw(say: Say) -> tuple[bytes, bytes]:
    calls = ServerCalls()
    with new_socket(tracer=calls) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(TIMEOUT_S)
        server = threading.Thread(target=serve_like_the_slides, args=(listener,), daemon=True)
        server.start()
        replies = _converse(say, calls, listener.getsockname())
    server.join(TIMEOUT_S)
    return replies


def _run_lines(say: Say) -> tuple[bytes, bytes]:
    calls = ServerCalls()
    with serve(LINE_RUNTIME, ServerConfig(port=0, framing="line", tracer=calls)) as handle:
        return _converse(say, calls, handle.address)


def demo_stream(say: Say) -> bool:
    heading(say, _("Why framing matters: the live-coding sequence L: + UPPER\\n + L:CONT\\n"))
    say("")
    step(
        say, _("raw framing: the slides' server, recv(2) for the command, recv(1500) for the text")
    )
    raw_apart, raw_merged = _run_raw(say)
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
    line_apart, line_merged = _run_lines(say)
    line_ok = line_apart == CORRECT_REPLIES and line_merged == CORRECT_REPLIES
    if line_ok:
        observe(
            say,
            _(
                "line framing answers both correctly: TCP keeps the bytes in order, not the boundaries of send() calls."
            ),
        )
    return raw_ok and line_ok
