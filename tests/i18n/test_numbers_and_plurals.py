"""Counts and numbers in both languages, and the language chosen as GNU gettext would.

Pure checks of the i18n layer (`choose_language`, `format_number`, `format_count` with the real
compiled catalogue), then real commands in `--lang de` and `--lang en`: a converter server's
stop line, impair's fault line, LANGUAGE against LANG.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import pytest

from socklab.i18n import (
    choose_language,
    current_language,
    format_count,
    format_number,
    set_language,
)
from tests.socklab_process import SocklabProcess, free_port, run_socklab

Start = Callable[..., SocklabProcess]
TIMEOUT_S = 10.0


@pytest.fixture
def language() -> Iterator[Callable[[str], None]]:
    """Switch this process's language for one test, English again afterwards."""
    yield set_language
    set_language("en")


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"LANGUAGE": "de", "LANG": "en_US.UTF-8"}, "de"),
        ({"LANGUAGE": "en", "LC_ALL": "de_DE.UTF-8"}, "en"),
        ({"LANGUAGE": "fr:de_AT:en", "LANG": "en_US.UTF-8"}, "de"),
        ({"LANGUAGE": "fr:pt_BR", "LANG": "de_DE.UTF-8"}, "de"),
        ({"LANGUAGE": "", "LANG": "de_DE.UTF-8"}, "de"),
        ({"LANGUAGE": "de", "LANG": "C.UTF-8"}, "de"),
        ({"LC_ALL": "C", "LANG": "de_DE.UTF-8"}, "en"),
        ({"LC_MESSAGES": "de_DE@euro", "LANG": "en_GB.UTF-8"}, "de"),
        ({"LANG": "fr_FR.UTF-8"}, "en"),
        ({}, "en"),
    ],
    ids=[
        "LANGUAGE-over-LANG",
        "LANGUAGE-over-LC_ALL",
        "first-supported-in-the-list",
        "unsupported-list-falls-through",
        "empty-LANGUAGE",
        "LANGUAGE-under-C-locale",
        "LC_ALL-C-over-LANG",
        "LC_MESSAGES-with-modifier",
        "unsupported-LANG",
        "nothing-set",
    ],
)
def test_language_from_the_environment(environ: dict[str, str], expected: str) -> None:
    assert choose_language(None, environ) == expected


def test_lang_option_wins_over_language() -> None:
    assert choose_language("en", {"LANGUAGE": "de", "LC_ALL": "de_DE.UTF-8"}) == "en"
    assert choose_language("de", {"LANGUAGE": "en"}) == "de"


@pytest.mark.parametrize(
    ("value", "decimals", "english", "german"),
    [
        (65537, 0, "65,537", "65.537"),
        (0.98, 2, "0.98", "0,98"),
        (1234567.891, 1, "1,234,567.9", "1.234.567,9"),
        (999, 0, "999", "999"),
        (-4200, 0, "-4,200", "-4.200"),
        (12.5, None, "12.5", "12,5"),
        (30.0, None, "30", "30"),
        (0.0015, None, "0.0015", "0,0015"),
    ],
)
def test_number_format_per_language(
    language: Callable[[str], None],
    value: float,
    decimals: int | None,
    english: str,
    german: str,
) -> None:
    language("en")
    assert format_number(value, decimals) == english
    language("de")
    assert current_language() == "de"
    assert format_number(value, decimals) == german


def test_counts_take_the_right_form_in_both_languages(language: Callable[[str], None]) -> None:
    def request(n: int) -> str:
        return format_count("{count} request", "{count} requests", n)

    language("en")
    assert [request(n) for n in (0, 1, 2, 65537)] == [
        "0 requests",
        "1 request",
        "2 requests",
        "65,537 requests",
    ]
    language("de")
    assert [request(n) for n in (0, 1, 2, 65537)] == [
        "0 Anfragen",
        "1 Anfrage",
        "2 Anfragen",
        "65.537 Anfragen",
    ]


