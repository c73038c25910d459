"""The K&R TCP uppercase server as a session: one sentence, one reply, close."""

from __future__ import annotations

import pytest

from socklab.errors import LocalProtocolError
from socklab.protocol.session import greeting_of
from socklab.protocol.upper import SENTENCE_BYTES, UpperSession


def test_first_read_is_the_sentence_answered_then_closing() -> None:
    session = UpperSession()
    assert greeting_of(UpperSession, "raw", SENTENCE_BYTES) == b""  # no greeting on the slides
    assert session.exchange("straße".encode()) == b"STRASSE"
    assert session.should_close and session.requests_served == 1
    assert session.exchange(b"more") == b""  # closing: ignored
    assert (session.request, session.reply) == ("straße".encode(), b"STRASSE")


def test_sentence_is_one_recv_of_1024_bytes_as_on_the_slides() -> None:
    session = UpperSession(max_message_bytes=64 * 1024)
    assert session.exchange(b"a" * 3000) == b"A" * 1024


def test_end_of_stream_without_a_sentence_closes_without_reply() -> None:
    session = UpperSession()
    session.receive_eof()
    assert session.should_close and session.data_to_send() == b""
    assert session.request is None and not session.has_partial_message
    session.closed()
    with pytest.raises(LocalProtocolError):
        session.receive_data(b"x")
