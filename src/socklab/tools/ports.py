"""The socket table behind `socklab ports`: psutil rows, filters, the --watch diff, --explain.

Strategy: one psutil call (`net_connections`) becomes a tuple of frozen `SocketRow`s, the same
rows ss/netstat/CurrPorts print. Everything after that is pure and testable with hand-made
rows: filtering, grouping by local port for the demultiplexing lesson, finding the socket a
packet is delivered to (the kernel's lookup, done on the table), and the --watch bookkeeping
(`SocketWatch`: appeared/closed sockets, kept visible for a retention time, with the clock
passed in).

Privileges: Linux lists every socket to everyone, but only root may map another user's socket
to its process; macOS refuses the system-wide list to non-root, so there we ask each process we
may inspect instead. Either way the table says how many sockets it could not attribute, and why.
Sockets of our own user's processes (socklab's among them) are always complete.
"""

from __future__ import annotations

import enum
import socket
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import psutil

PROTOCOLS = ("tcp", "udp")
LISTEN = "LISTEN"
# TIME_WAIT sockets belong to the kernel, not to a process (RFC 9293 3.3.2): no PID is normal.
_OWNERLESS_STATES = frozenset({"TIME_WAIT"})


@dataclass(frozen=True, slots=True)
class SocketRow:
    """One socket, as `ss -tunap` shows it. Field names are the `--json` keys."""

    proto: str  # "tcp" | "udp"
    family: str  # "ipv4" | "ipv6"
    local_address: str
    local_port: int
    remote_address: str | None
    remote_port: int | None
    state: str | None  # "LISTEN", "ESTABLISHED", ... ; None for UDP
    pid: int | None
    process: str | None

    @property
    def identity(self) -> tuple[str, str, str, int, str | None, int | None]:
        """What names one socket across snapshots (state and owner may change, this does not)."""
        return (
            self.proto,
            self.family,
            self.local_address,
            self.local_port,
            self.remote_address,
            self.remote_port,
        )

    @property
    def is_listening(self) -> bool:
        """A TCP socket in LISTEN, or a UDP socket not connected to one peer (`ss -l`'s view)."""
        if self.proto == "udp":
            return self.remote_port is None
        return self.state == LISTEN


class HiddenReason(enum.Enum):
    OTHER_USERS_PROCESSES = "other-users-processes"  # Linux/Windows: sockets seen, owners not
    SYSTEM_TABLE_REFUSED = "system-table-refused"  # macOS: only our processes' sockets listed


@dataclass(frozen=True, slots=True)
class Hidden:
    """What the table could not show, and why; `count` is None when unknowable."""

    reason: HiddenReason
    count: int | None


@dataclass(frozen=True, slots=True)
class SocketTable:
    rows: tuple[SocketRow, ...]
    hidden: Hidden | None = None


# --- reading the system --------------------------------------------------------------------------


class _PsutilConnection(Protocol):
    """The fields socklab reads from psutil's sconn/pconn tuples (their module moved in psutil 7)."""

    @property
    def family(self) -> int: ...
    @property
    def type(self) -> int: ...
    @property
    def laddr(self) -> Any: ...
    @property
    def raddr(self) -> Any: ...
    @property
    def status(self) -> str: ...


def _family_name(family: int) -> str:
    return "ipv6" if family == socket.AF_INET6 else "ipv4"


def _row_from(
    conn: _PsutilConnection, pid: int | None, names: dict[int, str | None]
) -> SocketRow | None:
    if conn.family not in (socket.AF_INET, socket.AF_INET6) or not conn.laddr:
        return None
    proto = "udp" if conn.type == socket.SOCK_DGRAM else "tcp"
    remote = conn.raddr if conn.raddr else None
    state = conn.status if proto == "tcp" and conn.status != psutil.CONN_NONE else None
    return SocketRow(
        proto=proto,
        family=_family_name(conn.family),
        local_address=str(conn.laddr.ip),
        local_port=int(conn.laddr.port),
        remote_address=str(remote.ip) if remote else None,
        remote_port=int(remote.port) if remote else None,
        state=state,
        pid=pid,
        process=_process_name(pid, names),
    )


def _process_name(pid: int | None, names: dict[int, str | None]) -> str | None:
    if pid is None:
        return None
    if pid not in names:
        try:
            names[pid] = psutil.Process(pid).name()
        except psutil.Error:
            names[pid] = None
    return names[pid]


def read_socket_table() -> SocketTable:
    """Every TCP/UDP socket of the machine this process is allowed to see."""
    names: dict[int, str | None] = {}
    try:
        connections = psutil.net_connections(kind="inet")
    except psutil.AccessDenied:
        return _read_per_process(names)
    rows = tuple(
        row for conn in connections if (row := _row_from(conn, conn.pid or None, names)) is not None
    )
    unattributed = sum(1 for row in rows if row.pid is None and row.state not in _OWNERLESS_STATES)
    hidden = None
    if unattributed and not _is_privileged():
        hidden = Hidden(HiddenReason.OTHER_USERS_PROCESSES, unattributed)
    return SocketTable(rows, hidden)


