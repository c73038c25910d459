"""The options and argument types every command shares, each declared once.

Types: bad values get one clear argparse error. Option groups (`add_host_port`, `add_framing`,
`add_udp_flag`/`add_transport_choice`, `add_model`, `add_loop`): the flag, its type, choices and
attribute are fixed here (the transport is always `args.transport`); each command words the help.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Iterable
from typing import TypeVar

from socklab.i18n import _

Number = TypeVar("Number", int, float)
# A parser or one of its (mutually exclusive) groups: argparse's common base of both.
_ArgumentAdder = argparse._ActionsContainer


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


# --- option groups: each flag declared once, here; the command words its help --------------------

EVENT_LOOPS = ("auto", "asyncio", "uvloop")


def add_host_port(
    parser: _ArgumentAdder,
    *,
    host_default: str,
    port_default: int,
    host_help: str | None = None,
    port_help: str | None = None,
) -> None:
    """--host and --port; without helps, a client's ("server address", "server port")."""
    parser.add_argument(
        "--host",
        default=host_default,
        help=host_help or _("server address (default: %(default)s)"),
    )
    parser.add_argument(
        "--port",
        type=port_number,
        default=port_default,
        help=port_help or _("server port (default: %(default)s)"),
    )


def add_framing(parser: _ArgumentAdder, *, help: str) -> None:
    """--framing, one of the registry's framings, "line" by default."""
    # Imported here: `ports` and `capture` parse options too and need no framer.
    from socklab.protocol.framing import FRAMINGS

    parser.add_argument("--framing", choices=sorted(FRAMINGS), default="line", help=help)


def add_udp_flag(parser: _ArgumentAdder, *, help: str) -> None:
    """--udp, read as `args.transport` ("udp", else "tcp") by every command."""
    parser.add_argument(
        "--udp", dest="transport", action="store_const", const="udp", default="tcp", help=help
    )


def add_transport_choice(
    parser: argparse.ArgumentParser, *, tcp_help: str, udp_help: str, udp_first: bool = False
) -> None:
    """--tcp or --udp, one of them required, read as `args.transport`."""
    group = parser.add_mutually_exclusive_group(required=True)
    flags = [("--tcp", "tcp", tcp_help), ("--udp", "udp", udp_help)]
    for flag, transport, text in reversed(flags) if udp_first else flags:
        group.add_argument(flag, dest="transport", action="store_const", const=transport, help=text)


def add_model(
    parser: _ArgumentAdder, *, choices: Iterable[str] | None, default: str | None, help: str
) -> None:
    """--model: the concurrency model (the caller passes its registry, imported only by it)."""
    shown = sorted(choices) if choices is not None else None
    parser.add_argument("--model", choices=shown, default=default, help=help)


def add_loop(parser: _ArgumentAdder, *, help: str) -> None:
    """--loop: the asyncio model's event loop; "auto" takes uvloop where installed."""
    parser.add_argument("--loop", choices=EVENT_LOOPS, default="auto", help=help)
