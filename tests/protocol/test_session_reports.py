"""What a converter session tells a server's `-v`: each request, and a message left unfinished
(issue 16); and a length header that is text, named by the framer."""

from __future__ import annotations

from typing import Any

import pytest

from socklab.protocol.framing import FrameTooLong, LengthPrefixFramer
from socklab.protocol.session import ConverterSession, RequestHandled


def recording(**settings: Any) -> ConverterSession:
    session = ConverterSession(greet=False, record_events=False, **settings)
    session.record_requests()
    return session


def test_each_request_is_reported_with_its_sizes_or_its_error() -> None:
    session = recording()
    session.receive_data(b"U:abc\nX:1\nL:\xc3\x84\nC:\n")
    assert session.take_requests_handled() == [
        RequestHandled(b"U:", 5, 3),
        RequestHandled(b"X:", 3, 0, b"E:unknown command 'X:'; use U:<text>, L:<text> or C:"),
        RequestHandled(b"L:", 4, 2),
        RequestHandled(b"C:", 2, 0, closes=True),
    ]
    assert session.take_requests_handled() == []


@pytest.mark.parametrize("chunk", [b"U:abc\n", b"U:abc\r\n"], ids=["lf", "crlf"])
def test_a_whole_request_in_one_chunk_is_reported_too(chunk: bytes) -> None:
    # The fast paths answer such a chunk without the general path; a recording session
    # must not lose it.
    session = recording()
    assert session.exchange(chunk) == b"ABC\n"
    assert session.take_requests_handled() == [RequestHandled(b"U:", 5, 3)]


def test_a_session_not_asked_to_record_reports_nothing() -> None:
    session = ConverterSession(greet=False)
    session.receive_data(b"U:abc\nX:1\n")
    assert session.take_requests_handled() == []


def test_an_over_long_message_is_reported_with_the_error_sent() -> None:
    session = recording(framing="length", max_message_bytes=10)
    session.receive_data(b"\x00\x00\x00\x0b")
    [handled] = session.take_requests_handled()
    assert handled == RequestHandled(b"", 11, 0, b"E:message of 11 bytes exceeds the 10-byte limit")


def test_the_partial_message_is_counted_until_it_ends() -> None:
    session = ConverterSession(greet=False)
    session.receive_data(b"U:lower")
    assert (session.has_partial_message, session.partial_message_bytes) == (True, 7)
    session.receive_data(b"\n")
    assert (session.has_partial_message, session.partial_message_bytes) == (False, 0)


def test_a_length_header_that_is_text_is_named() -> None:
    framer = LengthPrefixFramer(65536)
    [event] = framer.receive_data(b"Hi I'm your upper/lowercase converter.\n")
    assert isinstance(event, FrameTooLong)
    assert (event.size, event.header, event.header_looks_like_text) == (
        1_214_849_097,
        b"Hi I",
        True,
    )


def test_a_binary_length_header_is_not_called_text() -> None:
    [event] = LengthPrefixFramer(10).receive_data(b"\x00\x01\x00\x00")
    assert isinstance(event, FrameTooLong)
    assert not event.header_looks_like_text
