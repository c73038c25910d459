"""What a trace reports: one `TraceEvent` per socket call, handed to a `Tracer` callable.

Events carry facts only (call, fd, byte counts, the first bytes, addresses); the CLI renders
them in the chosen language, so the same event reads as English or German.
"""

from __future__ import annotations

import enum
import socket
from collections.abc import Callable
from dataclasses import dataclass

# A trace shows the first bytes of each call; the count is always exact. 256 bytes is sixteen
# hexdump lines, more than a student reads, and keeps a bulk transfer from flooding the terminal.
TRACE_DATA_BYTES = 256


class Call(enum.Enum):
    """The socket calls a trace reports, named as in Python's socket module."""

    SOCKET = "socket"
    BIND = "bind"
    LISTEN = "listen"
    ACCEPT = "accept"
    CONNECT = "connect"
    SEND = "send"
    SENDALL = "sendall"
    SENDTO = "sendto"
    SENDMSG = "sendmsg"
    RECV = "recv"
    RECVFROM = "recvfrom"
    RECVMSG = "recvmsg"
    RECV_INTO = "recv_into"
    # A program in C or Java may move a socket's bytes with the file calls; `socklab trace`
    # reads them from strace and names them as the program called them.
    READ = "read"
    WRITE = "write"
    SETTIMEOUT = "settimeout"
    SHUTDOWN = "shutdown"
    CLOSE = "close"


@dataclass(frozen=True, slots=True)
class TraceEvent:
    """One socket call, reported after it returned (or failed).

    `fd` names the socket (the number the OS gave it); `transport` is "tcp" or "udp".
    `nbytes` is the exact count sent or received; `data` its first TRACE_DATA_BYTES.
    `address` is the other side where the call has one (bind/connect target, accept's new peer,
    sendto's destination, recvfrom's sender). `argument` is the call's number (listen backlog,
    recv buffer size, timeout seconds or None). `new_fd` is the socket accept() returned.
    `error` is the exception text when the call failed; `timed_out` when it ran out of time.
    `sequence` counts the receive calls on this socket (1, 2, ...), so boundaries can be named.
    `ipv6` tells AF_INET6 from AF_INET for socket().
    For close(), `listening` says the socket was a listening one (it has no peer, so no FIN)
    and `connected` whether it had a peer at all (a client whose connect() failed has none).
    `local` and `peer` name a TCP receive's connection (its socket's two ends), so a live view
    can key the call to the segments it captured; None where the call has none or they are
    unknown.
    """

    call: Call
    fd: int
    transport: str
    nbytes: int | None = None
    data: bytes = b""
    address: tuple[str, int] | None = None
    argument: float | int | None = None
    new_fd: int | None = None
    error: str | None = None
    timed_out: bool = False
    sequence: int = 0
    ipv6: bool = False
    listening: bool = False
    connected: bool = True
    local: tuple[str, int] | None = None
    peer: tuple[str, int] | None = None


Tracer = Callable[[TraceEvent], None]


def transport_of(sock_type: int) -> str:
    return "udp" if sock_type & socket.SOCK_DGRAM == socket.SOCK_DGRAM else "tcp"


def socket_address(address: object) -> tuple[str, int] | None:
    """(host, port) from any sockaddr tuple (IPv6 ones have four fields); None otherwise."""
    if isinstance(address, tuple) and len(address) >= 2:
        return str(address[0]), int(address[1])
    return None
