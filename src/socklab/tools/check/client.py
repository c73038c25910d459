"""Conformance checks for a converter client: run the student's command against a scripted server.

Strategy: a scripted converter server listens on a free loopback port in this process, the
client COMMAND runs as a child process with `{host}` and `{port}` in its arguments replaced
(and SOCKLAB_CHECK_HOST / SOCKLAB_CHECK_PORT in its environment), its stdin fed with the input
lines. Over TCP the scripted server is a session (`ScriptedSession`) served by the threads
model, like any other protocol: the runtime brings the accept loop, the deadlines and the
close reasons, the session answers with socklab's own core (`handle_request`, the framers),
except that the first conversion request is answered with an `E:` reply on purpose, to see the
client survive one. Everything is recorded (each message, how each connection ended, the
child's output and exit status) and judged afterwards: each check is one record
(`ClientCheck`) whose judge is a plain function of the record of the run.

What "conforming" means for a client (docs/CHECK.md):
  connects          it connects to the given host and port;
  greeting-read     it reads the greeting before its first reply (it is not one reply behind);
  requests          every message it sends is a framed U:/L:/C: request with UTF-8 text
                    (with line framing: ends in a newline);
  error-reply       an `E:` reply does not crash it (no traceback, exit status 0);
  replies-shown     the reply to each of its conversion requests appears in its output, in order;
  closes-cleanly    it ends each connection with `C:` or a normal close, not a reset;
  exits             it exits by itself within the timeout, with status 0.

Bounds: the child runs at most `timeout_s` and is then killed (its whole process group); its
output is kept up to 1 MiB per stream; the scripted server accepts at most 16 connections and
keeps the framer's message limit.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import os
import shlex
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import IO, assert_never

from socklab.errors import UsageError
from socklab.i18n import _, format_number
from socklab.protocol.closing import CloseReason
from socklab.protocol.converter import (
    CLOSE,
    ERROR_PREFIX,
    GREETING,
    LOWER,
    UPPER,
    CloseRequest,
    ErrorReply,
    handle_request,
    split_request_id,
)
from socklab.protocol.escaping import escape_for_terminal
from socklab.protocol.framing import FrameEvent, FramingName, framing_info, make_framer
from socklab.protocol.limits import DEFAULT_MAX_MESSAGE_BYTES
from socklab.protocol.reflection import answer_datagram
from socklab.protocol.session import Session
from socklab.runtimes import serve
from socklab.runtimes.config import ConnectionClosed, ServerConfig, ServerEvent, Transport
from socklab.runtimes.oserrors import translated_oserrors
from socklab.tools.check.results import (
    CheckObserver,
    CheckReport,
    CheckResult,
    Finding,
    run_checks,
    show_bytes,
)

DEFAULT_INPUT: tuple[str, ...] = ("U:hello", "L:WORLD", "U:straße")
DEFAULT_CLIENT_TIMEOUT_S = 10.0
INJECTED_ERROR: bytes = (
    ERROR_PREFIX + b"error sent on purpose by socklab check; a client must survive it"
)
MAX_OUTPUT_BYTES = 1024 * 1024
MAX_CONNECTIONS = 16
# A client typing requests sends a handful; a flood is judged after this many.
MAX_REQUESTS_PER_CONNECTION = 1000
POLL_S = 0.05
# After the client exits, its connections end at once (the kernel closes them); this bounds
# how long the server threads may take to notice.
SERVER_DRAIN_S = 2.0
TRACEBACK_MARK = "Traceback (most recent call last)"


@dataclass(frozen=True, slots=True)
class ClientTarget:
    command: tuple[str, ...]
    framing: FramingName = "line"
    transport: Transport = "tcp"
    timeout_s: float = DEFAULT_CLIENT_TIMEOUT_S
    input_lines: tuple[str, ...] = DEFAULT_INPUT
    host: str = "127.0.0.1"
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES


class ConnectionEnd(enum.Enum):
    CLOSE_REQUEST = "sent C:"
    EOF = "closed"
    RESET = "reset"
    OPEN = "still open"


@dataclass
class ConnectionLog:
    """Everything one connection of the client did, in order."""

    peer: str
    requests: list[bytes] = field(default_factory=list)
    replies: list[bytes] = field(default_factory=list)  # one per request except C:
    malformed: list[str] = field(default_factory=list)
    end: ConnectionEnd = ConnectionEnd.OPEN


@dataclass
class ClientRecord:
    """The whole run: connections, the child's output and how it ended."""

    port: int = 0
    connections: list[ConnectionLog] = field(default_factory=list)
    stdout: str = ""
    stderr: str = ""
    exit_status: int | None = None
    timed_out: bool = False
    error_injected: bool = False


