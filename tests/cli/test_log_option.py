"""`--log FILE` on the servers and `impair`: every line they print, appended with its time.

The real commands run as subprocesses on loopback; each log is compared with what the same
process printed, so the file holds the console's lines (the -v lines among them), no more.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable
from pathlib import Path

from tests.socklab_process import SocklabProcess, free_port, run_socklab

Start = Callable[..., SocklabProcess]
STAMPED = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (.*)$")


def logged_lines(path: Path) -> list[str]:
    """The log's lines without their timestamps; every line must have one."""
    lines = path.read_text(encoding="utf-8").splitlines()
    matches = [STAMPED.match(line) for line in lines]
    assert all(matches), lines
    return [match.group(1) for match in matches if match]


def printed_lines(process: SocklabProcess) -> list[str]:
    return sorted(process.stdout_lines + process.stderr_lines)


def test_converter_server_logs_its_lines_and_each_connection_with_v(
    start_socklab: Start, tmp_path: Path
) -> None:
    log = tmp_path / "server.log"
    server = start_socklab(["converter", "server", "--port", "0", "-v", "--log", str(log)])
    host, port = server.wait_listening()
    with socket.create_connection((host, port), timeout=5) as client:
        client.sendall(b"U:logged\n")
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = client.recv(100)
            assert chunk, reply
            reply += chunk
    server.wait_for_line(r"^Connection from 127\.0\.0\.1:\d+ closed")
    assert server.stop() == 0
    logged = logged_lines(log)
    assert sorted(logged) == printed_lines(server)
    assert any(re.match(r"^Connection from 127\.0\.0\.1:\d+$", line) for line in logged)
    assert any(line.startswith("Server stopped") for line in logged)


def test_hello_server_logs_the_sheets_lines(start_socklab: Start, tmp_path: Path) -> None:
    log = tmp_path / "hello.log"
    port = free_port()
    args = ["hello", "server", "--host", "127.0.0.1", "--port", str(port), "--log", str(log)]
    server = start_socklab(args)
    server.wait_for_line(r"^Server: Listening on port \d+$")
    client = run_socklab(["hello", "client", "--port", str(port)], timeout_s=20)
    assert client.returncode == 0, client.stderr
    assert server.wait() == 0
    logged = logged_lines(log)
    assert sorted(logged) == printed_lines(server)
    assert "Server: Starting..." in logged and any("Hi server!" in line for line in logged)


def test_impair_appends_to_an_existing_log(start_socklab: Start, tmp_path: Path) -> None:
    log = tmp_path / "impair.log"
    log.write_text("2026-01-01 00:00:00 an earlier run\n", encoding="utf-8")
    target = start_socklab(["converter", "server", "--port", "0"])
    target_port = target.wait_listening()[1]
    relay = start_socklab(
        [
            "impair",
            "--udp",
            "--listen",
            "127.0.0.1:0",
            "--target",
            f"127.0.0.1:{target_port}",
            "--loss",
            "0.5",
            "--seed",
            "1",
            "--log",
            str(log),
        ]
    )
    relay.wait_listening()
    assert relay.stop() == 0
    logged = logged_lines(log)
    assert logged[0] == "an earlier run"
    assert sorted(logged[1:]) == printed_lines(relay)
    assert len(logged) > 2  # the listening line and the final counts at least


def test_a_log_that_cannot_be_opened_is_one_line_and_usage_status() -> None:
    args = ["upper", "server", "--udp", "--port", str(free_port(socket.SOCK_DGRAM))]
    result = run_socklab([*args, "--log", "/nonexistent/dir/upper.log"], timeout_s=20)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        "socklab upper server: cannot open log file /nonexistent/dir/upper.log: No such file or directory"
    ]
