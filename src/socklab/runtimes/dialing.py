"""Opening a connection for a runtime to serve: the other half of `ServerHandle.adopt()`.

A server accepts; a peer in a mesh also dials. Dialling is kept out of the event loops on
purpose: `dial_in_background()` connects with a blocking `connect()` in a short-lived thread of
its own (one per dial, like the lecture's "a thread per blocking call"), then hands the
connected socket to a callback, which typically passes it to `handle.adopt(sock, session)`;
from then on the connection is served like an accepted one, by whichever model runs.

Untrusted addresses: only an address the user typed is looked up (`may_resolve`); anything
else goes to getaddrinfo() with AI_NUMERICHOST, so a host name slipped in by a peer becomes a
refusal here, never a DNS query a peer chose.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable


def connect_blocking(
    address: tuple[str, int], *, timeout_s: float, may_resolve: bool
) -> socket.socket:
    """A connected TCP socket to `address` (in blocking mode); raises OSError."""
    if may_resolve:
        # A name the user typed: try each of its addresses, as create_connection() does.
        sock = socket.create_connection(address, timeout=timeout_s)
    else:
        infos = socket.getaddrinfo(*address, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
        family, kind, proto, _canonical, sockaddr = infos[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(timeout_s)
            sock.connect(sockaddr)
        except OSError:
            sock.close()
            raise
    sock.settimeout(None)
    return sock


def dial_in_background(
    address: tuple[str, int],
    *,
    timeout_s: float,
    may_resolve: bool,
    connected: Callable[[socket.socket], None],
    failed: Callable[[OSError], None],
    name: str = "socklab-dial",
) -> threading.Thread:
    """Connect to `address` in a new daemon thread; then `connected(sock)` or `failed(exc)`,
    called in that thread. The callback owns the socket."""

    def run() -> None:
        try:
            sock = connect_blocking(address, timeout_s=timeout_s, may_resolve=may_resolve)
        except OSError as exc:
            failed(exc)
            return
        connected(sock)

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return thread
