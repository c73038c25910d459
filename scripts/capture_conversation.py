#!/usr/bin/env python3
"""Capture a real converter conversation into a pcapng file (the docs' ladder picture, its tests).

Starts `socklab converter server` for TCP and for UDP on a free loopback port, starts
`socklab capture -w FILE --count 16` on that port, runs
`socklab converter client U:hello L:WORLD C:` and `socklab converter client --udp U:datagram`,
and waits for the capture to end by itself after those 16 packets (TCP: 3-way handshake,
greeting, two requests and replies with their ACKs, C:, FIN exchange; UDP: request and reply).
Needs root (or CAP_NET_RAW) and Linux, as every live capture does.

Usage: capture_conversation.py FILE.pcapng    (make capture-fixture)
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

PACKETS = 16
TIMEOUT_S = 30.0


def socklab(*args: str) -> list[str]:
    return [sys.executable, "-m", "socklab", "--lang", "en", *args]


def start_and_wait(args: list[str], ready: str) -> subprocess.Popen[str]:
    """Start a socklab process and wait for its readiness line on standard output."""
    process = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    for line in process.stdout:
        if ready in line:
            return process
    raise SystemExit(f"{' '.join(args)} ended before saying {ready!r}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def main(target: Path) -> None:
    port = str(free_port())
    servers = [
        start_and_wait(socklab("converter", "server", "--port", port), "listening on"),
        start_and_wait(socklab("converter", "server", "--udp", "--port", port), "listening on"),
    ]
    try:
        capture = start_and_wait(
            socklab("capture", "--port", port, "--count", str(PACKETS), "-w", str(target)),
            "Capturing on",
        )
        for request in (["U:hello", "L:WORLD", "C:"], ["--udp", "U:datagram"]):
            subprocess.run(
                socklab("converter", "client", "--port", port, *request),
                check=True,
                timeout=TIMEOUT_S,
            )
        capture.communicate(timeout=TIMEOUT_S)
        if capture.returncode != 0:
            raise SystemExit(f"the capture exited with status {capture.returncode}")
    finally:
        for server in servers:
            server.terminate()
            server.communicate(timeout=TIMEOUT_S)
    print(f"wrote {target} ({PACKETS} packets)")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(Path(sys.argv[1]))
