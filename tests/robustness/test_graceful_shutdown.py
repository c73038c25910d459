"""Item 11, graceful shutdown: SIGTERM with hundreds of open clients loses no reply in flight.

Each client asks for a 60 KiB conversion with a tiny receive buffer and reads only the first
byte of the reply, so most of every reply is still queued in the server when SIGTERM arrives
(nginx's "graceful shutdown" and Redis's SHUTDOWN flush pending output the same way). Then all
clients read on: each must get its whole reply followed by an orderly close (EOF, not a reset),
the server must exit with status 0 within 5 s of the signal, and a new server must bind the same
port at once (SO_REUSEADDR: the old connections' TIME_WAIT must not block a restart).
"""

from __future__ import annotations

import asyncio
import signal
import socket
import time
from collections.abc import Callable

import pytest

from tests.robustness.conftest import (
    LaunchServer,
    model_params,
    start_observed_server,
    stream_models,
)
from tests.socklab_process import SocklabProcess

REPLY_TEXT_BYTES = 60 * 1024
EXIT_WITHIN_S = 5.0
OPEN_WITHIN_S = 30.0  # every client greeted and its reply begun, or the test fails


def request_for(number: int) -> tuple[bytes, bytes]:
    text = f"{number:05d}".encode() + b"g" * (REPLY_TEXT_BYTES - 5)
    return b"U:" + text + b"\n", text.upper() + b"\n"


async def open_client(address: tuple[str, int], number: int) -> tuple[socket.socket, bytes]:
    """A connected client whose request is being answered: (socket, bytes received so far)."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
    sock.setblocking(False)
    await loop.sock_connect(sock, address)
    received = bytearray()
    while b"\n" not in received:  # the greeting
        received += await loop.sock_recv(sock, 4096)
    received = received[received.index(b"\n") + 1 :]
    request, _ = request_for(number)
    await loop.sock_sendall(sock, request)
    while not received:
        received += await loop.sock_recv(sock, 1)
    return sock, bytes(received)


async def read_to_end(sock: socket.socket, received: bytes) -> tuple[bytes, str]:
    loop = asyncio.get_running_loop()
    data = bytearray(received)
    try:
        while chunk := await asyncio.wait_for(loop.sock_recv(sock, 65536), 10):
            data += chunk
        return bytes(data), "eof"
    except ConnectionResetError:
        return bytes(data), "reset"
    except TimeoutError:
        return bytes(data), "timeout"
    finally:
        sock.close()


async def wait_for_exit(process: SocklabProcess, bound_s: float) -> float | None:
    """Seconds until `process` exited (polled while the clients read), None if not within bound_s."""
    started = time.monotonic()
    while time.monotonic() - started < bound_s:
        if process.proc.poll() is not None:
            return time.monotonic() - started
        await asyncio.sleep(0.01)
    return None


async def shut_down_under_load(
    address: tuple[str, int], clients: int, process: SocklabProcess
) -> tuple[list[tuple[bytes, str]], float | None]:
    opening = asyncio.gather(*(open_client(address, number) for number in range(clients)))
    opened = await asyncio.wait_for(opening, OPEN_WITHIN_S)
    process.send_signal(signal.SIGTERM)
    exit_watch = asyncio.create_task(wait_for_exit(process, EXIT_WITHIN_S + 5))
    outcomes = await asyncio.gather(*(read_to_end(sock, got) for sock, got in opened))
    return list(outcomes), await exit_watch


@pytest.mark.timeout(120)
@pytest.mark.parametrize("model", model_params("shutdown", stream_models()))
def test_sigterm_flushes_in_flight_replies_exits_and_the_port_rebinds(
    model: str,
    scale: str,
    launch_server: LaunchServer,
    start_socklab: Callable[..., SocklabProcess],
) -> None:
    clients = {"ci": 300, "full": 1_000}[scale]
    server = launch_server(model, "line")
    outcomes, exited_after_s = asyncio.run(
        shut_down_under_load(server.address, clients, server.process)
    )
    status = server.process.wait(10)
    complete = sum(
        1
        for number, (data, ending) in enumerate(outcomes)
        if data == request_for(number)[1] and ending == "eof"
    )
    print(
        f"\n{model}: SIGTERM with {clients} clients mid-reply: {complete} complete replies, "
        f"exit status {status} after {exited_after_s or -1:.2f} s"
    )
    assert complete == clients, {ending for _, ending in outcomes}
    assert status == 0
    assert exited_after_s is not None and exited_after_s <= EXIT_WITHIN_S
    assert server.error_output() == []
    assert server.process.stdout_lines[-1].startswith("Server stopped:")
    restarted = start_observed_server(start_socklab, model, "line", port=server.port)
    assert restarted.port == server.port
