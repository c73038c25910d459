"""`socklab ports` end to end: a real server and connection, compared with ss(8)."""

from __future__ import annotations

import io
import json
import os
import re
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from socklab.cli.environment import Environment
from socklab.cli.main import main
from socklab.cli.status import ExitStatus
from socklab.tools import ports
from tests.socklab_process import SocklabProcess, free_port, run_socklab

JSON_KEYS = [
    "proto",
    "family",
    "local_address",
    "local_port",
    "remote_address",
    "remote_port",
    "state",
    "pid",
    "process",
]


@pytest.fixture
def server_with_client(
    start_socklab: Callable[..., SocklabProcess],
) -> Iterator[tuple[SocklabProcess, int, socket.socket]]:
    port = free_port()
    server = start_socklab(["converter", "server", "--port", str(port)])
    server.wait_listening()
    client = socket.create_connection(("127.0.0.1", port), timeout=5)
    client.recv(100)  # the greeting: the connection is established on both ends
    with client:
        yield server, port, client


def ports_json(*args: str) -> list[dict[str, object]]:
    result = run_socklab(["ports", *args, "--json"])
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert isinstance(rows, list)
    return rows


def test_json_finds_listener_and_both_ends_with_pids(
    server_with_client: tuple[SocklabProcess, int, socket.socket],
) -> None:
    server, port, client = server_with_client
    client_port = client.getsockname()[1]
    rows = ports_json("--tcp", "--port", str(port))
    # every row carries the format version after the socket's keys
    assert all(list(row) == [*JSON_KEYS, "schema"] and row["schema"] == 1 for row in rows)
    by_ends = {(row["local_port"], row["remote_port"]): row for row in rows}
    listener = by_ends[(port, None)]
    assert listener["state"] == "LISTEN" and listener["pid"] == server.pid
    assert listener["process"] == "socklab" and listener["remote_address"] is None
    server_end = by_ends[(port, client_port)]
    assert server_end["state"] == "ESTABLISHED" and server_end["pid"] == server.pid
    client_end = by_ends[(client_port, port)]
    assert client_end["state"] == "ESTABLISHED"
    assert client_end["pid"] == os.getpid()
    assert {row["proto"] for row in rows} == {"tcp"} and {row["family"] for row in rows} == {"ipv4"}


def _ss_rows(port: int) -> set[tuple[str, str, str, int | None]]:
    """(local, peer, state, pid) of every TCP socket on `port`, as ss -tanp prints them."""
    output = subprocess.run(
        ["ss", "-tanpH", f"( sport = :{port} or dport = :{port} )"],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    ).stdout
    rows = set()
    states = {"ESTAB": "ESTABLISHED", "LISTEN": "LISTEN", "TIME-WAIT": "TIME_WAIT"}
    for line in output.splitlines():
        fields = line.split()
        pid = re.search(r"pid=(\d+)", line)
        peer = fields[4] if not fields[4].endswith(":*") else "*"
        rows.add((fields[3], peer, states.get(fields[0], fields[0]), int(pid[1]) if pid else None))
    return rows


def test_agrees_with_ss(server_with_client: tuple[SocklabProcess, int, socket.socket]) -> None:
    _server, port, _client = server_with_client
    ours = {
        (
            f"{row['local_address']}:{row['local_port']}",
            "*" if row["remote_port"] is None else f"{row['remote_address']}:{row['remote_port']}",
            row["state"],
            row["pid"],
        )
        for row in ports_json("--tcp", "--port", str(port))
    }
    assert ours == _ss_rows(port)
    assert len(ours) == 3