# --- the scripted server -----------------------------------------------------------------------


class ScriptedSession:
    """One connection of the client under test, as a `Session` the threads model serves.

    It answers with socklab's own core (`handle_request`, the framer), the first conversion of
    the whole run with the injected `E:` reply, and records everything in its `ConnectionLog`.
    A frame the client got wrong ends the connection (recorded as malformed); so do `C:`, the
    client's end of stream and a flood of requests. Call order: as every session
    (`socklab.protocol.session`); `closed()` may come at any time, the log keeps the end seen.
    """

    __slots__ = ("_framer", "_out", "_server", "close_reason", "log", "requests_served")

    def __init__(self, server: ScriptedServer, log: ConnectionLog, *, greet: bool) -> None:
        target = server.target
        self._server = server
        self._framer = make_framer(target.framing, target.max_message_bytes)
        self._out: list[bytes] = [self._framer.encode(GREETING)] if greet else []
        self.log = log
        self.requests_served = 0
        self.close_reason: CloseReason | None = None

    def receive_data(self, data: bytes) -> None:
        if self.close_reason is None:
            self._process(self._framer.receive_data(data), at_eof=False)

    def exchange(self, data: bytes) -> bytes:
        self.receive_data(data)
        return self.data_to_send()

    def receive_eof(self) -> None:
        if self.close_reason is not None:
            return
        events = self._framer.receive_eof()
        # A message the end of stream completes had no terminator (a line's newline).
        for event in events:
            if isinstance(event, bytes):
                self.log.malformed.append(describe_unterminated(event))
        self._process(events, at_eof=True)
        self._end(ConnectionEnd.EOF, CloseReason.PEER_EOF)

    def data_to_send(self) -> bytes:
        out, self._out = b"".join(self._out), []
        return out

    def abort(self, reason: CloseReason) -> None:
        """The runtime gives up (a deadline, the checker stops): close, no notice; the log
        keeps the connection as still open, since the client did not end it."""
        if self.close_reason is None:
            self.close_reason = reason

    def server_stopping(self) -> None:
        self.abort(CloseReason.SERVER_STOPPING)

    def closed(self) -> None:
        if self.close_reason is None:
            self.close_reason = CloseReason.LOCAL

    @property
    def should_close(self) -> bool:
        return self.close_reason is not None

    @property
    def expects_unread_input(self) -> bool:
        return False  # as the scripted server always did: close at once, whatever is unread

    @property
    def has_partial_message(self) -> bool:
        return self.close_reason is None and self._framer.has_partial_message

    def _process(self, events: list[FrameEvent], *, at_eof: bool) -> None:
        log = self.log
        for event in events:
            if self.close_reason is not None:
                return
            if not isinstance(event, bytes):
                log.malformed.append(event.describe())
                self._end(
                    ConnectionEnd.EOF if at_eof else ConnectionEnd.RESET, CloseReason.PROTOCOL_ERROR
                )
                return
            if len(log.requests) >= MAX_REQUESTS_PER_CONNECTION:
                log.malformed.append(
                    _("more than {count} requests on one connection").format(
                        count=format_number(MAX_REQUESTS_PER_CONNECTION)
                    )
                )
                self._end(ConnectionEnd.RESET, CloseReason.PROTOCOL_ERROR)
                return
            log.requests.append(event)
            problem = describe_request_problem(event)
            if problem:
                log.malformed.append(problem)
            # A request the end of stream completed gets no injected E:: the client has
            # stopped sending, and may be gone, so surviving the E: could not be judged.
            reply = self._server.reply_to(event, inject=not at_eof)
            if reply is None:
                self._end(ConnectionEnd.CLOSE_REQUEST, CloseReason.CLIENT_REQUESTED)
                return
            log.replies.append(reply)
            self.requests_served += 1
            self._out.append(self._framer.encode(reply))

    def _end(self, end: ConnectionEnd, reason: CloseReason) -> None:
        if self.close_reason is None:
            self.log.end = end
            self.close_reason = reason


