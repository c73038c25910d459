"""The server's `-v` lines of issue 16 that the end-to-end tests do not reach: every form of
the request line, the length framing's unfinished message, singular sizes, and German."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from socklab.cli.converter import (
    describe_answered_datagram,
    describe_request,
    describe_stalled_message,
    describe_unanswered_datagram,
)
from socklab.i18n import set_language
from socklab.protocol.reflection import Silence
from socklab.protocol.session import RequestHandled

PEER = ("127.0.0.1", 40522)


@pytest.fixture
def german() -> Iterator[None]:
    set_language("de")
    yield
    set_language("en")


@pytest.mark.parametrize(
    ("handled", "line"),
    [
        (
            RequestHandled(b"U:", 7, 5),
            'Request from 127.0.0.1:40522: "U:", 7 bytes in, 5 bytes out',
        ),
        (RequestHandled(b"L:", 3, 1), 'Request from 127.0.0.1:40522: "L:", 3 bytes in, 1 byte out'),
        (
            RequestHandled(b"C:", 2, 0, closes=True),
            'Request from 127.0.0.1:40522: "C:", 2 bytes in: close requested',
        ),
        (
            RequestHandled(b"\x1b[", 4, 0, b"E:unknown command"),
            'Request from 127.0.0.1:40522: "\\x1b[", 4 bytes in, sent "E:unknown command"',
        ),
        (
            RequestHandled(
                b"", 70_000, 0, b"E:message of 70,000 bytes exceeds the 65,536-byte limit"
            ),
            'Request from 127.0.0.1:40522: 70,000 bytes in, sent "E:message of 70,000 bytes '
            'exceeds the 65,536-byte limit"',
        ),
    ],
    ids=["answered", "one-byte", "close", "escaped-error", "too-long"],
)
def test_request_lines(handled: RequestHandled, line: str) -> None:
    assert describe_request(PEER, handled) == line


def test_unfinished_messages_name_the_framing() -> None:
    assert describe_stalled_message(PEER, 1, 2.0, "line") == (
        "From 127.0.0.1:40522: 1 byte without '\\n' after 2 s: a client without line framing? "
        "see --framing raw"
    )
    assert describe_stalled_message(PEER, 3, 2.0, "length") == (
        "From 127.0.0.1:40522: 3 bytes of a length-prefixed message still incomplete after 2 s: "
        "a client without length framing? see --framing line"
    )


def test_answered_datagram_line_escapes_the_peer_bytes() -> None:
    assert describe_answered_datagram(PEER, b"U:\x07a", b"\x07A") == (
        'From 127.0.0.1:40522: "U:\\x07a" (4 bytes) answered "\\x07A" (2 bytes)'
    )


def test_long_datagrams_name_their_size_once() -> None:
    """The 5,000-byte datagram of issue 16: cut to 60 bytes, its size said once, not twice."""
    request = b"U:" + b"a" * 4_998
    line = describe_answered_datagram(PEER, request, request[2:].upper())
    assert line == (
        f'From 127.0.0.1:40522: "U:{"a" * 58}…" (5,000 bytes) answered "{"A" * 60}…" (4,998 bytes)'
    )
    unanswered = describe_unanswered_datagram(PEER, b"U:" + "ΐ".encode() * 40, Silence.NO_REPLY)
    assert '…" (240 bytes) would be longer than the request (82 bytes)' in unanswered
    assert unanswered.count("240 bytes") == 1, unanswered


@pytest.mark.usefixtures("german")
def test_the_lines_are_german_with_du() -> None:
    assert describe_stalled_message(PEER, 7, 2.0, "line") == (
        "Von 127.0.0.1:40522: 7 Bytes ohne '\\n' nach 2 s: ein Client ohne Zeilen-Framing? "
        "siehe --framing raw"
    )
    assert describe_request(PEER, RequestHandled(b"U:", 7, 5)) == (
        'Anfrage von 127.0.0.1:40522: "U:", 7 Bytes empfangen, 5 Bytes gesendet'
    )
