"""`TracedSocket`: a real `socket.socket` that reports each call to a tracer as it happens.

It is a subclass, not a wrapper object, so `isinstance(sock, socket.socket)` holds and event
loops, selectors and `with` blocks take it unchanged. Each overridden method calls the real one
first and reports afterwards, with the result (byte count, new peer) or the failure, then
returns or re-raises exactly what the real call did.

Not reported, on purpose: calls that would block on a non-blocking socket (`BlockingIOError` is
"nothing yet", not a call that did something), and `accept()` timing out inside an accept loop
that polls so Ctrl+C works (the program's own machinery, not the lesson). A `recv()` timing out
*is* reported: that is the lecture's `socket.timeout`.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any

from socklab.tracing.events import (
    TRACE_DATA_BYTES,
    Call,
    TraceEvent,
    Tracer,
    socket_address,
    transport_of,
)

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer as Buffer


class TracedSocket(socket.socket):
    __slots__ = ("_polling", "_receive_count", "_tracer", "_woken")

    def __init__(
        self,
        family: int = -1,
        type: int = -1,  # the socket module's own parameter name
        proto: int = -1,
        fileno: int | None = None,
        *,
        tracer: Tracer,
    ) -> None:
        super().__init__(family, type, proto, fileno)
        self._tracer = tracer
        self._receive_count = 0
        self._polling = False
        self._woken = False
        if fileno is None:
            self._report(Call.SOCKET, ipv6=self.family == socket.AF_INET6)

    # -- reporting ---------------------------------------------------------------------------

    def _report(self, call: Call, fd: int | None = None, **facts: Any) -> None:
        self._tracer(
            TraceEvent(
                call=call,
                fd=self.fileno() if fd is None else fd,
                transport=transport_of(self.type),
                **facts,
            )
        )

    def poll_quietly(self, timeout_s: float | None) -> None:
        """Wait in slices of `timeout_s` without reporting the setting or the slices' timeouts.

        A server that waits in short slices so it can notice a stop request (or Ctrl+C on
        Windows) times out every slice; those are its own machinery, not calls a student made.
        """
        self._polling = True
        super().settimeout(timeout_s)

    def shutdown_quietly(self, how: int) -> None:
        """shutdown() by the server to wake its own thread blocked on this socket (a deadline
        passed, the server stops): neither it nor the end of stream it causes is reported, as
        that recv() = 0 would read as the peer closing."""
        self._woken = True
        super().shutdown(how)

    def _report_failure(self, call: Call, exc: OSError, **facts: Any) -> None:
        if isinstance(exc, BlockingIOError):
            return
        if isinstance(exc, TimeoutError):
            if self._polling:
                return
            self._report(call, timed_out=True, argument=facts.pop("argument", None), **facts)
        else:
            self._report(call, error=str(exc) or type(exc).__name__, **facts)

    def _report_received(
        self,
        call: Call,
        data: bytes,
        bufsize: int,
        address: object = None,
        *,
        nbytes: int | None = None,
    ) -> None:
        """`data` as received (or its first bytes, when `nbytes` gives the whole count)."""
        count = len(data) if nbytes is None else nbytes
        if not count and self._woken:
            return
        self._receive_count += 1
        self._report(
            call,
            nbytes=count,
            data=data[:TRACE_DATA_BYTES],
            argument=bufsize,
            address=socket_address(address),
            sequence=self._receive_count,
            **self._ends(),
        )

    def _ends(self) -> dict[str, Any]:
        """A TCP socket's `local` and `peer` address (for a live view); none for UDP or when gone."""
        if transport_of(self.type) != "tcp":
            return {}
        try:
            return {
                "local": socket_address(self.getsockname()),
                "peer": socket_address(self.getpeername()),
            }
        except OSError:  # closed or reset meanwhile: the event still counts, unkeyed
            return {}

    # -- setting up --------------------------------------------------------------------------

    def bind(self, address: Any, /) -> None:
        try:
            super().bind(address)
        except OSError as exc:
            self._report_failure(Call.BIND, exc, address=socket_address(address))
            raise
        self._report(Call.BIND, address=socket_address(self.getsockname()))

    def listen(self, backlog: int = socket.SOMAXCONN, /) -> None:
        super().listen(backlog)
        self._report(Call.LISTEN, argument=backlog)

    def _accepted_socket(self, fd: int) -> TracedSocket:
        """The traced socket for a descriptor accept() returned (a subclass may make its own)."""
        return TracedSocket(self.family, self.type, self.proto, fileno=fd, tracer=self._tracer)

    def accept(self) -> tuple[socket.socket, Any]:
        try:
            fd, address = self._accept()  # type: ignore[attr-defined]
        except OSError as exc:
            self._report_failure(Call.ACCEPT, exc)
            raise
        connection = self._accepted_socket(fd)
        # As socket.accept(): a listening socket with a timeout hands out blocking sockets.
        if socket.getdefaulttimeout() is None and self.gettimeout():
            connection.setblocking(True)
        self._report(Call.ACCEPT, new_fd=fd, address=socket_address(address))
        return connection, address

    def connect(self, address: Any, /) -> None:
        try:
            super().connect(address)
        except OSError as exc:
            self._report_failure(Call.CONNECT, exc, address=socket_address(address))
            raise
        self._report(Call.CONNECT, address=socket_address(address))

    def settimeout(self, value: float | None, /) -> None:
        super().settimeout(value)
        self._report(Call.SETTIMEOUT, argument=value)

    # -- sending -----------------------------------------------------------------------------

    def send(self, data: Buffer, flags: int = 0, /) -> int:
        try:
            sent = super().send(data, flags)
        except OSError as exc:
            self._report_failure(Call.SEND, exc)
            raise
        self._report(Call.SEND, nbytes=sent, data=bytes(data)[: min(sent, TRACE_DATA_BYTES)])
        return sent

    def sendall(self, data: Buffer, flags: int = 0, /) -> None:
        try:
            super().sendall(data, flags)
        except OSError as exc:
            self._report_failure(Call.SENDALL, exc)
            raise
        whole = bytes(data)
        self._report(Call.SENDALL, nbytes=len(whole), data=whole[:TRACE_DATA_BYTES])

    def sendto(self, data: Buffer, flags_or_address: Any, address: Any = None, /) -> int:
        destination = flags_or_address if address is None else address
        try:
            if address is None:
                sent = super().sendto(data, flags_or_address)
            else:
                sent = super().sendto(data, flags_or_address, address)
        except OSError as exc:
            self._report_failure(Call.SENDTO, exc, address=socket_address(destination))
            raise
        self._report(
            Call.SENDTO,
            nbytes=sent,
            data=bytes(data)[:TRACE_DATA_BYTES],
            address=socket_address(destination),
        )
        return sent

    def sendmsg(
        self,
        buffers: Any,
        ancdata: Any = (),
        flags: int = 0,
        address: Any = None,
        /,
    ) -> int:
        # asyncio's transports write with sendmsg() where the platform has it (Python 3.12+).
        pieces = [bytes(buffer) for buffer in buffers]
        try:
            if address is None:
                sent = super().sendmsg(pieces, ancdata, flags)
            else:
                sent = super().sendmsg(pieces, ancdata, flags, address)
        except OSError as exc:
            self._report_failure(Call.SENDMSG, exc, address=socket_address(address))
            raise
        whole = b"".join(pieces)
        self._report(
            Call.SENDMSG,
            nbytes=sent,
            data=whole[: min(sent, TRACE_DATA_BYTES)],
            address=socket_address(address),
        )
        return sent

    # -- receiving ---------------------------------------------------------------------------

    def recv(self, bufsize: int, flags: int = 0, /) -> bytes:
        try:
            data = super().recv(bufsize, flags)
        except OSError as exc:
            self._report_failure(Call.RECV, exc, argument=bufsize)
            raise
        self._report_received(Call.RECV, data, bufsize)
        return data

    def recvfrom(self, bufsize: int, flags: int = 0, /) -> tuple[bytes, Any]:
        try:
            data, address = super().recvfrom(bufsize, flags)
        except OSError as exc:
            self._report_failure(Call.RECVFROM, exc, argument=bufsize)
            raise
        self._report_received(Call.RECVFROM, data, bufsize, address)
        return data, address

    def recvmsg(
        self, bufsize: int, ancbufsize: int = 0, flags: int = 0, /
    ) -> tuple[bytes, list[tuple[int, int, bytes]], int, Any]:
        try:
            data, ancillary, msg_flags, address = super().recvmsg(bufsize, ancbufsize, flags)
        except OSError as exc:
            self._report_failure(Call.RECVMSG, exc, argument=bufsize)
            raise
        self._report_received(Call.RECVMSG, data, bufsize, address)
        return data, ancillary, msg_flags, address

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0, /) -> int:
        # What makefile()'s readline() and buffered readers call underneath.
        view = memoryview(buffer).cast("B")
        bufsize = nbytes or view.nbytes
        try:
            count = super().recv_into(buffer, nbytes, flags)
        except OSError as exc:
            self._report_failure(Call.RECV_INTO, exc, argument=bufsize)
            raise
        shown = bytes(view[: min(count, TRACE_DATA_BYTES)])
        self._report_received(Call.RECV_INTO, shown, bufsize, nbytes=count)
        return count

    # -- ending ------------------------------------------------------------------------------

    def shutdown(self, how: int, /) -> None:
        super().shutdown(how)
        self._report(Call.SHUTDOWN, argument=how)

    def close(self) -> None:
        if self._closed:  # type: ignore[attr-defined]
            return
        fd = self.fileno()
        listening, connected = self._connection_state() if fd >= 0 else (False, False)
        super().close()
        if fd >= 0:
            self._report(Call.CLOSE, fd=fd, listening=listening, connected=connected)

    def _connection_state(self) -> tuple[bool, bool]:
        """(listening, connected), asked of the kernel just before close(): what close() does
        on the wire depends on it (FIN to a peer, or nothing: a listening socket has no peer)."""
        if transport_of(self.type) != "tcp":
            return False, False
        try:
            # SO_ACCEPTCONN (socket(7)): 1 once listen() was called. Absent on some platforms.
            listening = bool(self.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN))
        except (OSError, AttributeError):
            listening = False
        if listening:
            return True, False
        try:
            self.getpeername()
        except OSError:  # ENOTCONN: never connected, or the connection was reset
            return False, False
        return False, True
