"""The pure parts of `socklab ports`: filters, demultiplexing lookup, --explain groups, --watch."""

from __future__ import annotations

import pytest

from socklab.tools.ports import (
    PortGroup,
    RowStatus,
    SocketFilter,
    SocketRow,
    SocketWatch,
    describe_holder,
    find_port_holder,
    find_receiving_socket,
    group_by_local_port,
    select_rows,
)


def tcp(
    local: int,
    remote: int | None = None,
    state: str = "ESTABLISHED",
    pid: int | None = 10,
    local_ip: str = "127.0.0.1",
    process: str | None = "server",
) -> SocketRow:
    return SocketRow(
        "tcp",
        "ipv4",
        local_ip,
        local,
        "127.0.0.1" if remote is not None else None,
        remote,
        "LISTEN" if remote is None else state,
        pid,
        process if pid else None,
    )


def udp(
    local: int, pid: int | None = 20, local_ip: str = "0.0.0.0", remote: int | None = None
) -> SocketRow:
    return SocketRow(
        "udp",
        "ipv4",
        local_ip,
        local,
        "127.0.0.1" if remote else None,
        remote,
        None,
        pid,
        "udpserver" if pid else None,
    )


LISTENER = tcp(50000)
SERVER_SIDE_A = tcp(50000, 40001)
SERVER_SIDE_B = tcp(50000, 40002)
CLIENT_A = tcp(40001, 50000, pid=30, process="client")
UDP_SERVER = udp(50000)
TABLE = (CLIENT_A, SERVER_SIDE_B, LISTENER, SERVER_SIDE_A, UDP_SERVER)


def test_no_filter_keeps_everything_in_protocol_port_order() -> None:
    rows = select_rows(TABLE, SocketFilter())
    assert rows == (CLIENT_A, LISTENER, SERVER_SIDE_A, SERVER_SIDE_B, UDP_SERVER)


@pytest.mark.parametrize(
    ("selection", "expected"),
    [
        (SocketFilter(protocols=frozenset({"udp"})), {UDP_SERVER}),
        (SocketFilter(protocols=frozenset({"tcp"}), listening_only=True), {LISTENER}),
        (SocketFilter(listening_only=True), {LISTENER, UDP_SERVER}),
        (SocketFilter(port=40001), {SERVER_SIDE_A, CLIENT_A}),
        (SocketFilter(pid=30), {CLIENT_A}),
        (SocketFilter(process="CLI"), {CLIENT_A}),
        (SocketFilter(process="nothing-like-this"), set()),
    ],
)
def test_filters(selection: SocketFilter, expected: set[SocketRow]) -> None:
    assert set(select_rows(TABLE, selection)) == expected


def test_holder_is_the_listener_not_a_connection() -> None:
    assert find_port_holder(TABLE, 50000, "tcp") == LISTENER
    assert find_port_holder(TABLE, 50000, "udp") == UDP_SERVER
    assert find_port_holder(TABLE, 40001, "tcp") is None
    assert describe_holder(LISTENER) == "PID 10 (server)"
    assert describe_holder(tcp(1, pid=None)) is None


def test_tcp_demultiplexes_on_the_four_tuple() -> None:
    to_server = ("127.0.0.1", 50000)
    assert find_receiving_socket(TABLE, "tcp", to_server, ("127.0.0.1", 40001)) == SERVER_SIDE_A
    assert find_receiving_socket(TABLE, "tcp", to_server, ("127.0.0.1", 40002)) == SERVER_SIDE_B
    # An unknown source: a new connection's SYN goes to the listening socket.
    assert find_receiving_socket(TABLE, "tcp", to_server, ("127.0.0.1", 49999)) == LISTENER
    assert find_receiving_socket(TABLE, "tcp", ("127.0.0.1", 40001), to_server) == CLIENT_A


def test_udp_demultiplexes_on_the_destination_port_alone() -> None:
    for source in (("127.0.0.1", 1111), ("127.0.0.5", 2222)):
        assert find_receiving_socket(TABLE, "udp", ("127.0.0.1", 50000), source) == UDP_SERVER
    assert find_receiving_socket(TABLE, "udp", ("127.0.0.1", 50001), ("127.0.0.1", 1)) is None