class _Refused:
    """The session of a connection over MAX_CONNECTIONS: closed at once, unrecorded."""

    requests_served = 0
    close_reason: CloseReason | None = CloseReason.BUSY
    should_close = True
    expects_unread_input = False
    has_partial_message = False

    def receive_data(self, data: bytes) -> None:
        pass

    def exchange(self, data: bytes) -> bytes:
        return b""

    def receive_eof(self) -> None:
        pass

    def data_to_send(self) -> bytes:
        return b""

    def abort(self, reason: CloseReason) -> None:
        pass

    def server_stopping(self) -> None:
        pass

    def closed(self) -> None:
        pass


class ScriptedServer:
    """The converter scripted for the check, served by the threads model on a free loopback
    port (`ServerConfig.session_factory`: this object); each connection's log goes into the
    record in the order of connecting."""

    def __init__(self, target: ClientTarget, record: ClientRecord) -> None:
        self.target = target
        self.record = record
        self._lock = threading.Lock()
        self._finished = threading.Condition(self._lock)
        self._open = 0
        # The runtime's deadlines never come first: the client is killed at its timeout, which
        # closes its connections, and the checker stops the server after that.
        patience_s = target.timeout_s + 2 * SERVER_DRAIN_S
        config = ServerConfig(
            host=target.host,
            port=0,
            framing=target.framing,
            max_message_bytes=target.max_message_bytes,
            idle_timeout_s=patience_s,
            message_timeout_s=patience_s,
            write_timeout_s=target.timeout_s,
            shutdown_grace_s=POLL_S,
            session_factory=self,
            observer=self._observe,
        )
        self._handle = serve("threads", config)
        self.port = self._handle.address[1]

    def __call__(
        self, framing: FramingName, *, max_message_bytes: int, greet: bool, record_events: bool
    ) -> Session:
        """A new connection's session (the runtime's session factory)."""
        if not greet:
            # The threads model greets every connection through its session; a session made
            # without the greeting is a runtime asking for a notice's bytes: no connection.
            return ScriptedSession(self, ConnectionLog(peer=""), greet=False)
        with self._lock:
            if len(self.record.connections) >= MAX_CONNECTIONS:
                return _Refused()
            self._open += 1
            # The peer is known once the runtime tells the observer; until then, none.
            log = ConnectionLog(peer="")
            self.record.connections.append(log)
        return ScriptedSession(self, log, greet=greet)

    def _observe(self, event: ServerEvent) -> None:
        match event:
            case ConnectionClosed(peer, reason, session) if isinstance(session, ScriptedSession):
                log = session.log
                if not log.peer:
                    log.peer = f"{peer[0]}:{peer[1]}"
                if log.end is ConnectionEnd.OPEN and reason is CloseReason.RESET:
                    log.end = ConnectionEnd.RESET
                with self._finished:
                    self._open -= 1
                    self._finished.notify_all()
            case _:
                pass

    def reply_to(self, message: bytes, *, inject: bool = True) -> bytes | None:
        """The reply to one request; None for C:. The first conversion gets the injected E:
        (when `inject`)."""
        reply = handle_request(message)
        if isinstance(reply, CloseRequest):
            return None
        if isinstance(reply, bytes) and inject:
            with self._lock:
                if not self.record.error_injected:
                    self.record.error_injected = True
                    return INJECTED_ERROR
        return reply.payload if isinstance(reply, ErrorReply) else reply

    def stop(self) -> None:
        """Let the connections the client left end by themselves (its exit closed them), then
        stop the server: what is still open after SERVER_DRAIN_S is recorded as left open."""
        deadline = time.monotonic() + SERVER_DRAIN_S
        with self._finished:
            while self._open > 0:
                left_s = deadline - time.monotonic()
                if left_s <= 0:
                    break
                self._finished.wait(left_s)
        self._handle.stop()


