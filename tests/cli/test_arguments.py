"""Bad option values: one clear line each, from one factory (scripts and course sheets quote them)."""

from __future__ import annotations

import argparse
from collections.abc import Callable

import pytest

from socklab.cli.arguments import (
    bounded_number,
    non_negative_int,
    port_number,
    positive_int,
    positive_seconds,
)
from socklab.cli.impair import bytes_per_second, milliseconds, probability, seed_number
from socklab.i18n import set_language


@pytest.fixture(autouse=True)
def english() -> None:
    set_language("en")  # an in-process test before this one may have left German behind


@pytest.mark.parametrize(
    ("convert", "text", "message"),
    [
        (port_number, "http", "'http' is not a port number"),
        (port_number, "65536", "port 65536 is out of range 0-65535"),
        (port_number, "0x10", "'0x10' is not a port number"),
        (positive_int, "0", "0 must be at least 1"),
        (positive_int, "1.5", "'1.5' is not a whole number"),
        (non_negative_int, "-1", "-1 must not be negative"),
        (positive_seconds, "0", "0 seconds must be more than 0"),
        (positive_seconds, "nan", "nan seconds must be more than 0"),
        (positive_seconds, "inf", "inf seconds must be more than 0"),
        (positive_seconds, "soon", "'soon' is not a number of seconds"),
        (probability, "1.5", "probability 1.5 is outside 0 to 1 (0.3 means 30 %)"),
        (milliseconds, "-1", "-1 ms must be 0 or more, and finite"),
        (bytes_per_second, "0k", "rate 0k must be at least 1 byte per second"),
        (
            bytes_per_second,
            "fast",
            "'fast' is not a rate in bytes per second (like 100000 or 100k)",
        ),
        (seed_number, "x", "'x' is not a whole number"),
    ],
)
def test_each_refusal_is_one_line(
    convert: Callable[[str], object], text: str, message: str
) -> None:
    with pytest.raises(argparse.ArgumentTypeError) as refused:
        convert(text)
    assert str(refused.value) == message


@pytest.mark.parametrize(
    ("convert", "text", "value"),
    [
        (port_number, "0", 0),
        (port_number, "65535", 65535),
        (non_negative_int, "0", 0),
        (positive_seconds, "0.5", 0.5),
        (probability, "0.3", 0.3),
        (bytes_per_second, "100k", 100_000),
        (seed_number, "-7", -7),
    ],
)
def test_values_in_range_pass(convert: Callable[[str], object], text: str, value: object) -> None:
    assert convert(text) == value


def test_the_factory_names_its_type_for_argparse() -> None:
    even = bounded_number(
        int,
        lambda value: value % 2 == 0,
        not_a_number=lambda text: f"{text}?",
        out_of_range=lambda text, _value: f"{text} is odd",
        name="even_number",
    )
    assert even.__name__ == "even_number"
    parser = argparse.ArgumentParser(prog="p", exit_on_error=False)
    parser.add_argument("--n", type=even)
    assert parser.parse_args(["--n", "4"]).n == 4
    with pytest.raises(argparse.ArgumentError, match=r"^argument --n: 3 is odd$"):
        parser.parse_args(["--n", "3"])


def test_the_transport_is_one_attribute_in_every_command() -> None:
    """--udp (and --tcp) set `args.transport` everywhere: one name for scripts and handlers."""
    from socklab.cli.main import build_parser

    commands = [
        ["converter", "server", "--udp"],
        ["converter", "client", "--udp"],
        ["upper", "server", "--udp"],
        ["upper", "client", "--udp"],
        ["impair", "--udp", "--listen", "1", "--target", "2"],
        ["bench", "--udp"],
        ["check", "converter-server", "127.0.0.1:1", "--udp"],
        ["check", "converter-client", "--udp", "true"],
    ]
    for argv in commands:
        args = build_parser(argv).parse_args(argv)
        assert args.transport == "udp", argv
        assert not hasattr(args, "udp"), argv