def test_table_csv_and_explain(
    server_with_client: tuple[SocklabProcess, int, socket.socket],
    start_socklab: Callable[..., SocklabProcess],
) -> None:
    server, port, _client = server_with_client
    udp = start_socklab(["converter", "server", "--udp", "--port", str(port)])
    udp.wait_listening()
    table = run_socklab(["ports", "--port", str(port)])
    assert table.returncode == 0, table.stderr
    assert re.search(
        rf"tcp +127\.0\.0\.1:{port} +\* +LISTEN +{server.pid} \(socklab\)", table.stdout
    )
    assert re.search(rf"udp +127\.0\.0\.1:{port} +\* +UNCONN +{udp.pid} \(socklab\)", table.stdout)
    rows = [line for line in table.stdout.splitlines() if re.match(r"(tcp|udp) ", line)]
    # Another program's earlier connection to a reused port may linger in TIME_WAIT: not ours.
    assert len([row for row in rows if "TIME_WAIT" not in row]) == 4
    assert re.search(rf"^{len(rows)} sockets$", table.stdout, re.M)

    csv_out = run_socklab(["ports", "--port", str(port), "--udp", "--csv"]).stdout.splitlines()
    assert csv_out == [",".join(JSON_KEYS), f"udp,ipv4,127.0.0.1,{port},,,,{udp.pid},socklab"]

    explained = run_socklab(["ports", "--port", str(port), "--explain"]).stdout
    assert f"TCP port {port}: 1 listening, 1 connected" in explained
    assert "4-tuple" in explained and f"UDP port {port}: 1 socket" in explained
    assert "destination port alone" in explained
    listening = ports_json("--listening", "--port", str(port))
    assert {(row["proto"], row["pid"]) for row in listening} == {
        ("tcp", server.pid),
        ("udp", udp.pid),
    }


def test_watch_logs_appeared_and_closed_sockets(
    start_socklab: Callable[..., SocklabProcess], tmp_path: Path
) -> None:
    port = free_port()
    server = start_socklab(["converter", "server", "--port", str(port)])
    server.wait_listening()
    log = tmp_path / "changes.log"
    watch = start_socklab(
        ["ports", "--tcp", "--port", str(port), "--watch", "0.2", "--log", str(log)]
    )
    watch.wait_for_line(r"Watching for changes", timeout_s=30)
    client = socket.create_connection(("127.0.0.1", port), timeout=5)
    client.recv(100)
    client_port = client.getsockname()[1]
    watch.wait_for_line(
        rf"appeared +tcp +127\.0\.0\.1:{port} 127\.0\.0\.1:{client_port} ESTABLISHED {server.pid}",
        timeout_s=30,
    )
    client.sendall(b"C:\n")  # the server closes first, so the TIME_WAIT stays on its side
    client.recv(100)
    client.close()
    watch.wait_for_line(rf"(closed|changed) +tcp +127\.0\.0\.1:{client_port} ", timeout_s=30)
    watch.stop()
    logged = log.read_text(encoding="utf-8")
    assert f"127.0.0.1:{port} 127.0.0.1:{client_port} ESTABLISHED {server.pid}" in logged
    assert re.search(rf"(closed|changed) +tcp +127\.0\.0\.1:{client_port} ", logged)


def test_usage_errors_are_one_line() -> None:
    result = run_socklab(["ports", "--log", "x.log"])
    assert result.returncode == ExitStatus.USAGE
    assert (
        result.stderr.strip()
        == "socklab ports: --log records the changes seen by --watch; add --watch."
    )
    result = run_socklab(["ports", "--json", "--csv"])
    assert result.returncode == ExitStatus.USAGE and "not allowed with" in result.stderr
    result = run_socklab(["ports", "--port", "70000"])
    assert result.returncode == ExitStatus.USAGE and "out of range" in result.stderr


def test_what_is_hidden_is_said_on_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    # Without root, Linux shows other users' sockets without their owner: simulated here, as
    # the test runs as root.
    row = ports.SocketRow("tcp", "ipv4", "127.0.0.1", 1, None, None, "LISTEN", None, None)
    table = ports.SocketTable((row,), ports.Hidden(ports.HiddenReason.OTHER_USERS_PROCESSES, 1))
    monkeypatch.setattr("socklab.cli.ports.read_socket_table", lambda selection=None: table)
    out, err = io.StringIO(), io.StringIO()
    env = Environment(io.StringIO(), out, err, {}, False, False)
    assert main(["ports", "--json"], env) == ExitStatus.OK
    assert json.loads(out.getvalue())[0]["pid"] is None
    assert err.getvalue().startswith("1 socket is shown without PID and process")
    assert "sudo socklab ports" in err.getvalue()


def test_address_in_use_names_the_holder(
    server_with_client: tuple[SocklabProcess, int, socket.socket],
) -> None:
    server, port, _client = server_with_client
    result = run_socklab(["converter", "server", "--port", str(port)])
    assert result.returncode == ExitStatus.ADDRESS_IN_USE
    assert f"in use by PID {server.pid} (socklab)" in result.stderr
