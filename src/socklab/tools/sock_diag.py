"""The kernel's TCP and UDP socket tables over netlink (sock_diag), read the way `ss` reads them.

Linux only. Strategy (man 7 sock_diag): one `NETLINK_SOCK_DIAG` socket, and for each wanted
(protocol, family) one `SOCK_DIAG_BY_FAMILY` dump request, an `inet_diag_req_v2`. The kernel
answers with one `inet_diag_msg` per socket — state, both endpoints, owner's UID, inode — until
`NLMSG_DONE`. Nothing is parsed from text (psutil reads /proc/net/tcp*), and the selection is
done by the kernel where it can be: a state mask (`idiag_states`) for listening sockets, and for
one port the bytecode filter ss compiles `sport = :P or dport = :P` into
(`INET_DIAG_REQ_BYTECODE`), so `--port P` gets back the few sockets on P, not the machine.

Addresses stay bytes until a socket survives the filter; the owner of a socket (its inode in some
process's /proc/PID/fd) is found elsewhere, and only for those sockets.
"""

from __future__ import annotations

import errno
import socket
import struct
from collections.abc import Iterator
from typing import NamedTuple

# <linux/netlink.h>, <linux/sock_diag.h>, <linux/inet_diag.h>
NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300  # NLM_F_ROOT | NLM_F_MATCH
NLMSG_ERROR = 2
NLMSG_DONE = 3
INET_DIAG_REQ_BYTECODE = 1
INET_DIAG_BC_JMP = 1
INET_DIAG_BC_S_GE = 2
INET_DIAG_BC_S_LE = 3
INET_DIAG_BC_D_GE = 4
INET_DIAG_BC_D_LE = 5

# Kernel TCP states (include/net/tcp_states.h), named as psutil names them, so a row reads the
# same on either path. 12 is TCP_NEW_SYN_RECV, a request socket: the kernel reports it as
# SYN_RECV (inet_req_diag_fill), as /proc/net/tcp does.
TCP_STATES = {
    1: "ESTABLISHED",
    2: "SYN_SENT",
    3: "SYN_RECV",
    4: "FIN_WAIT1",
    5: "FIN_WAIT2",
    6: "TIME_WAIT",
    7: "CLOSE",
    8: "CLOSE_WAIT",
    9: "LAST_ACK",
    10: "LISTEN",
    11: "CLOSING",
    12: "SYN_RECV",
}
TCP_LISTEN = 10
# An unconnected UDP socket is in TCP_CLOSE (7), a connect()ed one in TCP_ESTABLISHED (1).
UDP_UNCONNECTED = 7
# States 1..12, what `ss -a` asks for (SS_ALL). Bit 13, TCP_BOUND_INACTIVE, would add TCP
# sockets that are only bound (Linux 6.7+): neither ss -a nor /proc/net/tcp lists those.
ALL_STATES = sum(1 << state for state in range(1, 13))

_HEADER = struct.Struct("=IHHII")  # struct nlmsghdr
# struct nlmsghdr + struct inet_diag_msg, minus the ports: family, state, src, dst, uid, inode.
_MESSAGE = struct.Struct("=I H 10x B B 2x 4x 16s 16s 12x 12x I I")
_PORTS = struct.Struct(">HH")  # idiag_sport, idiag_dport: network byte order
_PORTS_OFFSET = _HEADER.size + 4
_REQUEST = struct.Struct("=BBBxI 48x")  # struct inet_diag_req_v2, socket id left zero
_ATTRIBUTE = struct.Struct("=HH")  # struct nlattr
_BC_OP = struct.Struct("=BBH")  # struct inet_diag_bc_op: code, yes, no
_ERROR = struct.Struct("=i")  # struct nlmsgerr starts with the negative errno
# A dump answer comes in pieces of at most 32 KiB (the kernel caps its dump buffer there,
# netlink_recvmsg's max_recvmsg_len); a larger buffer costs nothing and never truncates.
RECEIVE_BYTES = 65536
# The kernel answers at once; this only bounds a wait that should never happen.
TIMEOUT_S = 5.0


class SockDiagUnavailable(OSError):
    """Netlink sock_diag refused (no AF_NETLINK, a sandbox, a kernel without tcp/udp_diag)."""


class DiagSocket(NamedTuple):
    """One `inet_diag_msg`, addresses still packed (4 bytes used for IPv4, 16 for IPv6).

    A named tuple, not a dataclass: a busy machine has tens of thousands, and a tuple is made
    several times faster.
    """

    proto: str  # "tcp" | "udp"
    family: int  # socket.AF_INET | socket.AF_INET6
    state: int  # kernel TCP state number, see TCP_STATES
    src: bytes
    sport: int
    dst: bytes
    dport: int
    uid: int
    inode: int  # 0 when no file holds the socket (TIME_WAIT, orphaned)


