"""The converter program: its server wired to a runtime, its client wired to stdin/arguments."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator

from socklab.clients.converter_client import DatagramConverterClient, StreamConverterClient

DEFAULT_PORT = 50000
DEFAULT_HOST = "127.0.0.1"  # like Redis: loopback unless told otherwise


def is_exposed(host: str) -> bool:
    """True when binding `host` makes the server reachable from other machines."""
    if host in ("", "0.0.0.0", "::"):
        return True
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host != "localhost"


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