class ScriptedDatagramServer:
    """The converter over UDP on a free loopback port: one log per peer address."""

    def __init__(self, target: ClientTarget, record: ClientRecord) -> None:
        self.target = target
        self.record = record
        self._stop = threading.Event()
        self._peers: dict[object, ConnectionLog] = {}
        with translated_oserrors(host=target.host, port=0):
            family = socket.AF_INET6 if ":" in target.host else socket.AF_INET
            self._sock = socket.socket(family, socket.SOCK_DGRAM)
            self._sock.bind((target.host, 0))
        self._sock.settimeout(POLL_S)
        self.port = int(self._sock.getsockname()[1])
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                datagram, peer = self._sock.recvfrom(65536)
            except TimeoutError:
                continue
            except OSError:
                continue  # an ICMP error for an earlier reply: the client's port is gone
            log = self._peers.get(peer)
            if log is None:
                if len(self._peers) >= MAX_CONNECTIONS:
                    continue
                log = self._peers[peer] = ConnectionLog(peer=f"{peer[0]}:{peer[1]}")
                self.record.connections.append(log)
            if len(log.requests) >= MAX_REQUESTS_PER_CONNECTION:
                continue
            log.requests.append(datagram)
            request_id, message = split_request_id(datagram)
            problem = describe_request_problem(message) if datagram else _("an empty datagram")
            if problem:
                log.malformed.append(problem)
            # The loop guards of every UDP server apply to this one too (no reply to an empty
            # datagram, an `E:` one, or a source port below 1024).
            answer = answer_datagram(datagram, peer[1])
            reply = answer if isinstance(answer, bytes) else None
            is_conversion = reply is not None and isinstance(handle_request(message), bytes)
            if is_conversion and not self.record.error_injected:
                self.record.error_injected = True
                reply = request_id + INJECTED_ERROR
            if reply is None:
                continue
            log.replies.append(reply[len(request_id) :])
            with contextlib.suppress(OSError):
                self._sock.sendto(reply, peer)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(SERVER_DRAIN_S)
        self._sock.close()


# Where a request starts: a command at the very start, or right after a message that lacked its
# newline ("U:helloL:WORLD" is two requests run together).
_COMMANDS = (UPPER, LOWER, CLOSE)


def count_run_together(message: bytes) -> int:
    """How many requests `message` holds, run together for want of their newlines."""
    if message[:2] not in _COMMANDS:
        return 1
    return 1 + sum(message.count(command, 2) for command in _COMMANDS)


def describe_unterminated(message: bytes) -> str:
    """A message the end of stream completed: the missing newline, named as such."""
    count = count_run_together(message)
    if count > 1:
        return _(
            "no newline after the requests: {count} requests ran together as {message}"
        ).format(count=count, message=show_bytes(message, limit=60))
    return _("the last request {message} does not end with a newline").format(
        message=show_bytes(message, limit=60)
    )


def describe_request_problem(message: bytes) -> str:
    """Why `message` is not a well-formed request, or "" when it is one."""
    command = message[:2]
    shown = show_bytes(message, limit=40)
    if command not in (UPPER, LOWER, CLOSE):
        return _("{message} does not start with U:, L: or C:").format(message=shown)
    if command == CLOSE and len(message) > 2:
        return _("{message}: C: carries no text").format(message=shown)
    try:
        message[2:].decode("utf-8")
    except UnicodeDecodeError:
        return _("{message} is not valid UTF-8").format(message=shown)
    return ""


# --- running the client ------------------------------------------------------------------------


def substitute(command: Sequence[str], host: str, port: int) -> list[str]:
    return [arg.replace("{host}", host).replace("{port}", str(port)) for arg in command]


def _pump(stream: IO[bytes], sink: bytearray) -> None:
    for chunk in iter(lambda: stream.read1(65536), b""):  # type: ignore[attr-defined]
        room = MAX_OUTPUT_BYTES - len(sink)
        if room > 0:
            sink += chunk[:room]


def _feed(stream: IO[bytes], data: bytes) -> None:
    # A client that never reads its stdin, or exits early, must not break the checker.
    with contextlib.suppress(OSError):
        stream.write(data)
    with contextlib.suppress(OSError):
        stream.close()


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """Kill the client and whatever it started (its own process group on POSIX)."""
    if os.name == "posix":
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(OSError):
        process.kill()


