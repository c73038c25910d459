"""How the blocking models wait: a watchdog sweeps their deadlines; where it cannot wake a
blocked call (Windows), every wait is cut into slices instead.

The first tests run the real server and read its threads from /proc; the last ones run the
threads model in this process, once per way of waiting, since CI runs on Linux only.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from socklab.protocol.converter import GREETING
from socklab.runtimes import blocking, threaded
from socklab.runtimes.config import ServerConfig
from socklab.runtimes.deadlines import SWEEP_INTERVAL_S
from tests.runtimes.servers import (
    MODELS,
    Case,
    RunningServer,
    connect_raw,
    read_until_closed,
    start_server,
)

IDLE_NOTICE = b"E:idle timeout: closing an inactive connection\n"
MESSAGE_NOTICE = b"E:message timeout: the message did not arrive in time\n"


def voluntary_switches(pid: int) -> int:
    """How often the threads of `pid` went to sleep so far (proc(5): voluntary_ctxt_switches)."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(FileNotFoundError), open(f"/proc/{pid}/task/{task}/status") as f:
            for line in f:
                if line.startswith("voluntary_ctxt_switches:"):
                    total += int(line.split()[1])
    return total


def receive_greeting(sock: socket.socket) -> None:
    received = b""
    while not received.endswith(b"\n"):
        chunk = sock.recv(4096)
        assert chunk, "closed before the greeting"
        received += chunk
    assert received == GREETING + b"\n"


def test_idle_connections_leave_their_threads_asleep(servers: list[RunningServer]) -> None:
    # A thread waiting for a request must not wake to check its deadlines (the watchdog does
    # that): with 10,000 idle clients, 10,000 wake-ups a second starved the busy ones.
    connections = 60
    server = start_server(Case("threads", "tcp", "line"))
    servers.append(server)
    sockets = [connect_raw(server.host, server.port) for _ in range(connections)]
    try:
        for sock in sockets:
            receive_greeting(sock)
        before = voluntary_switches(server.process.pid)
        # An observation window, not a wait for readiness: long enough for every thread of a
        # model that wakes once per sweep interval to have woken twice.
        time.sleep(2.5 * SWEEP_INTERVAL_S)
        woken = voluntary_switches(server.process.pid) - before
    finally:
        for sock in sockets:
            sock.close()
    # What remains is the server's own machinery: accept() slices, the watchdog, the CLI.
    assert woken < connections, f"{woken} wake-ups for {connections} idle connections"


@pytest.mark.parametrize(
    ("model", "loop"), [(model, "auto") for model in MODELS] + [("asyncio", "asyncio")]
)
def test_a_slow_reader_that_keeps_reading_is_served_in_full(
    model: str, loop: str, servers: list[RunningServer]
) -> None:
    # The write deadline counts sweeps in which *no byte* of pending output went out: a client
    # that reads slowly but steadily keeps its connection however long its replies take. The
    # server's send buffer is made small so its sends wait nearly all the time (a loopback
    # buffer could otherwise grow to hold every reply), each time for a fraction of a second.
    server = start_server(
        Case(model, "tcp", "line"),
        *(["--loop", loop] if model == "asyncio" else []),
        *("--write-timeout", "1", "--send-buffer-bytes", "65536"),
    )
    servers.append(server)
    request = b"U:" + b"s" * 1000 + b"\n"
    requests = 1200  # 1.2 MB of replies, read at about 320 KB/s: four times the write timeout
    expected = GREETING + b"\n" + request[2:].upper() * requests
    sock = connect_raw(server.host, server.port)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    received = bytearray()
    sender = threading.Thread(target=_send_quietly, args=(sock, request * requests), daemon=True)
    with sock:
        sender.start()
        deadline = time.monotonic() + 60.0
        while len(received) < len(expected) and time.monotonic() < deadline:
            ready, _, _ = select.select([sock], [], [], 1.0)
            if not ready:
                continue
            try:
                chunk = sock.recv(8 * 1024)
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += chunk
            time.sleep(0.025)
        sender.join(5.0)
    assert len(received) == len(expected), f"cut after {len(received):,} of {len(expected):,} bytes"
    assert received == expected


