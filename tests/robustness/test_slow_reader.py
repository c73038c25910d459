"""Item 5, slow reader: a client that sends 10,000 requests of 4 KiB and never reads a reply.

The server must stop reading its requests once replies pile up (backpressure), keep that
client's output queue at or below 256 KiB, disconnect it after the write timeout (here
`--write-timeout 2`), and keep answering everyone else with p99 < 100 ms.

The output queue lives inside the server process, so it is computed from what the kernel
shows (/proc/net/tcp, proc(5)) once the attacker is stuck:

    read by the server  = sent by the attacker - attacker's send queue - server's receive queue
    replies produced    = greeting + (whole requests read) x reply size
    queued in the app   = replies produced - server's send queue - attacker's receive queue

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
STUCK_AFTER_S = 0.3  # no progress for this long: the server stopped reading


def framed_request(framing: str) -> tuple[bytes, int]:
    """(one 4 KiB request as sent, the size of its framed reply)."""
    if framing == "length":
        text_bytes = REQUEST_BYTES - 4 - 2
        header = (text_bytes + 2).to_bytes(4, "big")
        return header + b"U:" + b"r" * text_bytes, 4 + text_bytes
    text_bytes = REQUEST_BYTES - 2 - 1
    return b"U:" + b"r" * text_bytes + b"\n", text_bytes + 1


def greeting_bytes(framing: str) -> int:
    return len(GREETING) + (4 if framing == "length" else 1)


@pytest.mark.parametrize("framing", ["line", "length"])
@pytest.mark.parametrize("model", model_params("slow_reader", stream_models()))
def test_slow_reader_is_bounded_then_disconnected(
    model: str, framing: str, launch_server: LaunchServer, start_probe: object
) -> None:
    server = launch_server(model, framing, ["--write-timeout", str(WRITE_TIMEOUT_S)])
    baseline_fds, baseline_threads = server.settled_baseline()
    probe = start_probe(server, 150, 0.02)  # type: ignore[operator]
    request, reply_bytes = framed_request(framing)
    stream = memoryview(request * REQUESTS)
    attacker = socket.create_connection(server.address, timeout=5)
    attacker.setblocking(False)
    local = attacker.getsockname()
    probe.go()
    sent = 0
    last_progress = time.monotonic()
    largest_queue = 0
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
            read_by_server = sent - attacker_side.send_queue_bytes - server_side.receive_queue_bytes
            produced = greeting_bytes(framing) + (read_by_server // len(request)) * reply_bytes
            queued = produced - server_side.send_queue_bytes - attacker_side.receive_queue_bytes
            largest_queue = max(largest_queue, queued)
            time.sleep(0.05)
    finally:
        attacker.close()
    probe_result = probe.result()
    p99 = percentile(probe_result.latencies_ms, 0.99)
    print(
        f"\n{model}-tcp-{framing} slow reader: sent {sent:,} bytes before stalling, largest "
        f"output queue {largest_queue:,} bytes, disconnected {disconnected_after_s} s after "
        f"stalling, others' p99 {p99:.1f} ms"
    )
    assert sent < len(stream), "the server kept reading a client that never reads"
    assert largest_queue <= MAX_OUTPUT_QUEUE_BYTES
    assert disconnected_after_s is not None, "the slow reader was never disconnected"
    assert disconnected_after_s <= WRITE_TIMEOUT_S + SWEEP_S + SLACK_S + STUCK_AFTER_S
    assert probe_result.failures == []
    assert p99 < 100
    assert server.error_output() == []
    assert server.wait_fds(baseline_fds, timeout_s=5) == baseline_fds
    assert server.wait_threads(baseline_threads, timeout_s=5) == baseline_threads
