"""`socklab demo TOPIC`: each lesson runs alone, narrates its key lines, exits 0, in bounded time."""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Callable

import pytest

from tests.socklab_process import SocklabProcess, run_socklab

# Counts packets on loopback: alone, after the parallel part of `make test`.
pytestmark = pytest.mark.serial

KEY_LINES = {
    "hello": [r"Server: Received: Hi server!", r"accept\(\) returns a NEW socket"],
    "stream": [
        # The calls shown are the ones made: the slides' recv(2) then recv(1500), and the
        # line server's recv(65536) returning all 15 bytes at once.
        r"server: recv\(2\) -> b'L:', recv\(1500\) -> b'UPPER\\nL:CONT\\n'$",
        r"server: recv\(2\) -> b'L:', recv\(1500\) -> b'UPPER\\n', "
        r"recv\(2\) -> b'L:', recv\(1500\) -> b'CONT\\n'$",
        r"server: recv\(65536\) -> b'L:UPPER\\nL:CONT\\n'$",
        r"replies: b'upper\\nl:cont\\n'",
        r"replies: b'upper\\ncont\\n'",
        r"is wrong",
    ],
    "ports": [
        r"recvfrom\(\) -> b'U:from one' from 127\.0\.0\.1:\d+",
        r"recvfrom\(\) -> b'U:from two' from 127\.0\.0\.1:\d+",
        r"127\.0\.0\.1:\d+ +- +LISTEN",
        r"the server has 3 sockets on port \d+",
    ],
    "handshake": [r"ESTABLISHED", r"CLOSE_WAIT", r"TIME_WAIT", r"recv\(\) -> b''"],
    "timeout": [
        r"accept\(\) raised socket\.timeout",
        r"attempt 1: recv\(\) raised socket\.timeout",
        r"attempt 2: recv\(\) returned b'late answer\\n'",
    ],
    "models": [r"asyncio: B answered while A was still connected"],
}


@pytest.mark.parametrize("topic", sorted(KEY_LINES))
def test_topic_runs_alone_and_shows_its_point(topic: str) -> None:
    result = run_socklab(["demo", topic], timeout_s=60)
    assert result.returncode == 0, result.stdout + result.stderr
    for pattern in KEY_LINES[topic]:
        assert re.search(pattern, result.stdout, re.M), f"{pattern!r} missing in:\n{result.stdout}"
    assert result.stderr == ""


def test_full_tour_runs_every_topic_in_german() -> None:
    result = run_socklab(["--lang", "de", "demo"], timeout_s=60)
    assert result.returncode == 0, result.stdout + result.stderr
    for heading in ("Warum Framing wichtig ist", "Demultiplexing", "Der TCP-Handshake", "Timeouts"):
        assert heading in result.stdout
    assert "Observe" not in result.stdout


def test_unknown_topic_is_a_usage_error() -> None:
    result = run_socklab(["demo", "nonsense"])
    assert result.returncode == 2
    assert "invalid choice: 'nonsense'" in result.stderr


def test_handshake_draws_the_captured_ladder_where_it_may_capture() -> None:
    result = run_socklab(["demo", "handshake"], timeout_s=60)
    assert result.returncode == 0, result.stdout + result.stderr
    may_capture = os.geteuid() == 0 and importlib.util.find_spec("socklab.tools") is not None
    if may_capture and importlib.util.find_spec("socklab.tools.capture") is not None:
        assert re.search(r"client ──▶ server  SYN +seq=0\n", result.stdout), result.stdout
        assert re.search(r"client ◀── server  SYN\+ACK +seq=0 ack=1", result.stdout)
        assert "FIN" in result.stdout.split("packet by packet:")[1]
    else:
        assert "needs a capture with administrator rights" in result.stdout


HELLO_ORDER = [
    "Server: Starting...",
    "Server: Socket created.",
    "Server: Binding to 127.0.0.1:0",
    "Server: Listening on port N",
    "Client: Starting...",
    "Client: Socket created.",
    "Client: Connecting to 127.0.0.1:N",
    "Client: Connected!",
    "Server: Connection accepted from 127.0.0.1:N",
    "Client: Sent: Hi server!",
    "Server: Received: Hi server!",
    "Client: Socket closed.",
    "Server: Client connection closed.",
    "Server: Server socket closed.",
]


