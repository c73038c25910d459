"""Answering converter datagrams from a non-blocking UDP socket, for the iterative and selectors models.

UDP has no connection, so there is nothing to dispatch: a model only decides how it waits until
the socket is readable. Then `answer_pending_datagrams` reads what is queued, up to a budget (so
one flood cannot starve the rest of a loop), and answers each datagram with the core's
`handle_datagram`. A reply the socket buffer cannot take right now is dropped, as UDP may drop
it anyway: the client's retransmission (with its `#<id>`) recovers.
"""

from __future__ import annotations

import socket
from typing import Any

from socklab.protocol.converter import handle_datagram
from socklab.runtimes.handle import ServerStats

# Larger than any UDP payload (65,507 bytes over IPv4), so no datagram is silently truncated.
DATAGRAM_RECEIVE_BYTES = 65_536

# Datagrams answered per readiness event before the loop looks at its other sockets again.
DATAGRAM_BUDGET = 256


def answer_pending_datagrams(
    sock: socket.socket, stats: ServerStats, budget: int = DATAGRAM_BUDGET
) -> int:
    """Answer the datagrams queued on non-blocking `sock` (at most `budget`); how many were read."""
    for count in range(budget):
        try:
            data, address = sock.recvfrom(DATAGRAM_RECEIVE_BYTES)
        except (BlockingIOError, InterruptedError):
            return count
        except ConnectionResetError:
            # Windows reports an earlier reply's ICMP "port unreachable" here; nothing to do.
            continue
        answer_datagram(sock, data, address, stats)
    return budget


def answer_datagram(sock: socket.socket, data: bytes, address: Any, stats: ServerStats) -> None:
    stats.datagrams_received += 1
    reply = handle_datagram(data)
    if reply is None:
        stats.datagrams_dropped += 1
        return
    try:
        sock.sendto(reply, address)
    except OSError:
        # A full send buffer (EAGAIN) or an unreachable client: the reply is lost, as UDP allows.
        stats.datagrams_dropped += 1
    else:
        stats.requests_served += 1
