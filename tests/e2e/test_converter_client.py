"""`socklab converter client` when something goes wrong: one line naming it, a non-zero exit.

Issue 16, "The converter client never fails silently" and "UDP says why it is silent": each test
runs the exact command a student types, against a real socklab server or a test-side peer that
misbehaves on purpose.
"""

from __future__ import annotations

import os
import pty
import re
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from tests.socklab_process import (
    SocklabProcess,
    child_environment,
    free_port,
    run_socklab,
    socklab_command,
)

GREETING = b"Hi I'm your upper/lowercase converter. Message format U|L:<message>"
Start = Callable[..., SocklabProcess]


def start_converter(start: Start, *extra: str) -> tuple[int, SocklabProcess]:
    server = start(["converter", "server", "--host", "127.0.0.1", "--port", "0", *extra])
    return server.wait_listening()[1], server


@pytest.fixture
def greets_and_closes() -> Iterator[int]:
    """A peer that sends the converter's greeting to each client and closes at once."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.sendall(GREETING + b"\n")
                # Its close, as the client sees it: a FIN after the greeting. The peer then
                # reads what the client sends until the client closes, so the request never
                # meets a closed socket (whose RST would race the FIN: "reset" or "closed").
                conn.shutdown(socket.SHUT_WR)
                conn.settimeout(5)
                try:
                    while conn.recv(4096):
                        pass
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join(5)
        listener.close()


# --- TCP: the connection ends early, the server refuses ----------------------------------------


def test_server_that_greets_and_closes_is_named(greets_and_closes: int) -> None:
    port = greets_and_closes
    result = run_socklab(["converter", "client", "--port", str(port), "U:a"])
    assert result.returncode == 3
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"socklab converter client: The server at 127.0.0.1:{port} closed the connection before answering 'U:a'."
    ]


def test_server_stopped_under_an_interactive_client(start_socklab: Start) -> None:
    port, server = start_converter(start_socklab)
    client = start_socklab(["converter", "client", "--port", str(port)])
    stdin = client.proc.stdin
    assert stdin is not None
    stdin.write(b"U:a\n")
    stdin.flush()
    client.wait_for_line("^A$")
    assert server.stop() == 0
    stdin.write(b"U:b\n")
    stdin.close()
    assert client.wait() == 3
    assert client.stderr_lines == [
        f"socklab converter client: The server at 127.0.0.1:{port} closed the connection before answering 'U:b'."
    ]


def test_busy_server_line_is_shown_as_it_came(start_socklab: Start) -> None:
    port, _ = start_converter(start_socklab, "--max-clients", "1")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as first:
        assert first.makefile("rb").readline() == GREETING + b"\n"  # holds the only slot
        result = run_socklab(["converter", "client", "--port", str(port), "U:a"])
    assert result.returncode == 3
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"socklab converter client: 127.0.0.1:{port} refused to serve this client: E:server busy, try again later"
    ]


def test_hostile_refusal_cannot_reach_the_terminal() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def refuse() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.sendall(b"E:busy\x1b[2J\x07\n")

        thread = threading.Thread(target=refuse, daemon=True)
        thread.start()
        result = run_socklab(["converter", "client", "--port", str(port), "U:a"])
        thread.join(5)
    assert result.returncode == 3
    assert "\x1b" not in result.stderr and "\x07" not in result.stderr
    assert result.stderr.splitlines() == [
        f"socklab converter client: 127.0.0.1:{port} refused to serve this client: E:busy\\x1b[2J\\x07"
    ]


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_error_replies_make_a_non_zero_exit(start_socklab: Start, transport: str) -> None:
    flags = ["--udp"] if transport == "udp" else []
    port, _ = start_converter(start_socklab, *flags)
    # X:1234567890 is long enough for the UDP server to send its error (no amplification).
    request = "X:" + "1" * 80
    args = ["converter", "client", *flags, "--send-anyway"] if flags else ["converter", "client"]
    result = run_socklab([*args, "--port", str(port), request, "U:ok"])
    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines() == [
        "E:unknown command 'X:'; use U:<text>, L:<text> or C:",
        "OK",
    ]
    ok = run_socklab([*args, "--port", str(port), "U:ok"])
    assert ok.returncode == 0, ok.stderr


# --- the greeting: one behaviour for arguments and pipes ---------------------------------------


def test_piped_requests_print_only_the_replies_as_arguments_do(start_socklab: Start) -> None:
    port, _ = start_converter(start_socklab)
    piped = run_socklab(["converter", "client", "--port", str(port)], input_text="U:one\nL:TWO\n")
    given = run_socklab(["converter", "client", "--port", str(port), "U:one", "L:TWO"])
    assert piped.returncode == given.returncode == 0
    assert piped.stdout.splitlines() == given.stdout.splitlines() == ["ONE", "two"]


def test_a_person_at_a_terminal_sees_the_greeting(start_socklab: Start) -> None:
    port, _ = start_converter(start_socklab)
    primary, secondary = pty.openpty()
    proc = subprocess.Popen(
        [*socklab_command(), "converter", "client", "--port", str(port)],
        stdin=secondary,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=child_environment(),
    )
    os.close(secondary)
    try:
        os.write(primary, b"U:one\n\x04")  # a typed line, then Ctrl+D
        out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(primary)
    assert proc.returncode == 0, err
    assert out.decode().splitlines() == [GREETING.decode(), "ONE"]


HOSTILE = b"\x1b]0;PWNED\x07\x1b[2J\xc2\x9b2J\xff\rforged"
HOSTILE_SHOWN = "\\x1b]0;PWNED\\x07\\x1b[2J\\u009b2J\\xff\\rforged"


def test_hostile_greeting_and_replies_are_escaped_at_a_terminal() -> None:
    """The greeting a person sees and every reply are the server's bytes: escaped, never raw."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(10)
        port = listener.getsockname()[1]

        def serve() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.sendall(b"Hi " + HOSTILE + b"\n")
                conn.settimeout(10)
                conn.recv(100)
                conn.sendall(HOSTILE + b"\n")
                conn.recv(100)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        primary, secondary = pty.openpty()
        proc = subprocess.Popen(
            [*socklab_command(), "converter", "client", "--port", str(port)],
            stdin=secondary,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=child_environment(),
        )
        os.close(secondary)
        try:
            os.write(primary, b"U:a\n\x04")
            out, err = proc.communicate(timeout=15)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            os.close(primary)
        thread.join(5)
    assert proc.returncode == 0, err
    assert out.decode().splitlines() == ["Hi " + HOSTILE_SHOWN, HOSTILE_SHOWN]


