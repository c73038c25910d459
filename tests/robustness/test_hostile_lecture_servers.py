"""Hostile peers, issue 15 section 3: the lecture servers on a network.

* Every server that prints what a peer sent prints it escaped: a peer's `\\x1b]0;PWNED\\x07`
  sets the window title, `\\x1b[2J` clears the screen, a C1 CSI (U+009B) does the same on many
  terminals, and a CR or newline forges a line. Long payloads are shortened with their size.
* Every server listens where it says: `ss -tulnp` shows loopback for `upper` and the
  converter by default; `hello` keeps the prep sheet's 0.0.0.0 and says so.
* `hello` gives its one client a deadline to send: a silent client held it forever.
* `upper --tcp` serves with the converter's models: three silent clients delayed a real one
  by 29 s (`listen(1)` and 10 s of patience each).
* `upper --udp` under a flood prints a few lines a second and a summary line, not a line per
  datagram (68,053 lines for a 200,000-datagram flood).
"""

from __future__ import annotations

import re
import socket
import subprocess
import time
from collections.abc import Callable

import pytest

from tests.robustness.conftest import model_params, stream_models
from tests.socklab_process import SocklabProcess, free_port, run_socklab

# OSC window title, CSI clear screen, a C1 CSI in UTF-8 and as a raw byte, a CR that rewrites
# the line, a newline that forges one, DEL.
HOSTILE = b"\x1b]0;PWNED\x07\x1b[2J\xc2\x9b2Jx\x9b\rforged\nline\x7f"
NOTE = "Note: listening on all interfaces, so other computers can connect."


def assert_all_printable(lines: list[str]) -> None:
    for line in lines:
        assert line.isprintable(), f"raw control characters reach the terminal: {line!r}"


# -- escapes ------------------------------------------------------------------------------------
def test_hello_prints_the_message_escaped(start_socklab: Callable[..., SocklabProcess]) -> None:
    port = free_port()
    server = start_socklab(["hello", "server", "--port", str(port)])
    server.wait_for_line("Listening on port")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(HOSTILE)
    assert server.wait() == 0
    assert_all_printable(server.stdout_lines)
    assert (
        "Server: Received: \\x1b]0;PWNED\\x07\\x1b[2J\\u009b2Jx\\x9b\\rforged\\nline\\x7f"
        in server.stdout_lines
    )


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_upper_prints_requests_escaped_and_short(
    start_socklab: Callable[..., SocklabProcess], transport: str
) -> None:
    kind = socket.SOCK_STREAM if transport == "tcp" else socket.SOCK_DGRAM
    port = free_port(kind)
    server = start_socklab(["upper", "server", f"--{transport}", "--port", str(port)])
    server.wait_for_line("ready to receive")
    long_sentence = b"a" * 2000
    for payload in (HOSTILE, long_sentence):
        with socket.socket(socket.AF_INET, kind) as sock:
            sock.settimeout(5)
            sock.connect(("127.0.0.1", port))
            sock.sendall(payload)
            assert sock.recv(4096)  # answered
        line = server.wait_for_line(r"^From 127\.0\.0\.1:\d+: ").string
        assert_all_printable([line])
        # 2,000 bytes in (1,024 over TCP: the slides' one recv) and out: one short line.
        assert len(line) < 300, line
    assert_all_printable(server.stdout_lines)


def test_converter_trace_prints_peer_bytes_escaped(
    start_socklab: Callable[..., SocklabProcess],
) -> None:
    server = start_socklab(["converter", "server", "--port", "0", "-v", "--trace"])
    host, port = server.wait_listening()
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.recv(4096)  # the greeting
        sock.sendall(b"U:" + HOSTILE.replace(b"\n", b"") + b"\n")
        sock.recv(4096)
    server.wait_for_line(r"closed \(")
    assert server.stop() == 0
    assert_all_printable(server.stdout_lines + server.stderr_lines)


# -- default addresses --------------------------------------------------------------------------
def listening_on(port: int, pid: int) -> set[str]:
    """The local addresses `ss -tulnp` shows for `port` held by process `pid`."""
    listing = subprocess.run(
        ["ss", "-H", "-tulnp"], capture_output=True, text=True, timeout=10, check=True
    ).stdout
    return {
        fields[4]
        for line in listing.splitlines()
        if f"pid={pid}," in line and (fields := line.split())[4].endswith(f":{port}")
    }