def run_client(target: ClientTarget, record: ClientRecord, port: int) -> None:
    argv = substitute(target.command, target.host, port)
    environment = dict(os.environ)
    environment["SOCKLAB_CHECK_HOST"] = target.host
    environment["SOCKLAB_CHECK_PORT"] = str(port)
    environment.setdefault("PYTHONUNBUFFERED", "1")
    try:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=environment,
            start_new_session=os.name == "posix",
        )
    except FileNotFoundError:
        raise UsageError(
            _("the client command '{program}' was not found").format(program=argv[0])
        ) from None
    except PermissionError:
        raise UsageError(
            _("the client command '{program}' cannot be run (permission denied)").format(
                program=argv[0]
            )
        ) from None
    except OSError as exc:
        raise UsageError(
            _("the client command '{program}' cannot be run: {detail}").format(
                program=argv[0], detail=exc.strerror or exc
            )
        ) from None
    assert process.stdin and process.stdout and process.stderr
    stdout, stderr = bytearray(), bytearray()
    input_data = "".join(f"{line}\n" for line in target.input_lines).encode()
    threads = [
        threading.Thread(target=_feed, args=(process.stdin, input_data), daemon=True),
        threading.Thread(target=_pump, args=(process.stdout, stdout), daemon=True),
        threading.Thread(target=_pump, args=(process.stderr, stderr), daemon=True),
    ]
    for thread in threads:
        thread.start()
    try:
        record.exit_status = process.wait(timeout=target.timeout_s)
    except subprocess.TimeoutExpired:
        record.timed_out = True
        _kill_group(process)
        record.exit_status = process.wait()
    except BaseException:
        # Ctrl+C or SIGTERM while the client runs: it is in its own session and would not
        # get the signal, so it must not outlive the checker.
        _kill_group(process)
        process.wait()
        raise
    finally:
        for thread in threads:
            thread.join(SERVER_DRAIN_S)
    record.stdout = stdout.decode("utf-8", errors="replace")
    record.stderr = stderr.decode("utf-8", errors="replace")


# --- judging -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClientCheck:
    """One check of the client: data, as the server checks are (`tools/check/server.py`).

    `judge` is a plain function of the record of the run; `transports` are those the check
    applies to (a UDP client has no greeting to read and no connection to close);
    `depends_on` names the earlier checks whose failure makes this one "not reached".
    """

    check_id: str
    title: str
    transports: frozenset[Transport]
    judge: Callable[[ClientTarget, ClientRecord], Finding]
    depends_on: tuple[str, ...] = ()


def _conversion_replies(record: ClientRecord) -> list[bytes]:
    replies = [reply for log in record.connections for reply in log.replies]
    return [reply for reply in replies if not reply.startswith(ERROR_PREFIX)]


def _replies_in_order(stdout: str, replies: list[bytes]) -> tuple[int, bytes | None]:
    """How many replies appear in `stdout` in order, and the first one missing."""
    position = 0
    for index, reply in enumerate(replies):
        text = reply.decode("utf-8", errors="replace")
        found = stdout.find(text, position)
        if found < 0:
            return index, reply
        position = found + len(text)
    return len(replies), None


def describe_exit(record: ClientRecord, timeout_s: float) -> str:
    if record.timed_out:
        return _("still running after {seconds} s (killed)").format(
            seconds=format_number(timeout_s, decimals=None)
        )
    if record.exit_status is not None and record.exit_status < 0:
        # Popen's negative status: ended by a signal it did not handle (not sent by the checker).
        number = -record.exit_status
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = str(number)
        return _("was killed by signal {name}").format(name=name)
    return _("exited with status {status}").format(status=record.exit_status)


# The client's own last words are shown as they came, but escaped and cut: the program under
# test writes what it likes to its stderr, and this line goes to the grader's terminal.
MAX_STDERR_LINE_BYTES = 200


def terminal_lines(text: str) -> list[str]:
    """`text` cut into lines as a terminal shows them: at newlines only.

    str.splitlines() also cuts at U+2028, U+0085, form feeds and more, which a terminal shows
    inside one line: a program printing the sheet's lines joined by U+2028 on one line passed.
    """
    return [line.removesuffix("\r") for line in text.split("\n")]


