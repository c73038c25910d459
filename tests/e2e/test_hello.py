"""`socklab hello`: the prep sheet's exact lines, against itself and the sheet's own programs."""

from __future__ import annotations

import re
import socket
from collections.abc import Callable

from tests.e2e.course import finish, start_course_program, wait_for_output_line
from tests.socklab_process import SocklabProcess, free_port, run_socklab

SERVER_LINES = [
    r"^Server: Starting\.\.\.$",
    r"^Server: Socket created\.$",
    r"^Server: Binding to 0\.0\.0\.0:{port}$",
    # The sheet's 0.0.0.0 opens the server to the network: said as every socklab server says it.
    r"^Note: listening on all interfaces, so other computers can connect\. Use --host 127\.0\.0\.1 to stay local\.$",
    r"^Server: Listening on port {port}$",
    r"^Server: Connection accepted from 127\.0\.0\.1:\d+$",
    r"^Server: Received: Hi server!$",
    r"^Server: Client connection closed\.$",
    r"^Server: Server socket closed\.$",
]
CLIENT_LINES = [
    "Client: Starting...",
    "Client: Socket created.",
    "Client: Connecting to 127.0.0.1:{port}",
    "Client: Connected!",
    "Client: Sent: Hi server!",
    "Client: Socket closed.",
]


def assert_server_transcript(lines: list[str], port: int) -> None:
    assert len(lines) == len(SERVER_LINES), lines
    for line, pattern in zip(lines, SERVER_LINES, strict=True):
        assert re.match(pattern.format(port=port), line), (line, pattern)


def test_server_and_client_print_the_sheets_lines(
    start_socklab: Callable[..., SocklabProcess],
) -> None:
    port = free_port()
    server = start_socklab(["hello", "server", "--port", str(port)])
    server.wait_for_line(rf"Listening on port {port}$")
    client = run_socklab(["hello", "client", "--port", str(port)])
    assert client.returncode == 0, client.stderr
    assert client.stdout.splitlines() == [line.format(port=port) for line in CLIENT_LINES]
    assert server.wait() == 0  # serves one connection, then exits 0, as in the sheet
    assert_server_transcript(server.stdout_lines, port)
    assert server.stderr_lines == []


def test_custom_message(start_socklab: Callable[..., SocklabProcess]) -> None:
    port = free_port()
    server = start_socklab(["hello", "server", "--port", str(port)])
    server.wait_for_line("Listening on port")
    client = run_socklab(["hello", "client", "--port", str(port), "--message", "Grüß dich!"])
    assert "Client: Sent: Grüß dich!" in client.stdout
    server.wait()
    assert "Server: Received: Grüß dich!" in server.stdout_lines


def test_client_without_server_prints_the_sheets_error_line() -> None:
    result = run_socklab(["hello", "client", "--port", str(free_port())])
    assert result.returncode != 0
    assert re.search(
        r"^Client: Failed to connect or send\. Is server running\? Error: \[Errno 111\] Connection refused$",
        result.stdout,
        re.M,
    )
    assert "Traceback" not in result.stderr


def test_server_on_a_taken_port_names_the_holder(
    start_socklab: Callable[..., SocklabProcess],
) -> None:
    port = free_port()
    holder = start_socklab(["hello", "server", "--port", str(port)])
    holder.wait_for_line("Listening on port")
    result = run_socklab(["hello", "server", "--port", str(port)])
    assert result.returncode != 0
    assert re.search(
        r"^Server: Socket error: \[Errno 98\] Address already in use$", result.stdout, re.M
    )
    assert f"PID {holder.pid}" in result.stderr
    assert "Traceback" not in result.stderr


def test_server_restarts_at_once_on_the_same_port(
    start_socklab: Callable[..., SocklabProcess],
) -> None:
    port = free_port()
    for _ in range(2):  # the second bind happens while the first connection is in TIME_WAIT
        server = start_socklab(["hello", "server", "--port", str(port)])
        server.wait_for_line("Listening on port")
        assert run_socklab(["hello", "client", "--port", str(port)]).returncode == 0
        assert server.wait() == 0


def test_server_stops_cleanly_on_sigterm(start_socklab: Callable[..., SocklabProcess]) -> None:
    server = start_socklab(["hello", "server", "--port", str(free_port())])
    server.wait_for_line("Listening on port")
    assert server.stop() == 0
    assert server.stdout_lines[-1] == "Server: Server socket closed."
    assert server.stderr_lines == []


def test_sheet_client_against_socklab_server(start_socklab: Callable[..., SocklabProcess]) -> None:
    port = free_port()
    server = start_socklab(["hello", "server", "--port", str(port)])
    server.wait_for_line("Listening on port")
    out, _ = finish(start_course_program("hello-client", port))
    assert "Client: Connected!" in out
    server.wait()
    assert "Server: Received: Hi server!" in server.stdout_lines


def test_socklab_client_against_sheet_server() -> None:
    port = free_port()
    sheet_server = start_course_program("hello-server", port)
    wait_for_output_line(sheet_server, "Listening on port")
    client = run_socklab(["hello", "client", "--port", str(port)])
    assert client.returncode == 0
    out, _ = finish(sheet_server)
    assert "Server: Received: Hi server!" in out


def test_message_longer_than_one_recv_is_cut_as_in_the_sheet(
    start_socklab: Callable[..., SocklabProcess],
) -> None:
    port = free_port()
    server = start_socklab(["hello", "server", "--port", str(port)])
    server.wait_for_line("Listening on port")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"x" * 1024 + b"\xff" * 10)
    server.wait()
    # One recv(1024) took the first 1024 bytes; the line shows the first 200 and names the size.
    assert f"Server: Received: {'x' * 200}… (1,024 bytes)" in server.stdout_lines
