"""Capture load yardstick (not a test): a paced stream of UDP datagrams on loopback.

Usage: .venv/bin/python -m tests.tools.bench_capture_load RATE SECONDS PORT
Offers RATE datagrams/s (51-byte payloads) for SECONDS to a socket it binds on
127.0.0.1:PORT and never reads, so the only consumer is a capture on `lo`, and prints the rate
it really offered. Pacing: every half millisecond it sends what is due by the clock, so the
rate stays steady instead of bursting. Run `socklab capture` alongside (docs/TOOLS.md).
"""

from __future__ import annotations

import socket
import sys
import time

PAYLOAD = b"U:hello world, paced capture load 0123456789abcdef\n"
TICK_S = 0.0005


def offer(rate: float, duration_s: float, port: int) -> tuple[int, float]:
    """(datagrams sent, seconds taken)."""
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender,
    ):
        sink.bind(("127.0.0.1", port))
        sender.connect(("127.0.0.1", port))
        send = sender.send
        sent = 0
        start = time.perf_counter()
        end = start + duration_s
        while (now := time.perf_counter()) < end:
            due = int((now - start) * rate)
            while sent < due:
                send(PAYLOAD)
                sent += 1
            time.sleep(TICK_S)
        return sent, time.perf_counter() - start


def main(rate: str, duration_s: str, port: str) -> None:
    sent, elapsed = offer(float(rate), float(duration_s), int(port))
    print(f"offered {sent} datagrams in {elapsed:.2f} s = {sent / elapsed:.0f} pps")


if __name__ == "__main__":
    main(*sys.argv[1:4])
