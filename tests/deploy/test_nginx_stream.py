"""docs/DEPLOY.md, run for real: nginx's stream module (L4) in front of three socklab converters.

Everything on loopback with free ports: three `socklab converter server` processes, one nginx
started in the foreground (`daemon off`) from a configuration generated in a temporary directory,
and traffic through nginx that checks every reply — by hand, with the converter client, and with
`socklab bench` (which verifies each reply byte for byte). nginx comes from Debian's packages
(`nginx`, `libnginx-mod-stream`; see .ci/run).
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from socklab.protocol.converter import GREETING
from tests.socklab_process import SocklabProcess, free_port, run_socklab

BACKENDS = 3
READY_TIMEOUT_S = 15.0
# Debian builds the stream module as a dynamic module (libnginx-mod-stream).
DEBIAN_STREAM_MODULE = Path("/usr/lib/nginx/modules/ngx_stream_module.so")


def nginx_binary() -> str:
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None
    )
    if found is None:
        raise AssertionError("nginx is not installed: apt-get install nginx libnginx-mod-stream")
    return found


def stream_config(
    directory: Path, tcp_port: int, udp_port: int, tcp_backends: list[int], udp_backends: list[int]
) -> str:
    """The configuration docs/DEPLOY.md shows, with the ports and paths of this test."""
    load = f"load_module {DEBIAN_STREAM_MODULE};\n" if DEBIAN_STREAM_MODULE.exists() else ""
    tcp_servers = "".join(f"        server 127.0.0.1:{port};\n" for port in tcp_backends)
    udp_servers = "".join(f"        server 127.0.0.1:{port};\n" for port in udp_backends)
    return f"""{load}daemon off;
worker_processes 1;
pid {directory}/nginx.pid;
error_log {directory}/error.log notice;
events {{ worker_connections 1024; }}
stream {{
    upstream socklab_converters {{
{tcp_servers}    }}
    server {{
        listen 127.0.0.1:{tcp_port};
        proxy_pass socklab_converters;
        proxy_connect_timeout 2s;
    }}
    upstream socklab_converters_udp {{
{udp_servers}    }}
    server {{
        listen 127.0.0.1:{udp_port} udp;
        proxy_pass socklab_converters_udp;
        proxy_responses 1;
        proxy_timeout 2s;
    }}
}}
"""


def wait_for_greeting(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    """Readiness: a connection through nginx gets the converter's greeting."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"nginx exited with {process.returncode}: {log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                if sock.makefile("rb").readline() == GREETING + b"\n":
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"nginx not ready within {READY_TIMEOUT_S} s: {log.read_text()}")


@pytest.fixture
def nginx_in_front(
    tmp_path: Path, start_socklab: Callable[..., SocklabProcess]
) -> Iterator[tuple[int, int, list[SocklabProcess]]]:
    tcp_backends, udp_backends = [], []
    servers = []
    for _ in range(BACKENDS):
        server = start_socklab(["converter", "server", "--port", "0"])
        tcp_backends.append(server.wait_listening()[1])
        servers.append(server)
        udp_server = start_socklab(["converter", "server", "--udp", "--port", "0"])
        udp_backends.append(udp_server.wait_listening()[1])
    tcp_port = free_port()
    udp_port = free_port(socket.SOCK_DGRAM)
    config = tmp_path / "nginx.conf"
    config.write_text(stream_config(tmp_path, tcp_port, udp_port, tcp_backends, udp_backends))
    log = tmp_path / "error.log"
    # -p: prefix for relative paths, -e: the error log before the configuration is read.
    nginx = subprocess.Popen(
        [nginx_binary(), "-p", str(tmp_path), "-c", str(config), "-e", str(log)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_greeting(tcp_port, nginx, log)
        yield tcp_port, udp_port, servers
    finally:
        # SIGTERM is nginx's fast shutdown; by PID, never by name.
        nginx.send_signal(signal.SIGTERM)
        try:
            nginx.wait(10)
        except subprocess.TimeoutExpired:
            nginx.kill()
            nginx.wait(10)


def exchange(port: int, requests: list[bytes]) -> list[bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        reader = sock.makefile("rb")
        assert reader.readline() == GREETING + b"\n"
        replies = []
        for request in requests:
            sock.sendall(request + b"\n")
            replies.append(reader.readline().rstrip(b"\n"))
        return replies


def test_every_reply_through_nginx_is_right(
    nginx_in_front: tuple[int, int, list[SocklabProcess]],
) -> None:
    tcp_port, udp_port, servers = nginx_in_front
    for index in range(3 * BACKENDS):
        text = f"client {index}: straße".encode()
        assert exchange(tcp_port, [b"U:" + text, b"L:ABC" + text]) == [
            f"CLIENT {index}: STRASSE".encode(),
            b"abc" + text.lower(),
        ]
    done = run_socklab(
        ["converter", "client", "--udp", "--port", str(udp_port), "U:through nginx", "L:UDP"]
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["THROUGH NGINX", "udp"]
    bench = run_socklab(
        [
            "bench",
            "--target",
            f"127.0.0.1:{tcp_port}",
            "--connections",
            "6",
            "--duration",
            "1",
            "--warmup",
            "0",
            "--json",
        ],
        timeout_s=60,
    )
    report = json.loads(bench.stdout)
    assert bench.returncode == 0, bench.stderr
    assert report["errors"] == 0
    assert report["requests"] > 0
    # Round robin spread the connections: every instance served some.
    for server in servers:
        server.stop()
        served = [line for line in server.stdout_lines if line.startswith("Server stopped:")]
        assert served, server.stdout_lines
        connections = int(served[0].split()[2])
        assert connections >= 3, served[0]
