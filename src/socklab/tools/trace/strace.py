"""strace's output turned into the trace events of socklab's own sockets (C, Java, any program).

`socklab trace` runs programs that are not Python under

    strace -f -qq -yy -xx -s 256 -e trace=network,read,write,close -e signal=none -o PIPE COMMAND

and feeds each line to `StraceParser.feed_line`. Why these options (strace(1)):
`-f` follows threads and child processes (Java's are threads); `-yy` annotates every descriptor
with what it is, `3<TCP:[127.0.0.1:5000->127.0.0.1:41234]>`, so a read() on a socket is told from
a read() on a file without keeping a table of descriptors per process; `-xx` prints every byte as
`\\xNN`, so nothing a peer sent can break the line format; `-s 256` shows as many bytes as a trace
does (TRACE_DATA_BYTES); `-qq` and `-e signal=none` drop the attach, exit and signal lines.

Only TCP and UDP sockets are reported, in the calls `--trace` knows: socket, bind, listen,
accept, connect, send/sendto/sendmsg, recv/recvfrom/recvmsg, read/write, setsockopt(SO_RCVTIMEO)
as settimeout, shutdown, close. A call that would block on a non-blocking socket (EAGAIN,
EINPROGRESS) is not reported, as in `TracedSocket`; EAGAIN on a socket with SO_RCVTIMEO set is
the receive timeout, reported as such.

Every line is the traced program's, carrying bytes from its peers: lines are bounded by the
caller, and anything that does not parse is skipped, never guessed at.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from socklab.tracing.events import TRACE_DATA_BYTES, Call, TraceEvent

# The options above, in the order strace takes them (the program's command follows "--").
STRACE_OPTIONS = (
    "-f",
    "-qq",
    "-yy",
    "-xx",
    "-s",
    str(TRACE_DATA_BYTES),
    "-e",
    "trace=network,read,write,close",
    "-e",
    "signal=none",
)

_PID_PREFIX = re.compile(r"^(?:\[pid\s+)?(\d+)\]?\s+")
_UNFINISHED = " <unfinished ...>"
_RESUMED = re.compile(r"^<\.\.\. (\w+) resumed>\s?")
_CALL = re.compile(
    r"^(?P<name>\w+)\((?P<args>.*)\)\s+=\s+(?P<ret>-?\d+)(?:<(?P<note>[^>]*(?:->[^>]*)?)>)?"
    r"(?:\s+(?P<errname>E[A-Z0-9]+)\s+\((?P<errmsg>[^)]*)\))?"
)
# The descriptor a call is about, with -yy's note: 3<TCP:[...]>, 5<UDPv6:[...]>.
_SOCKET_FD = re.compile(r"^(\d+)<(TCP|UDP|TCPv6|UDPv6):\[.*?\]>")
_RETURNED_SOCKET = re.compile(r"^(TCP|UDP|TCPv6|UDPv6):\[")
_STRING = re.compile(r'"((?:\\x[0-9a-f]{2})*)"(\.\.\.)?')
_PORT = re.compile(r"sin6?_port=htons\((\d+)\)")
_IPV4 = re.compile(r'inet_addr\("((?:\\x[0-9a-f]{2})*)"\)')
_IPV6 = re.compile(r'inet_pton\(AF_INET6,\s*"((?:\\x[0-9a-f]{2})*)"')
_TIMEVAL = re.compile(r"SO_RCVTIMEO(?:_OLD|_NEW)?,\s*\{tv_sec=(\d+),\s*tv_usec=(\d+)\}")
_SHUTDOWN = {"SHUT_RD": 0, "SHUT_WR": 1, "SHUT_RDWR": 2}
_WOULD_BLOCK = frozenset({"EAGAIN", "EWOULDBLOCK", "EINPROGRESS", "EALREADY", "EINTR"})
_SENDS = {"sendto": Call.SEND, "send": Call.SEND, "write": Call.WRITE, "sendmsg": Call.SENDMSG}
_RECEIVES = {
    "recvfrom": Call.RECV,
    "recv": Call.RECV,
    "read": Call.READ,
    "recvmsg": Call.RECVMSG,
}


def _hex_bytes(escaped: str) -> bytes:
    return bytes.fromhex(escaped.replace("\\x", ""))


def _address(text: str) -> tuple[str, int] | None:
    """(host, port) of the first sockaddr_in/in6 in `text`, else None."""
    port = _PORT.search(text)
    host = _IPV4.search(text) or _IPV6.search(text)
    if port is None or host is None:
        return None
    return _hex_bytes(host.group(1)).decode("ascii", "replace"), int(port.group(1))


def _first_bytes(text: str) -> bytes:
    """The bytes of every quoted string in `text` (one, or an iovec's several), joined."""
    return b"".join(_hex_bytes(match.group(1)) for match in _STRING.finditer(text))


@dataclass
class _Socket:
    transport: str
    receive_count: int = 0
    receive_timeout: bool = False
    # What close() does on the wire depends on these (a FIN only to a connected peer).
    listening: bool = False
    connected: bool = False


@dataclass
class StraceParser:
    """Feed strace lines in order; each returns the events the line completes.

    State: calls a thread started but has not finished (strace's `<unfinished ...>`, joined with
    the `<... resumed>` line of the same thread), and per process and descriptor what the trace
    knows of a socket (receive calls counted, a receive timeout set).
    """

    _pending: dict[int, str] = field(default_factory=dict)
    _sockets: dict[tuple[int, int], _Socket] = field(default_factory=dict)

    def feed_line(self, line: str) -> list[TraceEvent]:
        line = line.rstrip("\n")
        pid = 0
        prefix = _PID_PREFIX.match(line)
        if prefix:
            pid = int(prefix.group(1))
            line = line[prefix.end() :]
        if line.endswith(_UNFINISHED):
            self._pending[pid] = line[: -len(_UNFINISHED)]
            return []
        resumed = _RESUMED.match(line)
        if resumed:
            started = self._pending.pop(pid, None)
            if started is None:
                return []
            line = started + line[resumed.end() :]
        call = _CALL.match(line)
        if call is None:
            return []
        event = self._event(pid, call)
        return [] if event is None else [event]

    def _known(self, pid: int, fd: int, transport: str) -> _Socket:
        return self._sockets.setdefault((pid, fd), _Socket(transport))

    def _event(self, pid: int, call: re.Match[str]) -> TraceEvent | None:
        name, args, ret = call.group("name"), call.group("args"), int(call.group("ret"))
        errname, errmsg = call.group("errname"), call.group("errmsg")
        if name == "socket":
            returned = _RETURNED_SOCKET.match(call.group("note") or "")
            if returned is None or ret < 0:
                return None
            transport = returned.group(1)[:3].lower()
            self._sockets[(pid, ret)] = _Socket(transport)
            return TraceEvent(Call.SOCKET, ret, transport, ipv6=args.startswith("AF_INET6"))
        target = _SOCKET_FD.match(args)
        if target is None:
            return None
        fd, transport = int(target.group(1)), target.group(2)[:3].lower()
        known = self._known(pid, fd, transport)
        rest = args[target.end() :]
        error = None
        if ret < 0:
            if errname in _WOULD_BLOCK:
                if name == "connect":  # non-blocking: the handshake goes on without the call
                    known.connected = True
                if errname == "EAGAIN" and known.receive_timeout and name in _RECEIVES:
                    return TraceEvent(
                        _receive_call(name, rest),
                        fd,
                        transport,
                        timed_out=True,
                        argument=_size(rest),
                    )
                return None
            error = f"{errname} ({errmsg})"
        if name in ("accept", "accept4"):
            if error is not None:
                return TraceEvent(Call.ACCEPT, fd, transport, error=error)
            self._sockets[(pid, ret)] = _Socket(transport, connected=True)
            return TraceEvent(Call.ACCEPT, fd, transport, new_fd=ret, address=_address(rest))
        if name in ("bind", "connect"):
            known.connected = known.connected or (name == "connect" and error is None)
            return TraceEvent(Call(name), fd, transport, address=_address(rest), error=error)
        if name == "listen":
            known.listening = known.listening or error is None
            return TraceEvent(Call.LISTEN, fd, transport, argument=_number(rest), error=error)
        if name in _SENDS:
            address = _address(rest)
            # C's send() is sendto() without an address: "..., NULL, 0)"
            addressed = name == "sendto" and not rest.endswith("NULL, 0")
            kind = Call.SENDTO if addressed else _SENDS[name]
            if error is not None:
                return TraceEvent(kind, fd, transport, error=error, address=address)
            known.connected = True
            data = _first_bytes(rest)[: min(ret, TRACE_DATA_BYTES)]
            return TraceEvent(kind, fd, transport, nbytes=ret, data=data, address=address)
        if name in _RECEIVES:
            address = _address(rest)
            kind = _receive_call(name, rest)
            if error is not None:
                return TraceEvent(kind, fd, transport, error=error, argument=_size(rest))
            known.receive_count += 1
            known.connected = True
            return TraceEvent(
                kind,
                fd,
                transport,
                nbytes=ret,
                data=_first_bytes(rest)[: min(ret, TRACE_DATA_BYTES)],
                argument=_size(rest),
                address=address if transport == "udp" else None,
                sequence=known.receive_count,
            )
        if name == "setsockopt":
            timeout = _TIMEVAL.search(rest)
            if timeout is None or error is not None:
                return None
            seconds = int(timeout.group(1)) + int(timeout.group(2)) / 1_000_000
            known.receive_timeout = seconds > 0
            return TraceEvent(Call.SETTIMEOUT, fd, transport, argument=seconds or None)
        if name == "shutdown":
            how = _SHUTDOWN.get(rest.strip(", "))
            return TraceEvent(Call.SHUTDOWN, fd, transport, argument=how, error=error)
        if name == "close":
            self._sockets.pop((pid, fd), None)
            if error is not None:
                return None
            tcp = transport == "tcp"
            return TraceEvent(
                Call.CLOSE,
                fd,
                transport,
                listening=tcp and known.listening,
                connected=tcp and known.connected and not known.listening,
            )
        return None


def _receive_call(name: str, rest: str) -> Call:
    # C's recv() is recvfrom() that asks for no address: "..., NULL, NULL)"
    if name == "recvfrom" and not rest.endswith("NULL, NULL"):
        return Call.RECVFROM
    return _RECEIVES[name]


def _number(rest: str) -> int | None:
    match = re.match(r",\s*(\d+)", rest)
    return int(match.group(1)) if match else None


def _size(rest: str) -> int | None:
    """The buffer size of read/recv/recvfrom: the number after the buffer argument."""
    match = re.search(r'(?:"(?:\\x[0-9a-f]{2})*"(?:\.\.\.)?|0x[0-9a-f]+|NULL),\s*(\d+)', rest)
    return int(match.group(1)) if match else None
