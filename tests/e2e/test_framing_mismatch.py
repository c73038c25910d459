"""Issue 16: framing mismatches named on both sides, servers say what they do (`-v`), the busy
iterative server named.

Each test runs the real `socklab` as a user would. The peers that misbehave are the slides'
programs, inline: the slides' client sends `U:lower` without a newline and waits in recv(); the
slides' UDP converter answers `U:`/`L:` datagrams without any request id.
"""

from __future__ import annotations

import re
import socket
import struct
import threading
from collections.abc import Callable, Iterator

import pytest

from socklab.runtimes import RUNTIMES
from tests.socklab_process import SocklabProcess, run_socklab

GREETING = b"Hi I'm your upper/lowercase converter. Message format U|L:<message>"
Start = Callable[..., SocklabProcess]
TCP_MODELS = sorted(name for name, info in RUNTIMES.items() if "tcp" in info.transports)
UDP_MODELS = sorted(name for name, info in RUNTIMES.items() if "udp" in info.transports)
# A socket operation of a test peer never waits longer (a hang fails, it does not block CI).
PEER_WAIT_S = 10.0

pytestmark = pytest.mark.timeout(60)


def start_server(start: Start, *extra: str) -> tuple[SocklabProcess, int]:
    server = start(["converter", "server", "--host", "127.0.0.1", "--port", "0", *extra])
    return server, server.wait_listening()[1]


