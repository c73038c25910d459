"""Conformance checks for a converter client: run the student's command against a scripted server.

Strategy: a scripted converter server listens on a free loopback port in this process, the
client COMMAND runs as a child process with `{host}` and `{port}` in its arguments replaced
(and SOCKLAB_CHECK_HOST / SOCKLAB_CHECK_PORT in its environment), its stdin fed with the input
lines. The server answers with socklab's own core (`handle_request`, the framers), except that
the first conversion request is answered with an `E:` reply on purpose, to see the client
survive one. Everything is recorded (each message, how each connection ended, the child's
output and exit status) and judged afterwards, so the checks are plain functions of the record.

What "conforming" means for a client (docs/CHECK.md):
  connects          it connects to the given host and port;
  greeting-read     it reads the greeting before its first reply (it is not one reply behind);
  requests          every message it sends is a framed U:/L:/C: request with UTF-8 text
                    (with line framing: ends in a newline);
  replies-shown     the reply to each of its conversion requests appears in its output, in order;
  error-reply       an `E:` reply does not crash it (no traceback, exit status 0);
  closes-cleanly    it ends each connection with `C:` or a normal close, not a reset;
  exits             it exits by itself within the timeout, with status 0.

Bounds: the child runs at most `timeout_s` and is then killed (its whole process group); its
output is kept up to 1 MiB per stream; the scripted server accepts at most 16 connections and
keeps the framer's message limit.
"""

from __future__ import annotations

import contextlib
import enum
import os
import selectors
import shlex
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO

from socklab.errors import UsageError
from socklab.i18n import _
from socklab.protocol.converter import (
    CLOSE,
    GREETING,
    LOWER,
    UPPER,
    CloseRequest,
    ErrorReply,
    handle_request,
    split_request_id,
)
from socklab.protocol.framing import FrameTooLong, TruncatedFrame, make_framer
from socklab.protocol.limits import DEFAULT_MAX_MESSAGE_BYTES
from socklab.protocol.reflection import answer_datagram
from socklab.runtimes.oserrors import translated_oserrors
from socklab.tools.check.results import CheckReport, CheckResult, Verdict, show_bytes

DEFAULT_INPUT: tuple[str, ...] = ("U:hello", "L:WORLD", "U:straße")
DEFAULT_CLIENT_TIMEOUT_S = 10.0
INJECTED_ERROR: bytes = b"E:error sent on purpose by socklab check; a client must survive it"
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
    framing: str = "line"
    transport: str = "tcp"  # "tcp" or "udp"
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


