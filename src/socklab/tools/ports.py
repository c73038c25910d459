"""The socket table behind `socklab ports`: kernel rows, filters, the --watch diff, --explain.

Strategy: the system's socket table becomes a tuple of frozen `SocketRow`s, the same rows
ss/netstat/CurrPorts print. On Linux it is read as `ss` reads it, from the kernel over netlink
(`socklab.tools.sock_diag`), filtered there by state and port, and only the surviving sockets are
matched to their processes (`socklab.tools.socket_owners`); elsewhere, or when netlink is
refused, psutil reads it. `read_socket_table` is the one place that chooses. Everything after
that is pure and testable with hand-made rows: filtering, grouping by local port for the
demultiplexing lesson, finding the socket a packet is delivered to (the kernel's lookup, done on
the table), and the --watch bookkeeping (`SocketWatch`: appeared/closed sockets, kept visible for
a retention time, with the clock passed in).

Privileges: Linux lists every socket to everyone, but only root may map another user's socket
to its process; macOS refuses the system-wide list to non-root, so there we ask each process we
may inspect instead. Either way the table says how many sockets it could not attribute, and why.
Sockets of our own user's processes (socklab's among them) are always complete.
"""

from __future__ import annotations

import dataclasses
import enum
import socket
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

PROTOCOLS = ("tcp", "udp")
LISTEN = "LISTEN"
TIME_WAIT = "TIME_WAIT"
# TIME_WAIT sockets belong to the kernel, not to a process (RFC 9293 3.3.2): no PID is normal.
_OWNERLESS_STATES = frozenset({TIME_WAIT})


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
        return _is_listening(self.proto, self.state, self.remote_port)


def _is_listening(proto: str, state: str | None, remote_port: int | None) -> bool:
    if proto == "udp":
        return remote_port is None
    return state == LISTEN


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


def read_socket_table(selection: SocketFilter | None = None) -> SocketTable:
    """The TCP/UDP sockets `selection` keeps (all by default) that this process may see.

    The one place the source is chosen: on Linux the kernel's own tables over netlink, as `ss`
    reads them; psutil on macOS and Windows, and on a Linux that refuses netlink (a sandbox
    without AF_NETLINK, a kernel without inet_diag). Rows are filtered before their owners are
    looked up, so a narrow selection does not pay for the whole machine. The rows come unsorted.
    """
    selection = selection or SocketFilter()
    if sys.platform == "linux":
        from socklab.tools.sock_diag import SockDiagUnavailable

        try:
            return _read_sock_diag(selection)
        except SockDiagUnavailable:
            pass  # psutil reads /proc/net/tcp* and udp* instead: slower, same rows
    return _read_psutil(selection)


def _hidden(candidates: Iterable[SocketRow], refused: int | None = None) -> Hidden | None:
    """Linux/Windows: sockets listed without owner because their process is not ours to inspect.

    Counted over the sockets the selection keeps by protocol, state and port (an owner filter
    could have matched them, had they been visible). `refused`: how many processes could not be
    inspected, when the reader knows (0 means every owner was visible: nothing is hidden).
    """
    if refused == 0:
        return None
    unattributed = sum(
        1 for row in candidates if row.pid is None and row.state not in _OWNERLESS_STATES
    )
    if unattributed and not _is_privileged():
        return Hidden(HiddenReason.OTHER_USERS_PROCESSES, unattributed)
    return None


def _read_sock_diag(selection: SocketFilter) -> SocketTable:
    from socklab.tools.sock_diag import TCP_LISTEN, TCP_STATES, UDP_UNCONNECTED, read_sockets
    from socklab.tools.socket_owners import find_socket_owners, process_names

    protocols = tuple(p for p in PROTOCOLS if not selection.protocols or p in selection.protocols)
    # The kernel filters by state and port (ss's way); the exact rules are applied below anyway.
    states = {"tcp": 1 << TCP_LISTEN, "udp": 1 << UDP_UNCONNECTED}
    found = list(
        read_sockets(
            protocols,
            states=states if selection.listening_only else None,
            port=selection.port or None,
        )
    )
    addresses: dict[tuple[int, bytes], str] = {}

    def text_of(family: int, packed: bytes) -> str:
        key = (family, packed)
        text = addresses.get(key)
        if text is None:
            size = 16 if family == socket.AF_INET6 else 4
            text = addresses[key] = socket.inet_ntop(family, packed[:size])
        return text

    kept: list[tuple[str, str, str, int, str | None, int | None, str | None, int]] = []
    for proto, family_number, number, src, sport, dst, dport, _uid, inode in found:
        if not sport:
            continue  # psutil lists no socket without a local port; neither do we
        state = TCP_STATES.get(number, str(number)) if proto == "tcp" else None
        remote_port = dport or None
        if not selection.keeps_socket(proto, state, sport, remote_port):
            continue
        kept.append(
            (
                proto,
                _family_name(family_number),
                text_of(family_number, src),
                sport,
                text_of(family_number, dst) if remote_port else None,
                remote_port,
                state,
                inode,
            )
        )
    scan = find_socket_owners(fields[7] for fields in kept)
    owners = scan.pids
    names = process_names(set(owners.values()))
    candidates = []
    for proto, family, local, local_port, remote_address, remote_port, state, inode in kept:
        pid = owners.get(inode)
        candidates.append(
            SocketRow(
                proto,
                family,
                local,
                local_port,
                remote_address,
                remote_port,
                state,
                pid,
                names.get(pid) if pid is not None else None,
            )
        )
    rows = tuple(row for row in candidates if selection.keeps_owner(row.pid, row.process))
    return SocketTable(rows, _hidden(candidates, scan.refused))


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