def port_filter(port: int) -> bytes:
    """Bytecode for `sport = :P or dport = :P`, as ss compiles it (ssfilter_bytecode).

    Each comparison is two ops: the test, then an op whose `no` field carries the port. `yes`
    and `no` are forward jumps in bytes; the kernel accepts a socket when the program runs off
    its end exactly, and rejects it on a jump 4 bytes past the end (inet_diag_bc_run). Its audit
    (inet_diag_bc_audit) wants every `no` target on the chain of `yes` jumps, hence ss's JMP
    between the two halves of an OR.
    """
    ops = [
        # 0: sport >= P, else try dport (at 20)
        (INET_DIAG_BC_S_GE, 8, 20),
        (0, 0, port),
        # 8: sport <= P, else try dport
        (INET_DIAG_BC_S_LE, 8, 12),
        (0, 0, port),
        # 16: sport == P: jump to the end (36), accepted; `yes` only walks the audit on
        (INET_DIAG_BC_JMP, 4, 20),
        # 20: dport >= P, else reject (40 = end + 4)
        (INET_DIAG_BC_D_GE, 8, 20),
        (0, 0, port),
        # 28: dport <= P: run off the end, accepted; else reject
        (INET_DIAG_BC_D_LE, 8, 12),
        (0, 0, port),
    ]
    return b"".join(_BC_OP.pack(*op) for op in ops)


def build_request(
    proto: str, family: int, states: int, bytecode: bytes = b"", sequence: int = 1
) -> bytes:
    """One dump request: nlmsghdr + inet_diag_req_v2 [+ the bytecode attribute]."""
    protocol = socket.IPPROTO_UDP if proto == "udp" else socket.IPPROTO_TCP
    body = _REQUEST.pack(family, protocol, 0, states)
    if bytecode:
        body += _ATTRIBUTE.pack(_ATTRIBUTE.size + len(bytecode), INET_DIAG_REQ_BYTECODE) + bytecode
    flags = NLM_F_REQUEST | NLM_F_DUMP
    return _HEADER.pack(_HEADER.size + len(body), SOCK_DIAG_BY_FAMILY, flags, sequence, 0) + body


def parse_messages(data: bytes, proto: str) -> tuple[list[DiagSocket], bool]:
    """The sockets in one received buffer, and whether the dump ended (NLMSG_DONE) in it.

    Raises SockDiagUnavailable for an NLMSG_ERROR answer (e.g. ENOENT: no udp_diag module).
    """
    sockets: list[DiagSocket] = []
    offset, end = 0, len(data)
    while offset + _HEADER.size <= end:
        length, kind, _flags, _seq, _pid = _HEADER.unpack_from(data, offset)
        if length < _HEADER.size or offset + length > end:
            raise SockDiagUnavailable(errno.EBADMSG, "truncated netlink message")
        if kind == NLMSG_DONE:
            return sockets, True
        if kind == NLMSG_ERROR:
            (code,) = _ERROR.unpack_from(data, offset + _HEADER.size)
            raise SockDiagUnavailable(-code, f"sock_diag refused the {proto} dump")
        if kind == SOCK_DIAG_BY_FAMILY and length >= _MESSAGE.size:
            _len, _kind, family, state, src, dst, uid, inode = _MESSAGE.unpack_from(data, offset)
            sport, dport = _PORTS.unpack_from(data, offset + _PORTS_OFFSET)
            sockets.append(DiagSocket(proto, family, state, src, sport, dst, dport, uid, inode))
        # Messages are aligned to 4 bytes (NLMSG_ALIGN).
        offset += (length + 3) & ~3
    return sockets, False


def open_netlink() -> socket.socket:
    """A NETLINK_SOCK_DIAG socket, or SockDiagUnavailable (no AF_NETLINK, or refused)."""
    try:
        return socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_SOCK_DIAG)
    except (OSError, AttributeError) as exc:  # AttributeError: no AF_NETLINK on this OS
        raise SockDiagUnavailable(errno.EAFNOSUPPORT, f"no netlink sock_diag: {exc}") from exc


def read_sockets(
    protocols: tuple[str, ...] = ("tcp", "udp"),
    families: tuple[int, ...] = (socket.AF_INET, socket.AF_INET6),
    states: dict[str, int] | None = None,
    port: int | None = None,
) -> Iterator[DiagSocket]:
    """Every socket of the given protocols and families in the given states (all by default).

    `states` maps a protocol to its state mask; `port` keeps the sockets with that local or
    remote port (the kernel filters). Raises SockDiagUnavailable when netlink cannot be used.
    """
    bytecode = port_filter(port) if port is not None else b""
    with open_netlink() as diag:
        diag.settimeout(TIMEOUT_S)
        sequence = 0
        for proto in protocols:
            mask = (states or {}).get(proto, ALL_STATES)
            for family in families:
                sequence += 1
                try:
                    # One dump at a time: the kernel refuses a second while one runs (EBUSY).
                    diag.sendto(build_request(proto, family, mask, bytecode, sequence), (0, 0))
                    done = False
                    while not done:
                        found, done = parse_messages(diag.recv(RECEIVE_BYTES), proto)
                        yield from found
                except SockDiagUnavailable:
                    raise
                except OSError as exc:  # includes the timeout
                    raise SockDiagUnavailable(
                        exc.errno or errno.EIO, f"sock_diag read failed: {exc}"
                    ) from exc