def last_stderr_line(record: ClientRecord) -> str:
    lines = [line for line in terminal_lines(record.stderr) if line.strip()]
    if not lines:
        return ""
    return escape_for_terminal(lines[-1].strip(), max_bytes=MAX_STDERR_LINE_BYTES)


def judge_connects(target: ClientTarget, record: ClientRecord) -> Finding:
    connections = record.connections
    udp = target.transport == "udp"
    peers = ", ".join(log.peer for log in connections)
    if connections:
        if udp:
            received = _("datagrams from {peers}").format(peers=peers)
        else:
            received = _("connected from {peers}").format(peers=peers)
    else:
        nothing = _("no datagram") if udp else _("no connection")
        received = _("{nothing}; the client {ending}").format(
            nothing=nothing, ending=describe_exit(record, target.timeout_s)
        )
        detail = last_stderr_line(record)
        if detail:
            received += f" ({detail})"
    if udp:
        expected = _("datagrams to {host}:{port}").format(host=target.host, port=record.port)
    else:
        expected = _("a TCP connection to {host}:{port}").format(host=target.host, port=record.port)
    return Finding(
        expected,
        received,
        bool(connections),
        _(
            "Use the host and port given ({host} and {port} in the command, or SOCKLAB_CHECK_HOST/PORT)."
        ),
    )


def _framing_rule(target: ClientTarget) -> str:
    """How the requests must be framed, in words."""
    if target.transport == "udp":
        return _("one per datagram")
    match target.framing:
        case "line":
            return _("each ending in a newline")
        case "length":
            return _("each after its 4-byte length")
        case "raw":
            return _("each in one send")
        case _:
            assert_never(target.framing)


def judge_requests(target: ClientTarget, record: ClientRecord) -> Finding:
    connections = record.connections
    requests = [request for log in connections for request in log.requests]
    problems = [problem for log in connections for problem in log.malformed]
    shown_requests = ", ".join(show_bytes(request, limit=40) for request in requests[:8])
    if len(requests) > 8:
        shown_requests += ", …"
    if not requests:
        received = _("no request")
    elif problems:
        received = "; ".join(problems[:4])
    else:
        received = shown_requests
    return Finding(
        _("U:<text>, L:<text> or C:, UTF-8, {rule}").format(rule=_framing_rule(target)),
        received,
        bool(requests) and not problems,
        _(
            "Every request is a command (U:, L: or C:) with UTF-8 text, framed as the server expects."
        ),
    )


def _conversion_requests(record: ClientRecord) -> int:
    """Well-formed U:/L: requests the client sent, over all its connections."""
    return sum(
        1
        for log in record.connections
        for request in log.requests
        if request[:2] in (UPPER, LOWER) and not describe_request_problem(request)
    )


def judge_greeting_read(target: ClientTarget, record: ClientRecord) -> Finding:
    expected = _("the greeting read first, each reply matched to its request")
    note = _("Receive the greeting right after connecting, before sending the first request.")
    replies = _conversion_replies(record)
    if not replies:
        return Finding(
            expected,
            "",
            False,
            not_reached=_("not reached: no conversion reply was sent, so none could be shifted"),
        )
    shown_count, missing = _replies_in_order(record.stdout, replies)
    # A client that never reads the greeting takes it as the first reply: it prints the
    # greeting, then every reply but the last, each one request late.
    shifted = missing is not None and shown_count == len(replies) - 1
    one_behind = shifted and GREETING.decode() in record.stdout
    if one_behind and not framing_info(target.framing).delimits_messages:
        # Without delimiters a reply split over two recv()s looks the same from outside: the
        # last reply is missing either way. Nothing to claim; replies-shown names the gap.
        return Finding(
            expected,
            "",
            False,
            not_reached=_(
                "not reached: with {framing} framing a missing last reply cannot be told from a greeting taken as a reply"
            ).format(framing=target.framing),
        )
    if one_behind:
        received = _("one reply behind: the greeting was taken as the first reply")
    else:
        received = _("the replies are not shifted by the greeting")
    return Finding(expected, received, not one_behind, note)


def _ended_by_signal(record: ClientRecord) -> bool:
    return record.timed_out or (record.exit_status is not None and record.exit_status < 0)


