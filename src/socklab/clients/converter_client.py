"""Blocking converter clients: TCP with any framing, and UDP datagrams.

The TCP client decodes the server's messages with the same framer the server uses (for `raw`,
the naive reader that takes each recv() as one reply), so client and server agree by
construction. OSError is translated to socklab errors around every socket call, at the boundary.

The UDP client speaks the slides' plain datagrams (`request`), or, for a network that loses,
duplicates or reorders datagrams, request ids with retransmission (`exchange_reliably`): the
retry and matching decisions live in `protocol.retransmission`; this loop only sends what it is
told, waits on the socket until the next deadline, and feeds back what arrives.
"""

from __future__ import annotations

import collections
import socket
import time
from collections.abc import Iterable, Iterator
from types import TracebackType

from socklab.errors import (
    BrokenResourceError,
    NetworkTimeoutError,
    RemoteProtocolError,
    ReplyTimeoutError,
    UsageError,
)
from socklab.i18n import _, format_count, format_number
from socklab.protocol.converter import MAX_REQUEST_ID_DIGITS, build_datagram
from socklab.protocol.escaping import escape_for_terminal
from socklab.protocol.framing import FrameTooLong, TruncatedFrame, framing_info
from socklab.protocol.framing.base import Framer
from socklab.protocol.limits import DEFAULT_MAX_MESSAGE_BYTES, MAX_UDP_PAYLOAD_BYTES
from socklab.protocol.retransmission import (
    DEFAULT_WINDOW,
    RequestResult,
    RetransmissionStats,
    RetransmittingRequester,
)
from socklab.runtimes.oserrors import translated_oserrors
from socklab.tracing import Tracer, connect_stream, new_socket, poll_quietly

RECEIVE_BYTES = 65536


def _reply_framer(framing: str, max_message_bytes: int) -> Framer:
    return framing_info(framing).reply_framer(max_message_bytes)


