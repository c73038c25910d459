"""The Linux socket table: the sock_diag reader against the real kernel, owners from /proc,
agreement with the psutil path, and the fallback when netlink is refused.

The test opens its own sockets — TCP listeners on IPv4 and IPv6, an established pair, UDP bound
and connected, and a listener held by a child process — and looks for exactly those. Other tests
run in parallel on the same machine, so assertions are about our sockets, never about totals.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from socklab.cli.environment import Environment
from socklab.cli.main import main
from socklab.cli.status import ExitStatus
from socklab.tools import ports, sock_diag, socket_owners
from socklab.tools.ports import SocketFilter, SocketRow


@dataclass
class KnownSockets:
    listener4: socket.socket
    listener6: socket.socket
    client: socket.socket
    server_end: socket.socket
    udp4: socket.socket
    udp6_connected: socket.socket
    child_pid: int
    child_port: int

    @property
    def port4(self) -> int:
        return int(self.listener4.getsockname()[1])

    @property
    def port6(self) -> int:
        return int(self.listener6.getsockname()[1])

    @property
    def client_port(self) -> int:
        return int(self.client.getsockname()[1])

    @property
    def udp4_port(self) -> int:
        return int(self.udp4.getsockname()[1])

    @property
    def udp6_port(self) -> int:
        return int(self.udp6_connected.getsockname()[1])


CHILD = (
    "import socket, sys\n"
    "s = socket.socket()\n"
    "s.bind(('127.0.0.1', 0))\n"
    "s.listen()\n"
    "print(s.getsockname()[1], flush=True)\n"
    "sys.stdin.read()\n"
)


@pytest.fixture
def known() -> Iterator[KnownSockets]:
    opened: list[socket.socket] = []

    def keep(sock: socket.socket) -> socket.socket:
        opened.append(sock)
        return sock

    child = subprocess.Popen(
        [sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        child_port = int(child.stdout.readline())
        listener4 = keep(socket.create_server(("127.0.0.1", 0)))
        listener6 = keep(socket.create_server(("::1", 0), family=socket.AF_INET6))
        client = keep(socket.create_connection(("127.0.0.1", listener4.getsockname()[1]), 5))
        server_end = keep(listener4.accept()[0])
        udp4 = keep(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
        udp4.bind(("127.0.0.1", 0))
        udp6_connected = keep(socket.socket(socket.AF_INET6, socket.SOCK_DGRAM))
        udp6_connected.bind(("::1", 0))
        udp6_connected.connect(("::1", listener6.getsockname()[1]))
        yield KnownSockets(
            listener4, listener6, client, server_end, udp4, udp6_connected, child.pid, child_port
        )
    finally:
        for sock in opened:
            sock.close()
        if child.stdin is not None:
            child.stdin.close()
        child.wait(timeout=10)


def inode(sock: socket.socket) -> int:
    return os.fstat(sock.fileno()).st_ino


def row(
    proto: str,
    local: tuple[str, int],
    remote: tuple[str, int] | None,
    state: str | None,
    pid: int | None = None,
) -> SocketRow:
    me = pid or os.getpid()
    return SocketRow(
        proto,
        "ipv6" if ":" in local[0] else "ipv4",
        local[0],
        local[1],
        remote[0] if remote else None,
        remote[1] if remote else None,
        state,
        me,
        psutil.Process(me).name(),
    )


def expected_rows(known: KnownSockets) -> set[SocketRow]:
    loopback = "127.0.0.1"
    return {
        row("tcp", (loopback, known.port4), None, "LISTEN"),
        row("tcp", ("::1", known.port6), None, "LISTEN"),
        row("tcp", (loopback, known.client_port), (loopback, known.port4), "ESTABLISHED"),
        row("tcp", (loopback, known.port4), (loopback, known.client_port), "ESTABLISHED"),
        row("udp", (loopback, known.udp4_port), None, None),
        row("udp", ("::1", known.udp6_port), ("::1", known.port6), None),
        row("tcp", (loopback, known.child_port), None, "LISTEN", pid=known.child_pid),
    }


def owned(rows: tuple[SocketRow, ...] | list[SocketRow], known: KnownSockets) -> set[SocketRow]:
    """Rows of this process or the child (this test worker may hold other tests' sockets too)."""
    pids = {os.getpid(), known.child_pid}
    return {r for r in rows if r.pid in pids}


def ours(rows: tuple[SocketRow, ...] | list[SocketRow], known: KnownSockets) -> set[SocketRow]:
    """Rows of the sockets the fixture opened."""
    local_ports = {
        known.port4,
        known.port6,
        known.client_port,
        known.udp4_port,
        known.udp6_port,
        known.child_port,
    }
    return {r for r in owned(rows, known) if r.local_port in local_ports}


def test_the_kernel_dump_has_our_sockets_with_states_addresses_and_inodes(
    known: KnownSockets,
) -> None:
    dumped = {s.inode: s for s in sock_diag.read_sockets()}
    listener = dumped[inode(known.listener4)]
    assert (listener.proto, listener.family, listener.state) == ("tcp", socket.AF_INET, 10)
    assert (listener.sport, listener.dport) == (known.port4, 0)
    assert listener.src[:4] == socket.inet_aton("127.0.0.1")
    listener6 = dumped[inode(known.listener6)]
    assert (listener6.family, listener6.state, listener6.sport) == (
        socket.AF_INET6,
        10,
        known.port6,
    )
    assert listener6.src == socket.inet_pton(socket.AF_INET6, "::1")
    client = dumped[inode(known.client)]
    assert (client.state, client.sport, client.dport) == (1, known.client_port, known.port4)
    server_end = dumped[inode(known.server_end)]
    assert (server_end.state, server_end.sport, server_end.dport) == (
        1,
        known.port4,
        known.client_port,
    )
    udp = dumped[inode(known.udp4)]
    assert (udp.proto, udp.state, udp.sport, udp.dport) == ("udp", 7, known.udp4_port, 0)
    connected = dumped[inode(known.udp6_connected)]
    assert (connected.proto, connected.state, connected.dport) == ("udp", 1, known.port6)
    assert listener.uid == os.geteuid()


def test_the_kernel_filters_by_port_and_by_state(known: KnownSockets) -> None:
    on_port = list(sock_diag.read_sockets(port=known.port4))
    assert all(known.port4 in (s.sport, s.dport) for s in on_port)
    assert {inode(known.listener4), inode(known.client), inode(known.server_end)} <= {
        s.inode for s in on_port
    }
    listening = list(sock_diag.read_sockets(states={"tcp": 1 << 10, "udp": 1 << 7}))
    assert all(s.state == (10 if s.proto == "tcp" else 7) for s in listening)
    inodes = {s.inode for s in listening}
    assert {inode(known.listener4), inode(known.listener6), inode(known.udp4)} <= inodes
    assert inode(known.client) not in inodes and inode(known.udp6_connected) not in inodes
    udp_only = list(sock_diag.read_sockets(("udp",), (socket.AF_INET6,)))
    assert {(s.proto, s.family) for s in udp_only} == {("udp", socket.AF_INET6)}


def test_the_table_has_our_sockets_with_pids_and_names(known: KnownSockets) -> None:
    table = ports.read_socket_table()
    assert expected_rows(known) <= ours(table.rows, known)
    found = ours(table.rows, known)
    assert len(found) == len(expected_rows(known)), found - expected_rows(known)


@pytest.mark.parametrize(
    ("selection", "which"),
    [
        (lambda k: SocketFilter(port=k.port4), {"listener4", "client", "server_end"}),
        (lambda k: SocketFilter(port=k.port6), {"listener6", "udp6"}),
        (lambda k: SocketFilter(port=k.port6, protocols=frozenset({"tcp"})), {"listener6"}),
        (lambda k: SocketFilter(port=k.child_port), {"child"}),
        (lambda k: SocketFilter(port=k.child_port, pid=os.getpid()), set()),
    ],
    ids=["port4", "port6-both-protocols", "port6-tcp", "child", "child-not-our-pid"],
)
def test_filters_before_owners(known: KnownSockets, selection: object, which: set[str]) -> None:
    chosen = selection(known)  # type: ignore[operator]
    loopback = "127.0.0.1"
    named = {
        "listener4": row("tcp", (loopback, known.port4), None, "LISTEN"),
        "client": row("tcp", (loopback, known.client_port), (loopback, known.port4), "ESTABLISHED"),
        "server_end": row(
            "tcp", (loopback, known.port4), (loopback, known.client_port), "ESTABLISHED"
        ),
        "listener6": row("tcp", ("::1", known.port6), None, "LISTEN"),
        "udp6": row("udp", ("::1", known.udp6_port), ("::1", known.port6), None),
        "child": row("tcp", (loopback, known.child_port), None, "LISTEN", pid=known.child_pid),
    }
    rows = ports.read_socket_table(chosen).rows
    assert all(chosen.matches(r) for r in rows)
    # Other tests may leave TIME_WAIT sockets on a reused port: those are not ours.
    assert {r for r in rows if r.state != "TIME_WAIT"} == {named[name] for name in which}


def test_listening_selection(known: KnownSockets) -> None:
    rows = ours(ports.read_socket_table(SocketFilter(listening_only=True)).rows, known)
    assert {(r.proto, r.local_port) for r in rows} == {
        ("tcp", known.port4),
        ("tcp", known.port6),
        ("udp", known.udp4_port),
        ("tcp", known.child_port),
    }


def test_agrees_with_psutil_on_the_same_sockets(known: KnownSockets) -> None:
    kernel = ours(ports._read_sock_diag(SocketFilter()).rows, known)
    psutil_rows = ours(ports._read_psutil(SocketFilter()).rows, known)
    assert kernel == psutil_rows == expected_rows(known)
    selection = SocketFilter(port=known.port4)
    assert set(ports._read_sock_diag(selection).rows) >= {
        r for r in ports._read_psutil(selection).rows if r.pid == os.getpid()
    }


def test_falls_back_to_psutil_when_netlink_is_refused(
    known: KnownSockets, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse() -> socket.socket:
        raise sock_diag.SockDiagUnavailable(1, "netlink refused (simulated)")

    monkeypatch.setattr(sock_diag, "open_netlink", refuse)
    with pytest.raises(sock_diag.SockDiagUnavailable):
        list(sock_diag.read_sockets())
    table = ports.read_socket_table()
    assert expected_rows(known) == ours(table.rows, known)
    out, err = io.StringIO(), io.StringIO()
    env = Environment(io.StringIO(), out, err, {}, False, False)
    assert main(["ports", "--port", str(known.port4), "--json"], env) == ExitStatus.OK
    listed = {(r["local_port"], r["remote_port"], r["pid"]) for r in json.loads(out.getvalue())}
    assert (known.port4, None, os.getpid()) in listed and err.getvalue() == ""


def test_a_kernel_error_answer_is_unavailable_not_a_crash() -> None:
    # struct nlmsghdr (type NLMSG_ERROR) + struct nlmsgerr: -ENOENT, what a kernel without
    # udp_diag answers to a UDP dump.
    answer = sock_diag._HEADER.pack(36, sock_diag.NLMSG_ERROR, 0, 1, 0) + (
        sock_diag._ERROR.pack(-2) + bytes(16)
    )
    with pytest.raises(sock_diag.SockDiagUnavailable) as caught:
        sock_diag.parse_messages(answer, "udp")
    assert caught.value.errno == 2
    truncated = sock_diag._HEADER.pack(500, sock_diag.SOCK_DIAG_BY_FAMILY, 0, 1, 0)
    with pytest.raises(sock_diag.SockDiagUnavailable):
        sock_diag.parse_messages(truncated, "tcp")
    done = sock_diag._HEADER.pack(20, sock_diag.NLMSG_DONE, 0, 1, 0) + bytes(4)
    assert sock_diag.parse_messages(done, "tcp") == ([], True)


# --- owners from a made-up /proc ----------------------------------------------------------------


def fake_process(proc: Path, pid: int, inodes: list[int], comm: str, cmdline: str = "") -> None:
    fds = proc / str(pid) / "fd"
    fds.mkdir(parents=True)
    for number, socket_inode in enumerate(inodes):
        os.symlink(f"socket:[{socket_inode}]", fds / str(number))
    os.symlink("/dev/null", fds / str(len(inodes)))  # not a socket
    (proc / str(pid) / "comm").write_text(comm + "\n")
    (proc / str(pid) / "cmdline").write_text(cmdline)


def test_owners_lowest_pid_wins_and_the_scan_stops_when_all_are_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_process(tmp_path, 300, [7, 8], "worker")
    fake_process(tmp_path, 20, [5, 7], "parent")
    fake_process(tmp_path, 900, [9], "late")
    (tmp_path / "self").mkdir()  # not a PID
    scan = socket_owners.find_socket_owners([5, 7, 8, 0], proc=str(tmp_path))
    assert scan.pids == {5: 20, 7: 20, 8: 300} and scan.refused == 0
    opened: list[str] = []
    real_open = os.open

    def spy(path: str, *args: object, **kwargs: object) -> int:
        opened.append(path)
        return real_open(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket_owners.os, "open", spy)
    assert socket_owners.find_socket_owners([5], proc=str(tmp_path)).pids == {5: 20}
    assert opened == [f"{tmp_path}/20/fd"]  # found in the first process: no other is read


def test_owners_survive_vanished_and_refusing_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_process(tmp_path, 10, [1], "gone")
    fake_process(tmp_path, 11, [2], "secret")
    fake_process(tmp_path, 12, [3], "open")
    (tmp_path / "13").mkdir()  # a process that exited: no fd directory any more
    real_open = os.open

    def open_or_refuse(path: str, *args: object, **kwargs: object) -> int:
        if path.endswith("/10/fd"):
            raise FileNotFoundError(path)  # exited between the listing and the read
        if path.endswith("/11/fd"):
            raise PermissionError(path)  # another user's process, without root
        return real_open(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket_owners.os, "open", open_or_refuse)
    scan = socket_owners.find_socket_owners([1, 2, 3, 4], proc=str(tmp_path))
    assert scan.pids == {3: 12} and scan.refused == 1
    assert socket_owners.find_socket_owners([1], proc=str(tmp_path / "missing")).pids == {}


def test_process_names_as_psutil_gives_them(tmp_path: Path) -> None:
    fake_process(tmp_path, 1, [], "short")
    fake_process(tmp_path, 2, [], "gnome-keyring-d", "/usr/bin/gnome-keyring-daemon\0--start\0")
    fake_process(tmp_path, 3, [], "chrome-renderer", "chrome-renderer-process --type=x")
    fake_process(tmp_path, 4, [], "averylongnamexx", "/bin/other\0")
    names = socket_owners.process_names([1, 2, 3, 4, 5], proc=str(tmp_path))
    assert names == {
        1: "short",
        2: "gnome-keyring-daemon",
        3: "chrome-renderer-process",
        4: "averylongnamexx",
        5: None,
    }
    assert socket_owners.process_name(os.getpid()) == psutil.Process().name()


def test_many_descriptors_are_read_by_threads_with_the_same_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_process(tmp_path, 5, list(range(1, 301)), "many")
    monkeypatch.setattr(socket_owners, "_THREADED_DESCRIPTORS", 10)
    monkeypatch.setattr(socket_owners, "_threads", lambda: 3)
    scan = socket_owners.find_socket_owners([1, 150, 300, 999], proc=str(tmp_path))
    assert scan.pids == {1: 5, 150: 5, 300: 5}


def test_owners_hidden_only_when_a_process_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ports, "_is_privileged", lambda: False)
    orphan = SocketRow("tcp", "ipv4", "127.0.0.1", 1, "127.0.0.1", 2, "FIN_WAIT1", None, None)
    waiting = dataclasses.replace(orphan, state="TIME_WAIT")
    assert ports._hidden([orphan, waiting], refused=0) is None  # every process was read
    hidden = ports._hidden([orphan, waiting], refused=3)
    assert hidden == ports.Hidden(ports.HiddenReason.OTHER_USERS_PROCESSES, 1)
    assert ports._hidden([orphan]) == hidden  # psutil's path cannot tell: the count says it
    monkeypatch.setattr(ports, "_is_privileged", lambda: True)
    assert ports._hidden([orphan], refused=3) is None


def test_no_thread_to_be_had_is_no_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_process(tmp_path, 5, list(range(1, 301)), "many")
    monkeypatch.setattr(socket_owners, "_THREADED_DESCRIPTORS", 10)
    monkeypatch.setattr(socket_owners, "_threads", lambda: 3)
    real_start = socket_owners.threading.Thread.start
    calls = []

    def start_once(thread: object) -> None:
        calls.append(thread)
        if len(calls) > 1:
            raise RuntimeError("can't start new thread")
        real_start(thread)  # type: ignore[arg-type]

    monkeypatch.setattr(socket_owners.threading.Thread, "start", start_once)
    scan = socket_owners.find_socket_owners([1, 2, 3, 150, 300], proc=str(tmp_path))
    assert scan.pids == {1: 5, 2: 5, 3: 5, 150: 5, 300: 5}