def test_a_socket_bound_to_another_address_does_not_receive() -> None:
    bound = udp(7000, local_ip="127.0.0.2")
    assert find_receiving_socket([bound], "udp", ("127.0.0.1", 7000), ("127.0.0.1", 9)) is None
    assert find_receiving_socket([bound], "udp", ("127.0.0.2", 7000), ("127.0.0.1", 9)) == bound


def test_groups_by_local_port_listeners_first() -> None:
    groups = group_by_local_port(TABLE)
    assert [(g.proto, g.local_port) for g in groups] == [
        ("tcp", 40001),
        ("tcp", 50000),
        ("udp", 50000),
    ]
    server = groups[1]
    assert isinstance(server, PortGroup)
    assert server.sockets[0] == LISTENER
    assert server.listeners == (LISTENER,)
    assert set(server.connections) == {SERVER_SIDE_A, SERVER_SIDE_B}
    assert not groups[0].is_server_port and groups[2].is_server_port


def statuses(rows: tuple[object, ...]) -> dict[int | None, RowStatus]:
    return {w.row.remote_port: w.status for w in rows}  # type: ignore[attr-defined]


def test_watch_baseline_then_appeared_closed_and_retention() -> None:
    watch = SocketWatch(retention_s=5.0)
    rows, changes = watch.update([LISTENER, SERVER_SIDE_A], now=100.0)
    assert changes == () and statuses(rows) == {None: RowStatus.OPEN, 40001: RowStatus.OPEN}

    rows, changes = watch.update([LISTENER, SERVER_SIDE_B], now=101.0)
    assert statuses(rows) == {
        None: RowStatus.OPEN,
        40001: RowStatus.CLOSED,
        40002: RowStatus.APPEARED,
    }
    assert [(c.status, c.row) for c in changes] == [
        (RowStatus.APPEARED, SERVER_SIDE_B),
        (RowStatus.CLOSED, SERVER_SIDE_A),
    ]
    # Within the retention time nothing changes and nothing is logged again.
    rows, changes = watch.update([LISTENER, SERVER_SIDE_B], now=105.9)
    assert changes == () and statuses(rows)[40001] is RowStatus.CLOSED
    # After it, the closed row is gone and the new one is plain.
    rows, changes = watch.update([LISTENER, SERVER_SIDE_B], now=106.0)
    assert changes == () and statuses(rows) == {None: RowStatus.OPEN, 40002: RowStatus.OPEN}


def test_watch_state_change_and_reappearance() -> None:
    watch = SocketWatch(retention_s=2.0)
    watch.update([SERVER_SIDE_A], now=0.0)
    waiting = tcp(50000, 40001, state="TIME_WAIT", pid=None)
    rows, changes = watch.update([waiting], now=1.0)
    assert [c.status for c in changes] == [RowStatus.CHANGED]
    assert changes[0].previous == SERVER_SIDE_A and rows[0].row == waiting
    watch.update([], now=1.5)
    rows, changes = watch.update([SERVER_SIDE_A], now=2.0)  # back while still shown closed
    assert [c.status for c in changes] == [RowStatus.APPEARED]
    assert rows[0].status is RowStatus.APPEARED


def test_watch_rejects_a_clock_going_backwards() -> None:
    watch = SocketWatch(retention_s=1.0)
    watch.update([], now=10.0)
    with pytest.raises(ValueError, match="backwards"):
        watch.update([], now=9.0)


def test_index_gives_the_same_answer_as_the_whole_table() -> None:
    from socklab.tools.ports import index_by_local_port

    index = index_by_local_port(TABLE)
    assert set(index[("tcp", 50000)]) == {LISTENER, SERVER_SIDE_A, SERVER_SIDE_B}
    for proto, destination, source in [
        ("tcp", ("127.0.0.1", 50000), ("127.0.0.1", 40002)),
        ("tcp", ("127.0.0.1", 50000), ("127.0.0.1", 1)),
        ("udp", ("127.0.0.1", 50000), ("127.0.0.9", 9)),
    ]:
        candidates = index.get((proto, destination[1]), [])
        assert find_receiving_socket(candidates, proto, destination, source) == (
            find_receiving_socket(TABLE, proto, destination, source)
        )
