"""The UDP fault relay under a flood, on both event loops (issue 15, §6).

uvloop's `call_at` returns a plain `Handle`, without `when()`, for a deadline already past; the
relay read `when()` back and printed 3,622 tracebacks in 10 s under a flood with duplication,
reordering and delay. Each case floods the real `socklab impair --udp` for a bounded time with
an echo server behind it, then checks that nothing reached stderr, that datagrams came back
during the flood, and that a fresh client is still relayed once it is over.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from tests.socklab_process import SocklabProcess

Start = Callable[..., SocklabProcess]
FLOOD_S = 2.0
FLOOD_DATAGRAMS = 40_000  # whichever bound comes first
TIMEOUT_S = 10.0

FAULTS = {
    "duplicate-reorder-delay": ["--duplicate", "0.5", "--reorder", "0.5", "--delay", "200"],
    "delay-jitter": ["--delay", "20", "--jitter", "10"],
    "rate": ["--rate", "1m"],
}


@pytest.fixture
def echo_port() -> Iterator[int]:
    """A UDP echo server in a thread: what the relay delivers comes back to its sender."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    stop = threading.Event()

    def echo() -> None:
        while not stop.is_set():
            try:
                data, address = sock.recvfrom(65536)
                sock.sendto(data, address)
            except TimeoutError:
                continue
            except OSError:
                continue  # a full buffer or an ICMP error: an echo under a flood may drop

    thread = threading.Thread(target=echo, daemon=True)
    thread.start()
    yield int(sock.getsockname()[1])
    stop.set()
    thread.join(TIMEOUT_S)
    sock.close()


def flood(address: tuple[str, int]) -> tuple[int, int]:
    """Send small datagrams as fast as possible for a bounded time; (sent, echoes received)."""
    sent = received = 0
    payload = b"x" * 64
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        deadline = time.monotonic() + FLOOD_S
        while sent < FLOOD_DATAGRAMS and time.monotonic() < deadline:
            try:
                sock.sendto(payload, address)
                sent += 1
            except BlockingIOError:
                time.sleep(0.001)
            while True:
                try:
                    sock.recv(65536)
                    received += 1
                except (BlockingIOError, ConnectionRefusedError):
                    break
    return sent, received


def relayed_round_trip(address: tuple[str, int]) -> bool:
    """A new client's datagram comes back through the relay (retried: faults may drop it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.5)
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            sock.sendto(b"after the flood", address)
            try:
                if sock.recv(65536) == b"after the flood":
                    return True
            except TimeoutError:
                continue
    return False


@pytest.mark.timeout(60)
@pytest.mark.parametrize("faults", list(FAULTS), ids=list(FAULTS))
@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_udp_relay_survives_a_flood_without_a_traceback(
    start_socklab: Start, echo_port: int, loop: str, faults: str
) -> None:
    relay = start_socklab(
        [
            "impair",
            "--udp",
            "--listen",
            "127.0.0.1:0",
            "--target",
            f"127.0.0.1:{echo_port}",
            "--loop",
            loop,
            "--seed",
            "1",
            *FAULTS[faults],
        ]
    )
    address = relay.wait_listening()
    sent, received = flood(address)
    print(f"\nimpair --udp --loop {loop} {faults}: {sent:,} sent, {received:,} echoes in flood")
    assert relayed_round_trip(address)
    assert relay.proc.poll() is None
    assert relay.stop() == 0
    assert [line for line in relay.stderr_lines if line.strip()] == []
    assert received > 0
