"""The converter program: its server wired to a runtime, its client wired to stdin/arguments."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterable, Iterator

from socklab.clients.converter_client import DatagramConverterClient, StreamConverterClient
from socklab.i18n import _

DEFAULT_PORT = 50000
DEFAULT_HOST = "127.0.0.1"  # like Redis: loopback unless told otherwise
_IPV6_LOOPBACK = bytes(15) + b"\x01"  # ::1


def is_exposed(host: str) -> bool:
    """True when binding `host` makes the server reachable from other machines."""
    if host in ("", "0.0.0.0", "::"):
        return True
    # inet_pton, not the ipaddress module: this runs in every server process, for one check.
    with contextlib.suppress(OSError):
        return socket.inet_pton(socket.AF_INET, host)[0] != 127  # 127.0.0.0/8
    with contextlib.suppress(OSError):
        return socket.inet_pton(socket.AF_INET6, host) != _IPV6_LOOPBACK
    return host != "localhost"


def exposure_note(host: str) -> str | None:
    """The one line every server prints when `host` lets other computers connect, else None."""
    if not is_exposed(host):
        return None
    return _(
        "Note: listening on all interfaces, so other computers can connect. Use --host 127.0.0.1 to stay local."
    )


def exchange_stream(client: StreamConverterClient, requests: Iterable[str]) -> Iterator[str | None]:
    """Send each request and yield its reply as text; None when the server closed (after C:)."""
    for request in requests:
        reply = client.request(request.encode("utf-8"))
        if reply is None:
            yield None
            return
        yield decode_reply(reply)


def exchange_datagrams(
    client: DatagramConverterClient, requests: Iterable[str]
) -> Iterator[str | None]:
    """Send each request as a datagram and yield its reply; `C:` gets none (UDP has no connection)."""
    for request in requests:
        data = request.encode("utf-8")
        if data[:2] == b"C:" or not data:
            client.send_datagram(data)
            yield None
            continue
        yield decode_reply(client.request(data))


def decode_reply(reply: bytes) -> str:
    return reply.decode("utf-8", errors="replace")