def _send_quietly(sock: socket.socket, data: bytes) -> None:
    with contextlib.suppress(OSError):
        sock.sendall(data)


# -- both ways of waiting, in this process ----------------------------------------------------


def start_threads_server(
    monkeypatch: pytest.MonkeyPatch, *, watched: bool
) -> threaded.ThreadedServer:
    monkeypatch.setattr(blocking, "SHUTDOWN_WAKES_BLOCKED_CALLS", watched)
    config = ServerConfig(
        port=0, idle_timeout_s=1, message_timeout_s=2, write_timeout_s=1, shutdown_grace_s=0.5
    )
    server = threaded.serve(config)
    assert server.watched is watched
    return server


@pytest.fixture(params=[True, False], ids=["watchdog", "slices"])
def threads_server(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[threaded.ThreadedServer]:
    server = start_threads_server(monkeypatch, watched=request.param)
    try:
        yield server
    finally:
        server.stop()


def test_idle_and_message_deadlines_send_their_notice(
    threads_server: threaded.ThreadedServer,
) -> None:
    host, port = threads_server.address
    with connect_raw(host, port) as silent, connect_raw(host, port) as slow:
        slow.sendall(b"U:never ends")
        started = time.monotonic()
        assert read_until_closed(silent) == GREETING + b"\n" + IDLE_NOTICE
        assert read_until_closed(slow) == GREETING + b"\n" + MESSAGE_NOTICE
        # Never before the deadline, at most one sweep after it (and some slack for CI).
        assert 2.0 <= time.monotonic() - started <= 2.0 + SWEEP_INTERVAL_S + 1.5
    assert threads_server.stats.connections_timed_out == 2


def test_a_client_that_never_reads_is_cut_by_the_write_deadline(
    threads_server: threaded.ThreadedServer,
) -> None:
    host, port = threads_server.address
    sock = connect_raw(host, port)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    burst = (b"U:" + b"w" * 1000 + b"\n") * 1024
    with sock:
        sock.setblocking(False)
        deadline = time.monotonic() + 30.0
        while time.monotonic() < deadline:
            try:
                sock.send(burst)
            except BlockingIOError:
                select.select([], [sock], [], 0.2)
            except OSError:
                break  # reset: the server gave up on us
        else:
            raise AssertionError("the server never disconnected a client that does not read")
    assert threads_server.stats.connections_timed_out == 1


def test_stop_wakes_a_thread_waiting_for_a_request(
    threads_server: threaded.ThreadedServer,
) -> None:
    host, port = threads_server.address
    with connect_raw(host, port) as sock:
        receive_greeting(sock)
        started = time.monotonic()
        threads_server.stop()
        assert not threads_server.is_running
        assert read_until_closed(sock) == b""
    # Woken by shutdown() at once, or by the next slice: well before the idle deadline.
    assert time.monotonic() - started < SWEEP_INTERVAL_S + 0.5
    assert threads_server.stats.connections_active == 0


def test_a_failing_watchdog_stops_the_server_with_its_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Deadlines that silently stopped would let idle clients hold their threads forever.
    failure = RuntimeError("a bug in the sweep")

    def broken_sweep(self: blocking.BlockingConnection) -> bool:
        raise failure

    monkeypatch.setattr(blocking.BlockingConnection, "sweep_from_watchdog", broken_sweep)
    server = start_threads_server(monkeypatch, watched=True)
    try:
        host, port = server.address
        with connect_raw(host, port) as sock:
            receive_greeting(sock)
            with pytest.raises(RuntimeError, match="a bug in the sweep"):
                server.wait(3 * SWEEP_INTERVAL_S)
            assert read_until_closed(sock) == b""
    finally:
        server.stop()
    assert not [t for t in threading.enumerate() if "watchdog" in t.name and t.is_alive()]
