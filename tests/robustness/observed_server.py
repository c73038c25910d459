"""A converter server under test, seen from outside: its memory, fds, threads and kernel queues.

Everything is read the way an operator would read it, never from inside the server: RSS through
psutil on the server's PID, open descriptors from /proc/PID/fd, threads from /proc/PID/task, and
the bytes waiting in a connection's kernel buffers from /proc/net/tcp (tx_queue / rx_queue, see
proc(5)). The suite is Linux-only, like the CI that runs it.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import psutil

from socklab.clients.converter_client import StreamConverterClient
from tests.socklab_process import SocklabProcess


@dataclass(frozen=True, slots=True)
class KernelQueues:
    """Bytes of one TCP socket in its kernel buffers: sent but unacknowledged, received but unread."""

    send_queue_bytes: int
    receive_queue_bytes: int


def read_kernel_queues(
    local: tuple[str, int], remote: tuple[str, int], *, namespace_of_pid: int | None = None
) -> KernelQueues | None:
    """The queues of the IPv4 socket bound to `local` and connected to `remote`; None if gone.

    With `namespace_of_pid`, the table of that process's network namespace is read
    (/proc/PID/net/tcp), for servers running in a namespace the test created.
    """
    wanted = (_hex_address(local), _hex_address(remote))
    path = "/proc/net/tcp" if namespace_of_pid is None else f"/proc/{namespace_of_pid}/net/tcp"
    with open(path) as table:
        next(table)
        for line in table:
            fields = line.split()
            if (fields[1], fields[2]) == wanted:
                tx_queue, rx_queue = fields[4].split(":")
                return KernelQueues(int(tx_queue, 16), int(rx_queue, 16))
    return None


def _hex_address(address: tuple[str, int]) -> str:
    # proc(5): the IPv4 address as a little-endian 32-bit hex number, then the port in hex.
    octets = [int(part) for part in address[0].split(".")]
    return "".join(f"{octet:02X}" for octet in reversed(octets)) + f":{address[1]:04X}"


def wait_until(predicate: Callable[[], bool], timeout_s: float, interval_s: float = 0.02) -> bool:
    """Poll `predicate` until it holds (True) or `timeout_s` passed (False)."""
    deadline = time.monotonic() + timeout_s
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval_s)


@dataclass(slots=True)
class ObservedServer:
    """A running `socklab converter server` subprocess and the address it listens on."""

    process: SocklabProcess
    host: str
    port: int
    model: str
    framing: str

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss_bytes(self) -> int:
        return int(psutil.Process(self.pid).memory_info().rss)

    def fd_count(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def thread_count(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/task"))

    def settled_baseline(self) -> tuple[int, int]:
        """(fds, threads) after one served client has come and gone.

        Some event loops open descriptors on their first connection and keep them (libuv, under
        uvloop, reserves an fd on /dev/null to survive EMFILE on accept): a baseline taken before
        any client would count that as a leak.
        """
        with StreamConverterClient(*self.address, framing=self.framing, timeout_s=5) as client:
            client.request(b"U:warm up")
        previous = (-1, -1)
        current = (self.fd_count(), self.thread_count())
        deadline = time.monotonic() + 5
        while current != previous and time.monotonic() < deadline:
            time.sleep(0.1)
            previous, current = current, (self.fd_count(), self.thread_count())
        return current

    def wait_fds(self, expected: int, timeout_s: float) -> int:
        """Wait until the server holds at most `expected` fds; the count it ends with."""
        return wait_settled(self.fd_count, expected, timeout_s)

    def wait_threads(self, expected: int, timeout_s: float) -> int:
        return wait_settled(self.thread_count, expected, timeout_s)

    def is_running(self) -> bool:
        return self.process.proc.poll() is None

    def error_output(self) -> list[str]:
        """Everything the server wrote to stderr: a healthy server writes nothing there, so a
        traceback or a logged callback exception shows up here."""
        return [line for line in self.process.stderr_lines if line.strip()]

    def sample_peak_rss(self) -> PeakSampler:
        return PeakSampler(self.rss_bytes)


@dataclass(slots=True)
class PeakSampler:
    """Samples a figure every few milliseconds in a thread; a context manager keeping the peak."""

    read: Callable[[], int]
    interval_s: float = 0.01
    peak: int = 0
    samples: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> PeakSampler:
        self.peak = self.read()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                value = self.read()
            except psutil.Error:
                return  # the process ended; the test reports why
            self.peak = max(self.peak, value)
            self.samples += 1

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(5)


def server_arguments(
    model: str, framing: str, port: int, extra: Sequence[str] = (), *, udp: bool = False
) -> list[str]:
    transport = ["--udp"] if udp else ["--framing", framing]
    return [
        "converter",
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--model",
        model,
        *transport,
        *extra,
    ]


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile (p99 of 100 values is the 99th smallest)."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * fraction // 1))
    return ordered[int(rank) - 1]


SETTLED_S = 0.5


def wait_settled(count: Callable[[], int], expected: int, timeout_s: float) -> int:
    """Wait until `count()` stays at most `expected` for SETTLED_S in a row; the last count.

    A model that accepts one connection at a time (iterative) passes through its baseline
    between two queued clients: one low reading would end the wait while the backlog still
    holds connections to accept.
    """
    deadline = time.monotonic() + timeout_s
    low_since: float | None = None
    while True:
        current = count()
        now = time.monotonic()
        if current <= expected:
            low_since = now if low_since is None else low_since
            if now - low_since >= SETTLED_S:
                return current
        else:
            low_since = None
        if now >= deadline:
            return current
        time.sleep(0.02)
