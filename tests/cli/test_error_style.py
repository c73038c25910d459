"""One error style for every command: `socklab <command>: <what happened>. <next step>`.

A table of broken command lines, each run as the real `socklab`: standard error holds exactly one
line in that style, and the exit status is the one docs/TEACHING.md lists (2 usage, 3 network,
5 permission, 6 port in use). Plus the case the lecture explains: a port that no program holds,
only connections in TIME_WAIT.
"""

from __future__ import annotations

import errno
import os
import re
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from socklab.cli.commands import command_summaries
from tests.cli.test_failures import unprivileged_prefix
from tests.socklab_process import child_environment, free_port, run_socklab, socklab_command

USAGE, NETWORK, PERMISSION, ADDRESS_IN_USE = 2, 3, 5, 6
# The command words, a colon, the message (which may end in a peer's line, shown as it came).
STYLE = re.compile(r"socklab(?: [a-z][a-z-]*)*: \S.*")


def error_line(stderr: str) -> str:
    """The one line on standard error, checked against the style."""
    assert "Traceback" not in stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert STYLE.fullmatch(lines[0]), lines[0]
    return lines[0]


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A TCP port this test process listens on (so the holder is visible: our own PID)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        yield listener.getsockname()[1]


@pytest.mark.parametrize(
    ("argv", "status", "expected"),
    [
        (
            ["helo"],
            USAGE,
            "socklab: unknown command 'helo': did you mean 'hello'? Try 'socklab --help'.",
        ),
        (
            ["--lang", "de", "helo"],
            USAGE,
            "socklab: unbekannter Befehl 'helo': Meintest du 'hello'? Mehr mit 'socklab --help'.",
        ),
        (
            ["hello", "sever"],
            USAGE,
            "socklab hello: unknown command 'sever': did you mean 'server'? "
            "Try 'socklab hello --help'.",
        ),
        (
            ["conveter", "client", "U:a"],
            USAGE,
            "socklab: unknown command 'conveter': did you mean 'converter'? Try 'socklab --help'.",
        ),
        (
            ["frobnicate"],
            USAGE,
            f"socklab: unknown command 'frobnicate' (commands: {', '.join(command_summaries())}). "
            "Try 'socklab --help'.",
        ),
        (
            ["converter", "client", "--frobnicate"],
            USAGE,
            "socklab converter client: unrecognized arguments: --frobnicate. "
            "Try 'socklab converter client --help'.",
        ),
        (
            ["converter", "client", "--port", "x"],
            USAGE,
            "socklab converter client: argument --port: 'x' is not a port number. "
            "Try 'socklab converter client --help'.",
        ),
        (
            ["hello"],
            USAGE,
            "socklab hello: the following arguments are required: ROLE. "
            "Try 'socklab hello --help'.",
        ),
        (
            ["ports", "--log", "x.log"],
            USAGE,
            "socklab ports: --log records the changes seen by --watch; add --watch.",
        ),
        (
            ["converter", "client", "--port", "0", "U:a"],
            USAGE,
            "socklab converter client: port 0 cannot be dialled: a server given port 0 gets a free "
            "port from the system, and its 'listening on' line names it. Use that port.",
        ),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else None,
)
def test_usage_errors_are_one_line_in_the_style(
    argv: list[str], status: int, expected: str
) -> None:
    result = run_socklab(argv)
    assert result.returncode == status, result.stderr
    assert error_line(result.stderr) == expected
    assert "usage:" not in result.stdout + result.stderr  # no usage block before the line


def test_hello_client_adds_the_hint_after_the_sheets_line() -> None:
    port = free_port()
    result = run_socklab(["hello", "client", "--port", str(port)])
    assert result.returncode == NETWORK
    # The prep sheet's line stays on standard output, as the sheet prints it ...
    assert "Client: Failed to connect or send. Is server running? Error: " in result.stdout
    # ... and the hint with a next step follows it on standard error.
    assert error_line(result.stderr) == (
        f"socklab hello client: Connection to 127.0.0.1:{port} refused: nothing is listening "
        "there. Is the server running, and on this port?"
    )


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (["converter", "server", "--port", "{port}"], "--port"),
        (["converter", "server", "--udp", "--port", "{port}"], "--port"),
        (["upper", "server", "--tcp", "--port", "{port}"], "--port"),
        (["hello", "server", "--port", "{port}"], "--port"),
        (["impair", "--tcp", "--listen", "{port}", "--target", "127.0.0.1:9"], "--listen"),
        (["chat", "--name", "ada", "--listen", "{port}"], "--listen"),
    ],
    ids=["converter", "converter-udp", "upper", "hello", "impair", "chat"],
)
def test_port_in_use_is_one_wording_and_status_for_every_server(
    argv: list[str], option: str
) -> None:
    proto = socket.SOCK_DGRAM if "--udp" in argv else socket.SOCK_STREAM
    with socket.socket(type=proto) as holder:
        holder.bind(("127.0.0.1", 0))
        if proto == socket.SOCK_STREAM:
            holder.listen(1)
        port = holder.getsockname()[1]
        command = [arg.format(port=port) for arg in argv]
        if "--port" in command:
            command[command.index("--port") : command.index("--port")] = ["--host", "127.0.0.1"]
        result = run_socklab(command)
    assert result.returncode == ADDRESS_IN_USE, result.stdout + result.stderr
    line = error_line(result.stderr)
    program = " ".join(command[: 2 if command[0] in ("converter", "upper", "hello") else 1])
    assert re.fullmatch(
        rf"socklab {program}: Port {port} is already in use by PID {os.getpid()} \(.+\)\. "
        rf"Stop that program or choose another port with {option}\.",
        line,
    )


