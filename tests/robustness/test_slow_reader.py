"""Item 5, slow reader: a client that sends 10,000 requests of 4 KiB and never reads a reply.

The server must stop reading its requests once replies pile up (backpressure), keep that
client's output queue at or below 256 KiB, disconnect it after the write timeout (here
`--write-timeout 2`), and keep answering everyone else beside it, never behind it (no request
of theirs waits anywhere near the write timeout; their p99 is printed, a benchmark's figure on a
shared CI machine, not a test's).

The output queue lives inside the server process. The server reports the largest queue it
held for one client (`-v` prints it when stopping), and the test checks that figure against
what the kernel shows (/proc/net/tcp, proc(5)) once the attacker is stuck, which needs no
trust in the server:

    read by the server  = sent by the attacker - attacker's send queue - server's receive queue
    replies owed        = greeting + (whole requests read) x reply size
                          - server's send queue - attacker's receive queue

"Replies owed" is the output queue plus the replies to input the server has read but holds
back unprocessed while the peer does not read (at most one read, 256 KiB in asyncio), so it
bounds the queue from above and proves memory stays bounded whatever the server reports.

The `raw` framing answers whatever one recv() returns, so its replies are not one per request;
the queue formula above needs whole requests, so this item runs for line and length framing.
"""

from __future__ import annotations

import socket
import time

import pytest

from socklab.protocol.converter import GREETING
from tests.robustness.conftest import LaunchServer, model_params, stream_models
from tests.robustness.observed_server import percentile, read_kernel_queues

REQUEST_BYTES = 4096
REQUESTS = 10_000
MAX_OUTPUT_QUEUE_BYTES = 256 * 1024
WRITE_TIMEOUT_S = 2.0
SWEEP_S = 1.0
SLACK_S = 1.0
LARGEST_READ_BYTES = 256 * 1024  # asyncio's selector transport reads up to this much at once
STUCK_AFTER_S = 0.3  # no progress for this long: the server stopped reading


def framed_request(framing: str, text_kind: str) -> tuple[bytes, int]:
    """(one 4 KiB request as sent, the size of its framed reply).

    "growing" text is `ΐ` (2 bytes in UTF-8) whose upper case takes 6: each request makes three
    times its size in replies, the worst case for the output queue.
    """
    header_bytes = 4 if framing == "length" else 0
    newline_bytes = 0 if framing == "length" else 1
    text_bytes = REQUEST_BYTES - header_bytes - 2 - newline_bytes
    unit = "ΐ" if text_kind == "growing" else "r"
    text = unit * (text_bytes // len(unit.encode()))
    text += "r" * (text_bytes - len(text.encode()))
    message = b"U:" + text.encode()
    reply = text.upper().encode()
    if framing == "length":
        return len(message).to_bytes(4, "big") + message, 4 + len(reply)
    return message + b"\n", len(reply) + 1


def greeting_bytes(framing: str) -> int:
    return len(GREETING) + (4 if framing == "length" else 1)


@pytest.mark.parametrize(
    ("framing", "text_kind"), [("line", "ascii"), ("length", "ascii"), ("line", "growing")]
)
@pytest.mark.parametrize("model", model_params("slow_reader", stream_models()))
def test_slow_reader_is_bounded_then_disconnected(
    model: str, framing: str, text_kind: str, launch_server: LaunchServer, start_probe: object
) -> None:
    server = launch_server(model, framing, ["--write-timeout", str(WRITE_TIMEOUT_S), "-v"])
    baseline_fds, baseline_threads = server.settled_baseline()
    probe = start_probe(server, 150, 0.02, fresh_connections=False)  # type: ignore[operator]
    request, reply_bytes = framed_request(framing, text_kind)
    assert len(request) == REQUEST_BYTES
    stream = memoryview(request * REQUESTS)
    attacker = socket.create_connection(server.address, timeout=5)
    attacker.setblocking(False)
    local = attacker.getsockname()
    probe.go()
    sent = 0
    last_progress = time.monotonic()
    largest_owed = 0
    disconnected_after_s: float | None = None
    stuck_since: float | None = None
    try:
        while time.monotonic() - last_progress < WRITE_TIMEOUT_S + SWEEP_S + SLACK_S + 5:
            try:
                count = attacker.send(stream[sent : sent + 65536])
            except BlockingIOError:
                count = 0
            except (BrokenPipeError, ConnectionResetError):
                assert stuck_since is not None
                disconnected_after_s = time.monotonic() - stuck_since
                break
            if count:
                sent += count
                last_progress = time.monotonic()
                stuck_since = None
                continue
            if time.monotonic() - last_progress < STUCK_AFTER_S:
                time.sleep(0.005)
                continue
            stuck_since = stuck_since or last_progress
            server_side = read_kernel_queues(server.address, local)
            attacker_side = read_kernel_queues(local, server.address)
            if server_side is None or attacker_side is None:
                disconnected_after_s = time.monotonic() - stuck_since
                break
            time.sleep(0.02)
            if (server_side, attacker_side) != (
                read_kernel_queues(server.address, local),
                read_kernel_queues(local, server.address),
            ):
                # Bytes still moving: segments that arrive while the server is inside send()
                # wait in the socket's backlog, which /proc does not count; only a settled
                # connection gives a true account of what was read and what is owed.
                continue
            read_by_server = sent - attacker_side.send_queue_bytes - server_side.receive_queue_bytes
            produced = greeting_bytes(framing) + (read_by_server // len(request)) * reply_bytes
            owed = produced - server_side.send_queue_bytes - attacker_side.receive_queue_bytes
            largest_owed = max(largest_owed, owed)
            time.sleep(0.05)
    finally:
        attacker.close()
    probe_result = probe.result()
    p99 = percentile(probe_result.latencies_ms, 0.99)
    growth = reply_bytes / len(request)
    assert server.wait_fds(baseline_fds, timeout_s=5) == baseline_fds
    assert server.wait_threads(baseline_threads, timeout_s=5) == baseline_threads
    assert server.process.stop() == 0
    reported = server.process.wait_for_line(r"Largest output queue for one client: ([\d,]+) bytes")
    largest_queue = int(reported.group(1).replace(",", ""))
    print(
        f"\n{model}-tcp-{framing} slow reader ({text_kind} text): sent {sent:,} bytes before "
        f"stalling, largest output queue {largest_queue:,} bytes (replies owed at most "
        f"{largest_owed:,}), disconnected {disconnected_after_s} s after stalling, "
        f"others' p99 {p99:.1f} ms"
    )
    assert sent < len(stream), "the server kept reading a client that never reads"
    assert largest_queue <= MAX_OUTPUT_QUEUE_BYTES
    assert largest_owed <= MAX_OUTPUT_QUEUE_BYTES + growth * LARGEST_READ_BYTES
    assert disconnected_after_s is not None, "the slow reader was never disconnected"
    assert disconnected_after_s <= WRITE_TIMEOUT_S + SWEEP_S + SLACK_S + STUCK_AFTER_S
    assert probe_result.failures == []
    # A server blocked on the slow reader would hold the others until its write timeout.
    assert max(probe_result.latencies_ms) < WRITE_TIMEOUT_S * 1000 / 2
    assert server.error_output() == []
