"""Argument types shared by every command, so bad values get one clear argparse error."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import TypeVar

from socklab.i18n import _

Number = TypeVar("Number", int, float)


# --- bounded numbers: one factory, each type its own messages ------------------------------------


def bounded_number(
    parse: Callable[[str], Number],
    accepts: Callable[[Number], bool],
    *,
    not_a_number: Callable[[str], str],
    out_of_range: Callable[[str, Number], str],
    name: str,
) -> Callable[[str], Number]:
    """An argparse `type`: `parse(text)`, then `accepts(value)`, each failure one clear line.

    The messages are callables so that they are translated when the error happens (the language
    is chosen after this module is imported) and stay literal `_()` calls for the catalogue.
    """

    def convert(text: str) -> Number:
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(not_a_number(text)) from None
        if not accepts(value):
            raise argparse.ArgumentTypeError(out_of_range(text, value))
        return value

    convert.__name__ = convert.__qualname__ = name
    return convert


def whole_number(text: str) -> int:
    """Base 10 only: `0x10` and `010` are refused rather than read as 16 or 8."""
    return int(text, 10)


port_number = bounded_number(
    whole_number,
    lambda port: 0 <= port <= 65535,  # 0 asks the OS for a free port
    not_a_number=lambda text: _("'{text}' is not a port number").format(text=text),
    out_of_range=lambda _text, port: _("port {port} is out of range 0-65535").format(port=port),
    name="port_number",
)
positive_int = bounded_number(
    whole_number,
    lambda value: value >= 1,
    not_a_number=lambda text: _("'{text}' is not a whole number").format(text=text),
    out_of_range=lambda _text, value: _("{value} must be at least 1").format(value=value),
    name="positive_int",
)
non_negative_int = bounded_number(
    whole_number,
    lambda value: value >= 0,
    not_a_number=lambda text: _("'{text}' is not a whole number").format(text=text),
    out_of_range=lambda _text, value: _("{value} must not be negative").format(value=value),
    name="non_negative_int",
)
positive_seconds = bounded_number(
    float,
    lambda value: value > 0 and math.isfinite(value),  # also refuses nan and inf
    not_a_number=lambda text: _("'{text}' is not a number of seconds").format(text=text),
    out_of_range=lambda text, _value: _("{text} seconds must be more than 0").format(text=text),
    name="positive_seconds",
)


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