def test_hello_server_without_rights_exits_5_with_the_hint() -> None:
    first_free = int(Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text())
    assert first_free > 1, "this system lets every user bind every port"
    port = min(80, first_free - 1)
    result = subprocess.run(
        [*unprivileged_prefix(), *socklab_command(), "hello", "server", "--port", str(port)],
        capture_output=True,
        text=True,
        timeout=30,
        env=child_environment(),
        check=False,
    )
    assert result.returncode == PERMISSION, result.stdout + result.stderr
    assert "Server: Socket error: [Errno 13] Permission denied" in result.stdout
    assert error_line(result.stderr) == (
        f"socklab hello server: Permission denied for port {port}: ports below 1024 need "
        "administrator rights. Use a port from 1024 up."
    )


def closed_first_by_a_student_server() -> int:
    """A port left with one connection in TIME_WAIT, as the slides' TCP server leaves it.

    The server (no SO_REUSEADDR, like the slides' program) closes its connection first, so its
    side keeps TIME_WAIT (RFC 9293 3.6); then the client closes and the server program ends.
    """
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port: int = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
            connection, _address = server.accept()
            connection.close()  # the server closes first: FIN from the server's side
            client.settimeout(10)
            assert client.recv(1) == b""  # its FIN arrived; the client closes in turn
    return port


def test_time_wait_only_port_is_explained_not_blamed_on_a_program() -> None:
    port = closed_first_by_a_student_server()
    # The premise, checked: even a socket with SO_REUSEADDR (as socklab's servers set it) is
    # refused, because the socket that closed first had not set it.
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        with pytest.raises(OSError) as refused:
            probe.bind(("127.0.0.1", port))
        assert refused.value.errno == errno.EADDRINUSE
    for argv in (
        ["converter", "server", "--port", str(port)],
        ["impair", "--tcp", "--listen", f"127.0.0.1:{port}", "--target", "127.0.0.1:9"],
    ):
        result = run_socklab(argv)
        assert result.returncode == ADDRESS_IN_USE, result.stdout + result.stderr
        option = "--listen" if argv[0] == "impair" else "--port"
        assert error_line(result.stderr) == (
            f"socklab {' '.join(argv[:2]) if argv[0] == 'converter' else 'impair'}: "
            f"Port {port} is held by no program, only by 1 closed connection in TIME_WAIT: the "
            "side that closes a TCP connection first keeps it for 2 × MSL (60 s on Linux), and "
            "the program that closed it had not set SO_REUSEADDR. Wait a minute, or choose "
            f"another port with {option}."
        )
    german = run_socklab(["--lang", "de", "hello", "server", "--port", str(port)])
    assert german.returncode == ADDRESS_IN_USE
    assert error_line(german.stderr).startswith(
        f"socklab hello server: Port {port} hält kein Programm, nur 1 geschlossene Verbindung "
        "in TIME_WAIT:"
    )