def test_raw_replies_keep_their_lines_and_escape_the_rest() -> None:
    """In raw framing a reply may hold newlines (the slides' merged requests): kept as lines."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(10)
        port = listener.getsockname()[1]

        def serve() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.sendall(GREETING)
                conn.settimeout(10)
                conn.recv(100)
                conn.sendall(b"upper\nl:\x1b[31mcont")
                conn.recv(100)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        result = run_socklab(
            ["converter", "client", "--framing", "raw", "--port", str(port), "L:x"]
        )
        thread.join(5)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["upper", "l:\\x1b[31mcont"]


# --- one line naming the cause -----------------------------------------------------------------


def test_port_zero_for_a_client_is_one_line() -> None:
    result = run_socklab(["converter", "client", "--port", "0", "U:a"])
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "socklab converter client: port 0 cannot be dialled: a server given port 0 gets a free port from the system, and its 'listening on' line names it. Use that port."
    ]


def test_udp_line_longer_than_a_datagram_is_one_line(start_socklab: Start) -> None:
    port, _ = start_converter(start_socklab, "--udp")
    line = "U:" + "x" * 65_506  # 65,508 bytes
    result = run_socklab(["converter", "client", "--udp", "--port", str(port)], input_text=line)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "socklab converter client: a request of 65,508 bytes does not fit: a UDP datagram holds at most 65,507 bytes"
    ]


def test_datagram_cut_off_by_the_server_is_named(start_socklab: Start) -> None:
    port = free_port(socket.SOCK_DGRAM)
    server = start_socklab(["upper", "server", "--udp", "--host", "127.0.0.1", "--port", str(port)])
    server.wait_for_line("ready to receive")
    request = "U:" + "x" * 4_998  # 5,000 bytes; the upper server reads 2,048
    result = run_socklab(
        ["converter", "client", "--udp", "--port", str(port), "--timeout", "0.5", request]
    )
    assert result.returncode == 3
    [line] = result.stderr.splitlines()
    assert line.startswith("socklab converter client: No answer to 'U:xxx")
    assert line.endswith(
        f"from 127.0.0.1:{port} within 0.5 s. A server that reads at most 2,048 bytes, as the slides' server does, cuts this datagram of 5,000 bytes off; socklab's upper server then does not answer it. Is the server running?"
    )
    server.wait_for_line("larger than 2048 bytes and was cut off")


# --- UDP: why it is silent ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_text", "line"),
    [
        (
            "u:hello",
            "socklab converter client: 'u:' is not a converter command: did you mean 'U:'? (--send-anyway sends it as it is)",
        ),
        (
            "X:c",
            "socklab converter client: 'X:c' is not a converter request: a request starts with U:, L: or C:. (--send-anyway sends it as it is)",
        ),
    ],
)
def test_udp_unknown_command_is_refused_locally(
    start_socklab: Start, request_text: str, line: str
) -> None:
    port, _ = start_converter(start_socklab, "--udp")
    result = run_socklab(["converter", "client", "--udp", "--port", str(port), request_text])
    assert result.returncode == 2
    assert result.stderr.splitlines() == [line]


def test_udp_typed_unknown_command_is_refused_and_the_session_goes_on(
    start_socklab: Start,
) -> None:
    port, _ = start_converter(start_socklab, "--udp")
    result = run_socklab(
        ["converter", "client", "--udp", "--port", str(port)], input_text="l:ABC\nU:ok\n"
    )
    assert result.returncode == 2
    assert result.stdout.splitlines() == ["OK"]
    assert result.stderr.splitlines() == [
        "socklab converter client: 'l:' is not a converter command: did you mean 'L:'? (--send-anyway sends it as it is)"
    ]


@pytest.mark.parametrize(
    ("args", "shown"), [(["--send-anyway", "u:hello"], "u:hello"), (["U:ΐ"], "U:ΐ")]
)
def test_udp_silence_for_a_reply_longer_than_the_request_is_named(
    start_socklab: Start, args: list[str], shown: str
) -> None:
    port, _ = start_converter(start_socklab, "--udp")
    result = run_socklab(
        ["converter", "client", "--udp", "--port", str(port), "--timeout", "0.5", *args]
    )
    assert result.returncode == 3
    assert result.stderr.splitlines() == [
        f"socklab converter client: No answer to '{shown}' from 127.0.0.1:{port} within 0.5 s. The server may have refused to answer a reply longer than the request: over UDP no reply is longer than its request, and an error reply for a short request is. Is the server running?"
    ]


def test_second_udp_server_on_a_port_fails_like_tcp(start_socklab: Start) -> None:
    port, holder = start_converter(start_socklab, "--udp")
    result = run_socklab(["converter", "server", "--udp", "--port", str(port)], timeout_s=15)
    assert result.returncode == 6, result.stdout + result.stderr
    assert result.stderr.splitlines() == [
        f"socklab converter server: Port {port} is already in use by PID {holder.pid} (socklab). Stop that program or choose another port with --port."
    ]


@pytest.fixture
def plain_udp_converter() -> Iterator[tuple[int, list[bytes]]]:
    """The lecture's UDP converter, which knows no request ids: it answers `U:`/`L:` datagrams
    and ignores the rest (`#1 U:a` included). Yields its port and every datagram it received."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    received: list[bytes] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                data, address = sock.recvfrom(2048)
            except TimeoutError:
                continue
            received.append(data)
            if data[:2] == b"U:":
                sock.sendto(data[2:].upper(), address)
            elif data[:2] == b"L:":
                sock.sendto(data[2:].lower(), address)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(sock.getsockname()[1]), received
    finally:
        stop.set()
        thread.join(5)
        sock.close()