def connect_greeted(port: int, greeting: bytes = GREETING + b"\n") -> socket.socket:
    """A client connected and past the greeting (so the server serves it now)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=PEER_WAIT_S)
    assert receive_exactly(sock, len(greeting)) == greeting
    return sock


def receive_exactly(sock: socket.socket, size: int) -> bytes:
    received = b""
    while len(received) < size:
        chunk = sock.recv(size - len(received))
        if not chunk:
            break
        received += chunk
    return received


def local_port(sock: socket.socket) -> int:
    return int(sock.getsockname()[1])


def closed_line(port: int, reason: str) -> str:
    return rf"^Connection from 127\.0\.0\.1:{port} closed \({re.escape(reason)}\)$"


# --- the server's -v, the same words in every model --------------------------------------------


@pytest.mark.parametrize("model", TCP_MODELS, ids=lambda model: f"{model}-tcp-line")
def test_server_verbose_names_requests_mismatches_and_close_reasons(
    start_socklab: Start, model: str
) -> None:
    # 3 s: the message deadline fires after the 2 s "without a newline" line.
    server, port = start_server(
        start_socklab, "--model", model, "-v", "--message-timeout", "3", "--max-clients", "2"
    )
    idle_server, idle_port = start_server(
        start_socklab, "--model", model, "-v", "--idle-timeout", "1"
    )
    idle = connect_greeted(idle_port)  # runs beside the rest: closed after 1 to 2 s

    # Requests, answered and refused, then the client closes.
    with connect_greeted(port) as client:
        client.sendall(b"U:abc\nX:1\n")
        expected = b"ABC\nE:unknown command 'X:'; use U:<text>, L:<text> or C:\n"
        assert receive_exactly(client, len(expected)) == expected
        requester = local_port(client)
    peer = rf"127\.0\.0\.1:{requester}"
    server.wait_for_line(rf'^Request from {peer}: "U:", 5 bytes in, 3 bytes out$')
    server.wait_for_line(
        rf"^Request from {peer}: \"X:\", 3 bytes in, sent \"E:unknown command 'X:'; use "
        r'U:<text>, L:<text> or C:"$'
    )
    server.wait_for_line(closed_line(requester, "the client closed it"))

    # A reset: SO_LINGER 0 makes close() send a RST.
    resetter = connect_greeted(port)
    resetter_port = local_port(resetter)
    resetter.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    resetter.close()
    server.wait_for_line(closed_line(resetter_port, "reset or broken"))

    # The slides' client: `U:lower` without a newline, then it waits for the reply.
    slides = connect_greeted(port)
    slides_port = local_port(slides)
    slides.sendall(b"U:lower")
    server.wait_for_line(
        rf"^From 127\.0\.0\.1:{slides_port}: 7 bytes without '\\n' after 2 s: a client without "
        r"line framing\? see --framing raw$"
    )
    holder = socket.create_connection(("127.0.0.1", port), timeout=PEER_WAIT_S)
    if model != "iterative":  # the iterative server has one client at a time, never a busy one
        server.wait_for_line(rf"^Connection from 127\.0\.0\.1:{local_port(holder)}$")
        with socket.create_connection(("127.0.0.1", port), timeout=PEER_WAIT_S) as refused:
            refused_port = local_port(refused)
            notice = b"E:server busy, try again later\n"
            assert receive_exactly(refused, len(notice)) == notice
        server.wait_for_line(rf"^Refused 127\.0\.0\.1:{refused_port}: server busy$")
    notice = b"E:message timeout: the message did not arrive in time\n"
    assert receive_exactly(slides, len(notice)) == notice
    slides.close()
    server.wait_for_line(closed_line(slides_port, "message timeout"))

    # Served (the iterative server only now), then the server stops under it.
    assert receive_exactly(holder, len(GREETING) + 1) == GREETING + b"\n"
    holder_port = local_port(holder)
    assert server.stop() == 0
    holder.close()
    assert re.search(
        closed_line(holder_port, "server stopping"), "\n".join(server.stdout_lines), re.M
    )

    idle_server.wait_for_line(closed_line(local_port(idle), "idle timeout"))
    idle.close()


@pytest.mark.parametrize("model", TCP_MODELS, ids=lambda model: f"{model}-tcp-line")
def test_server_verbose_names_the_write_timeout(start_socklab: Start, model: str) -> None:
    """A client that sends and never reads: its replies fill both buffers, the server cannot
    write for --write-timeout, and -v says so in the words of every other model."""
    server, port = start_server(start_socklab, "--model", model, "-v", "--write-timeout", "1")
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: small window
    client.connect(("127.0.0.1", port))
    client.settimeout(0.5)
    request = b"U:" + b"a" * 60_000 + b"\n"
    try:
        while True:  # until the server stops reading, because it cannot write its replies
            client.sendall(request)
    except TimeoutError:
        pass
    try:
        server.wait_for_line(
            closed_line(local_port(client), "write timeout: the replies were not read")
        )
    finally:
        client.close()


@pytest.mark.parametrize("model", UDP_MODELS, ids=lambda model: f"{model}-udp")
def test_udp_server_verbose_names_each_datagram(start_socklab: Start, model: str) -> None:
    server, port = start_server(start_socklab, "--udp", "--model", model, "-v")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.settimeout(PEER_WAIT_S)
        client.bind(("127.0.0.1", 0))
        client.sendto(b"U:abc", ("127.0.0.1", port))
        assert client.recv(2048) == b"ABC"
        client.sendto(b"u:abc", ("127.0.0.1", port))  # its E: reply is longer: not answered
        peer = rf"127\.0\.0\.1:{local_port(client)}"
        server.wait_for_line(rf'^From {peer}: "U:abc" \(5 bytes\) answered "ABC" \(3 bytes\)$')
        server.wait_for_line(rf'^From {peer}: "u:abc" not answered: its reply ')


# --- the client names what it got ----------------------------------------------------------------


def test_line_client_against_a_raw_server_names_the_bytes_without_newline(
    start_socklab: Start,
) -> None:
    _server, port = start_server(start_socklab, "--framing", "raw")
    result = run_socklab(["converter", "client", "--port", str(port), "--timeout", "1", "U:abc"])
    assert result.returncode == 3
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"socklab converter client: No whole reply from 127.0.0.1:{port} within 1 s: 67 bytes without a newline: is the "
        "server using --framing raw? Then use --framing raw here too."
    ]


def test_length_client_against_a_line_server_says_the_header_looks_like_text(
    start_socklab: Start,
) -> None:
    _server, port = start_server(start_socklab)
    result = run_socklab(["converter", "client", "--port", str(port), "--framing", "length", "U:a"])
    assert result.returncode == 4
    assert result.stderr.splitlines() == [
        'socklab converter client: The peer broke the protocol: the length header "Hi I" announces a message of '
        "1,214,849,097 bytes, but it looks like text: is the server using --framing line or raw?"
    ]


def test_client_of_a_busy_iterative_server_is_told_why_no_greeting_comes(
    start_socklab: Start,
) -> None:
    server, port = start_server(start_socklab, "--model", "iterative", "-v")
    with connect_greeted(port):  # served now: the next client waits in the listen backlog
        result = run_socklab(["converter", "client", "--port", str(port), "--timeout", "1", "U:a"])
    assert result.returncode == 3
    assert result.stderr.splitlines() == [
        f"socklab converter client: No answer from 127.0.0.1:{port} within 1 s: connected, but no greeting yet: the "
        "server may be serving another client (iterative model, listen backlog). Try again "
        "when it is free, or give a longer --timeout."
    ]
    # Once the first client has gone, the waiting one is served as usual.
    ok = run_socklab(["converter", "client", "--port", str(port), "U:a"])
    assert (ok.returncode, ok.stdout) == (0, "A\n"), ok.stderr
    server.wait_for_line(r'^Request from 127\.0\.0\.1:\d+: "U:", 3 bytes in, 1 byte out$')


@pytest.fixture
def udp_converter_without_ids() -> Iterator[int]:
    """A slides-style UDP converter that answers every datagram, `#1 U:a` included, with no
    request id in the reply (it takes `#1` for an unknown command)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                data, address = sock.recvfrom(1500)
            except TimeoutError:
                continue
            text = data.decode("utf-8", "replace")
            if text[:2] == "U:":
                reply = text[2:].upper()
            elif text[:2] == "L:":
                reply = text[2:].lower()
            else:
                reply = "unknown command"
            sock.sendto(reply.encode(), address)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(sock.getsockname()[1])
    finally:
        stop.set()
        thread.join(5)
        sock.close()


def test_retries_against_replies_without_request_ids_suggest_leaving_retries_out(
    udp_converter_without_ids: int,
) -> None:
    port = udp_converter_without_ids
    args = ["converter", "client", "--udp", "--port", str(port)]
    result = run_socklab([*args, "--retries", "1", "--timeout", "0.3", "U:a"])
    assert result.returncode == 4
    assert result.stderr.splitlines() == [
        "socklab converter client: The peer broke the protocol: the server's replies carry no request id, so they cannot "
        "be matched; it does not know the id extension. Run without --retries to send plain "
        "datagrams."
    ]
    plain = run_socklab([*args, "U:a"])
    assert (plain.returncode, plain.stdout) == (0, "A\n"), plain.stderr