class ScriptedServer:
    """Serves the converter on a free loopback port, one thread per connection, and records."""

    def __init__(self, target: ClientTarget, record: ClientRecord) -> None:
        self.target = target
        self.record = record
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        with translated_oserrors(host=target.host, port=0):
            family = socket.AF_INET6 if ":" in target.host else socket.AF_INET
            self._listener = socket.socket(family, socket.SOCK_STREAM)
            self._listener.bind((target.host, 0))
            self._listener.listen(MAX_CONNECTIONS)
        self._listener.settimeout(POLL_S)
        self.port = int(self._listener.getsockname()[1])
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True)
        self._acceptor.start()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, peer = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if len(self.record.connections) >= MAX_CONNECTIONS:
                conn.close()
                continue
            log = ConnectionLog(peer=f"{peer[0]}:{peer[1]}")
            with self._lock:
                self.record.connections.append(log)
            thread = threading.Thread(target=self._serve, args=(conn, log), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _reply_to(self, message: bytes) -> bytes | None:
        """The reply to one request; None for C:. The first conversion gets the injected E:."""
        reply = handle_request(message)
        if isinstance(reply, CloseRequest):
            return None
        if isinstance(reply, bytes):
            with self._lock:
                if not self.record.error_injected:
                    self.record.error_injected = True
                    return INJECTED_ERROR
        return reply.payload if isinstance(reply, ErrorReply) else reply

    def _serve(self, conn: socket.socket, log: ConnectionLog) -> None:
        framer = make_framer(self.target.framing, self.target.max_message_bytes)
        with conn, selectors.DefaultSelector() as selector:
            try:
                conn.sendall(framer.encode(GREETING))
            except OSError:
                log.end = ConnectionEnd.RESET
                return
            conn.setblocking(False)
            selector.register(conn, selectors.EVENT_READ)
            while not self._stop.is_set():
                if not selector.select(POLL_S):
                    continue
                try:
                    data = conn.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    log.end = ConnectionEnd.RESET
                    return
                if data:
                    events = framer.receive_data(data)
                else:
                    events = framer.receive_eof()
                    if self.target.framing == "line" and any(isinstance(e, bytes) for e in events):
                        log.malformed.append(_("the last request does not end with a newline"))
                for event in events:
                    if isinstance(event, FrameTooLong | TruncatedFrame):
                        log.malformed.append(event.describe())
                        log.end = ConnectionEnd.EOF if not data else ConnectionEnd.RESET
                        return
                    if len(log.requests) >= MAX_REQUESTS_PER_CONNECTION:
                        log.malformed.append(
                            _("more than {count:,} requests on one connection").format(
                                count=MAX_REQUESTS_PER_CONNECTION
                            )
                        )
                        log.end = ConnectionEnd.RESET
                        return
                    log.requests.append(event)
                    problem = describe_request_problem(event)
                    if problem:
                        log.malformed.append(problem)
                    reply = self._reply_to(event)
                    if reply is None:
                        log.end = ConnectionEnd.CLOSE_REQUEST
                        return
                    log.replies.append(reply)
                    try:
                        conn.setblocking(True)
                        conn.settimeout(self.target.timeout_s)
                        conn.sendall(framer.encode(reply))
                        conn.setblocking(False)
                    except OSError:
                        log.end = ConnectionEnd.RESET
                        return
                if not data:
                    log.end = ConnectionEnd.EOF
                    return

    def stop(self) -> None:
        deadline = time.monotonic() + SERVER_DRAIN_S
        for thread in list(self._threads):
            thread.join(max(0.0, deadline - time.monotonic()))
        self._stop.set()
        self._acceptor.join(SERVER_DRAIN_S)
        for thread in list(self._threads):
            thread.join(SERVER_DRAIN_S)
        self._listener.close()


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


def _result(
    check_id: str, title: str, expected: str, received: str, passed: bool, note: str = ""
) -> CheckResult:
    return CheckResult(
        check_id,
        title,
        expected,
        received,
        Verdict.PASS if passed else Verdict.FAIL,
        "" if passed else note,
    )


def _conversion_replies(record: ClientRecord) -> list[bytes]:
    replies = [reply for log in record.connections for reply in log.replies]
    return [reply for reply in replies if not reply.startswith(b"E:")]


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


def _describe_exit(record: ClientRecord, timeout_s: float) -> str:
    if record.timed_out:
        return _("still running after {seconds:g} s (killed)").format(seconds=timeout_s)
    return _("exited with status {status}").format(status=record.exit_status)


def _last_stderr_line(record: ClientRecord) -> str:
    lines = [line for line in record.stderr.splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def judge(target: ClientTarget, record: ClientRecord) -> list[CheckResult]:
    results: list[CheckResult] = []
    connections = record.connections
    requests = [request for log in connections for request in log.requests]

    udp = target.transport == "udp"

    # connects
    peers = ", ".join(log.peer for log in connections)
    if connections:
        if udp:
            received = _("datagrams from {peers}").format(peers=peers)
        else:
            received = _("connected from {peers}").format(peers=peers)
    else:
        nothing = _("no datagram") if udp else _("no connection")
        received = _("{nothing}; the client {ending}").format(
            nothing=nothing, ending=_describe_exit(record, target.timeout_s)
        )
        detail = _last_stderr_line(record)
        if detail:
            received += f" ({detail})"
    if udp:
        expected = _("datagrams to {host}:{port}").format(host=target.host, port=record.port)
    else:
        expected = _("a TCP connection to {host}:{port}").format(host=target.host, port=record.port)
    results.append(
        _result(
            "connects",
            _("connects to the server"),
            expected,
            received,
            bool(connections),
            _(
                "Use the host and port given ({host} and {port} in the command, or SOCKLAB_CHECK_HOST/PORT)."
            ),
        )
    )

    # requests well-formed
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
    framing_rule = {
        "line": _("each ending in a newline"),
        "length": _("each after its 4-byte length"),
        "raw": _("each in one send"),
        "datagram": _("one per datagram"),
    }["datagram" if udp else target.framing]
    results.append(
        _result(
            "requests",
            _("sends well-formed requests"),
            _("U:<text>, L:<text> or C:, UTF-8, {rule}").format(rule=framing_rule),
            received,
            bool(requests) and not problems,
            _(
                "Every request is a command (U:, L: or C:) with UTF-8 text, framed as the server expects."
            ),
        )
    )

    # greeting read / replies shown
    replies = _conversion_replies(record)
    shown_count, missing = _replies_in_order(record.stdout, replies)
    greeting_text = GREETING.decode()
    one_behind = (
        missing is not None
        and greeting_text in record.stdout
        and shown_count == len(replies) - 1
        and bool(replies)
    )
    if not udp:
        results.append(
            _result(
                "greeting-read",
                _("reads the greeting before the first reply"),
                _("the greeting read first, each reply matched to its request"),
                _("no connection")
                if not connections
                else _("one reply behind: the greeting was taken as the first reply")
                if one_behind
                else _("the replies are not shifted by the greeting"),
                bool(connections) and not one_behind,
                _("Receive the greeting right after connecting, before sending the first request."),
            )
        )
    if not replies:
        received = _("no conversion reply was sent: the client sent fewer than two U:/L: requests")
        replies_ok = False
    elif missing is not None:
        received = _("{shown} of {total} shown; missing {reply}").format(
            shown=shown_count, total=len(replies), reply=show_bytes(missing)
        )
        replies_ok = False
    else:
        received = _("all {total} shown").format(total=len(replies))
        replies_ok = True
    results.append(
        _result(
            "replies-shown",
            _("shows each reply"),
            _("every conversion reply on standard output, in order"),
            received,
            replies_ok,
            _(
                "Print each reply the server sends; send at least two conversion requests (the first is answered with 'E:' on purpose)."
            ),
        )
    )

    # error reply survived
    crashed = TRACEBACK_MARK in record.stderr
    survived = (
        record.error_injected and not crashed and not record.timed_out and record.exit_status == 0
    )
    if not record.error_injected:
        received = _("not tested: the client sent no conversion request")
    elif crashed:
        received = _("crashed: {line}").format(line=_last_stderr_line(record))
    else:
        received = _describe_exit(record, target.timeout_s)
    results.append(
        _result(
            "error-reply",
            _("survives an 'E:' reply"),
            _("no crash after {reply}, exit status 0").format(
                reply=show_bytes(INJECTED_ERROR, limit=30)
            ),
            received,
            survived,
            _("An 'E:' reply is a normal answer: show it and carry on."),
        )
    )

    # closes cleanly (UDP has no connection to close)
    if not udp:
        results.append(judge_closing(record))

    # exits
    exited = not record.timed_out and record.exit_status == 0
    received = _describe_exit(record, target.timeout_s)
    if not exited and _last_stderr_line(record):
        received += f": {_last_stderr_line(record)}"
    results.append(
        _result(
            "exits",
            _("exits by itself, with status 0"),
            _("exit status 0 within {seconds:g} s").format(seconds=target.timeout_s),
            received,
            exited,
            _("When its input ends, the client should send C: or close, and exit with status 0."),
        )
    )
    return results


def judge_closing(record: ClientRecord) -> CheckResult:
    connections = record.connections
    ends = [log.end for log in connections]
    clean = (
        bool(connections)
        and all(end in (ConnectionEnd.CLOSE_REQUEST, ConnectionEnd.EOF) for end in ends)
        and not record.timed_out
    )
    if connections:
        received = ", ".join(_connection_end_text(end) for end in ends)
        if record.timed_out:
            received += _(" (the client was killed)")
    else:
        received = _("no connection")
    return _result(
        "closes-cleanly",
        _("closes the connection cleanly"),
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


def check_converter_client(target: ClientTarget) -> CheckReport:
    """Run the client against the scripted server and judge what it did."""
    if not target.command:
        raise UsageError(_("give the client command after '--'"))
    record = ClientRecord()
    udp = target.transport == "udp"
    server = ScriptedDatagramServer(target, record) if udp else ScriptedServer(target, record)
    record.port = server.port
    try:
        run_client(target, record, server.port)
    finally:
        server.stop()
    return CheckReport(
        subject="converter-client",
        target=shlex.join(target.command),
        transport=target.transport,
        framing="datagram" if udp else target.framing,
        results=tuple(judge(target, record)),
    )
