"""Answering datagrams from a UDP socket: the one loop of every model that reads sockets.

UDP has no connection, so there is nothing to dispatch: a model only decides how it waits until
the socket is readable. Then `answer_pending_datagrams` reads what is queued, up to a budget (so
one flood cannot starve the rest of a loop), and answers each datagram as the core's
`answer_datagram` decides with the server's handler (`ServerConfig.datagram_handler`, the
converter's by default: the protocol's reply, or silence where a reply could start a
reflection loop). A reply the socket buffer cannot take right now is dropped, as UDP may drop
it anyway: the client's retransmission (with its `#<id>`) recovers.

The iterative and threads models call `answer_datagram` per blocking `recvfrom()`; selectors
and asyncio (its `add_reader` path) drain a non-blocking socket; asyncio's DatagramProtocol
path (traced, or a loop without `add_reader`) asks `reply_to_datagram` and sends through its
transport.
"""

from __future__ import annotations

import socket
from typing import Any

from socklab.protocol.converter import handle_datagram
from socklab.protocol.reflection import DatagramHandler, Silence
from socklab.protocol.reflection import answer_datagram as decide_answer
from socklab.runtimes.config import DatagramAnswered, DatagramUnanswered, ServerObserver
from socklab.runtimes.handle import ServerStats

# Larger than any UDP payload (65,507 bytes over IPv4), so no datagram is silently truncated.
DATAGRAM_RECEIVE_BYTES = 65_536

# Datagrams answered per readiness event before the loop looks at its other sockets again
# (timers and a stop request are not starved by a flood; uvloop and asyncio bound their own
# read loops similarly).
DATAGRAM_BUDGET = 256


def reply_to_datagram(
    data: bytes,
    address: Any,
    handle: DatagramHandler = handle_datagram,
    observer: ServerObserver | None = None,
) -> bytes | None:
    """The reply to send to `address` (a `recvfrom()` address), or None: stay silent.

    An `observer` (the server's -v) hears of every datagram: of each reply, and of every
    silence and why: a student whose `u:hello` gets nothing can read on the server that its
    error reply was longer than the request.
    """
    reply = decide_answer(data, address[1], handle)
    if observer is not None:
        peer = (str(address[0]), int(address[1]))
        if isinstance(reply, Silence):
            observer(DatagramUnanswered(peer, data, reply))
        else:
            observer(DatagramAnswered(peer, data, reply))
    return reply if reply.__class__ is bytes else None


def answer_pending_datagrams(
    sock: socket.socket,
    stats: ServerStats,
    handle: DatagramHandler = handle_datagram,
    budget: int = DATAGRAM_BUDGET,
    observer: ServerObserver | None = None,
) -> int:
    """Answer the datagrams queued on non-blocking `sock` (at most `budget`); how many were read."""
    recvfrom = sock.recvfrom
    sendto = sock.sendto
    received = served = 0
    try:
        for _ in range(budget):
            try:
                data, address = recvfrom(DATAGRAM_RECEIVE_BYTES)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                # An ICMP error queued on the socket (port unreachable from a client that went
                # away; Windows reports it as a reset) comes with the next recvfrom: nothing to do.
                continue
            received += 1
            reply = reply_to_datagram(data, address, handle, observer)
            if reply is None:
                continue
            try:
                sendto(reply, address)
            except OSError:
                # A full send buffer (EAGAIN) or a refused destination: UDP gives no delivery
                # promise, so the reply is dropped rather than queued without bound.
                continue
            served += 1
    finally:
        # Counted once per batch, not per datagram: this loop is every UDP benchmark's hot path.
        stats.requests_served += served
    return received


def answer_datagram(
    sock: socket.socket,
    data: bytes,
    address: Any,
    stats: ServerStats,
    handle: DatagramHandler = handle_datagram,
    observer: ServerObserver | None = None,
) -> None:
    """Answer one datagram read by a blocking `recvfrom()`."""
    reply = reply_to_datagram(data, address, handle, observer)
    if reply is None:
        return
    try:
        sock.sendto(reply, address)
    except OSError:
        # A full send buffer (EAGAIN) or an unreachable client: the reply is lost, as UDP allows.
        return
    stats.requests_served += 1