def _read_per_process(names: dict[int, str | None]) -> SocketTable:
    """macOS without root: ask each process we may inspect for its sockets."""
    rows: list[SocketRow] = []
    refused = 0
    for process in psutil.process_iter(["pid", "name"]):
        try:
            # psutil 6 renamed Process.connections() to net_connections().
            reader = getattr(process, "net_connections", None) or process.connections
            connections = reader(kind="inet")
        except (psutil.AccessDenied, psutil.ZombieProcess):
            refused += 1
            continue
        except psutil.NoSuchProcess:
            continue
        names[process.pid] = process.info.get("name")
        for conn in connections:
            row = _row_from(conn, process.pid, names)
            if row is not None:
                rows.append(row)
    hidden = Hidden(HiddenReason.SYSTEM_TABLE_REFUSED, None) if refused else None
    return SocketTable(tuple(rows), hidden)


def _is_privileged() -> bool:
    if sys.platform == "win32":
        return False  # elevation cannot be read cheaply; the count of unattributed rows says it
    import os

    return os.geteuid() == 0


# --- filters -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SocketFilter:
    """The command line's selection; empty means everything. Protocols: none given = both."""

    protocols: frozenset[str] = frozenset()
    listening_only: bool = False
    port: int | None = None  # local or remote port, as `ss sport = :N or dport = :N`
    pid: int | None = None
    process: str | None = None  # case-insensitive substring of the process name

    def matches(self, row: SocketRow) -> bool:
        if self.protocols and row.proto not in self.protocols:
            return False
        if self.listening_only and not row.is_listening:
            return False
        if self.port is not None and self.port not in (row.local_port, row.remote_port):
            return False
        if self.pid is not None and row.pid != self.pid:
            return False
        return self.process is None or (
            row.process is not None and self.process.casefold() in row.process.casefold()
        )


def select_rows(rows: Iterable[SocketRow], selection: SocketFilter) -> tuple[SocketRow, ...]:
    """Filtered rows in a stable order: protocol, local port, local address, remote."""
    chosen = [row for row in rows if selection.matches(row)]
    chosen.sort(key=sort_key)
    return tuple(chosen)


def sort_key(row: SocketRow) -> tuple[str, int, str, str, int, str]:
    return (
        row.proto,
        row.local_port,
        row.local_address,
        row.remote_address or "",
        row.remote_port or 0,
        row.state or "",
    )


def find_port_holder(rows: Iterable[SocketRow], port: int, proto: str) -> SocketRow | None:
    """The socket bound to local `port` that makes bind() fail: a TCP listener or a UDP socket."""
    for row in rows:
        if row.proto == proto and row.local_port == port and row.is_listening:
            return row
    return None


def describe_holder(row: SocketRow) -> str | None:
    """'PID 1234 (python3)', or None when the owner is not visible."""
    if row.pid is None:
        return None
    return f"PID {row.pid} ({row.process or '?'})"


# --- demultiplexing: which socket receives a packet ----------------------------------------------


def _address_matches(bound: str, address: str) -> bool:
    # A socket bound to the wildcard receives for every local address; "::" also takes IPv4
    # on dual-stack sockets (IPV6_V6ONLY=0, the Linux default).
    return bound in ("0.0.0.0", "::", address) or bound == f"::ffff:{address}"


def index_by_local_port(rows: Iterable[SocketRow]) -> dict[tuple[str, int], list[SocketRow]]:
    """Rows by (proto, local port): a packet's candidates in one lookup, not a table scan."""
    index: dict[tuple[str, int], list[SocketRow]] = {}
    for row in rows:
        index.setdefault((row.proto, row.local_port), []).append(row)
    return index


def find_receiving_socket(
    rows: Iterable[SocketRow],
    proto: str,
    destination: tuple[str, int],
    source: tuple[str, int],
) -> SocketRow | None:
    """The socket the kernel delivers a packet to, found as the kernel does.

    TCP: the connected socket whose 4-tuple matches exactly; else (a SYN) the listening socket
    on the destination port. UDP: a socket connected to exactly this source, else the socket
    bound to the destination port — whoever sent the datagram. `rows` may be the whole table
    or just the candidates from `index_by_local_port`.
    """
    dst_ip, dst_port = destination
    src_ip, src_port = source
    candidates = [row for row in rows if row.proto == proto and row.local_port == dst_port]
    for row in candidates:
        if (
            row.remote_port == src_port
            and row.remote_address is not None
            and _address_matches(row.remote_address, src_ip)
            and _address_matches(row.local_address, dst_ip)
        ):
            return row
    for row in candidates:
        if row.is_listening and _address_matches(row.local_address, dst_ip):
            return row
    return None


