"""The server cases every runtime test is parametrized over, read from the registries.

A case is (model, transport, framing), with the id `model-transport-framing` (`threads-tcp-line`);
UDP has no framing, its cases end in `-datagram`. A new runtime or framing is tested by adding
it to RUNTIMES or FRAMINGS.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass

from socklab.protocol.framing import FRAMINGS
from socklab.runtimes import RUNTIMES
from tests.socklab_process import SocklabProcess


@dataclass(frozen=True)
class Case:
    model: str
    transport: str
    framing: str

    @property
    def id(self) -> str:
        return f"{self.model}-{self.transport}-{self.framing}"

    def server_args(self, *extra: str, host: str = "127.0.0.1") -> list[str]:
        args = ["converter", "server", "--model", self.model, "--host", host, "--port", "0"]
        if self.transport == "udp":
            args.append("--udp")
        else:
            args += ["--framing", self.framing]
        return [*args, *extra]


TCP_CASES = [
    Case(model, "tcp", framing)
    for model, info in sorted(RUNTIMES.items())
    if "tcp" in info.transports
    for framing in sorted(FRAMINGS)
]
UDP_CASES = [
    Case(model, "udp", "datagram")
    for model, info in sorted(RUNTIMES.items())
    if "udp" in info.transports
]
MODELS = sorted(RUNTIMES)
# Models that serve several clients at once, so --max-clients can refuse one.
CONCURRENT_MODELS = [model for model in MODELS if model != "iterative"]


def case_id(case: Case) -> str:
    return case.id


@dataclass
class RunningServer:
    case: Case
    process: SocklabProcess
    host: str
    port: int


def start_server(case: Case, *extra: str, host: str = "127.0.0.1") -> RunningServer:
    process = SocklabProcess(case.server_args(*extra, host=host))
    try:
        bound_host, port = process.wait_listening()
    except BaseException:
        process.stop()
        raise
    return RunningServer(case, process, bound_host, port)


def connect_raw(host: str, port: int, timeout_s: float = 5.0) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=timeout_s)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_until_closed(sock: socket.socket, timeout_s: float = 10.0) -> bytes:
    """Everything the server sends until it closes (EOF or reset), within `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    received = bytearray()
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"the server did not close within {timeout_s} s: {received!r}")
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return bytes(received)
        if not chunk:
            return bytes(received)
        received += chunk
