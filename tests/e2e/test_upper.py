"""`socklab upper`: the lecture's uppercase services, with the slides' own programs as peers."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable

import pytest

from tests.e2e.course import finish, start_course_program, wait_for_output_line
from tests.socklab_process import SocklabProcess, free_port, run_socklab

TRANSPORTS = ["udp", "tcp"]


def start_upper_server(start: Callable[..., SocklabProcess], transport: str) -> int:
    port = free_port(socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM)
    server = start(
        ["upper", "server", f"--{transport}", "--host", "127.0.0.1", "--port", str(port)]
    )
    server.wait_for_line("The server is ready to receive")
    return port


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_client_prompts_and_prints_reply(
    start_socklab: Callable[..., SocklabProcess], transport: str
) -> None:
    port = start_upper_server(start_socklab, transport)
    result = run_socklab(
        ["upper", "client", f"--{transport}", "--port", str(port)], input_text="hello world\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["Input lowercase sentence:", "From Server: HELLO WORLD"]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_server_serves_forever_and_unicode(
    start_socklab: Callable[..., SocklabProcess], transport: str
) -> None:
    port = start_upper_server(start_socklab, transport)
    for sentence, expected in [("straße", "STRASSE"), ("abc", "ABC"), ("x" * 500, "X" * 500)]:
        result = run_socklab(
            ["upper", "client", f"--{transport}", "--port", str(port)], input_text=sentence + "\n"
        )
        assert result.stdout.splitlines()[-1] == f"From Server: {expected}"


def test_udp_reply_never_longer_than_request(start_socklab: Callable[..., SocklabProcess]) -> None:
    port = start_upper_server(start_socklab, "udp")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        # ΐ upper-cases to 3 times its bytes, so the server falls back to ASCII-only upper
        # case; the x makes that reply differ from the request (an equal one is not sent).
        request = "ΐ".encode() * 10 + b"x"
        sock.sendto(request, ("127.0.0.1", port))
        reply, _ = sock.recvfrom(4096)
    assert reply == "ΐ".encode() * 10 + b"X"


def test_udp_oversized_datagram_is_not_answered_as_if_whole(
    start_socklab: Callable[..., SocklabProcess],
) -> None:
    port = free_port(socket.SOCK_DGRAM)
    server = start_socklab(["upper", "server", "--udp", "--host", "127.0.0.1", "--port", str(port)])
    server.wait_for_line("ready to receive")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(b"a" * 3000, ("127.0.0.1", port))
        sock.sendto(b"probe", ("127.0.0.1", port))
        reply, _ = sock.recvfrom(4096)
    assert reply == b"PROBE"
    server.wait_for_line("larger than 2048 bytes")


def test_tcp_silent_client_does_not_block_others_forever(
    start_socklab: Callable[..., SocklabProcess],
) -> None:
    port = start_upper_server(start_socklab, "tcp")
    with socket.create_connection(("127.0.0.1", port)):
        # The iterative server now waits for this silent client's bytes; a second client
        # queues in the backlog and is answered once the first is closed.
        pass
    result = run_socklab(["upper", "client", "--tcp", "--port", str(port)], input_text="next\n")
    assert result.stdout.splitlines()[-1] == "From Server: NEXT"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_slide_client_against_socklab_server(
    start_socklab: Callable[..., SocklabProcess], transport: str
) -> None:
    port = start_upper_server(start_socklab, transport)
    out, err = finish(start_course_program(f"{transport}-client", port), "lower case\n")
    assert "LOWER CASE" in out, err


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_socklab_client_against_slide_server(transport: str) -> None:
    port = free_port(socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM)
    slide_server = start_course_program(f"{transport}-server", port)
    try:
        wait_for_output_line(slide_server, "ready to receive")
        result = run_socklab(
            ["upper", "client", f"--{transport}", "--port", str(port)], input_text="from socklab\n"
        )
        assert result.stdout.splitlines()[-1] == "From Server: FROM SOCKLAB"
    finally:
        slide_server.kill()
        finish(slide_server)


def test_client_without_server_is_one_clear_line() -> None:
    result = run_socklab(["upper", "client", "--tcp", "--port", str(free_port())], input_text="x\n")
    assert result.returncode == 3
    assert result.stderr.strip().splitlines() == [
        f"socklab upper client: Connection to 127.0.0.1:{result.args[-1]} refused: nothing is listening there. Is the server running, and on this port?"
    ]


def test_transport_is_required() -> None:
    result = run_socklab(["upper", "server"])
    assert result.returncode == 2
    assert "one of the arguments --udp --tcp is required" in result.stderr


def test_udp_client_without_server_is_refused_not_a_timeout() -> None:
    port = free_port(socket.SOCK_DGRAM)
    result = run_socklab(["upper", "client", "--udp", "--port", str(port)], input_text="x\n")
    assert result.returncode == 3
    assert "refused: nothing is listening there" in result.stderr


def test_udp_sentence_in_upper_case_is_not_answered_and_the_client_says_why(
    start_socklab: Callable[..., SocklabProcess],
) -> None:
    port = start_upper_server(start_socklab, "udp")
    result = run_socklab(
        ["upper", "client", "--udp", "--port", str(port), "--timeout", "1"], input_text="HELLO\n"
    )
    assert result.returncode == 3  # no reply: HELLO back could bounce between two servers
    assert result.stderr.startswith("Your sentence is upper case already")
    assert "Traceback" not in result.stderr


def test_udp_sentence_longer_than_the_server_reads_is_named(
    start_socklab: Callable[..., SocklabProcess],
) -> None:
    """5,000 bytes to a server that reads 2,048 (the slides' recvfrom): the server reports it
    cut off, and the client says why no answer comes (issue 16), before its timeout line."""
    port = start_upper_server(start_socklab, "udp")
    result = run_socklab(
        ["upper", "client", "--udp", "--port", str(port), "--timeout", "1"],
        input_text="a" * 5_000 + "\n",
    )
    assert result.returncode == 3
    lines = result.stderr.splitlines()
    assert lines[0] == (
        "Your sentence is 5,000 bytes: a UDP server that reads at most 2,048 bytes, as the slides'"
        " server does, cuts it off, and socklab's upper server does not answer it."
    )
    assert lines[1].startswith(f"socklab upper client: No answer from 127.0.0.1:{port} in time.")
    assert len(lines) == 2, lines


def test_hostile_reply_is_printed_escaped() -> None:
    """The client prints the server's reply: its escape sequences never reach the terminal raw."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(10)
        port = listener.getsockname()[1]

        def serve() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(10)
                conn.recv(100)
                conn.sendall(b"\x1b]0;PWNED\x07\x1b[2J\rforged")

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        result = run_socklab(["upper", "client", "--tcp", "--port", str(port)], input_text="x\n")
        thread.join(5)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == ("From Server: \\x1b]0;PWNED\\x07\\x1b[2J\\rforged")
