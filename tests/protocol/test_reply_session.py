"""A reply function as a session (and as a datagram handler): whole messages whatever the chunks,
the converter's limits and closing states, and a failing function contained."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from socklab.errors import LocalProtocolError
from socklab.protocol.limits import MAX_UDP_PAYLOAD_BYTES
from socklab.protocol.reflection import Silence, answer_datagram
from socklab.protocol.reply_session import (
    REPLY_FAILED,
    ReplySession,
    datagram_handler,
    reply_session_factory,
)
from socklab.protocol.session import CloseReason, SessionClosing, greeting_of


def shout(message: bytes) -> bytes | None:
    return None if message == b"quiet" else message.upper()


def frame(framing: str, *messages: bytes) -> bytes:
    return b"".join(
        len(m).to_bytes(4, "big") + m if framing == "length" else m + b"\n" for m in messages
    )


@pytest.mark.parametrize("framing", ["line", "length"])
def test_each_whole_message_is_replied_in_order(framing: str) -> None:
    session = ReplySession(shout, framing)
    wire = frame(framing, b"one", b"quiet", b"two")
    assert session.exchange(wire) == frame(framing, b"ONE", b"TWO")
    assert session.requests_served == 3 and not session.should_close


@pytest.mark.parametrize("framing", ["line", "length"])
def test_one_byte_at_a_time_and_trailing_bytes(framing: str) -> None:
    session = ReplySession(shout, framing)
    wire = frame(framing, b"abc", b"de") + frame(framing, b"fgh")[:2]
    out = b"".join(session.exchange(wire[i : i + 1]) for i in range(len(wire)))
    assert out == frame(framing, b"ABC", b"DE")
    assert session.has_partial_message


# A line's CR before its LF is taken as part of a CRLF terminator, so no message ends in CR.
LINES = st.binary(max_size=40).filter(lambda m: b"\n" not in m and not m.endswith(b"\r"))


@given(st.lists(LINES, max_size=8), st.data())
def test_any_chunking_gives_the_same_replies(messages: list[bytes], data: st.DataObject) -> None:
    wire = frame("line", *messages)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=6)))
    session = ReplySession(lambda m: m.upper(), "line")
    out = b"".join(
        session.exchange(wire[a:b]) for a, b in zip([0, *cuts], [*cuts, len(wire)], strict=True)
    )
    assert out == frame("line", *(m.upper() for m in messages))


def test_greeting_only_when_asked_and_the_factory_binds_it() -> None:
    assert ReplySession(shout, greeting=b"hi").data_to_send() == b"hi\n"
    assert ReplySession(shout, greeting=b"hi", greet=False).data_to_send() == b""
    assert ReplySession(shout).data_to_send() == b""
    factory = reply_session_factory(shout, greeting=b"hello")
    assert greeting_of(factory, "length", 100) == b"\x00\x00\x00\x05hello"


@pytest.mark.parametrize("framing", ["line", "length"])
def test_over_long_message_gets_an_error_reply_and_closes(framing: str) -> None:
    session = ReplySession(shout, framing, max_message_bytes=8)
    out = session.exchange(frame(framing, b"ok", b"x" * 20, b"lost"))
    replies = out.split(b"\n") if framing == "line" else [out[4:6], out[10:]]
    assert replies[0] == b"OK"
    assert re.fullmatch(
        rb"E:message of (over 8|20) bytes exceeds the 8-byte limit", replies[1].rstrip(b"\n")
    )
    assert session.should_close and session.expects_unread_input
    assert session.close_reason is CloseReason.MESSAGE_TOO_LONG
    assert session.exchange(b"more\n") == b""  # closing: nothing more is served


def test_last_unterminated_line_is_answered_at_end_of_stream() -> None:
    session = ReplySession(shout)
    session.receive_data(b"a\nb")
    session.receive_eof()
    assert session.data_to_send() == b"A\nB\n"
    assert session.should_close and session.close_reason is CloseReason.PEER_EOF
    assert not session.expects_unread_input


def test_stream_ending_inside_a_length_message_is_truncated() -> None:
    session = ReplySession(shout, "length")
    session.receive_data(b"\x00\x00\x00\x09abc")
    session.receive_eof()
    assert session.data_to_send() == b"" and session.close_reason is CloseReason.TRUNCATED


def test_server_stopping_notice_only_mid_message() -> None:
    idle = ReplySession(shout)
    idle.server_stopping()
    assert idle.data_to_send() == b"" and idle.should_close
    busy = ReplySession(shout)
    busy.receive_data(b"half")
    busy.server_stopping()
    assert busy.data_to_send() == b"E:server stopping\n" and busy.should_close


def test_failing_reply_is_reported_answered_and_closes() -> None:
    reported: list[Exception] = []

    def broken(message: bytes) -> bytes:
        raise KeyError(message)

    session = ReplySession(broken, report_error=reported.append)
    assert session.exchange(b"a\nb\n") == REPLY_FAILED + b"\n"
    assert [type(exc) for exc in reported] == [KeyError]  # b was not asked: the session closes
    assert session.should_close and session.close_reason is CloseReason.LOCAL
    events = session.take_events()
    assert isinstance(events[-1], SessionClosing)


def test_reply_that_is_not_bytes_or_not_frameable_is_a_failure() -> None:
    reported: list[Exception] = []
    text = ReplySession(lambda m: m.decode(), report_error=reported.append)  # type: ignore[arg-type,return-value]
    assert text.exchange(b"a\n") == b"E:server error\n"
    two_lines = ReplySession(lambda m: m + b"\n" + m, report_error=reported.append)
    assert two_lines.exchange(b"a\n") == b"E:server error\n"
    assert [type(exc) for exc in reported] == [TypeError, ValueError]
    assert re.search(r"^reply\(\) returned str, not bytes or None", str(reported[0]))
    assert re.search(r"^a message with the line framing cannot contain a newline", str(reported[1]))


def test_failing_reply_without_a_reporter_raises() -> None:
    session = ReplySession(lambda m: 1 // 0)  # type: ignore[arg-type,return-value]
    with pytest.raises(ZeroDivisionError):
        session.receive_data(b"a\n")


def test_closed_session_refuses_input() -> None:
    session = ReplySession(shout)
    session.closed()
    with pytest.raises(LocalProtocolError, match=r"^receive_data\(\) after the session"):
        session.receive_data(b"a\n")
    with pytest.raises(LocalProtocolError, match=r"^receive_eof\(\) after the session"):
        session.receive_eof()


def test_datagram_handler_keeps_limits_and_reflection_rules() -> None:
    reported: list[Exception] = []

    def reply(message: bytes) -> bytes | None:
        if message == b"boom":
            raise RuntimeError("boom")
        if message == b"huge":
            return b"x" * (MAX_UDP_PAYLOAD_BYTES + 1)
        return shout(message)

    handle = datagram_handler(reply, max_message_bytes=10, report_error=reported.append)
    assert answer_datagram(b"abc", 40000, handle) == b"ABC"
    assert answer_datagram(b"quiet", 40000, handle) is Silence.NO_REPLY
    assert answer_datagram(b"ABC", 40000, handle) is Silence.ECHO
    assert answer_datagram(b"abc", 53, handle) is Silence.SYSTEM_PORT
    assert answer_datagram(b"E:x", 40000, handle) is Silence.ERROR
    assert answer_datagram(b"", 40000, handle) is Silence.EMPTY
    assert answer_datagram(b"x" * 11, 40000, handle) == (
        b"E:message of 11 bytes exceeds the 10-byte limit"
    )
    assert answer_datagram(b"boom", 40000, handle) == REPLY_FAILED
    assert re.fullmatch(
        rb"E:reply of 65,508 bytes does not fit in one datagram \(65,507 bytes at most\)",
        handle(b"huge") or b"",
    )
    assert [str(exc) for exc in reported] == ["boom"]