def _serve_requests(start_socklab: Start, lang: str, requests: int) -> str:
    """The stop line of a converter server that answered `requests` requests on one connection."""
    port = free_port()
    server = start_socklab(
        ["--lang", lang, "converter", "server", "--host", "127.0.0.1", "--port", str(port)]
    )
    server.wait_for_line(rf"(listening on|lauscht auf) 127\.0\.0\.1:{port} ")
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as client:
        reader = client.makefile("rb")
        reader.readline()  # the greeting
        for number in range(requests):
            client.sendall(b"U:x%d\n" % number)
            assert reader.readline() == b"X%d\n" % number
    assert server.stop() == 0
    return server.stdout_lines[-1]


@pytest.mark.parametrize(
    ("lang", "requests", "expected"),
    [
        ("en", 1, "Server stopped: 1 connection, 1 request served."),
        ("en", 2, "Server stopped: 1 connection, 2 requests served."),
        ("de", 1, "Server beendet: 1 Verbindung, 1 Anfrage bedient."),
        ("de", 2, "Server beendet: 1 Verbindung, 2 Anfragen bedient."),
    ],
)
def test_converter_server_counts_in_both_languages(
    start_socklab: Start, lang: str, requests: int, expected: str
) -> None:
    assert _serve_requests(start_socklab, lang, requests) == expected


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        (
            "en",
            "Faults (both): loss 12.5 %, rate 100,000 bytes/s, slices of 1 byte, 1.5 ms apart, "
            "close after 65,537 bytes",
        ),
        (
            "de",
            "Störungen (beide Richtungen): Verlust 12,5 %, Rate 100.000 Bytes/s, Stücke zu 1 Byte, "
            "1,5 ms Abstand, Schließen nach 65.537 Bytes",
        ),
    ],
)
def test_impair_fault_line_in_both_languages(
    start_socklab: Start, lang: str, expected: str
) -> None:
    # --loss is for UDP and --slice for TCP: the TCP relay shows every fault but the loss.
    tcp_expected = expected.replace("loss 12.5 %, ", "").replace("Verlust 12,5 %, ", "")
    relay = start_socklab(
        [
            "--lang",
            lang,
            "impair",
            "--tcp",
            "--listen",
            "127.0.0.1:0",
            "--target",
            f"127.0.0.1:{free_port()}",
            "--rate",
            "100k",
            "--slice",
            "1",
            "--slice-delay",
            "1.5",
            "--limit-bytes",
            "65537",
        ]
    )
    faults = relay.wait_for_line(r"^(Faults|Störungen) ").string
    assert faults == tcp_expected
    assert relay.stop() == 0
    udp = start_socklab(
        [
            "--lang",
            lang,
            "impair",
            "--udp",
            "--listen",
            "127.0.0.1:0",
            "--target",
            f"127.0.0.1:{free_port()}",
            "--loss",
            "0.125",
        ]
    )
    line = udp.wait_for_line(r"^(Faults|Störungen) ").string
    assert line == expected.split(", rate")[0].split(", Rate")[0]
    assert udp.stop() == 0
    stats = udp.stdout_lines[-1]
    datagrams = "0 datagrams in" if lang == "en" else "0 Datagramme herein"
    assert datagrams in stats, stats


@pytest.mark.parametrize(
    ("env", "greeting"),
    [
        ({"LANGUAGE": "de", "LANG": "C.UTF-8", "LC_ALL": ""}, "Aufruf: socklab"),
        ({"LANGUAGE": "fr:de", "LANG": "en_US.UTF-8", "LC_ALL": ""}, "Aufruf: socklab"),
        ({"LANGUAGE": "en", "LANG": "de_DE.UTF-8", "LC_ALL": "de_DE.UTF-8"}, "usage: socklab"),
    ],
    ids=["LANGUAGE-de", "LANGUAGE-list", "LANGUAGE-en-over-LC_ALL"],
)
def test_language_variable_is_honoured_before_lang(env: dict[str, str], greeting: str) -> None:
    result = run_socklab(["--help"], env=env)
    assert result.returncode == 0
    assert result.stdout.startswith(greeting)


def test_lang_option_wins_over_the_language_variable() -> None:
    result = run_socklab(["--lang", "en", "--help"], env={"LANGUAGE": "de"})
    assert result.stdout.startswith("usage: socklab")