def _row_from(conn: _PsutilConnection, pid: int | None) -> SocketRow | None:
    """A row without its process name (looked up once the row survives the filter)."""
    if conn.family not in (socket.AF_INET, socket.AF_INET6) or not conn.laddr:
        return None
    proto = "udp" if conn.type == socket.SOCK_DGRAM else "tcp"
    remote = conn.raddr if conn.raddr else None
    # psutil.CONN_NONE, compared by value so that psutil is imported only on this path.
    state = conn.status if proto == "tcp" and conn.status != "NONE" else None
    return SocketRow(
        proto=proto,
        family=_family_name(conn.family),
        local_address=str(conn.laddr.ip),
        local_port=int(conn.laddr.port),
        remote_address=str(remote.ip) if remote else None,
        remote_port=int(remote.port) if remote else None,
        state=state,
        pid=pid,
        process=None,
    )


def _process_name(pid: int | None, names: dict[int, str | None]) -> str | None:
    import psutil

    if pid is None:
        return None
    if pid not in names:
        try:
            names[pid] = psutil.Process(pid).name()
        except psutil.Error:
            names[pid] = None
    return names[pid]


def _select_and_name(
    rows: Iterable[SocketRow], selection: SocketFilter, names: dict[int, str | None]
) -> tuple[list[SocketRow], tuple[SocketRow, ...]]:
    """(rows kept by protocol, state and port, with names; those of them the owner filter keeps)."""
    candidates = [
        dataclasses.replace(row, process=_process_name(row.pid, names))
        for row in rows
        if selection.keeps_socket(row.proto, row.state, row.local_port, row.remote_port)
    ]
    kept = tuple(row for row in candidates if selection.keeps_owner(row.pid, row.process))
    return candidates, kept


def _read_psutil(selection: SocketFilter) -> SocketTable:
    import psutil

    names: dict[int, str | None] = {}
    try:
        connections = psutil.net_connections(kind="inet")
    except psutil.AccessDenied:
        return _read_per_process(selection, names)
    rows = (row for conn in connections if (row := _row_from(conn, conn.pid or None)) is not None)
    candidates, kept = _select_and_name(rows, selection, names)
    return SocketTable(kept, _hidden(candidates))


def _read_per_process(selection: SocketFilter, names: dict[int, str | None]) -> SocketTable:
    """macOS without root: ask each process we may inspect for its sockets."""
    import psutil

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
            row = _row_from(conn, process.pid)
            if row is not None:
                rows.append(row)
    hidden = Hidden(HiddenReason.SYSTEM_TABLE_REFUSED, None) if refused else None
    return SocketTable(_select_and_name(rows, selection, names)[1], hidden)


def _is_privileged() -> bool:
    if sys.platform == "win32":
        return False  # elevation cannot be read cheaply; the count of unattributed rows says it
    import os

    return os.geteuid() == 0


# --- filters -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SocketFilter:
    """The command line's selection; empty means everything. Protocols: none given = both.

    Two halves, so a reader can filter before it looks up owners: `keeps_socket` needs only
    what the kernel's table says, `keeps_owner` the PID and process name.
    """

    protocols: frozenset[str] = frozenset()
    listening_only: bool = False
    port: int | None = None  # local or remote port, as `ss sport = :N or dport = :N`
    pid: int | None = None
    process: str | None = None  # case-insensitive substring of the process name

    def keeps_socket(
        self, proto: str, state: str | None, local_port: int, remote_port: int | None
    ) -> bool:
        if self.protocols and proto not in self.protocols:
            return False
        if self.listening_only and not _is_listening(proto, state, remote_port):
            return False
        return self.port is None or self.port in (local_port, remote_port)

    def keeps_owner(self, pid: int | None, process: str | None) -> bool:
        if self.pid is not None and pid != self.pid:
            return False
        return self.process is None or (
            process is not None and self.process.casefold() in process.casefold()
        )

    def matches(self, row: SocketRow) -> bool:
        return self.keeps_socket(
            row.proto, row.state, row.local_port, row.remote_port
        ) and self.keeps_owner(row.pid, row.process)


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


@dataclass(frozen=True, slots=True)
class PortBlockers:
    """What keeps a server from binding `port`: a holding socket, or closed connections only.

    `holder` is 'PID 1234 (python3)' when the port's listener (UDP: its bound socket) and its
    owner are visible, None otherwise; `held` says whether such a socket exists at all (its
    owner may be another user's process); `time_wait` counts the port's TCP connections in
    TIME_WAIT, which no process owns.
    """

    holder: str | None
    held: bool
    time_wait: int


def find_port_blockers(port: int, transport: str) -> PortBlockers | None:
    """Who or what holds local `port` for `transport`; None when the table cannot be read."""
    proto = "udp" if transport == "udp" else "tcp"
    try:
        table = read_socket_table(SocketFilter(protocols=frozenset({proto}), port=port))
    except OSError:
        return None
    holder = find_port_holder(table.rows, port, proto)
    time_wait = sum(1 for row in table.rows if row.local_port == port and row.state == TIME_WAIT)
    return PortBlockers(
        holder=describe_holder(holder) if holder is not None else None,
        held=holder is not None,
        time_wait=time_wait,
    )


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
    def live_connections(self) -> tuple[SocketRow, ...]:
        """Connections that are not closed yet: neither listening nor in TIME_WAIT."""
        return tuple(row for row in self.sockets if not row.is_listening and row.state != TIME_WAIT)

    @property
    def waiting(self) -> tuple[SocketRow, ...]:
        """Closed connections the kernel keeps in TIME_WAIT (RFC 9293 3.3.2)."""
        return tuple(row for row in self.sockets if row.state == TIME_WAIT)

    @property
    def is_waiting_only(self) -> bool:
        return all(row.state == TIME_WAIT for row in self.sockets)

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
