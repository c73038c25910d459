"""Argument types shared by every command, so bad values get one clear argparse error."""

from __future__ import annotations

import argparse

from socklab.i18n import _


def port_number(text: str) -> int:
    """A TCP/UDP port, 0-65535 (0 asks the OS for a free one)."""
    try:
        port = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(
            _("'{text}' is not a port number").format(text=text)
        ) from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(_("port {port} is out of range 0-65535").format(port=port))
    return port


def positive_int(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(
            _("'{text}' is not a whole number").format(text=text)
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(_("{value} must be at least 1").format(value=value))
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(
            _("'{text}' is not a whole number").format(text=text)
        ) from None
    if value < 0:
        raise argparse.ArgumentTypeError(_("{value} must not be negative").format(value=value))
    return value


def positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            _("'{text}' is not a number of seconds").format(text=text)
        ) from None
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(_("{text} seconds must be more than 0").format(text=text))
    return value


def host_port(text: str) -> tuple[str, int]:
    """HOST:PORT, [IPv6]:PORT, or PORT alone (host 127.0.0.1)."""
    host, sep, port_text = text.rpartition(":")
    if not sep:
        return "127.0.0.1", port_number(text)
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise argparse.ArgumentTypeError(_("write IPv6 addresses in brackets, like [::1]:50000"))
    return host or "127.0.0.1", port_number(port_text)