@pytest.mark.parametrize(
    ("command", "kind", "ready", "expected"),
    [
        (["upper", "server", "--tcp"], socket.SOCK_STREAM, "ready to receive", "127.0.0.1"),
        (["upper", "server", "--udp"], socket.SOCK_DGRAM, "ready to receive", "127.0.0.1"),
        (["converter", "server"], socket.SOCK_STREAM, "listening on", "127.0.0.1"),
        (["converter", "server", "--udp"], socket.SOCK_DGRAM, "listening on", "127.0.0.1"),
        (["hello", "server"], socket.SOCK_STREAM, "Listening on port", "0.0.0.0"),
    ],
    ids=["upper-tcp", "upper-udp", "converter-tcp", "converter-udp", "hello-tcp"],
)
def test_default_address_as_ss_reports_it(
    start_socklab: Callable[..., SocklabProcess],
    command: list[str],
    kind: int,
    ready: str,
    expected: str,
) -> None:
    port = free_port(kind)
    server = start_socklab([*command, "--port", str(port)])
    server.wait_for_line(ready)
    assert listening_on(port, server.pid) == {f"{expected}:{port}"}
    noted = any(line.startswith(NOTE) for line in server.stdout_lines)
    assert noted == (expected == "0.0.0.0"), server.stdout_lines


@pytest.mark.parametrize("command", [["upper", "server", "--tcp"], ["upper", "server", "--udp"]])
def test_upper_opened_with_host_0_0_0_0_says_so(
    start_socklab: Callable[..., SocklabProcess], command: list[str]
) -> None:
    kind = socket.SOCK_DGRAM if "--udp" in command else socket.SOCK_STREAM
    port = free_port(kind)
    server = start_socklab([*command, "--host", "0.0.0.0", "--port", str(port)])
    server.wait_for_line(re.escape(NOTE))
    server.wait_for_line("ready to receive")
    assert listening_on(port, server.pid) == {f"0.0.0.0:{port}"}


# -- hello's deadline ---------------------------------------------------------------------------
def test_hello_closes_a_silent_client_after_its_deadline(
    start_socklab: Callable[..., SocklabProcess],
) -> None:
    port = free_port()
    server = start_socklab(["hello", "server", "--port", str(port), "--receive-timeout", "1"])
    server.wait_for_line("Listening on port")
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        started = time.monotonic()
        assert server.wait(timeout_s=10) == 0  # it ends while the client still says nothing
    assert 0.9 <= time.monotonic() - started < 5
    assert "Server: No message within 1 s, closing." in server.stdout_lines
    assert server.stdout_lines[-1] == "Server: Server socket closed."


def test_hello_deadline_defaults_to_30_s() -> None:
    result = run_socklab(["hello", "server", "--help"])
    assert re.search(r"--receive-timeout S\s+seconds the client may take", result.stdout)
    assert "(default: 30.0)" in " ".join(result.stdout.split())


# -- upper over TCP: silent clients ---------------------------------------------------------------
SILENT_ITEM = "upper_silent_clients"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("model", [None, *model_params(SILENT_ITEM, stream_models())])
def test_upper_tcp_three_silent_clients_do_not_delay_a_real_one(
    start_socklab: Callable[..., SocklabProcess], model: str | None
) -> None:
    port = free_port()
    chosen = ["--model", model] if model else []  # None: the default model
    server = start_socklab(["upper", "server", "--tcp", *chosen, "--port", str(port)])
    server.wait_for_line("ready to receive")
    silent = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(3)]
    try:
        # The slides' client, in-process: the time measured is the server's, not a start-up.
        with socket.create_connection(("127.0.0.1", port), timeout=3) as real:
            started = time.monotonic()
            real.sendall(b"i am real")
            reply = real.recv(1024)  # TimeoutError after 3 s: the server made it wait
            elapsed = time.monotonic() - started
    finally:
        for sock in silent:
            sock.close()
    assert reply == b"I AM REAL"
    assert elapsed < 3, elapsed


# -- upper over UDP: a flood -----------------------------------------------------------------------
@pytest.mark.timeout(90)
def test_upper_udp_flood_prints_few_lines_and_a_summary(
    start_socklab: Callable[..., SocklabProcess],
) -> None:
    port = free_port(socket.SOCK_DGRAM)
    server = start_socklab(["upper", "server", "--udp", "--port", str(port)])
    server.wait_for_line("ready to receive")
    flooders = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(3)]
    started = time.monotonic()
    try:
        for number in range(10_000):
            for sock in flooders:
                sock.sendto(b"flood %d" % number, ("127.0.0.1", port))
        server.wait_for_line(r"^… and [\d,]+ more datagrams from [123] peers?$", timeout_s=30)
    finally:
        for sock in flooders:
            sock.close()
    assert server.stop() == 0  # the stop prints the last window's summary too
    elapsed = time.monotonic() - started
    lines = server.stdout_lines
    per_datagram = [line for line in lines if line.startswith("From ")]
    # At most 10 lines about peers per second plus one summary line per second.
    assert len(per_datagram) <= 10 * (elapsed + 2), (len(per_datagram), elapsed)
    assert len(lines) <= 11 * (elapsed + 2) + 3, (len(lines), elapsed)
