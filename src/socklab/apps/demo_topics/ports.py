"""Lesson `ports`: demultiplexing, as the lecture draws it.

UDP: one socket on one port receives the datagrams of every client; only the sender address
that comes with each datagram tells them apart. TCP: the listening socket stays alone on its
port, and every accepted connection is a new socket with the same local port, told apart by
the four numbers (source IP and port, destination IP and port). The lesson shows both with
the sockets' own addresses and, for TCP, the operating system's socket table (psutil), filtered
to this process.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

from socklab.apps.demo_topics.narration import TIMEOUT_S, Say, heading, observe, step
from socklab.i18n import _
from socklab.protocol.endpoints import format_endpoint


@dataclass(frozen=True, slots=True)
class SocketRow:
    """One socket of this process as the OS lists it (what netstat or CurrPorts would show)."""

    local: str
    remote: str
    status: str
    fd: int


def _format(address: object) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        return format_endpoint(str(address[0]), int(address[1]))
    return "-"


def own_sockets(port: int, kind: str = "tcp") -> list[SocketRow]:
    """The sockets with `port` at either end, from the OS's table (via psutil).

    The system-wide table also lists sockets no process holds any more (TIME_WAIT) and
    connections not yet accepted; where the OS refuses it (macOS without root), this process's
    own sockets are listed instead.
    """
    import psutil

    connections: list[Any]
    try:
        connections = psutil.net_connections(kind=kind)
    except psutil.AccessDenied:
        process = psutil.Process()
        # psutil 6 renamed Process.connections() to net_connections().
        listing = getattr(process, "net_connections", None) or process.connections
        connections = listing(kind=kind)
    rows = []
    for conn in connections:
        ends = [end for end in (conn.laddr, conn.raddr) if end]
        if any(end.port == port for end in ends):
            remote = tuple(conn.raddr) if conn.raddr else None
            rows.append(
                SocketRow(_format(tuple(conn.laddr)), _format(remote), conn.status, conn.fd)
            )
    return sorted(rows, key=lambda row: (row.status != "LISTEN", row.local, row.remote))


def system_wide_table() -> bool:
    """True when the OS lets us read every socket (Linux, Windows; macOS only as root)."""
    import psutil

    try:
        psutil.net_connections(kind="tcp")
    except psutil.AccessDenied:
        return False
    return True


def show_rows(say: Say, rows: list[SocketRow]) -> None:
    # Not inside the f-string: the extractor of the message catalogue does not look in there.
    local, remote, state = _("local"), _("remote"), _("state")
    step(say, f"   {'fd':>4}  {local:<22} {remote:<22} {state}")
    for row in rows:
        fd = str(row.fd) if row.fd >= 0 else "-"
        step(say, f"   {fd:>4}  {row.local:<22} {row.remote:<22} {row.status}")


def _udp_part(say: Say) -> bool:
    step(say, _("UDP: one server socket, two clients"))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        server.bind(("127.0.0.1", 0))
        server.settimeout(TIMEOUT_S)
        address = server.getsockname()
        senders = []
        with (
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as first,
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as second,
        ):
            for client, text in ((first, b"U:from one"), (second, b"U:from two")):
                client.sendto(text, address)
                data, sender = server.recvfrom(2048)
                senders.append(sender)
                step(
                    say,
                    _(
                        "server socket fd {fd} on {local}: recvfrom() -> {data!r} from {sender}"
                    ).format(
                        fd=server.fileno(),
                        local=_format(address),
                        data=data,
                        sender=_format(sender),
                    ),
                )
    observe(
        say,
        _(
            "one socket, one port for both clients: UDP demultiplexes by destination port only; the sender's address comes with each datagram."
        ),
    )
    return len(set(senders)) == 2


def _tcp_part(say: Say) -> bool:
    step(say, _("TCP: a listening socket, two clients"))
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(2)
        listener.settimeout(TIMEOUT_S)
        port = listener.getsockname()[1]
        clients = [
            socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) for _n in range(2)
        ]
        accepted = [listener.accept()[0] for _n in range(2)]
        try:
            for connection in accepted:
                step(
                    say,
                    _("accept() -> new socket fd {fd}: {local} <-> {remote}").format(
                        fd=connection.fileno(),
                        local=_format(connection.getsockname()),
                        remote=_format(connection.getpeername()),
                    ),
                )
            step(say, _("the operating system's socket table for port {port}:").format(port=port))
            rows = own_sockets(port)
            show_rows(say, rows)
        finally:
            for sock in (*accepted, *clients):
                sock.close()
    observe(
        say,
        _(
            "the server has {count} sockets on port {port}: one listening, one per connection; TCP picks the socket by source and destination IP and port."
        ).format(count=sum(1 for row in rows if row.local.endswith(f":{port}")), port=port),
    )
    server_side = [row for row in rows if row.local.endswith(f":{port}")]
    return len(server_side) == 3 and sum(row.status == "LISTEN" for row in server_side) == 1


def demo_ports(say: Say) -> bool:
    heading(say, _("Ports: how the operating system finds the right socket (demultiplexing)"))
    return _udp_part(say) & _tcp_part(say)
