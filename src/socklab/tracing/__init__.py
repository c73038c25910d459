"""Watching every socket call: trace events, and the one factory that makes traceable sockets.

Strategy: programs never call `socket.socket()` or `socket.create_connection()` themselves when
they may be traced; they ask `new_socket()` / `connect_stream()` here. Without a tracer these
return plain sockets (no cost at all); with one they return a `TracedSocket`, a subclass of
`socket.socket` that reports each call as a `TraceEvent` as it happens and then behaves exactly
like the real thing. Because it *is* a socket, it works wherever one is expected: blocking code,
selectors, and the event loops (asyncio and uvloop take it as `sock=`). Sockets that `accept()`
returns are traced too, so a traced listening socket traces every connection it hands out.

Event loops do the reading and writing themselves, out of our sight; for them
`socklab.tracing.transports` wraps the transport at the driver boundary instead.

Events carry facts only (call, fd, byte counts, the bytes, addresses); `socklab.cli.tracing`
renders them in the chosen language.
"""

from __future__ import annotations

import contextlib
import socket

from socklab.tracing.events import (
    TRACE_DATA_BYTES,
    Call,
    TraceEvent,
    Tracer,
    socket_address,
    transport_of,
)
from socklab.tracing.traced_socket import TracedSocket


def new_socket(
    family: int = socket.AF_INET, sock_type: int = socket.SOCK_STREAM, tracer: Tracer | None = None
) -> socket.socket:
    """A new socket; traced (each call reported to `tracer`) when a tracer is given."""
    if tracer is None:
        return socket.socket(family, sock_type)
    return TracedSocket(family, sock_type, tracer=tracer)


def poll_quietly(sock: socket.socket, timeout_s: float | None) -> None:
    """settimeout(timeout_s) for a wait-in-slices loop, whose timeouts a trace does not show.

    None ends the slices: the socket blocks again.
    """
    if isinstance(sock, TracedSocket):
        sock.poll_quietly(timeout_s)
    else:
        sock.settimeout(timeout_s)


def shutdown_quietly(sock: socket.socket, how: int) -> None:
    """shutdown(how) to wake the server's own thread blocked on `sock`, which a trace does not
    show (nor the end of stream it causes); a socket the peer already reset is no error."""
    with contextlib.suppress(OSError):
        if isinstance(sock, TracedSocket):
            sock.shutdown_quietly(how)
        else:
            sock.shutdown(how)


def plain_socket(sock: socket.socket) -> socket.socket:
    """The same OS socket (same fd) without tracing, for an event loop that reports by itself."""
    if not isinstance(sock, TracedSocket):
        return sock
    return socket.socket(sock.family, sock.type, sock.proto, fileno=sock.detach())


def connect_stream(
    host: str, port: int, *, timeout_s: float | None, tracer: Tracer | None = None
) -> socket.socket:
    """`socket.create_connection` through the factory: every address of `host` is tried in turn.

    OSError propagates (callers translate it at their boundary), the last attempt's error wins.
    """
    if tracer is None:
        return socket.create_connection((host, port), timeout=timeout_s)
    last_error: OSError | None = None
    for family, sock_type, _proto, _name, address in socket.getaddrinfo(
        host, port, socket.AF_UNSPEC, socket.SOCK_STREAM
    ):
        sock = new_socket(family, sock_type, tracer)
        try:
            sock.settimeout(timeout_s)
            sock.connect(address)
        except OSError as exc:
            sock.close()
            last_error = exc
            continue
        return sock
    raise last_error or OSError(f"no address found for {host}")


__all__ = [
    "TRACE_DATA_BYTES",
    "Call",
    "TraceEvent",
    "TracedSocket",
    "Tracer",
    "connect_stream",
    "new_socket",
    "plain_socket",
    "poll_quietly",
    "socket_address",
    "transport_of",
]
