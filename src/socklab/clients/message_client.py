"""`socklab.connect`: a blocking client for any message protocol, over TCP or UDP.

The counterpart of `socklab.serve`: `send(message)` frames one message, `receive()` returns the
next whole message, however TCP cut the stream, using the same framer as the server (for `raw`,
the naive reader that takes each recv() as one message); over UDP one datagram is one message.
Every wait is bounded by the timeout, and `OSError` becomes a socklab error here, at the
boundary, with its cause chained: `RefusedError` when nothing listens, `NetworkTimeoutError`
when no message came in time, `BrokenResourceError` when the server closed the connection.
"""

from __future__ import annotations

import collections
import socket
from abc import ABC, abstractmethod
from collections.abc import Callable
from types import TracebackType

from socklab.errors import BrokenResourceError, RemoteProtocolError, UsageError
from socklab.i18n import _, format_count, format_number
from socklab.protocol.framing import FRAMINGS, FrameTooLong, TruncatedFrame, framing_info
from socklab.protocol.framing.base import Framer
from socklab.protocol.limits import DEFAULT_MAX_MESSAGE_BYTES, MAX_UDP_PAYLOAD_BYTES
from socklab.runtimes.oserrors import translated_oserrors
from socklab.tracing import connect_stream

RECEIVE_BYTES = 65_536


class Client(ABC):
    """A blocking connection to a message server, made by `socklab.connect`.

    Call order: any number of `send()`, `receive()` and `request()`, then `close()` (or leave
    the `with` block). Each blocking call waits at most the timeout given to `connect`.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        # OSError becomes the socklab error that explains it, around every socket call.
        self._oserrors = translated_oserrors(host=host, port=port)

    @abstractmethod
    def send(self, message: bytes) -> None:
        """Send `message` as one message (framed over TCP, one datagram over UDP)."""

    @abstractmethod
    def receive(self) -> bytes:
        """The next whole message from the server, waiting at most the timeout."""

    def request(self, message: bytes) -> bytes:
        """Send `message` and return the next message received: its reply."""
        self.send(message)
        return self.receive()

    @abstractmethod
    def close(self) -> None:
        """Close the connection; using the client afterwards raises `ClosedResourceError`."""

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class StreamClient(Client):
    """One TCP connection: messages framed with `framing`, replies decoded the same way.

    Messages from the server longer than 64 KiB (the servers' default limit) are refused with
    `RemoteProtocolError`, as a server refuses them from a client.
    """

    def __init__(self, host: str, port: int, *, framing: str, timeout_s: float | None) -> None:
        super().__init__(host, port)
        # The registry knows how a client reads each framing (raw: every recv() is one reply).
        self._framer: Framer = framing_info(framing).reply_framer(DEFAULT_MAX_MESSAGE_BYTES)
        self._check_message: Callable[[bytes], None] | None = getattr(
            self._framer, "check_message", None
        )
        self._messages: collections.deque[bytes] = collections.deque()
        self._eof = False
        with self._oserrors:
            self._sock = connect_stream(host, port, timeout_s=timeout_s)

    def send(self, message: bytes) -> None:
        """Send `message` framed as one message; UsageError if the framing cannot carry it."""
        if self._check_message is not None:
            try:
                self._check_message(message)
            except ValueError as exc:
                # The framing's words (an i18n.Deferred): English for a library caller's str(),
                # translated by the CLI when it shows the error.
                raise UsageError(exc.args[0] if exc.args else str(exc)) from exc
        with self._oserrors:
            self._sock.sendall(self._framer.encode(message))

    def receive(self) -> bytes:
        """The next whole message; BrokenResourceError once the server has closed."""
        while not self._messages:
            if self._eof:
                raise BrokenResourceError(
                    "the server closed the connection", host=self.host, port=self.port
                )
            with self._oserrors:
                data = self._sock.recv(RECEIVE_BYTES)
            if data:
                events = self._framer.receive_data(data)
            else:
                self._eof = True
                events = self._framer.receive_eof()
            for event in events:
                if isinstance(event, FrameTooLong | TruncatedFrame):
                    raise RemoteProtocolError(event.describe())
                self._messages.append(event)
        return self._messages.popleft()

    def close(self) -> None:
        """Close the connection (harmless when already closed)."""
        self._sock.close()


class DatagramClient(Client):
    """UDP: each message is one datagram to the server, each datagram received one message.

    UDP may lose a datagram: `receive()` then raises `NetworkTimeoutError` after the timeout,
    and retrying is the caller's choice. A server stays silent where a reply could start a loop
    (an empty datagram, a reply equal to its request), so those also end in the timeout.
    """

    def __init__(self, host: str, port: int, *, timeout_s: float | None) -> None:
        super().__init__(host, port)
        with self._oserrors:
            infos = socket.getaddrinfo(host, port, socket.AF_UNSPEC, socket.SOCK_DGRAM)
            family, _type, _proto, _name, address = infos[0]
            self._sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                # connect() keeps datagrams from anyone but the server out, and turns ICMP
                # "port unreachable" into ConnectionRefusedError on the next recv().
                self._sock.connect(address)
                self._sock.settimeout(timeout_s)
            except BaseException:
                self._sock.close()
                raise

    def send(self, message: bytes) -> None:
        """Send `message` as one datagram; UsageError if it does not fit in one."""
        if len(message) > MAX_UDP_PAYLOAD_BYTES:
            raise UsageError(
                _(
                    "a message of {size} does not fit in one UDP datagram ({limit} bytes at most)"
                ).format(
                    size=format_count("{count} byte", "{count} bytes", len(message)),
                    limit=format_number(MAX_UDP_PAYLOAD_BYTES),
                )
            )
        with self._oserrors:
            self._sock.send(message)

    def receive(self) -> bytes:
        """The next datagram from the server; NetworkTimeoutError if none came in time."""
        with self._oserrors:
            return self._sock.recv(MAX_UDP_PAYLOAD_BYTES + 1)

    def close(self) -> None:
        """Close the socket (harmless when already closed)."""
        self._sock.close()


def connect(
    host: str,
    port: int,
    *,
    transport: str = "tcp",
    framing: str = "line",
    timeout: float = 5.0,
) -> Client:
    """Connect to a message server at `host`:`port`; the client is a context manager.

    `transport` is "tcp" or "udp"; over TCP `framing` must be the server's ("line", "length"
    or "raw"), over UDP it does not apply. `timeout` (seconds) bounds the connect and every
    later wait. A server's greeting, if it sends one, is the first message `receive()` returns.
    Raises `RefusedError` when nothing listens, `HostNotFoundError`, `NetworkTimeoutError` and
    the other `NetworkError`s, and `UsageError` for an unknown transport or framing.
    """
    if framing not in FRAMINGS:
        raise UsageError(f"unknown framing {framing!r}; choose one of {', '.join(FRAMINGS)}")
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise UsageError(f"timeout must be a positive number of seconds, not {timeout!r}")
    if transport == "tcp":
        return StreamClient(host, port, framing=framing, timeout_s=timeout)
    if transport == "udp":
        return DatagramClient(host, port, timeout_s=timeout)
    raise UsageError(f"unknown transport {transport!r}; choose tcp or udp")


__all__ = ["Client", "connect"]
