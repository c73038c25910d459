"""The two readers of `socklab trace`, fed lines directly: strace's output and the hook's pipe.

Both read what a student's program (and its peers) produced, so besides the normal lines they
get hostile ones: terminal escapes in the bytes, broken JSON, wrong types, lines too long.
"""

from __future__ import annotations

import socket

from socklab.tools.trace.strace import StraceParser
from socklab.tools.trace.wire import MAX_EVENT_BYTES, decode_event, encode_event
from socklab.tracing import Call, TracedSocket, TraceEvent

SERVER_LINES = [
    "4711 socket(AF_INET, SOCK_STREAM, IPPROTO_IP) = 3<TCP:[3493974]>",
    "4711 bind(3<TCP:[3493974]>, {sa_family=AF_INET, sin_port=htons(5000), "
    'sin_addr=inet_addr("\\x31\\x32\\x37\\x2e\\x30\\x2e\\x30\\x2e\\x31")}, 16) = 0',
    "4711 listen(3<TCP:[127.0.0.1:5000]>, 5) = 0",
    "4711 accept(3<TCP:[127.0.0.1:5000]>, {sa_family=AF_INET, sin_port=htons(41234), "
    'sin_addr=inet_addr("\\x31\\x32\\x37\\x2e\\x30\\x2e\\x30\\x2e\\x31")}, [16]) '
    "= 4<TCP:[127.0.0.1:5000->127.0.0.1:41234]>",
    # a thread's read() interrupted in strace's output by another thread's line
    "4712 read(4<TCP:[127.0.0.1:5000->127.0.0.1:41234]>,  <unfinished ...>",
    '4711 write(1</dev/pts/0>, "\\x6f\\x6b\\x0a", 3) = 3',
    '4712 <... read resumed>"\\x68\\x69\\x1b\\x5b\\x32\\x4a", 1024) = 6',
    '4712 sendto(4<TCP:[127.0.0.1:5000->127.0.0.1:41234]>, "\\x48\\x49", 2, 0, NULL, 0) = 2',
    '4712 read(4<TCP:[127.0.0.1:5000->127.0.0.1:41234]>, "", 1024) = 0',
    "4712 close(4<TCP:[127.0.0.1:5000->127.0.0.1:41234]>) = 0",
    "4711 close(5</etc/passwd>) = 0",
    "4711 close(3<TCP:[127.0.0.1:5000]>) = 0",
]


def test_strace_lines_become_the_events_of_a_tcp_server() -> None:
    parser = StraceParser()
    events = [event for line in SERVER_LINES for event in parser.feed_line(line)]
    assert [event.call for event in events] == [
        Call.SOCKET, Call.BIND, Call.LISTEN, Call.ACCEPT, Call.READ, Call.SEND, Call.READ,
        Call.CLOSE, Call.CLOSE,
    ]  # fmt: skip
    socket_event, bind, listen, accept, first_read, send, last_read, close, close_listener = events
    assert (socket_event.fd, socket_event.transport, socket_event.ipv6) == (3, "tcp", False)
    assert bind.address == ("127.0.0.1", 5000)
    assert listen.argument == 5
    assert (accept.fd, accept.new_fd, accept.address) == (3, 4, ("127.0.0.1", 41234))
    assert (first_read.nbytes, first_read.data, first_read.argument) == (6, b"hi\x1b[2J", 1024)
    assert (first_read.sequence, last_read.sequence, last_read.nbytes) == (1, 2, 0)
    assert (send.nbytes, send.data) == (2, b"HI")
    assert (close.fd, close.connected, close.listening) == (4, True, False)  # sends FIN
    assert (close_listener.fd, close_listener.connected, close_listener.listening) == (
        3,
        False,
        True,
    )