class StreamConverterClient:
    """One TCP connection to a converter server. Use as a context manager."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        framing: str = "line",
        timeout_s: float = 5.0,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        tracer: Tracer | None = None,
    ) -> None:
        self.host, self.port = host, port
        # One translator for every call: it keeps no state between uses, and making one per
        # send and receive would cost more than the `with` itself.
        self._oserrors = translated_oserrors(host=host, port=port)
        self.framing = framing
        self.timeout_s = timeout_s
        self._framer = _reply_framer(framing, max_message_bytes)
        self._messages: collections.deque[bytes] = collections.deque()
        self._eof = False
        self._greeted = False
        with translated_oserrors(host=host, port=port):
            self._sock = connect_stream(host, port, timeout_s=timeout_s, tracer=tracer)
        try:
            self.greeting = self.receive_message()
        except BaseException:
            self._sock.close()
            raise
        self._greeted = True

    @property
    def local_address(self) -> tuple[str, int]:
        name = self._sock.getsockname()
        return str(name[0]), int(name[1])

    def send_message(self, message: bytes) -> None:
        self.send_bytes(self._framer.encode(message))

    def send_bytes(self, data: bytes) -> None:
        with self._oserrors:
            self._sock.sendall(data)

    def request(self, message: bytes) -> bytes | None:
        """Send one request, return its reply; None when the server closed instead (after C:)."""
        self.send_message(message)
        return self.maybe_receive_message()

    def receive_message(self) -> bytes:
        """The next whole message from the server (blocking up to the timeout)."""
        message = self.maybe_receive_message()
        if message is None:
            raise BrokenResourceError(
                "the server closed the connection", host=self.host, port=self.port
            )
        return message

    def maybe_receive_message(self) -> bytes | None:
        """The next whole message, or None once the server has closed the connection."""
        while not self._messages:
            if self._eof:
                return None
            try:
                with self._oserrors:
                    data = self._sock.recv(RECEIVE_BYTES)
            except NetworkTimeoutError as exc:
                raise self._timed_out() from exc
            events = self._framer.receive_data(data) if data else self._framer.receive_eof()
            if not data:
                self._eof = True
            for event in events:
                if isinstance(event, FrameTooLong) and event.header_looks_like_text:
                    raise RemoteProtocolError(
                        _(
                            "the length header {header} announces a message of {size} bytes, but it looks like text: is the server using --framing line or raw?"
                        ).format(
                            header=escape_for_terminal(event.header, quoted=True),
                            size=format_number(event.size),
                        )
                    )
                if isinstance(event, FrameTooLong | TruncatedFrame):
                    raise RemoteProtocolError(event.describe())
                self._messages.append(event)
        return self._messages.popleft()

    def _timed_out(self) -> ReplyTimeoutError:
        """What the timeout of a read found: bytes of a message the framing could not end, or
        none at all (before the greeting: a server busy with another client)."""
        partial = self._framer.buffered_bytes
        return ReplyTimeoutError(
            f"no whole message within {self.timeout_s:g} s ({partial:,} bytes of one)",
            host=self.host,
            port=self.port,
            timeout_s=self.timeout_s,
            framing=self.framing,
            partial_bytes=partial,
            awaiting_greeting=not self._greeted,
        )

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> StreamConverterClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class DatagramConverterClient:
    """Converter requests as UDP datagrams: one datagram out, one back, within the timeout."""

    def __init__(
        self, host: str, port: int, *, timeout_s: float = 5.0, tracer: Tracer | None = None
    ) -> None:
        self.host, self.port = host, port
        self._oserrors = translated_oserrors(host=host, port=port)  # one for every call
        self.timeout_s = timeout_s
        self.stats: RetransmissionStats | None = None  # set by exchange_reliably
        with translated_oserrors(host=host, port=port):
            infos = socket.getaddrinfo(host, port, socket.AF_UNSPEC, socket.SOCK_DGRAM)
            family, _type, _proto, _name, address = infos[0]
            self._sock = new_socket(family, socket.SOCK_DGRAM, tracer)
            # connect() filters replies to this server and surfaces ICMP "port unreachable"
            # as ConnectionRefusedError on the next recv, instead of a silent timeout.
            self._sock.connect(address)
        self._sock.settimeout(timeout_s)

    @property
    def local_port(self) -> int:
        return int(self._sock.getsockname()[1])

    def send_datagram(self, message: bytes, request_id: int | None = None) -> None:
        datagram = build_datagram(message, request_id)
        if len(datagram) > MAX_UDP_PAYLOAD_BYTES:
            # send() would fail with EMSGSIZE ("Message too long"), which names no number.
            raise UsageError(
                _(
                    "a request of {size} bytes does not fit: a UDP datagram holds at most {limit} bytes"
                ).format(
                    size=format_number(len(datagram)), limit=format_number(MAX_UDP_PAYLOAD_BYTES)
                )
            )
        with self._oserrors:
            self._sock.send(datagram)

    def receive_datagram(self) -> bytes:
        with self._oserrors:
            return self._sock.recv(MAX_UDP_PAYLOAD_BYTES + 1)

    def request(self, message: bytes) -> bytes:
        self.send_datagram(message)
        return self.receive_datagram()

    def exchange_reliably(
        self,
        requests: Iterable[bytes],
        *,
        retries: int,
        window: int = DEFAULT_WINDOW,
        attempt_timeout_s: float | None = None,
    ) -> Iterator[RequestResult]:
        """Each request's result, in order and once, with ids and retransmission.

        Up to `window` requests are in flight at once; use window=1 when the requests come from
        a person typing, so each answer is shown before the next line is read. Without
        `attempt_timeout_s` the retransmission timer adapts to the round trip (RFC 6298) and a
        request is given up after `timeout_s`; with it, each send waits that long and a request
        is given up when its `retries` retransmissions have waited too.
        """
        requester = RetransmittingRequester(
            timeout_s=self.timeout_s,
            retries=retries,
            window=window,
            attempt_timeout_s=attempt_timeout_s,
        )
        self.stats = requester.stats
        pending = iter(requests)
        exhausted = False
        while True:
            yield from requester.take_results()
            while not exhausted and requester.has_room:
                message = next(pending, None)
                if message is None:
                    exhausted = True
                else:
                    _check_fits_datagram(message)
                    requester.submit(message)
            if exhausted and requester.is_idle:
                return
            for datagram in requester.datagrams_to_send(time.monotonic()):
                self._send_raw(datagram)
            deadline = requester.next_deadline()
            if deadline is None or requester.has_results:
                continue
            self._receive_until(requester, deadline)

    def _send_raw(self, datagram: bytes) -> None:
        with self._oserrors:
            self._sock.send(datagram)

    def _receive_until(self, requester: RetransmittingRequester, deadline: float) -> None:
        """Wait for replies until `deadline` (monotonic), feeding each to the requester."""
        wait_s = max(0.0, deadline - time.monotonic())
        try:
            with self._oserrors:
                # Waits until the next retransmission are ours, not the program's: a trace
                # (--trace) shows the sends and receives, not every timer.
                poll_quietly(self._sock, wait_s)
                try:
                    data = self._sock.recv(MAX_UDP_PAYLOAD_BYTES + 1)
                except (TimeoutError, BlockingIOError):  # a zero wait makes it non-blocking
                    return
                requester.receive_datagram(data, time.monotonic())
                # Take whatever else has arrived already without waiting again.
                self._sock.setblocking(False)
                while True:
                    try:
                        data = self._sock.recv(MAX_UDP_PAYLOAD_BYTES + 1)
                    except BlockingIOError:
                        return
                    requester.receive_datagram(data, time.monotonic())
        finally:
            poll_quietly(self._sock, self.timeout_s)

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> DatagramConverterClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _check_fits_datagram(message: bytes) -> None:
    # The id prefix (`#`, up to 20 digits, a space) must fit beside the request.
    longest = len(message) + MAX_REQUEST_ID_DIGITS + 2
    if longest > MAX_UDP_PAYLOAD_BYTES:
        raise UsageError(
            _(
                "a request of {size} does not fit in one UDP datagram with its id (at most {limit} bytes)"
            ).format(
                size=format_count("{count} byte", "{count} bytes", len(message)),
                limit=format_number(MAX_UDP_PAYLOAD_BYTES - MAX_REQUEST_ID_DIGITS - 2),
            )
        )