def test_retries_against_a_server_without_request_ids_say_so(
    plain_udp_converter: tuple[int, list[bytes]],
) -> None:
    port, _ = plain_udp_converter
    plain = run_socklab(["converter", "client", "--udp", "--port", str(port), "U:a"])
    assert (plain.returncode, plain.stdout) == (0, "A\n"), plain.stderr
    retrying = ["--retries", "2", "--timeout", "0.2", "U:a"]
    result = run_socklab(["converter", "client", "--udp", "--port", str(port), *retrying])
    assert result.returncode == 3
    [line] = result.stderr.splitlines()
    assert re.fullmatch(
        rf"socklab converter client: No answer to 'U:a' from 127\.0\.0\.1:{port} after 3 sends within \d+\.\d s, and none to any request\. Is the server running\? A server that does not know request ids \(the slides' server\) may not answer datagrams that start with '#<id> ': then leave --retries out to send plain datagrams\.",
        line,
    )


def test_timeout_is_per_attempt_and_retries_are_all_used(
    plain_udp_converter: tuple[int, list[bytes]],
) -> None:
    port, received = plain_udp_converter
    started = time.monotonic()
    retrying = ["--timeout", "0.2", "--retries", "20", "U:a"]
    result = run_socklab(["converter", "client", "--udp", "--port", str(port), *retrying])
    elapsed = time.monotonic() - started
    assert result.returncode == 3
    assert re.search(r"after 21 sends within \d+\.\d s", result.stderr), result.stderr
    assert len(received) == 21
    assert 4.0 <= elapsed < 15, elapsed


def test_udp_server_verbose_names_every_dropped_reply(start_socklab: Start) -> None:
    port, server = start_converter(start_socklab, "--udp", "-v")
    anyway = ["--timeout", "0.3", "--send-anyway", "u:hello"]
    result = run_socklab(["converter", "client", "--udp", "--port", str(port), *anyway])
    assert result.returncode == 3
    match = server.wait_for_line(r'^From 127\.0\.0\.1:\d+: "u:hello" not answered: ')
    line = match.string
    assert line.endswith(
        """not answered: its reply "E:unknown command 'u:'; use U:<text>, L:<text> or C:" (52 bytes) would be longer than the request (7 bytes), and no UDP reply is, so that no one can use the server to amplify traffic."""
    )


def test_udp_server_verbose_lines_are_escaped_and_rate_limited(start_socklab: Start) -> None:
    port, server = start_converter(start_socklab, "--udp", "-v")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
        for _ in range(30):
            peer.sendto(b"\x1b[2J", ("127.0.0.1", port))
        server.wait_for_line(r'^From 127\.0\.0\.1:\d+: "\\x1b\[2J" not answered: its reply')
        assert server.stop() == 0
    dropped = [line for line in server.stdout_lines if "not answered" in line]
    assert len(dropped) == 10
    assert "… and 20 more datagrams from 1 peer" in server.stdout_lines
    assert not any("\x1b" in line for line in server.stdout_lines)
