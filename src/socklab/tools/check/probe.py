"""The checker's side of the wire: connections and datagrams that never block past a deadline.

A probe belongs to one check and shares that check's deadline: every connect, send and receive
waits at most for the time left, so a server that hangs costs one `--timeout` per check and
never hangs the checker. What the server did is returned as data (`Received`: the bytes and how
the wait ended), because a server that closes, resets or stays silent is a finding, not an
error of ours. OSError is translated into socklab errors here, at the boundary; a check that
meets one (refused, reset while sending) reports it as its deviation.

Sends use TCP_NODELAY and a short pause between the pieces of one request, so the pieces
leave as separate segments and a server really sees a request split over several reads.
"""

from __future__ import annotations

import enum
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

from socklab.errors import NetworkTimeoutError
from socklab.i18n import _, format_number
from socklab.runtimes.oserrors import translate_oserror, translated_oserrors
from socklab.tools.check.results import show_bytes

RECEIVE_BYTES = 65536
# A server that floods us is a finding; 1 MiB is 16 times the largest message we send.
MAX_RECEIVED_BYTES = 1024 * 1024
# Long enough for the kernel to push a segment and the server to read it, so the next piece
# arrives in a later read on loopback; not a readiness wait, the split itself is the test.
PAUSE_BETWEEN_PIECES_S = 0.05
# How long a closing probe reads what the server still sends after our FIN.
CLOSE_DRAIN_S = 0.25


class Ending(enum.Enum):
    COMPLETE = "complete"  # what the check waited for arrived
    CLOSED = "closed"  # the server closed the connection (end of stream)
    TIMEOUT = "timeout"  # the deadline passed first
    RESET = "reset"  # the connection was reset (RST) or refused
    FLOOD = "flood"  # more than MAX_RECEIVED_BYTES came without what the check waited for


@dataclass(frozen=True, slots=True)
class Received:
    data: bytes
    ending: Ending
    timeout_s: float

    def describe(self) -> str:
        """What came, readably: the bytes and how the wait ended."""
        match self.ending:
            case Ending.COMPLETE:
                return show_bytes(self.data)
            case Ending.CLOSED:
                if not self.data:
                    return _("the connection was closed without a reply")
                return _("{data}, then the connection was closed").format(
                    data=show_bytes(self.data)
                )
            case Ending.TIMEOUT:
                if not self.data:
                    return _("nothing within {seconds} s").format(
                        seconds=format_number(self.timeout_s, decimals=None)
                    )
                return _("{data}, then nothing more within {seconds} s").format(
                    data=show_bytes(self.data), seconds=format_number(self.timeout_s, decimals=None)
                )
            case Ending.FLOOD:
                return _("{data}, and more: over {size} bytes in all").format(
                    data=show_bytes(self.data), size=format_number(MAX_RECEIVED_BYTES)
                )
            case Ending.RESET:
                if not self.data:
                    return _("the connection was reset")
                return _("{data}, then the connection was reset").format(data=show_bytes(self.data))