def _conversation(stdout: str) -> list[str]:
    """The server's and client's lines, ports the OS picked replaced by N (they differ between
    runs; the 0 asked for stays)."""
    return [
        re.sub(r"(:|port )[1-9]\d*\b", r"\1N", line.strip())
        for line in stdout.splitlines()
        if re.match(r"\s+(Server|Client|server|client): ", line)
    ]


def test_hello_and_upper_lines_come_in_the_same_order_every_run() -> None:
    runs = [run_socklab(["demo", "hello"], timeout_s=60) for _ in range(2)]
    for result in runs:
        assert result.returncode == 0, result.stdout + result.stderr
    hello = [_conversation(result.stdout) for result in runs]
    assert hello[0] == hello[1] == HELLO_ORDER
    text = runs[0].stdout
    # The port the server really got is the one the client dials, and port 0 is explained.
    listening = re.search(r"Server: Listening on port (\d+)", text)
    assert listening and f"Client: Connecting to 127.0.0.1:{listening[1]}" in text
    assert "this one binds port 0, so the operating system picks a free port" in text
    assert "port 9999)" not in text
    upper = _conversation(run_socklab(["demo", "upper"], timeout_s=60).stdout)
    assert [line.split(":")[0] for line in upper] == ["server", "client"] * 4
    assert upper[2].startswith("server: From 127.0.0.1:N") and upper[3].startswith("client: From")


@pytest.mark.parametrize(
    ("topic", "command"),
    [
        ("hello", "'socklab hello server' in one terminal, 'socklab hello client' in another."),
        ("stream", "'socklab converter server --framing raw --trace' in one terminal"),
        (None, "'socklab converter server' in one terminal, 'socklab converter client'"),
    ],
)
def test_try_it_yourself_names_the_commands_of_the_topic_shown(
    topic: str | None, command: str
) -> None:
    from socklab.apps.demo import TOPICS, try_it_yourself

    assert try_it_yourself(topic).startswith(command)
    # Every topic has its own suggestion, not the converter's.
    assert len({try_it_yourself(name) for name in TOPICS}) == len(TOPICS)


def test_step_waits_for_enter_between_points_and_goes_on_at_the_end_of_input(
    start_socklab,  # type: ignore[no-untyped-def]
) -> None:
    demo = start_socklab(["demo", "stream", "--step"])
    demo.wait_for_line(r"^   \[Enter: next step\]$")
    # Blocked on standard input: the second part has not started.
    assert not any("line framing" in line for line in demo.stdout_lines)
    assert demo.proc.stdin is not None
    demo.proc.stdin.write(b"\n")  # one Enter, then the end of input
    demo.proc.stdin.close()
    assert demo.wait(30) == 0
    lines = demo.stdout_lines
    prompts = [i for i, line in enumerate(lines) if line == "   [Enter: next step]"]
    assert len(prompts) == 2, lines
    first, second = prompts
    assert any("line framing" in line for line in lines[first:second])
    # The Enter was read at the first pause; the end of input is met at the second.
    assert lines[second + 1] == "   (end of input: going on without pauses)"
    assert lines[-1].startswith("Done. Try it yourself:")
    without = run_socklab(["demo", "stream"], timeout_s=60)
    assert "[Enter" not in without.stdout


def test_the_stream_suggestion_works_as_typed(
    start_socklab: Callable[..., SocklabProcess],
) -> None:
    """The raw server and the client it names, run as suggested (on a free port): the client
    must speak the server's framing, or it waits 5 s for a newline that never comes."""
    from socklab.apps.demo import try_it_yourself

    server_command, client_command = re.findall(r"'socklab ([^']+)'", try_it_yourself("stream"))
    server = start_socklab([*server_command.split(), "--port", "0"])
    _host, port = server.wait_listening()
    client_args = client_command.split()
    at = client_args.index("client") + 1
    client_args[at:at] = ["--port", str(port), "--timeout", "2"]
    result = run_socklab(client_args)
    assert (result.returncode, result.stdout) == (0, "A\nb\n"), result.stderr