def judge_replies_shown(target: ClientTarget, record: ClientRecord) -> Finding:
    expected = _("every conversion reply on standard output, in order")
    replies = _conversion_replies(record)
    shown_count, missing = _replies_in_order(record.stdout, replies)
    if not replies and _ended_by_signal(record):
        # Killed (by us at the timeout, or from outside) before a reply it could show.
        return Finding(
            expected,
            "",
            False,
            not_reached=_("not reached: {why}").format(
                why=_describe_no_conversion_reply(target, record)
            ),
        )
    if not replies:
        received = _describe_no_conversion_reply(target, record)
        replies_ok = False
    elif missing is not None:
        received = _("{shown} of {total} shown; missing {reply}").format(
            shown=shown_count, total=len(replies), reply=show_bytes(missing)
        )
        replies_ok = False
    else:
        received = _("all {total} shown").format(total=len(replies))
        replies_ok = True
    return Finding(
        expected,
        received,
        replies_ok,
        _(
            "Print each reply the server sends; send at least two conversion requests (the first is answered with 'E:' on purpose)."
        ),
    )


def _describe_no_conversion_reply(target: ClientTarget, record: ClientRecord) -> str:
    """Why no conversion reply was sent, from what the client did in this run."""
    sent = _conversion_requests(record)
    if sent == 0:
        why = _("the client sent no U:/L: request")
    elif sent == 1 and record.error_injected:
        why = _("the client sent one U:/L: request (answered with 'E:' on purpose) and no second")
    else:
        why = _("all {count} U:/L: requests were answered with 'E:'").format(count=sent)
    if not _exited_well(record):
        why = _("{why}; then it {ending}").format(
            why=why, ending=describe_exit(record, target.timeout_s)
        )
    return why


# A client may report that a request got an 'E:' reply by its exit status, as grep reports "no
# match" with 1 and socklab's own client does; a crash shows a traceback besides.
ERROR_REPLY_EXIT_STATUS = 1


def _exited_well(record: ClientRecord) -> bool:
    """Ended in time with status 0, or with 1 after the injected 'E:' reply (no crash)."""
    if record.timed_out:
        return False
    if record.exit_status == 0:
        return True
    return (
        record.exit_status == ERROR_REPLY_EXIT_STATUS
        and record.error_injected
        and TRACEBACK_MARK not in record.stderr
    )


def judge_error_reply(target: ClientTarget, record: ClientRecord) -> Finding:
    expected = _("no crash after {reply}, exit status 0 (or 1, for the 'E:')").format(
        reply=show_bytes(INJECTED_ERROR, limit=30)
    )
    if not record.error_injected:
        return Finding(
            expected,
            "",
            False,
            not_reached=_(
                "not reached: the client sent no conversion request while connected, so the checker's deliberate 'E:' reply was never sent"
            ),
        )
    crashed = TRACEBACK_MARK in record.stderr
    survived = not crashed and _exited_well(record)
    if crashed:
        received = _("crashed: {line}").format(line=last_stderr_line(record))
    else:
        received = describe_exit(record, target.timeout_s)
    return Finding(
        expected,
        received,
        survived,
        _("An 'E:' reply is a normal answer: show it and carry on."),
    )


def judge_closing(target: ClientTarget, record: ClientRecord) -> Finding:
    connections = record.connections
    ends = [log.end for log in connections]
    if record.timed_out and ConnectionEnd.CLOSE_REQUEST not in ends:
        # The checker killed it, and the kernel closed what was open: not the client's close.
        return Finding(
            _("'C:' or a normal close (no reset)"),
            "",
            False,
            not_reached=_(
                "not reached: the client was still running at the timeout, so it never closed by itself"
            ),
        )
    clean = (
        bool(connections)
        and all(end in (ConnectionEnd.CLOSE_REQUEST, ConnectionEnd.EOF) for end in ends)
        and not record.timed_out
    )
    if connections:
        received = ", ".join(_connection_end_text(end) for end in ends)
        if record.timed_out:
            received += _(" (the client was killed at the timeout)")
    else:
        received = _("no connection")
    return Finding(
        _("'C:' or a normal close (no reset)"),
        received,
        clean,
        _("Read every reply before closing: closing with unread data sends a reset (RST)."),
    )