def test_strace_udp_ipv6_timeouts_and_errors() -> None:
    parser = StraceParser()
    lines = [
        "socket(AF_INET6, SOCK_DGRAM, IPPROTO_IP) = 3<UDPv6:[77]>",
        "setsockopt(3<UDPv6:[77]>, SOL_SOCKET, SO_RCVTIMEO_OLD, {tv_sec=2, tv_usec=500000}, 16) = 0",
        'sendto(3<UDPv6:[77]>, "\\x55\\x3a\\x61", 3, 0, {sa_family=AF_INET6, sin6_port=htons(50000), '
        'sin6_flowinfo=htonl(0), inet_pton(AF_INET6, "\\x3a\\x3a\\x31", &sin6_addr), '
        "sin6_scope_id=0}, 28) = 3",
        "recvfrom(3<UDPv6:[77]>, 0x7ffd5c1b0e40, 2048, 0, 0x7ffd5c1b0d30, [28]) "
        "= -1 EAGAIN (Resource temporarily unavailable)",
        "socket(AF_INET, SOCK_STREAM, IPPROTO_IP) = 4<TCP:[78]>",
        'connect(4<TCP:[78]>, {sa_family=AF_INET, sin_port=htons(1), sin_addr=inet_addr("\\x31")}, '
        "16) = -1 ECONNREFUSED (Connection refused)",
    ]
    events = [event for line in lines for event in parser.feed_line(line)]
    assert [event.call for event in events] == [
        Call.SOCKET, Call.SETTIMEOUT, Call.SENDTO, Call.RECVFROM, Call.SOCKET, Call.CONNECT,
    ]  # fmt: skip
    assert events[0].ipv6 and events[0].transport == "udp"
    assert events[1].argument == 2.5
    assert (events[2].address, events[2].data) == (("::1", 50000), b"U:a")
    assert events[3].timed_out and events[3].argument == 2048
    assert events[5].error == "ECONNREFUSED (Connection refused)"
    assert events[5].address == ("1", 1)


def test_strace_lines_that_are_not_socket_calls_are_skipped() -> None:
    parser = StraceParser()
    for line in [
        '1 read(0</dev/pts/0>, "\\x68", 1024) = 1',  # a terminal, not a socket
        "1 socket(AF_UNIX, SOCK_STREAM|SOCK_CLOEXEC, 0) = 3<UNIX:[99]>",
        "1 <... read resumed>garbage",  # resumes nothing started
        "not strace at all",
        "1 recvfrom(7<TCP:[1]>, 0x1, 10, MSG_DONTWAIT, NULL, NULL) = -1 EAGAIN (Resource temporarily unavailable)",
    ]:
        assert parser.feed_line(line) == []


def test_events_cross_the_pipe_unchanged() -> None:
    event = TraceEvent(
        Call.RECVFROM, 5, "udp", nbytes=3, data=b"\x00\xff\n", address=("::1", 9), argument=2048,
        sequence=2, ipv6=True,
    )  # fmt: skip
    line = encode_event(event)
    assert line.endswith(b"\n") and b"\n" not in line[:-1]
    assert decode_event(line) == event
    for close in (
        TraceEvent(Call.CLOSE, 3, "tcp", listening=True, connected=False),
        TraceEvent(Call.CLOSE, 4, "tcp"),
        TraceEvent(Call.CLOSE, 5, "tcp", connected=False),
    ):
        assert decode_event(encode_event(close)) == close


def test_hostile_pipe_lines_are_dropped_or_escaped() -> None:
    for line in [
        b"not json\n",
        b"[1, 2]\n",
        b'{"call": "fork", "fd": 3, "transport": "tcp"}\n',
        b'{"call": "recv", "fd": -1, "transport": "tcp"}\n',
        b'{"call": "recv", "fd": true, "transport": "tcp"}\n',
        b'{"call": "recv", "fd": 3, "transport": "sctp"}\n',
        b'{"call": "recv", "fd": 3, "transport": "tcp", "data": "zz"}\n',
        b'{"call": "connect", "fd": 3, "transport": "tcp", "address": ["h", 70000]}\n',
        b'{"call": "recv", "fd": 3, "transport": "tcp", "data": "' + b"00" * 257 + b'"}\n',
        b'{"call": "recv", "fd": 3, "transport": "tcp", "x": "' + b"a" * MAX_EVENT_BYTES + b'"}\n',
    ]:
        assert decode_event(line) is None, line
    forged = decode_event(
        b'{"call": "connect", "fd": 3, "transport": "tcp", "address": ["\\u001b]0;x\\u0007", 80],'
        b' "error": "\\n[trace] fd 9  forged"}\n'
    )
    assert forged is not None and forged.address is not None
    assert "\x1b" not in forged.address[0] and "\n" not in (forged.error or "\n")


def test_recv_into_and_sendmsg_are_reported_with_their_bytes() -> None:
    events: list[TraceEvent] = []
    left, right = socket.socketpair()
    with (
        TracedSocket(fileno=left.detach(), tracer=events.append) as sender,
        TracedSocket(fileno=right.detach(), tracer=events.append) as receiver,
    ):
        assert sender.sendmsg([b"ab", b"cd"]) == 4
        buffer = bytearray(10)
        assert receiver.recv_into(buffer) == 4
    sendmsg, recv_into = (event for event in events if event.call is not Call.CLOSE)
    assert (sendmsg.call, sendmsg.nbytes, sendmsg.data) == (Call.SENDMSG, 4, b"abcd")
    assert (recv_into.call, recv_into.nbytes, recv_into.data) == (Call.RECV_INTO, 4, b"abcd")
    assert (recv_into.argument, recv_into.sequence) == (10, 1)
