"""How socklab writes an endpoint: `host:port`, an IPv6 host in brackets (`[::1]:7000`).

The brackets are RFC 3986 §3.2.2's: without them the port cannot be told from the address's own
colons. Every line, table and frame that names an endpoint uses this one function, so a server's
"Connection from …" and `socklab ports` write the same text for the same socket.
"""

from __future__ import annotations


def format_host(host: str) -> str:
    """`host`, in brackets when it is an IPv6 address (for a message that adds `:port` itself)."""
    return f"[{host}]" if ":" in host else host


def format_endpoint(host: str, port: int) -> str:
    """`127.0.0.1:7000`, `[::1]:7000`."""
    return f"{format_host(host)}:{port}"


def parse_endpoint(text: str) -> tuple[str, int] | None:
    """`HOST:PORT` or `[V6]:PORT` as written by `format_endpoint`; None when it is not one."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit() or len(port_text) > 5:
        return None
    port = int(port_text)
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host or not 0 < port <= 65535 or len(host) > 255 or not host.isprintable():
        return None
    return host, port