# --- the demultiplexing lesson (--explain) -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PortGroup:
    """All sockets on one local port of one protocol."""

    proto: str
    local_port: int
    sockets: tuple[SocketRow, ...]

    @property
    def listeners(self) -> tuple[SocketRow, ...]:
        return tuple(row for row in self.sockets if row.is_listening)

    @property
    def connections(self) -> tuple[SocketRow, ...]:
        return tuple(row for row in self.sockets if not row.is_listening)

    @property
    def is_server_port(self) -> bool:
        return bool(self.listeners)


def group_by_local_port(rows: Iterable[SocketRow]) -> tuple[PortGroup, ...]:
    """Groups ordered by protocol and port; within a group, listeners first."""
    groups: dict[tuple[str, int], list[SocketRow]] = {}
    for row in rows:
        groups.setdefault((row.proto, row.local_port), []).append(row)
    return tuple(
        PortGroup(
            proto,
            port,
            tuple(sorted(members, key=lambda row: (not row.is_listening, sort_key(row)))),
        )
        for (proto, port), members in sorted(groups.items())
    )


# --- --watch: what appeared, what closed ---------------------------------------------------------


class RowStatus(enum.Enum):
    OPEN = "open"  # present, nothing new
    APPEARED = "appeared"  # new within the retention time
    CHANGED = "changed"  # state or owner changed within the retention time
    CLOSED = "closed"  # gone, still shown until the retention time ends


@dataclass(frozen=True, slots=True)
class WatchedRow:
    row: SocketRow
    status: RowStatus
    since: float  # when the status began (the watch's clock)


@dataclass(frozen=True, slots=True)
class SocketChange:
    """One line of the change log."""

    time: float
    status: RowStatus  # APPEARED, CHANGED or CLOSED
    row: SocketRow
    previous: SocketRow | None = None  # for CHANGED


@dataclass
class SocketWatch:
    """CurrPorts' watch mode as a pure state machine: feed snapshots with the time they were taken.

    Call order: update(snapshot, now)* ; `now` must not go backwards. The first snapshot is the
    baseline (nothing is "appeared"). A socket that appeared or changed is highlighted for
    `retention_s`; a closed one stays in the view, marked, for `retention_s` and is then dropped.
    A socket that comes back while still shown as closed is "appeared" again.
    """

    retention_s: float
    _current: dict[tuple[str, str, str, int, str | None, int | None], WatchedRow] = field(
        default_factory=dict
    )
    _started: bool = False
    _last_time: float | None = None

    def update(
        self, snapshot: Iterable[SocketRow], now: float
    ) -> tuple[tuple[WatchedRow, ...], tuple[SocketChange, ...]]:
        """The rows to show now and the changes since the last snapshot."""
        if self._last_time is not None and now < self._last_time:
            raise ValueError("the watch's clock went backwards")
        self._last_time = now
        fresh = {row.identity: row for row in snapshot}
        changes: list[SocketChange] = []
        result: dict[tuple[str, str, str, int, str | None, int | None], WatchedRow] = {}
        for key, row in fresh.items():
            known = self._current.get(key)
            if known is None or known.status is RowStatus.CLOSED:
                status = RowStatus.APPEARED if self._started else RowStatus.OPEN
                result[key] = WatchedRow(row, status, now)
                if self._started:
                    changes.append(SocketChange(now, RowStatus.APPEARED, row))
            elif (known.row.state, known.row.pid) != (row.state, row.pid):
                result[key] = WatchedRow(row, RowStatus.CHANGED, now)
                changes.append(SocketChange(now, RowStatus.CHANGED, row, known.row))
            elif known.status is not RowStatus.OPEN and now - known.since >= self.retention_s:
                result[key] = WatchedRow(row, RowStatus.OPEN, known.since)
            else:
                result[key] = WatchedRow(row, known.status, known.since)
        for key, known in self._current.items():
            if key in fresh:
                continue
            if known.status is not RowStatus.CLOSED:
                result[key] = WatchedRow(known.row, RowStatus.CLOSED, now)
                changes.append(SocketChange(now, RowStatus.CLOSED, known.row))
            elif now - known.since < self.retention_s:
                result[key] = known
        self._current = result
        self._started = True
        rows = sorted(result.values(), key=lambda watched: sort_key(watched.row))
        return tuple(rows), tuple(changes)


def count_by_status(rows: Sequence[WatchedRow]) -> dict[RowStatus, int]:
    counts = dict.fromkeys(RowStatus, 0)
    for watched in rows:
        counts[watched.status] += 1
    return counts
