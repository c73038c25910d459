"""Item 3, over-long message: refused with `E:` and closed after at most the limit + 64 KiB of input.

"How much did the server read?" cannot be seen in the server's replies, and loopback kernel
buffers hold megabytes, so the test asks the kernel: the message is sent in 16 KiB pieces, and
after each piece the test waits until the server's receive queue for this connection
(/proc/net/tcp rx_queue) is empty — the server application has read everything sent so far —
or the `E:` reply has arrived. The bytes sent when `E:` arrives bound what the server read.
A message of exactly the limit is served. `raw` framing has no message limit (its docstring
says why), so it is not part of this item.
"""

from __future__ import annotations

import select
import socket

import pytest

from socklab.protocol.limits import DEFAULT_MAX_MESSAGE_BYTES
from tests.robustness.conftest import LaunchServer, model_params, stream_models
from tests.robustness.observed_server import read_kernel_queues, wait_until

LIMIT = DEFAULT_MAX_MESSAGE_BYTES
ALLOWED_EXTRA_INPUT = 64 * 1024
PIECE_BYTES = 16 * 1024
TIMEOUT_S = 10.0


def frame(framing: str, message: bytes) -> bytes:
    if framing == "length":
        return len(message).to_bytes(4, "big") + message
    return message + b"\n"


def read_until_closed(sock: socket.socket) -> bytes:
    sock.settimeout(TIMEOUT_S)
    received = bytearray()
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass  # the server closed with our unread excess in its buffer: RST after the E: line
    return bytes(received)


def connect(address: tuple[str, int]) -> socket.socket:
    sock = socket.create_connection(address, timeout=TIMEOUT_S)
    greeting = sock.recv(4096)
    assert greeting.startswith(b"Hi") or greeting[4:].startswith(b"Hi")
    return sock


@pytest.mark.parametrize("framing", ["line", "length"])
@pytest.mark.parametrize("model", model_params("overlong", stream_models()))
def test_overlong_message_is_refused_after_at_most_limit_plus_64_kib(
    model: str, framing: str, launch_server: LaunchServer
) -> None:
    server = launch_server(model, framing)
    with connect(server.address) as sock:
        local = sock.getsockname()
        message = b"U:" + b"o" * (4 * LIMIT)
        stream = len(message).to_bytes(4, "big") + message if framing == "length" else message
        sent = 0
        while sent < len(stream):
            sock.sendall(stream[sent : sent + PIECE_BYTES])
            sent = min(sent + PIECE_BYTES, len(stream))

            def consumed_or_answered() -> bool:
                if select.select([sock], [], [], 0)[0]:
                    return True
                queues = read_kernel_queues(server.address, local)
                return queues is None or queues.receive_queue_bytes == 0

            assert wait_until(consumed_or_answered, TIMEOUT_S)
            if select.select([sock], [], [], 0.05)[0]:
                break
        reply = read_until_closed(sock)
    print(f"\n{model}-tcp-{framing}: E: after {sent:,} bytes sent (limit {LIMIT:,})")
    assert sent <= LIMIT + ALLOWED_EXTRA_INPUT
    assert b"E:message of" in reply
    assert f"exceeds the {LIMIT:,}-byte limit".encode() in reply
    assert server.error_output() == []


@pytest.mark.parametrize("framing", ["line", "length"])
@pytest.mark.parametrize("model", model_params("overlong", stream_models()))
def test_message_of_exactly_the_limit_is_served(
    model: str, framing: str, launch_server: LaunchServer
) -> None:
    server = launch_server(model, framing)
    exact = b"U:" + b"e" * (LIMIT - 2)
    with connect(server.address) as sock:
        sock.sendall(frame(framing, exact) + frame(framing, b"C:"))
        reply = read_until_closed(sock)
    assert reply == frame(framing, b"E" * (LIMIT - 2))
    with connect(server.address) as sock:
        sock.sendall(frame(framing, exact + b"e"))
        reply = read_until_closed(sock)
    assert b"E:message of" in reply
    assert b"exceeds the 65,536-byte limit" in reply


# Less than the limit plus what a server drains after refusing (256 KiB): a server that drains
# reads all of it, so its close is an orderly FIN, and the client reads the `E:` line first.
UNREAD_BODY_BYTES = 200 * 1024


@pytest.mark.parametrize("framing", ["line", "length"])
@pytest.mark.parametrize("model", model_params("overlong", stream_models()))
def test_client_sending_an_overlong_message_at_once_reads_the_refusal(
    model: str, framing: str, launch_server: LaunchServer
) -> None:
    """The whole over-long message is sent before the client reads: closing with the body
    unread would make the kernel answer with a RST that discards the `E:` line not yet
    delivered (tcp(7)); a server that drains a bounded amount first closes with a FIN."""
    server = launch_server(model, framing)
    for attempt in range(5):
        with connect(server.address) as sock:
            body = b"U:" + b"b" * (UNREAD_BODY_BYTES - 2)
            header = (1024 * 1024).to_bytes(4, "big") if framing == "length" else b""
            sock.sendall(header + body)
            sock.settimeout(TIMEOUT_S)
            received = bytearray()
            reset = False
            try:
                while chunk := sock.recv(65536):
                    received += chunk
            except ConnectionResetError:
                reset = True
        assert b"E:message of" in received, f"attempt {attempt}: {bytes(received)!r}"
        assert not reset, f"attempt {attempt}: reset after {bytes(received)!r}"
    assert server.error_output() == []
