"""The converter's commands, Unicode rules, errors, and its UDP no-amplification rule."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from socklab.protocol.converter import (
    CLOSE_REQUEST,
    GREETING,
    ErrorReply,
    build_datagram,
    handle_datagram,
    handle_request,
    parse_reply_datagram,
)


def test_greeting_is_the_slides() -> None:
    assert GREETING == b"Hi I'm your upper/lowercase converter. Message format U|L:<message>"


@pytest.mark.parametrize(
    ("request_", "reply"),
    [
        (b"U:lower", b"LOWER"),
        (b"L:UPPER", b"upper"),
        (b"U:", b""),
        (b"U:stra\xc3\x9fe", b"STRASSE"),
        ("L:ÄÖÜ".encode(), "äöü".encode()),
        ("U:ŉ".encode(), "ʼN".encode()),
        (b"U:a:b:c", b"A:B:C"),
    ],
)
def test_conversion(request_: bytes, reply: bytes) -> None:
    assert handle_request(request_) == reply


def test_close() -> None:
    assert handle_request(b"C:") is CLOSE_REQUEST
    assert handle_request(b"C:anything") is CLOSE_REQUEST


@pytest.mark.parametrize(
    ("request_", "reason"),
    [
        (b"X:hi", "unknown command 'X:'; use U:<text>, L:<text> or C:"),
        (b"hello", "unknown command 'he'; a request starts with U:, L: or C:"),
        (b"", "empty request; send U:<text>, L:<text> or C:"),
        (b"U:ab\xff", "request is not valid UTF-8 (byte 0xFF at offset 4)"),
        (b"u:lower", "unknown command 'u:'; use U:<text>, L:<text> or C:"),
    ],
)
def test_errors(request_: bytes, reason: str) -> None:
    reply = handle_request(request_)
    assert isinstance(reply, ErrorReply)
    assert reply.reason == reason
    assert reply.payload == b"E:" + reason.encode()


def test_datagram_slide_example_keeps_newline() -> None:
    assert handle_datagram(b"L:UPPER\n") == b"upper\n"


def test_datagram_request_id_is_echoed() -> None:
    assert handle_datagram(b"#42 U:abc") == b"#42 ABC"
    assert parse_reply_datagram(b"#42 ABC") == (42, b"ABC")
    assert build_datagram(b"U:abc", 42) == b"#42 U:abc"
    # Not an id: the whole datagram is the request, and its error would be longer than it.
    assert handle_datagram(b"#x U:abc") is None
    assert (
        handle_datagram(b"#x U:abc" + b" " * 60)
        == b"E:unknown command '#x'; a request starts with U:, L: or C:"
    )


def test_datagram_no_reply_to_empty_or_close() -> None:
    assert handle_datagram(b"") is None
    assert handle_datagram(b"C:") is None


def test_datagram_growing_conversion_is_capped() -> None:
    request = b"U:" + "ΐ".encode() * 20  # upper case is 3x longer in UTF-8
    reply = handle_datagram(request)
    assert reply == b"E:reply longer than request"


def test_datagram_tiny_garbage_gets_no_reply() -> None:
    assert handle_datagram(b"X") is None


@given(st.binary(max_size=200))
def test_datagram_reply_never_longer_than_request(datagram: bytes) -> None:
    reply = handle_datagram(datagram)
    assert reply is None or len(reply) <= len(datagram)


@given(st.text(max_size=50))
def test_datagram_text_reply_never_longer(text: str) -> None:
    for command in ("U:", "L:"):
        datagram = (command + text).encode()
        reply = handle_datagram(datagram)
        assert reply is None or len(reply) <= len(datagram)