class Deadline:
    """The time left for one check, shared by everything the check does."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._end = time.monotonic() + timeout_s

    def remaining(self) -> float:
        return max(0.0, self._end - time.monotonic())

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0.0


class StreamProbe:
    """One TCP connection to the server under test. Use as a context manager."""

    def __init__(self, host: str, port: int, deadline: Deadline) -> None:
        self.host, self.port = host, port
        self.deadline = deadline
        self._buffer = bytearray()
        self.eof = False
        with translated_oserrors(host=host, port=port):
            self._sock = socket.create_connection(
                (host, port), timeout=max(deadline.remaining(), 0.001)
            )
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send(self, data: bytes) -> None:
        """Send all of `data` before the deadline (a server that never reads times us out)."""
        self._sock.settimeout(max(self.deadline.remaining(), 0.001))
        with translated_oserrors(host=self.host, port=self.port):
            self._sock.sendall(data)

    def send_pieces(self, pieces: list[bytes]) -> None:
        """Send each piece separately, pausing between them so they arrive in separate reads."""
        for index, piece in enumerate(pieces):
            if index:
                time.sleep(PAUSE_BETWEEN_PIECES_S)
            self.send(piece)

    def receive_until(
        self, is_complete: Callable[[bytes], bool], *, within: Deadline | None = None
    ) -> Received:
        """Everything received until `is_complete(all bytes so far)`, end of stream or deadline.

        `within` bounds this wait more tightly than the check's deadline. The bytes are
        consumed: the next call starts after them.
        """
        ending = Ending.COMPLETE
        limit = within or self.deadline
        while not is_complete(bytes(self._buffer)):
            if self.eof:
                ending = Ending.CLOSED
                break
            remaining = min(self.deadline.remaining(), limit.remaining())
            if remaining <= 0:
                ending = Ending.TIMEOUT
                break
            self._sock.settimeout(remaining)
            try:
                chunk = self._sock.recv(RECEIVE_BYTES)
            except TimeoutError:
                ending = Ending.TIMEOUT
                break
            except OSError as exc:
                error = translate_oserror(exc, host=self.host, port=self.port)
                timed_out = isinstance(error, NetworkTimeoutError)
                ending = Ending.TIMEOUT if timed_out else Ending.RESET
                break
            if not chunk:
                self.eof = True
            self._buffer += chunk
            if len(self._buffer) > MAX_RECEIVED_BYTES:
                ending = Ending.FLOOD
                break
        data = bytes(self._buffer)
        self._buffer.clear()
        return Received(data, ending, limit.timeout_s)

    def receive_bytes(self, count: int) -> Received:
        return self.receive_until(lambda data: len(data) >= count)

    def receive_eof(self) -> Received:
        """Everything until the server closes; COMPLETE means it closed before the deadline."""
        received = self.receive_until(lambda _data: self.eof)
        return received

    def close(self) -> None:
        """Close gently: say we are done (FIN), read what is still coming, then close.

        Closing a socket with unread bytes makes the kernel send a reset (RFC 1122 4.2.2.13),
        and a naive server (the slides') dies of a ConnectionResetError; a checker must not
        cause the failures it reports.
        """
        try:
            self._sock.shutdown(socket.SHUT_WR)
            drain = Deadline(min(self.deadline.remaining(), CLOSE_DRAIN_S))
            while not self.eof and not drain.expired:
                self._sock.settimeout(max(drain.remaining(), 0.001))
                if not self._sock.recv(RECEIVE_BYTES):
                    break
        except OSError:
            pass  # reset, timeout or never connected: nothing more to be gentle about
        finally:
            self._sock.close()

    def __enter__(self) -> StreamProbe:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class DatagramProbe:
    """One UDP socket of its own (its own port), connected to the server under test."""

    def __init__(self, host: str, port: int, deadline: Deadline) -> None:
        self.host, self.port = host, port
        self.deadline = deadline
        with translated_oserrors(host=host, port=port):
            infos = socket.getaddrinfo(host, port, socket.AF_UNSPEC, socket.SOCK_DGRAM)
            family, _type, _proto, _name, address = infos[0]
            self._sock = socket.socket(family, socket.SOCK_DGRAM)
            # connect(): only the server's datagrams are accepted, and an ICMP "port
            # unreachable" shows as ConnectionRefusedError instead of a silent timeout.
            self._sock.connect(address)

    @property
    def local_port(self) -> int:
        return int(self._sock.getsockname()[1])

    def send(self, datagram: bytes) -> None:
        with translated_oserrors(host=self.host, port=self.port):
            self._sock.send(datagram)

    def receive(self) -> bytes | None:
        """The next datagram, or None when none came before the deadline."""
        remaining = self.deadline.remaining()
        if remaining <= 0:
            return None
        self._sock.settimeout(remaining)
        try:
            with translated_oserrors(host=self.host, port=self.port):
                return self._sock.recv(RECEIVE_BYTES)
        except NetworkTimeoutError:
            return None

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> DatagramProbe:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