def _connection_end_text(end: ConnectionEnd) -> str:
    match end:
        case ConnectionEnd.CLOSE_REQUEST:
            return _("sent C:")
        case ConnectionEnd.EOF:
            return _("closed normally")
        case ConnectionEnd.RESET:
            return _("reset (RST)")
        case ConnectionEnd.OPEN:
            return _("left open")


def judge_exits(target: ClientTarget, record: ClientRecord) -> Finding:
    exited = _exited_well(record)
    received = describe_exit(record, target.timeout_s)
    if not exited and last_stderr_line(record):
        received += f": {last_stderr_line(record)}"
    return Finding(
        _("exit status 0 (or 1 after an 'E:' reply) within {seconds} s").format(
            seconds=format_number(target.timeout_s, decimals=None)
        ),
        received,
        exited,
        _exit_advice(record),
    )


def _exit_advice(record: ClientRecord) -> str:
    if _ended_by_signal(record) and not record.timed_out:
        # Not the checker's doing: something else (the client itself, the OS) sent the signal.
        return _(
            "A signal ended the client before it finished, and the checker did not send it: run the client by hand to see where it stops."
        )
    return _(
        "When its input ends, the client should send C: or close, and exit with status 0 (or 1 when a request got an 'E:' reply)."
    )


def client_checks() -> list[ClientCheck]:
    """Every client check, in the order they are reported (built per run: titles translated).

    Dependencies: without a connection nothing else about it can be judged; with malformed
    requests the replies (and their order) say nothing about the client; one reply behind
    explains the missing last reply, and a client that did not survive the `E:` shows no later
    reply.
    """
    both: frozenset[Transport] = frozenset({"tcp", "udp"})
    tcp: frozenset[Transport] = frozenset({"tcp"})
    return [
        ClientCheck("connects", _("connects to the server"), both, judge_connects),
        ClientCheck(
            "requests", _("sends well-formed requests"), both, judge_requests, ("connects",)
        ),
        ClientCheck(
            "greeting-read",
            _("reads the greeting before the first reply"),
            tcp,
            judge_greeting_read,
            ("requests",),
        ),
        ClientCheck(
            "error-reply", _("survives an 'E:' reply"), both, judge_error_reply, ("connects",)
        ),
        ClientCheck(
            "replies-shown",
            _("shows each reply"),
            both,
            judge_replies_shown,
            ("requests", "greeting-read", "error-reply"),
        ),
        ClientCheck(
            "closes-cleanly", _("closes the connection cleanly"), tcp, judge_closing, ("connects",)
        ),
        ClientCheck("exits", _("exits by itself, with status 0"), both, judge_exits),
    ]


def judge(
    target: ClientTarget, record: ClientRecord, observer: CheckObserver | None = None
) -> list[CheckResult]:
    """The result of every check that applies to `target`'s transport, in order."""
    checks = [check for check in client_checks() if target.transport in check.transports]
    results, _interrupted = run_checks(checks, lambda check: check.judge(target, record), observer)
    return results


def check_converter_client(
    target: ClientTarget, observer: CheckObserver | None = None
) -> CheckReport:
    """Run the client against the scripted server and judge what it did, reporting each result
    to `observer`. Ctrl+C while the client runs stops it: the report then has no results and
    says it was interrupted (a run cut short says nothing about the client)."""
    if not target.command:
        raise UsageError(_("give the client command after '--'"))
    record = ClientRecord()
    udp = target.transport == "udp"
    server = ScriptedDatagramServer(target, record) if udp else ScriptedServer(target, record)
    record.port = server.port
    report = CheckReport(
        subject="converter-client",
        # The command as it ran: {host} and {port} replaced.
        target=shlex.join(substitute(target.command, target.host, server.port)),
        transport=target.transport,
        framing="datagram" if udp else target.framing,
        results=(),
    )
    try:
        if observer is not None:
            observer.run_started(report)
        run_client(target, record, server.port)
    except KeyboardInterrupt:
        return dataclasses.replace(report, interrupted=True)
    finally:
        server.stop()
    return dataclasses.replace(report, results=tuple(judge(target, record, observer)))
