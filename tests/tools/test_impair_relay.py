"""The relay shell of `socklab impair`: backpressure through the real command, and the UDP
mapping table (expiry, eviction) in-process with shortened limits."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from socklab.tools.impair import ImpairConfig, ImpairRelay, start_impair
from socklab.tools.impair import relay as relay_module
from tests.socklab_process import SocklabProcess

Start = Callable[..., SocklabProcess]
TIMEOUT_S = 10.0


def bytes_accepted_until_blocked(port: int, patience_s: float = 0.5, bound_s: float = 4.0) -> int:
    """Send as fast as the relay accepts; stop once nothing more goes for `patience_s`."""
    total = 0
    chunk = b"b" * 65536
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as sock:
        sock.setblocking(False)
        deadline = time.monotonic() + bound_s
        last_progress = time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - last_progress < patience_s:
            try:
                total += sock.send(chunk)
                last_progress = time.monotonic()
            except BlockingIOError:
                time.sleep(0.01)
    return total


@pytest.mark.parametrize("faults", [[], ["--rate", "1000"]], ids=["target-never-reads", "rate"])
def test_backpressure_bounds_what_the_relay_accepts(
    start_socklab: Start, faults: list[str]
) -> None:
    """Without backpressure the relay would read without end; with it, the sender blocks
    once the kernel buffers and the relay's 64 KiB are full."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept_and_never_read() -> None:
        listener.settimeout(TIMEOUT_S)
        with listener:
            conn, _ = listener.accept()
            held.append(conn)
            stop.wait(TIMEOUT_S)
            conn.close()

    thread = threading.Thread(target=accept_and_never_read, daemon=True)
    thread.start()
    target_port = listener.getsockname()[1]
    relay = start_socklab(
        ["impair", "--tcp", "--listen", "0", "--target", f"127.0.0.1:{target_port}", *faults]
    )
    port = relay.wait_listening()[1]
    accepted = bytes_accepted_until_blocked(port)
    stop.set()
    thread.join(TIMEOUT_S)
    # Loopback socket buffers hold a few MiB at most; a relay reading without bound would
    # accept hundreds of MiB in these seconds.
    assert 0 < accepted < 32 * 1024 * 1024


@pytest.fixture
def udp_target() -> Iterator[int]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    yield sock.getsockname()[1]
    sock.close()


def relay_for(target_port: int) -> ImpairRelay:
    return start_impair(
        ImpairConfig(transport="udp", listen=("127.0.0.1", 0), target=("127.0.0.1", target_port))
    )


def wait_until(predicate: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_idle_udp_mappings_expire(monkeypatch: pytest.MonkeyPatch, udp_target: int) -> None:
    monkeypatch.setattr(relay_module, "UDP_FLOW_IDLE_S", 0.2)
    with relay_for(udp_target) as relay, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.sendto(b"hello", relay.address)
        assert wait_until(lambda: relay.snapshot().clients_open == 1)
        assert wait_until(lambda: relay.snapshot().clients_open == 0)
        assert relay.snapshot().clients_total == 1


def test_udp_mappings_are_capped(monkeypatch: pytest.MonkeyPatch, udp_target: int) -> None:
    monkeypatch.setattr(relay_module, "MAX_UDP_FLOWS", 2)
    clients = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(3)]
    try:
        with relay_for(udp_target) as relay:
            for client in clients:
                client.sendto(b"hi", relay.address)
            assert wait_until(lambda: relay.snapshot().clients_total == 3)
            stats = relay.snapshot()
            assert (stats.clients_open, stats.clients_refused) == (2, 1)
    finally:
        for client in clients:
            client.close()


def test_replies_find_their_client(udp_target: int) -> None:
    """One upstream socket per client address: each client gets its own answers back."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as echo:
        echo.bind(("127.0.0.1", 0))
        echo.settimeout(TIMEOUT_S)

        def serve_echo() -> None:
            for _ in range(2):
                data, address = echo.recvfrom(2048)
                echo.sendto(data.upper(), address)

        thread = threading.Thread(target=serve_echo, daemon=True)
        thread.start()
        with relay_for(echo.getsockname()[1]) as relay:
            clients = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2)]
            try:
                for index, client in enumerate(clients):
                    client.settimeout(TIMEOUT_S)
                    client.sendto(b"client %d" % index, relay.address)
                for index, client in enumerate(clients):
                    assert client.recv(2048) == b"CLIENT %d" % index
            finally:
                for client in clients:
                    client.close()
        thread.join(TIMEOUT_S)
