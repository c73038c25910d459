"""The converter program's defaults, the note every exposed server prints, and reply decoding."""

from __future__ import annotations

import contextlib
import socket

from socklab.i18n import _
from socklab.protocol.escaping import escape_lines_for_terminal

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


def decode_reply(reply: bytes) -> str:
    """A server's greeting or reply as the client prints it: the server's bytes are hostile,
    so control characters and invalid UTF-8 are escaped; newlines (raw framing) are kept."""
    return escape_lines_for_terminal(reply)
