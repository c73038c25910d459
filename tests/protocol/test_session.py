"""The session state machine: greeting, requests over any chunking, errors, closing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from socklab.errors import LocalProtocolError
from socklab.protocol.converter import GREETING
from socklab.protocol.session import (
    CloseReason,
    ConverterSession,
    RequestRejected,
    SessionClosing,
    SessionState,
)


def test_greeting_first_in_each_framing() -> None:
    assert ConverterSession("line").data_to_send() == GREETING + b"\n"
    assert ConverterSession("length").data_to_send() == len(GREETING).to_bytes(4, "big") + GREETING
    assert ConverterSession("raw").data_to_send() == GREETING


def test_live_coding_sequence_line_framing() -> None:
    session = ConverterSession("line")
    session.data_to_send()
    for chunk in (b"U:lower\n", b"L:", b"UPPER\n", b"L:CONT\n"):
        session.receive_data(chunk)
    assert session.data_to_send() == b"LOWER\nupper\ncont\n"
    session.receive_data(b"C:\n")
    assert session.should_close
    assert session.take_events() == [SessionClosing(CloseReason.CLIENT_REQUESTED)]
    session.closed()
    assert session.state is SessionState.CLOSED


def test_requests_after_close_are_ignored() -> None:
    session = ConverterSession("line", greet=False)
    session.receive_data(b"U:a\nC:\nU:b\n")
    assert session.data_to_send() == b"A\n"
    session.receive_data(b"U:c\n")
    assert session.data_to_send() == b""


def test_error_keeps_connection_usable() -> None:
    session = ConverterSession("line", greet=False)
    session.receive_data(b"X:1\nU:ok\n")
    assert session.data_to_send() == b"E:unknown command 'X:'; use U:<text>, L:<text> or C:\nOK\n"
    assert session.state is SessionState.OPEN
    assert session.take_events() == [
        RequestRejected("unknown command 'X:'; use U:<text>, L:<text> or C:")
    ]


def test_over_long_message_replies_then_closes() -> None:
    session = ConverterSession("line", max_message_bytes=10, greet=False)
    session.receive_data(b"U:" + b"x" * 20)
    assert session.data_to_send() == b"E:message of over 10 bytes exceeds the 10-byte limit\n"
    assert session.should_close


def test_eof_serves_last_line_then_closes() -> None:
    session = ConverterSession("line", greet=False)
    session.receive_data(b"U:abc")
    assert session.has_partial_message
    session.receive_eof()
    assert session.data_to_send() == b"ABC\n"
    assert session.take_events() == [SessionClosing(CloseReason.PEER_EOF)]


def test_truncated_length_frame_closes() -> None:
    session = ConverterSession("length", greet=False)
    session.receive_data(b"\x00\x00\x00\x09U:a")
    session.receive_eof()
    events = session.take_events()
    assert events == [
        SessionClosing(
            CloseReason.TRUNCATED, "connection closed in the middle of a message (7 bytes received)"
        )
    ]


def test_misuse_after_closed_raises() -> None:
    session = ConverterSession()
    session.closed()
    with pytest.raises(LocalProtocolError):
        session.receive_data(b"U:a\n")
    with pytest.raises(LocalProtocolError):
        session.receive_eof()


requests = st.lists(
    st.tuples(
        st.sampled_from([b"U:", b"L:", b"X:"]),
        st.text(max_size=20).map(lambda t: t.replace("\n", "").replace("\r", "").encode()),
    ),
    max_size=10,
)


@given(requests, st.data())
def test_session_output_independent_of_chunking(
    reqs: list[tuple[bytes, bytes]], data: st.DataObject
) -> None:
    stream = b"".join(cmd + text + b"\n" for cmd, text in reqs)
    whole = ConverterSession("line")
    whole.receive_data(stream)
    expected = whole.data_to_send()

    chunked = ConverterSession("line")
    position = 0
    while position < len(stream):
        size = data.draw(st.integers(min_value=1, max_value=max(1, len(stream) - position)))
        chunked.receive_data(stream[position : position + size])
        position += size
    assert chunked.data_to_send() == expected


def test_too_many_bad_requests_in_a_row_close_the_connection() -> None:
    from socklab.protocol.limits import MAX_ERRORS_IN_A_ROW
    from socklab.protocol.session import TOO_MANY_ERRORS_REPLY, CloseReason

    session = ConverterSession("line", greet=False)
    session.receive_data(b"\n" * (64 * 1024))  # one read of empty lines: each one a bad request
    out = session.data_to_send()
    lines = out.splitlines()
    assert len(lines) == MAX_ERRORS_IN_A_ROW + 1 and lines[-1] == TOO_MANY_ERRORS_REPLY
    assert len(out) < 2048  # not ~3 MB of error replies for 64 KiB of input
    assert session.should_close
    assert session.take_events()[-1] == SessionClosing(CloseReason.TOO_MANY_ERRORS)


def test_a_served_request_resets_the_run_of_errors() -> None:
    from socklab.protocol.limits import MAX_ERRORS_IN_A_ROW

    session = ConverterSession("line", greet=False)
    bad_run = b"X:\n" * (MAX_ERRORS_IN_A_ROW - 1)
    session.receive_data(bad_run + b"U:a\n" + bad_run + b"L:B\n")
    assert not session.should_close
    assert session.data_to_send().count(b"E:") == 2 * (MAX_ERRORS_IN_A_ROW - 1)


def test_a_server_session_records_no_events() -> None:
    session = ConverterSession("line", greet=False, record_events=False)
    session.receive_data(b"X:\n" * 5 + b"C:\n")
    assert session.take_events() == []
    assert session.should_close


# -- the server stops (issue 15 §7) ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("framing", "partial", "notice"),
    [
        ("line", b"U:half", b"E:server stopping\n"),
        ("length", b"\x00\x00\x00\x0eU:hal", b"\x00\x00\x00\x11E:server stopping"),
        ("raw", b"U:", b""),  # raw cannot tell a notice from a reply: only the close
    ],
)
def test_a_client_mid_request_is_told_the_server_is_stopping(
    framing: str, partial: bytes, notice: bytes
) -> None:
    session = ConverterSession(framing, greet=False)
    session.receive_data(partial)
    assert session.data_to_send() == b""
    session.server_stopping()
    assert session.data_to_send() == notice
    assert session.should_close
    assert session.take_events() == [SessionClosing(CloseReason.SERVER_STOPPING)]


def test_an_idle_client_is_closed_without_a_notice_at_the_stop() -> None:
    session = ConverterSession("line", greet=False)
    assert session.exchange(b"U:done\n") == b"DONE\n"
    session.server_stopping()
    assert session.data_to_send() == b""
    assert session.should_close


def test_the_stop_changes_nothing_for_a_session_already_closing() -> None:
    session = ConverterSession("line", greet=False)
    session.receive_data(b"C:\n")
    session.take_events()
    session.server_stopping()
    assert session.data_to_send() == b""
    assert session.take_events() == []
    session.closed()
    session.server_stopping()  # after CLOSED too: the stop may race with the close
    assert session.data_to_send() == b""
