"""Checks for the course texts' simple programs: the prep sheet's hello server and client, the
lecture's uppercase (K&R) server and client over TCP and UDP.

Same core as the converter's checks (`results.run_checks`): each check is data (`CourseCheck`:
id, title, the checks it depends on, a judge), a root cause is reported once and its dependants
are "not reached". The oracle is socklab's own core: `protocol.upper` says what an uppercase
server answers; the prep sheet's lines are the ones socklab's own hello programs print.

Servers are probed at HOST:PORT with the converter checker's probes (`probe.StreamProbe`,
`DatagramProbe`: every wait bounded by `--timeout`). Clients run as `-- COMMAND {host} {port}`
with the converter checker's runner (`client.run_client`) against a small recording peer on a
free loopback port, which plays socklab's counterpart (the sheet's server: read the message,
close; the K&R servers: one sentence, one reply).

What the programs are held to (docs/CHECK.md):
  hello-server   accepts a connection, sends nothing back, closes after the message, stops;
  hello-client   connects, sends exactly "Hi server!", closes normally, prints the sheet's
                 lines, exits with status 0;
  upper-server   TCP: one sentence, its upper case, close, and the next client is served;
                 UDP: one reply per datagram, to the sender's address;
  upper-client   sends its input sentence, shows the reply, (TCP) closes, exits with status 0.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shlex
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from socklab.errors import NetworkError, RefusedError, UsageError
from socklab.i18n import _, format_number, ngettext
from socklab.protocol.reflection import answer_datagram
from socklab.protocol.upper import SENTENCE_BYTES, handle_upper_datagram, upper_case
from socklab.runtimes.config import Transport
from socklab.runtimes.oserrors import translated_oserrors
from socklab.tools.check.client import (
    MAX_CONNECTIONS,
    POLL_S,
    SERVER_DRAIN_S,
    ClientRecord,
    ClientTarget,
    ConnectionEnd,
    ConnectionLog,
    describe_exit,
    judge_connects,
    last_stderr_line,
    run_client,
    substitute,
    terminal_lines,
)
from socklab.tools.check.probe import (
    MAX_RECEIVED_BYTES,
    DatagramProbe,
    Deadline,
    Ending,
    Received,
    StreamProbe,
)
from socklab.tools.check.results import (
    CheckObserver,
    CheckReport,
    Finding,
    run_checks,
    show_bytes,
)
from socklab.tools.check.server import ServerTarget, describe_error, describe_refused

HELLO_MESSAGE = b"Hi server!"
# The sentence the upper checks send (the slides' prompt asks for a lowercase sentence).
UPPER_SENTENCE = b"hello world"
DEFAULT_UPPER_INPUT = "hello world"
# How long the UDP checks listen for a reply that should not come (a second reply).
EXTRA_REPLY_WAIT_S = 0.3
# The report's framing for these programs over TCP: a plain byte stream, no message framing.
STREAM = "stream"


@dataclass(frozen=True, slots=True)
class CourseCheck:
    """One check of a course program: `judge` looks (probes, or reads the client's record)."""

    check_id: str
    title: str
    judge: Callable[[], Finding]
    depends_on: tuple[str, ...] = field(default=())


def hello_lines(host: str, port: int) -> list[str]:
    """The prep sheet's client lines, in order, for a server at host:port."""
    return [
        "Client: Starting...",
        "Client: Socket created.",
        f"Client: Connecting to {host}:{port}",
        "Client: Connected!",
        f"Client: Sent: {HELLO_MESSAGE.decode()}",
        "Client: Socket closed.",
    ]


def run_course_checks(
    subject: str,
    target: str,
    transport: str,
    checks: Sequence[CourseCheck],
    observer: CheckObserver | None,
    framing: str = STREAM,
) -> CheckReport:
    """Run `checks` in order on the one core; refused in the first one is raised."""
    report = CheckReport(
        subject=subject,
        target=target,
        transport=transport,
        framing="datagram" if transport == "udp" else framing,
        results=(),
    )
    if observer is not None:
        observer.run_started(report)
    first_id = checks[0].check_id
    results, interrupted = run_checks(
        checks, lambda check: _judged(check, first=check.check_id == first_id), observer
    )
    return dataclasses.replace(report, results=tuple(results), interrupted=interrupted)


def _judged(check: CourseCheck, *, first: bool) -> Finding:
    """A network error in the middle of a check is its deviation, never an exception; refused
    in the first check is raised (nothing listens at all: one line, no report), as the
    converter checker does."""
    try:
        return check.judge()
    except RefusedError:
        if first:
            raise
        return Finding(check.title, describe_refused(), False, ends_run=True)
    except NetworkError as error:
        return Finding(check.title, describe_error(error), False)


# --- hello-server ------------------------------------------------------------------------------


@dataclass
class _HelloServerRun:
    target: ServerTarget
    answered: Received | None = None


def hello_server_checks(target: ServerTarget) -> list[CourseCheck]:
    """The sheet's server serves one connection: all checks share it, in order."""
    run = _HelloServerRun(target)
    return [
        CourseCheck("accepts", _("accepts a connection"), lambda: _hello_accepts(run)),
        CourseCheck(
            "closes",
            _("closes the connection after the message"),
            lambda: _hello_closes(run),
            ("accepts",),
        ),
        CourseCheck("silent", _("sends nothing back"), lambda: _hello_silent(run), ("closes",)),
        CourseCheck(
            "stops", _("stops after its one connection"), lambda: _hello_stops(run), ("closes",)
        ),
    ]


def _hello_accepts(run: _HelloServerRun) -> Finding:
    target = run.target
    deadline = Deadline(target.timeout_s)
    # Refused here is raised by the caller's first connection: nothing listens at all.
    with StreamProbe(target.host, target.port, deadline) as probe:
        probe.send(HELLO_MESSAGE)
        run.answered = probe.receive_eof()
    return Finding(
        _("a TCP connection to {address}").format(address=target.address),
        _("connected, sent {message}").format(message=show_bytes(HELLO_MESSAGE)),
        True,
    )


def _hello_closes(run: _HelloServerRun) -> Finding:
    answered = run.answered
    assert answered is not None
    closed = answered.ending in (Ending.COMPLETE, Ending.CLOSED)
    received = _("closed normally") if closed else answered.describe()
    return Finding(
        _("the server closes the connection (FIN) within {seconds} s").format(
            seconds=format_number(run.target.timeout_s, None)
        ),
        received,
        closed,
        _(
            "After recv() the sheet's server closes the client's connection: client_connection.close()."
        ),
    )


def _hello_silent(run: _HelloServerRun) -> Finding:
    answered = run.answered
    assert answered is not None
    return Finding(
        _("no bytes"),
        show_bytes(answered.data) if answered.data else _("no bytes"),
        not answered.data,
        _("The sheet's server only receives; the client does not read a reply."),
    )


def _hello_stops(run: _HelloServerRun) -> Finding:
    """Refused within the timeout: the listening socket is closed. Connections accepted on the
    way are the kernel's backlog before close(), not a finding."""
    target = run.target
    deadline = Deadline(target.timeout_s)
    while True:
        try:
            StreamProbe(target.host, target.port, Deadline(min(deadline.remaining(), 1.0))).close()
        except RefusedError:
            return Finding(
                _("connections refused after the first one"), _("refused: it stopped"), True
            )
        except OSError:
            pass
        if deadline.expired:
            break
        time.sleep(POLL_S)
    return Finding(
        _("connections refused after the first one"),
        _("still accepting connections after {seconds} s").format(
            seconds=format_number(target.timeout_s, None)
        ),
        False,
        _(
            "The sheet's server serves one connection, then closes its socket: server_socket.close()."
        ),
    )


def check_hello_server(target: ServerTarget, observer: CheckObserver | None = None) -> CheckReport:
    """Raises RefusedError if nothing listens at all (the first check's connection)."""
    return run_course_checks(
        "hello-server", target.address, "tcp", hello_server_checks(target), observer
    )


# --- upper-server ------------------------------------------------------------------------------


def upper_server_checks(target: ServerTarget, *, udp: bool) -> list[CourseCheck]:
    if udp:
        return [
            CourseCheck(
                "udp-upper", _("a datagram gets its upper case"), lambda: _udp_upper(target)
            ),
            CourseCheck(
                "udp-one-reply",
                _("one reply per datagram"),
                lambda: _udp_one_reply(target),
                ("udp-upper",),
            ),
            CourseCheck(
                "udp-sender-address",
                _("the reply goes to the sender's address"),
                lambda: _udp_sender_address(target),
                ("udp-upper",),
            ),
        ]
    first = _UpperExchange(target)
    return [
        CourseCheck("upper", _("a sentence gets its upper case"), first.judge_reply),
        CourseCheck("closes", _("then closes the connection"), first.judge_close, ("upper",)),
        CourseCheck(
            "next-client",
            _("serves the next client after closing"),
            lambda: _UpperExchange(target, UPPER_SENTENCE.title()).judge_reply(),
            ("closes",),
        ),
    ]


class _UpperExchange:
    """One connection of the K&R client: the sentence, no terminator; the reply; the close."""

    def __init__(self, target: ServerTarget, sentence: bytes = UPPER_SENTENCE) -> None:
        self.target = target
        self.sentence = sentence
        self.expected = upper_case(sentence, max_reply_bytes=SENTENCE_BYTES)
        self.closing: Received | None = None

    def judge_reply(self) -> Finding:
        deadline = Deadline(self.target.timeout_s)
        with StreamProbe(self.target.host, self.target.port, deadline) as probe:
            probe.send(self.sentence)
            received = probe.receive_until(lambda data: len(data) >= len(self.expected))
            if received.ending is Ending.COMPLETE and received.data == self.expected:
                self.closing = probe.receive_eof()
        passed = received.ending is not Ending.TIMEOUT and received.data == self.expected
        return Finding(
            show_bytes(self.expected),
            received.describe(),
            passed,
            _("The server reads the sentence with one recv() and sends it back upper-cased."),
        )

    def judge_close(self) -> Finding:
        closing = self.closing
        assert closing is not None
        closed = closing.ending in (Ending.COMPLETE, Ending.CLOSED) and not closing.data
        return Finding(
            _("the connection closed after the reply (FIN)"),
            _("closed normally") if closed else closing.describe(),
            closed,
            _("One sentence, one reply, then connectionSocket.close(): the client waits for it."),
        )


def _udp_expected(datagram: bytes) -> bytes:
    return handle_upper_datagram(datagram)


def _show_datagram(datagram: bytes | None, timeout_s: float) -> str:
    if datagram is None:
        return _("nothing within {seconds} s").format(seconds=format_number(timeout_s, None))
    return show_bytes(datagram)


def _udp_upper(target: ServerTarget) -> Finding:
    expected = _udp_expected(UPPER_SENTENCE)
    with DatagramProbe(target.host, target.port, Deadline(target.timeout_s)) as probe:
        probe.send(UPPER_SENTENCE)
        reply = probe.receive()
    return Finding(
        show_bytes(expected),
        _show_datagram(reply, target.timeout_s),
        reply == expected,
        _("Answer each datagram with sendto(message.upper(), clientAddress)."),
    )


def _udp_one_reply(target: ServerTarget) -> Finding:
    sentence = b"one datagram"
    expected = _udp_expected(sentence)
    replies: list[bytes] = []
    with DatagramProbe(target.host, target.port, Deadline(target.timeout_s)) as probe:
        probe.send(sentence)
        first = probe.receive()
        if first is not None:
            replies.append(first)
            probe.deadline = Deadline(min(target.timeout_s, EXTRA_REPLY_WAIT_S))
            extra = probe.receive()
            if extra is not None:
                replies.append(extra)
    received = ", ".join(show_bytes(reply) for reply in replies) or _show_datagram(
        None, target.timeout_s
    )
    return Finding(
        _("exactly one reply: {reply}").format(reply=show_bytes(expected)),
        received,
        replies == [expected],
        _("Each recvfrom() gets exactly one sendto() back."),
    )


def _udp_sender_address(target: ServerTarget) -> Finding:
    """Two clients on two ports: each gets its own reply, none the other's."""
    sentences = (b"first sender", b"second sender")
    deadline = Deadline(target.timeout_s)
    with (
        DatagramProbe(target.host, target.port, deadline) as one,
        DatagramProbe(target.host, target.port, deadline) as two,
    ):
        one.send(sentences[0])
        two.send(sentences[1])
        replies = (one.receive(), two.receive())
    expected = tuple(_udp_expected(sentence) for sentence in sentences)
    return Finding(
        _("{first} to the first client, {second} to the second").format(
            first=show_bytes(expected[0]), second=show_bytes(expected[1])
        ),
        _("{first} to the first client, {second} to the second").format(
            first=_show_datagram(replies[0], target.timeout_s),
            second=_show_datagram(replies[1], target.timeout_s),
        ),
        replies == expected,
        _("Reply to the address recvfrom() returned (clientAddress), not to a fixed one."),
    )


def check_upper_server(
    target: ServerTarget, *, udp: bool, observer: CheckObserver | None = None
) -> CheckReport:
    """Raises RefusedError if nothing listens at all (TCP: the first connection; UDP: the ICMP
    "port unreachable" of the first datagram)."""
    checks = upper_server_checks(target, udp=udp)
    return run_course_checks(
        "upper-server", target.address, "udp" if udp else "tcp", checks, observer
    )


# --- clients: a recording peer -----------------------------------------------------------------


class RecordingPeer:
    """socklab's counterpart for a course client, on a free loopback port, recording into a
    `ClientRecord` (one `ConnectionLog` per connection or UDP peer; `requests` holds what came).

    `answer(data)` is the reply to the first read (the K&R servers: one recv(), one reply, close)
    or None to read until the client closes (the sheet's hello server). Bounded: at most
    MAX_CONNECTIONS connections or peers and MAX_RECEIVED_BYTES each.
    """

    def __init__(
        self,
        transport: Transport,
        host: str,
        record: ClientRecord,
        answer: Callable[[bytes], bytes] | None,
        timeout_s: float,
    ) -> None:
        self.transport = transport
        self.record = record
        self.answer = answer
        self.timeout_s = timeout_s
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        kind = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
        with translated_oserrors(host=host, port=0):
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            self._sock = socket.socket(family, kind)
            self._sock.bind((host, 0))
            if transport == "tcp":
                self._sock.listen(MAX_CONNECTIONS)
        self._sock.settimeout(POLL_S)
        self.port = int(self._sock.getsockname()[1])
        serve = self._serve_datagrams if transport == "udp" else self._accept
        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, peer = self._sock.accept()
            except OSError:
                continue  # the poll timeout, or a connection reset before accept()
            if len(self.record.connections) >= MAX_CONNECTIONS:
                connection.close()
                continue
            log = ConnectionLog(peer=f"{peer[0]}:{peer[1]}")
            self.record.connections.append(log)
            thread = threading.Thread(target=self._serve, args=(connection, log), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, connection: socket.socket, log: ConnectionLog) -> None:
        received = bytearray()
        deadline = Deadline(self.timeout_s + SERVER_DRAIN_S)
        with connection:
            while not self._stop.is_set() and not deadline.expired:
                connection.settimeout(min(POLL_S, max(deadline.remaining(), 0.001)))
                try:
                    chunk = connection.recv(SENTENCE_BYTES)
                except TimeoutError:
                    continue
                except OSError:
                    log.end = ConnectionEnd.RESET
                    break
                if not chunk:
                    log.end = ConnectionEnd.EOF
                    break
                received += chunk
                if self.answer is not None:
                    reply = self.answer(chunk)
                    log.replies.append(reply)
                    with contextlib.suppress(OSError):
                        connection.sendall(reply)
                    log.end = ConnectionEnd.EOF  # we close: one sentence, one reply
                    break
                if len(received) > MAX_RECEIVED_BYTES:
                    break
        log.requests.append(bytes(received))

    def _serve_datagrams(self) -> None:
        peers: dict[object, ConnectionLog] = {}
        while not self._stop.is_set():
            try:
                datagram, peer = self._sock.recvfrom(65536)
            except OSError:
                continue
            log = peers.get(peer)
            if log is None:
                if len(peers) >= MAX_CONNECTIONS:
                    continue
                log = peers[peer] = ConnectionLog(peer=f"{peer[0]}:{peer[1]}")
                self.record.connections.append(log)
            if len(log.requests) >= MAX_CONNECTIONS:
                continue
            log.requests.append(datagram)
            # The loop guards of every UDP server (no reply to an empty datagram, to a port
            # below 1024, or where it would bounce).
            if self.answer is None:
                continue
            reply = answer_datagram(datagram, peer[1], self.answer)
            if not isinstance(reply, bytes):
                continue
            log.replies.append(reply)
            with contextlib.suppress(OSError):
                self._sock.sendto(reply, peer)

    def stop(self) -> None:
        deadline = Deadline(SERVER_DRAIN_S)
        for thread in self._threads:
            thread.join(deadline.remaining())
        self._stop.set()
        self._thread.join(SERVER_DRAIN_S)
        self._sock.close()


def _run_client(
    subject: str,
    target: ClientTarget,
    answer: Callable[[bytes], bytes] | None,
    checks_for: Callable[[ClientTarget, ClientRecord], list[CourseCheck]],
    observer: CheckObserver | None,
) -> CheckReport:
    if not target.command:
        raise UsageError(_("give the client command after '--'"))
    record = ClientRecord()
    peer = RecordingPeer(target.transport, target.host, record, answer, target.timeout_s)
    record.port = peer.port
    report = CheckReport(
        subject=subject,
        target=shlex.join(substitute(target.command, target.host, peer.port)),
        transport=target.transport,
        framing="datagram" if target.transport == "udp" else STREAM,
        results=(),
    )
    try:
        if observer is not None:
            observer.run_started(report)
        run_client(target, record, peer.port)
    except KeyboardInterrupt:
        return dataclasses.replace(report, interrupted=True)
    finally:
        peer.stop()
    results, _interrupted = run_checks(
        checks_for(target, record), lambda check: check.judge(), observer
    )
    return dataclasses.replace(report, results=tuple(results))


def _sent(record: ClientRecord) -> bytes:
    return b"".join(request for log in record.connections for request in log.requests)


def _judge_exits(target: ClientTarget, record: ClientRecord) -> Finding:
    exited = not record.timed_out and record.exit_status == 0
    received = describe_exit(record, target.timeout_s)
    if not exited and last_stderr_line(record):
        received += f": {last_stderr_line(record)}"
    return Finding(
        _("exit status 0 within {seconds} s").format(seconds=format_number(target.timeout_s, None)),
        received,
        exited,
        _("The program ends by itself once its exchange is done, without an error."),
    )


def _judge_closes(record: ClientRecord) -> Finding:
    ends = [log.end for log in record.connections]
    if record.timed_out:
        return Finding(
            _("a normal close (no reset)"),
            "",
            False,
            not_reached=_(
                "not reached: the client was still running at the timeout, so it never closed by itself"
            ),
        )
    clean = bool(ends) and all(end is ConnectionEnd.EOF for end in ends)
    texts = {
        ConnectionEnd.EOF: _("closed normally"),
        ConnectionEnd.RESET: _("reset (RST)"),
        ConnectionEnd.OPEN: _("left open"),
        ConnectionEnd.CLOSE_REQUEST: _("closed normally"),
    }
    return Finding(
        _("a normal close (no reset)"),
        ", ".join(texts[end] for end in ends),
        clean,
        _("Close the socket when done: client_socket.close()."),
    )


def _judge_exact_bytes(expected: bytes, record: ClientRecord, note: str) -> Finding:
    sent = _sent(record)
    return Finding(show_bytes(expected), show_bytes(sent), sent == expected, note)


def _judge_lines(expected: list[str], record: ClientRecord) -> Finding:
    """Each expected line in the output, in this order (other lines may come between)."""
    lines = [line.rstrip() for line in terminal_lines(record.stdout)]
    position = 0
    missing = ""
    for line in expected:
        try:
            position = lines.index(line, position) + 1
        except ValueError:
            missing = line
            break
    shown = "; ".join(expected)
    if not missing:
        return Finding(
            shown,
            ngettext("the {count} line", "all {count} lines, in order", len(expected)).format(
                count=format_number(len(expected))
            ),
            True,
        )
    return Finding(
        shown,
        _("missing {line}").format(line=show_bytes(missing.encode())),
        False,
        _("Print the sheet's lines as they are, each on its own line, in the sheet's order."),
    )


def hello_client_checks(target: ClientTarget, record: ClientRecord) -> list[CourseCheck]:
    """The prep sheet's client, judged from the record of its run."""
    return [
        CourseCheck(
            "connects", _("connects to the server"), lambda: judge_connects(target, record)
        ),
        CourseCheck(
            "message",
            _("sends the sheet's message"),
            lambda: _judge_exact_bytes(
                HELLO_MESSAGE,
                record,
                _("Send exactly 'Hi server!', UTF-8 encoded: sendall(message.encode('utf-8'))."),
            ),
            ("connects",),
        ),
        CourseCheck(
            "closes-cleanly",
            _("closes the connection cleanly"),
            lambda: _judge_closes(record),
            ("connects",),
        ),
        CourseCheck(
            "lines",
            _("prints the sheet's lines"),
            lambda: _judge_lines(hello_lines(target.host, record.port), record),
            ("connects",),
        ),
        CourseCheck(
            "exits", _("exits by itself, with status 0"), lambda: _judge_exits(target, record)
        ),
    ]


def check_hello_client(target: ClientTarget, observer: CheckObserver | None = None) -> CheckReport:
    return _run_client("hello-client", target, None, hello_client_checks, observer)


def upper_sentence(target: ClientTarget) -> bytes:
    """The sentence the client is given on its standard input (the first input line)."""
    return (target.input_lines[0] if target.input_lines else DEFAULT_UPPER_INPUT).encode()


def upper_answer(transport: Transport) -> Callable[[bytes], bytes]:
    """What socklab's uppercase server answers (protocol.upper): the oracle and the peer."""
    if transport == "udp":
        return handle_upper_datagram
    return lambda data: upper_case(data, max_reply_bytes=SENTENCE_BYTES)


def upper_client_checks(target: ClientTarget, record: ClientRecord) -> list[CourseCheck]:
    """The lecture's K&R client (TCP or UDP), judged from the record of its run."""
    sentence = upper_sentence(target)
    reply = upper_answer(target.transport)(sentence)
    return [
        CourseCheck(
            "connects", _("connects to the server"), lambda: judge_connects(target, record)
        ),
        CourseCheck(
            "sentence",
            _("sends the sentence typed in"),
            lambda: _judge_exact_bytes(
                sentence,
                record,
                _("Send the input line as it is: input() strips the newline, send() the rest."),
            ),
            ("connects",),
        ),
        CourseCheck(
            "reply-shown",
            _("shows the reply"),
            lambda: _judge_reply_shown(reply, record),
            ("sentence",),
        ),
        CourseCheck(
            "exits", _("exits by itself, with status 0"), lambda: _judge_exits(target, record)
        ),
    ]


def check_upper_client(target: ClientTarget, observer: CheckObserver | None = None) -> CheckReport:
    answer = upper_answer(target.transport)
    return _run_client(
        "upper-client",
        target,
        answer,
        upper_client_checks,
        observer,
    )


def _judge_reply_shown(reply: bytes, record: ClientRecord) -> Finding:
    text = reply.decode("utf-8", errors="replace")
    shown = text in record.stdout
    last = terminal_lines(record.stdout.strip())[-1:] or [""]
    received = (
        _("shown")
        if shown
        else _("not shown; last line: {line}").format(line=show_bytes(last[0].encode()))
    )
    return Finding(
        _("{reply} in the output").format(reply=show_bytes(reply)),
        received,
        shown,
        _("Print what recv() returned: print(modifiedSentence.decode())."),
    )


def subject_check_ids(subject: str, transport: str) -> list[str]:
    """The ids of a subject's checks in report order (the CLI aligns its columns by them)."""
    udp = transport == "udp"
    server = ServerTarget(host="127.0.0.1", port=0)
    client = ClientTarget(command=("-",), transport="udp" if udp else "tcp")
    match subject:
        case "hello-server":
            checks = hello_server_checks(server)
        case "upper-server":
            checks = upper_server_checks(server, udp=udp)
        case "hello-client":
            checks = hello_client_checks(client, ClientRecord())
        case "upper-client":
            checks = upper_client_checks(client, ClientRecord())
        case _:
            return []
    return [check.check_id for check in checks]
