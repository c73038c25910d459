"""Item 4, connection cap and connect storm.

Cap: with `--max-clients 10`, the 11th connection is told `E:server busy, try again later` and
closed within 100 ms (memcached's `-c` does the same with "ERROR Too many open connections"),
the 10 admitted clients keep being served, and a slot freed by one of them is given to the next
client. Storm: thousands of clients connecting at the same instant all succeed and are greeted,
which needs a listen backlog of at least 1,024 (read back from `ss -ltn`: for a listening socket
its Send-Q column is the backlog). The cap is independent of framing, so line framing is used.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time

import pytest

from socklab.clients.converter_client import StreamConverterClient
from tests.robustness.conftest import LaunchServer, model_params, stream_models
from tests.robustness.observed_server import wait_until

BUSY_LINE = b"E:server busy, try again later\n"


def connect_refused_client(address: tuple[str, int]) -> tuple[bytes, float]:
    """(everything the server sent before closing, seconds from connect to close)."""
    started = time.monotonic()
    with socket.create_connection(address, timeout=5) as sock:
        received = bytearray()
        try:
            while chunk := sock.recv(4096):
                received += chunk
        except ConnectionResetError:
            pass
    return bytes(received), time.monotonic() - started


@pytest.mark.parametrize("model", model_params("connection_cap", stream_models()))
def test_eleventh_client_is_refused_within_100_ms_and_the_ten_keep_working(
    model: str, launch_server: LaunchServer
) -> None:
    server = launch_server(model, "line", ["--max-clients", "10"])
    admitted = [StreamConverterClient(*server.address, timeout_s=5) for _ in range(10)]
    try:
        refused, seconds = connect_refused_client(server.address)
        print(f"\n{model}: 11th client refused in {seconds * 1000:.1f} ms")
        assert refused == BUSY_LINE
        assert seconds < 0.100
        for number, client in enumerate(admitted):
            assert client.request(f"U:still served {number}".encode()) == (
                f"STILL SERVED {number}".encode()
            )
        assert admitted[0].request(b"C:") is None
        admitted[0].close()

        def next_client_admitted() -> bool:
            try:
                with StreamConverterClient(*server.address, timeout_s=5) as client:
                    return client.request(b"U:freed") == b"FREED"
            except Exception:
                return False

        assert wait_until(next_client_admitted, timeout_s=5, interval_s=0.05)
    finally:
        for client in admitted:
            client.close()
    assert server.error_output() == []


async def connect_and_greet(address: tuple[str, int]) -> bool:
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(*address), 20)
    except (OSError, TimeoutError):
        return False
    try:
        greeting = await asyncio.wait_for(reader.readline(), 20)
        return greeting.startswith(b"Hi I'm your upper/lowercase converter")
    except (OSError, TimeoutError):
        return False
    finally:
        writer.close()


async def storm(address: tuple[str, int], clients: int) -> list[bool]:
    return list(await asyncio.gather(*(connect_and_greet(address) for _ in range(clients))))


def listen_backlog(port: int) -> int:
    output = subprocess.run(
        ["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, check=True, timeout=10
    ).stdout.split()
    return int(output[2])  # State Recv-Q Send-Q ...: Send-Q is the backlog of a listener


@pytest.mark.timeout(180)
@pytest.mark.parametrize("model", model_params("connect_storm", stream_models()))
def test_connect_storm_is_accepted_in_full(
    model: str, scale: str, launch_server: LaunchServer
) -> None:
    clients = {"ci": 1_000, "full": 5_000}[scale]
    server = launch_server(model, "line", ["--max-clients", str(clients)])
    backlog = listen_backlog(server.port)
    started = time.monotonic()
    greeted = asyncio.run(storm(server.address, clients))
    print(
        f"\n{model}: storm of {clients} connects, {greeted.count(True)} greeted in "
        f"{time.monotonic() - started:.2f} s, backlog {backlog}"
    )
    assert backlog >= 1024
    assert greeted.count(True) == clients
    assert server.error_output() == []
