"""Tracing at the event-loop driver boundary: a Protocol wrapper and a Transport wrapper.

An event loop accepts, reads and writes by itself (uvloop even in C), so a traced socket object
never sees those calls. What the driver does see is the Protocol interface: `connection_made`
(accept() returned a socket), `data_received` (one recv() returned bytes), `eof_received`
(recv() returned 0 bytes), `transport.write` (bytes handed to send()), `connection_lost`
(close()). `trace_stream_protocols` wraps the server's protocol factory so each connection
reports those moments, then calls the real protocol unchanged; `trace_datagram_protocols` does
the same for UDP (`datagram_received` = one recvfrom(), `transport.sendto` = one sendto()).

The wrappers exist only when tracing is on: the runtime picks the factory once, at start, so
an untraced server pays nothing per call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from socklab.tracing.events import (
    TRACE_DATA_BYTES,
    Call,
    TraceEvent,
    Tracer,
    socket_address,
)


def _fd_of(transport: asyncio.BaseTransport) -> int:
    sock = transport.get_extra_info("socket")
    try:
        return int(sock.fileno()) if sock is not None else -1
    except (OSError, ValueError):
        return -1


class TracedTransport:
    """Delegates everything to the real transport; reports write/sendto as send calls."""

    def __init__(self, transport: Any, tracer: Tracer, fd: int, kind: str) -> None:
        self._transport = transport
        self._tracer = tracer
        self._fd = fd
        self._kind = kind

    def write(self, data: bytes) -> None:
        self._tracer(
            TraceEvent(
                Call.SEND,
                self._fd,
                self._kind,
                nbytes=len(data),
                data=bytes(data[:TRACE_DATA_BYTES]),
            )
        )
        self._transport.write(data)

    def sendto(self, data: bytes, addr: Any = None) -> None:
        self._tracer(
            TraceEvent(
                Call.SENDTO,
                self._fd,
                self._kind,
                nbytes=len(data),
                data=bytes(data[:TRACE_DATA_BYTES]),
                address=socket_address(addr),
            )
        )
        self._transport.sendto(data, addr)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class _TracedStreamProtocol(asyncio.Protocol):
    """Reports the socket calls behind each callback, then forwards it to the real protocol."""

    def __init__(self, inner: asyncio.Protocol, tracer: Tracer, listening_fd: int) -> None:
        self._inner = inner
        self._tracer = tracer
        self._listening_fd = listening_fd
        self._fd = -1
        self._receives = 0
        self._ends: tuple[tuple[str, int] | None, tuple[str, int] | None] = (None, None)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._fd = _fd_of(transport)
        peer = socket_address(transport.get_extra_info("peername"))
        self._ends = (socket_address(transport.get_extra_info("sockname")), peer)
        self._tracer(
            TraceEvent(Call.ACCEPT, self._listening_fd, "tcp", new_fd=self._fd, address=peer)
        )
        self._inner.connection_made(TracedTransport(transport, self._tracer, self._fd, "tcp"))  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        self._report_received(data)
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        self._report_received(b"")
        return self._inner.eof_received()

    def _report_received(self, data: bytes) -> None:
        self._receives += 1
        self._tracer(
            TraceEvent(
                Call.RECV,
                self._fd,
                "tcp",
                nbytes=len(data),
                data=bytes(data[:TRACE_DATA_BYTES]),
                sequence=self._receives,
                local=self._ends[0],
                peer=self._ends[1],
            )
        )

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._tracer(
            TraceEvent(Call.CLOSE, self._fd, "tcp", error=str(exc) if exc is not None else None)
        )
        self._inner.connection_lost(exc)


class _TracedDatagramProtocol(asyncio.DatagramProtocol):
    def __init__(self, inner: asyncio.DatagramProtocol, tracer: Tracer) -> None:
        self._inner = inner
        self._tracer = tracer
        self._fd = -1
        self._receives = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._fd = _fd_of(transport)
        self._inner.connection_made(TracedTransport(transport, self._tracer, self._fd, "udp"))  # type: ignore[arg-type]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self._receives += 1
        self._tracer(
            TraceEvent(
                Call.RECVFROM,
                self._fd,
                "udp",
                nbytes=len(data),
                data=bytes(data[:TRACE_DATA_BYTES]),
                address=socket_address(addr),
                sequence=self._receives,
            )
        )
        self._inner.datagram_received(data, addr)

    def error_received(self, exc: Exception) -> None:
        self._inner.error_received(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self._tracer(TraceEvent(Call.CLOSE, self._fd, "udp"))
        self._inner.connection_lost(exc)


def trace_stream_protocols(
    factory: Callable[[], asyncio.Protocol], tracer: Tracer, listening_fd: int
) -> Callable[[], asyncio.Protocol]:
    """A protocol factory whose connections report their socket calls to `tracer`."""
    return lambda: _TracedStreamProtocol(factory(), tracer, listening_fd)


def trace_datagram_protocols(
    factory: Callable[[], asyncio.DatagramProtocol], tracer: Tracer
) -> Callable[[], asyncio.DatagramProtocol]:
    return lambda: _TracedDatagramProtocol(factory(), tracer)
