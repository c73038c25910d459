"""Trace events for `socklab live`: each TCP receive call as one JSON datagram on loopback.

Strategy: a traced program (`--trace`) started with `SOCKLAB_LIVE=127.0.0.1:PORT` in its
environment (the address `socklab live` prints) also sends each TCP receive call to the live
view, so the page can draw the program's recv() boundaries beside the captured segments. One
datagram per call, fire and forget: a UDP send never blocks the traced program and never fails
it (a full buffer or no live view listening loses the record, nothing else). Only the facts the
page needs travel: the connection's two ends, the byte count and where the call ends in the
stream (`end`, bytes received on this socket so far), the call's number, the process id; no
payload bytes (the capture shows those).

Loopback only: the records say what a program received, and the address comes from the
environment, which may be a stranger's suggestion; anything else is refused where it is read.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from typing import Final

from socklab.protocol.endpoints import format_endpoint, parse_endpoint
from socklab.tracing.events import Call, TraceEvent

ENVIRONMENT_VARIABLE: Final = "SOCKLAB_LIVE"
RECORD_VERSION: Final = 1
MAX_RECORD_BYTES: Final = 1024  # a record is ~200 bytes; the live view refuses larger ones
MAX_COUNTED_CONNECTIONS: Final = 10_000  # connections whose byte count is kept (oldest go)
_RECEIVES: Final = frozenset({Call.RECV, Call.RECV_INTO, Call.RECVFROM, Call.RECVMSG, Call.READ})


def loopback_address(text: str) -> tuple[str, int] | None:
    """`HOST:PORT` with a loopback IP literal (never a name to resolve); None otherwise."""
    address = parse_endpoint(text.strip())
    if address is None:
        return None
    # Imported here: every server loads this module with --trace's option, and ipaddress stays
    # out of a server that never sees SOCKLAB_LIVE (tests/cli/test_server_imports.py).
    import ipaddress

    try:
        loopback = ipaddress.ip_address(address[0]).is_loopback
    except ValueError:
        return None
    return address if loopback else None


class LiveSink:
    """Sends TCP receive events to a live view. Call order: LiveSink(address) -> send(event)*."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.address = address
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        self._sock.setblocking(False)
        self._pid = os.getpid()
        # bytes received so far per connection (local, peer): where each call ends in the stream
        self._received: dict[tuple[tuple[str, int], tuple[str, int]], int] = {}

    def send(self, event: TraceEvent) -> None:
        if event.call not in _RECEIVES or event.transport != "tcp" or event.nbytes is None:
            return
        if event.local is None or event.peer is None:
            return
        key = (event.local, event.peer)
        end = (0 if event.sequence == 1 else self._received.get(key, 0)) + event.nbytes
        self._received.pop(key, None)
        self._received[key] = end  # newest last: the oldest go first when there are too many
        if len(self._received) > MAX_COUNTED_CONNECTIONS:
            del self._received[next(iter(self._received))]
        if event.nbytes == 0:  # the end of the stream: the connection's count is done
            del self._received[key]
        record = {
            "v": RECORD_VERSION,
            "call": event.call.value,
            "local": format_endpoint(*event.local),
            "peer": format_endpoint(*event.peer),
            "nbytes": event.nbytes,
            "end": end,
            "seq": event.sequence,
            "pid": self._pid,
        }
        # no live view listening, or its buffer is full: the record is lost, the program runs on
        with contextlib.suppress(OSError):
            self._sock.sendto(json.dumps(record).encode(), self.address)

    def close(self) -> None:
        self._sock.close()


__all__ = ["ENVIRONMENT_VARIABLE", "MAX_RECORD_BYTES", "LiveSink", "loopback_address"]
