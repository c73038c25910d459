"""Item 9, silent peer: a client that vanishes without FIN or RST is dropped within the user timeout.

A peer whose cable is pulled sends nothing more: no FIN, no RST. Without TCP_USER_TIMEOUT the
kernel retransmits the server's unacknowledged reply for ~15 minutes (tcp_retries2 = 15) and the
connection holds its slot all that time. With `--user-timeout 2` it must be gone within
2 s + 1 s.

The blackhole needs iptables, which must not touch the host: the test creates its own network
namespace (`ip netns add`), runs server and client on that namespace's loopback with
`ip netns exec`, and DROPs the client's packets there. In order:

  1. the client connects and reads the greeting (the handshake is done);
  2. everything addressed to the client is dropped (INPUT --dport CLIENT_PORT);
  3. the client sends a request; the server's reply now goes unacknowledged (seen as a non-zero
     send queue in /proc/SERVER_PID/net/tcp, the namespace's own table);
  4. everything from the client is dropped too: it is now completely silent;
  5. the server must close the connection within the user timeout + 1 s.

The namespace (and with it every rule) is deleted at the end. CI runs as root with iptables.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest

from tests.robustness.conftest import model_params, stream_models
from tests.robustness.observed_server import read_kernel_queues, server_arguments, wait_until
from tests.socklab_process import SocklabProcess, free_port, run_socklab

USER_TIMEOUT_S = 2.0
ALLOWED_LATENESS_S = 1.0

CLIENT_SCRIPT = """
import socket, sys
sock = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
sock.recv(4096)
print(sock.getsockname()[1], flush=True)
sys.stdin.readline()
sock.sendall(b"U:are you still there?\\n")
sys.stdin.readline()
"""


def run_in(namespace: str, *command: str) -> None:
    subprocess.run(["ip", "netns", "exec", namespace, *command], check=True, timeout=10)


@pytest.fixture
def namespace() -> Iterator[str]:
    name = f"socklab-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True, timeout=10)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True, timeout=10)
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=True, timeout=10)


@pytest.mark.parametrize("model", model_params("silent_peer", stream_models()))
def test_blackholed_peer_is_dropped_within_the_user_timeout(model: str, namespace: str) -> None:
    port = free_port()  # any port: the namespace's loopback is empty
    arguments = server_arguments(model, "line", port, ["--user-timeout", str(USER_TIMEOUT_S)])
    server = SocklabProcess(arguments, prefix=["ip", "netns", "exec", namespace])
    client: subprocess.Popen[str] | None = None
    try:
        server.wait_listening()
        client = subprocess.Popen(
            ["ip", "netns", "exec", namespace, sys.executable, "-c", CLIENT_SCRIPT, str(port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert client.stdin is not None and client.stdout is not None
        client_port = int(client.stdout.readline())
        server_side = (("127.0.0.1", port), ("127.0.0.1", client_port))
        baseline_fds = len(os.listdir(f"/proc/{server.pid}/fd"))

        run_in(
            namespace,
            "iptables",
            "-A",
            "INPUT",
            "-p",
            "tcp",
            "--dport",
            str(client_port),
            "-j",
            "DROP",
        )
        client.stdin.write("send\n")
        client.stdin.flush()

        def reply_unacknowledged() -> bool:
            queues = read_kernel_queues(*server_side, namespace_of_pid=server.pid)
            return queues is not None and queues.send_queue_bytes > 0

        assert wait_until(reply_unacknowledged, timeout_s=5, interval_s=0.005)
        silent_since = time.monotonic()
        run_in(
            namespace,
            "iptables",
            "-A",
            "INPUT",
            "-p",
            "tcp",
            "--sport",
            str(client_port),
            "-j",
            "DROP",
        )

        def connection_dropped() -> bool:
            gone = read_kernel_queues(*server_side, namespace_of_pid=server.pid) is None
            return gone and len(os.listdir(f"/proc/{server.pid}/fd")) < baseline_fds

        dropped = wait_until(
            connection_dropped, timeout_s=USER_TIMEOUT_S + ALLOWED_LATENESS_S + 3, interval_s=0.02
        )
        elapsed = time.monotonic() - silent_since
        print(
            f"\n{model}: silent peer dropped after {elapsed:.2f} s (user timeout {USER_TIMEOUT_S} s)"
        )
        assert dropped, "the server still holds the blackholed connection"
        assert elapsed <= USER_TIMEOUT_S + ALLOWED_LATENESS_S
        assert server.proc.poll() is None
    finally:
        if client is not None:
            client.kill()
            client.wait(10)
        server.stop()
    assert [line for line in server.stderr_lines if line.strip()] == []


@pytest.mark.parametrize("value", ["0", "-1", "soon", "nan"])
def test_user_timeout_must_be_a_positive_number_of_seconds(value: str) -> None:
    result = run_socklab(["converter", "server", "--port", "0", "--user-timeout", value])
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "--user-timeout" in result.stderr
