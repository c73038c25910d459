"""Item 8, resets and kills: peers that vanish mid-request leave no fd and no thread behind.

Resets: clients abort with SO_LINGER 0 (an RST, not a FIN) at three awkward moments: with half
a request sent, with half of a 60 KiB request sent, and after a whole request whose reply they
never read. Kills: client *processes* are killed with SIGKILL while holding a half-sent request
(the kernel closes their sockets; the server learns it from the wire, not from a goodbye). The
clients are bash's /dev/tcp redirections: a process each, at almost no start-up cost. After
each, the server's /proc/PID/fd and /proc/PID/task counts must return to their baseline.
"""

from __future__ import annotations

import signal
import socket
import struct
import subprocess

import pytest

from tests.robustness.conftest import LaunchServer, model_params, stream_models
from tests.robustness.observed_server import wait_until

RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST (socket(7))
BATCH = 100


def partial_request(kind: int) -> bytes:
    if kind == 0:
        return b"U:half a requ"
    if kind == 1:
        return b"U:" + b"b" * 30_000  # half of a 60 KiB request
    return b"U:a whole request whose reply is never read\n" * 50


@pytest.mark.parametrize("model", model_params("resets", stream_models()))
def test_clients_resetting_mid_request_leak_nothing(
    model: str, scale: str, launch_server: LaunchServer
) -> None:
    clients = {"ci": 1_000, "full": 10_000}[scale]
    server = launch_server(model, "line")
    baseline_fds, baseline_threads = server.settled_baseline()
    for first in range(0, clients, BATCH):
        batch = []
        for number in range(first, min(first + BATCH, clients)):
            sock = socket.create_connection(server.address, timeout=5)
            sock.sendall(partial_request(number % 3))
            batch.append(sock)
        for sock in batch:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET)
            sock.close()
    fds = server.wait_fds(baseline_fds, timeout_s=10)
    threads = server.wait_threads(baseline_threads, timeout_s=10)
    print(
        f"\n{model}: {clients} resets; fds {baseline_fds}->{fds}, threads {baseline_threads}->{threads}"
    )
    assert (fds, threads) == (baseline_fds, baseline_threads)
    assert server.is_running() and server.error_output() == []


@pytest.mark.parametrize("model", model_params("kills", stream_models()))
def test_client_processes_killed_with_sigkill_leak_nothing(
    model: str, scale: str, launch_server: LaunchServer
) -> None:
    processes_count = {"ci": 100, "full": 1_000}[scale]
    server = launch_server(model, "line")
    baseline_fds, baseline_threads = server.settled_baseline()
    host, port = server.address
    script = f"exec 3<>/dev/tcp/{host}/{port} && printf 'U:killed mid-req' >&3 && exec sleep 60"
    clients = [
        subprocess.Popen(["bash", "-c", script], stderr=subprocess.DEVNULL)
        for _ in range(processes_count)
    ]
    try:
        assert wait_until(
            lambda: server.fd_count() >= baseline_fds + processes_count, timeout_s=20
        ), f"only {server.fd_count() - baseline_fds} of {processes_count} clients connected"
    finally:
        for client in clients:
            client.send_signal(signal.SIGKILL)
        for client in clients:
            client.wait(10)
    fds = server.wait_fds(baseline_fds, timeout_s=10)
    threads = server.wait_threads(baseline_threads, timeout_s=10)
    print(
        f"\n{model}: {processes_count} clients SIGKILLed; fds {baseline_fds}->{fds}, "
        f"threads {baseline_threads}->{threads}"
    )
    assert (fds, threads) == (baseline_fds, baseline_threads)
    assert server.is_running() and server.error_output() == []
