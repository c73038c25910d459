"""Every framer fed whole, one byte at a time, in any chunking, and with trailing bytes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from socklab.protocol.framing import FRAMINGS, FrameTooLong, TruncatedFrame, make_framer
from socklab.protocol.framing.base import FrameEvent
from socklab.protocol.framing.length_prefix import LengthPrefixFramer
from socklab.protocol.framing.lines import LineFramer
from socklab.protocol.framing.raw import RawFramer

LIMIT = 64


def feed_chunks(framer_name: str, chunks: list[bytes], limit: int = LIMIT) -> list[FrameEvent]:
    framer = make_framer(framer_name, limit)
    events: list[FrameEvent] = []
    for chunk in chunks:
        events += framer.receive_data(chunk)
    events += framer.receive_eof()
    return events


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, start = [], 0
    for point in points:
        pieces.append(data[start:point])
        start = point
    pieces.append(data[start:])
    return pieces


# --- line framing -------------------------------------------------------------------------------


def test_lines_whole_input() -> None:
    assert feed_chunks("line", [b"U:a\nL:B\n"]) == [b"U:a", b"L:B"]


def test_lines_one_byte_at_a_time() -> None:
    data = b"U:abc\r\nL:XYZ\n"
    assert feed_chunks("line", [bytes([b]) for b in data]) == [b"U:abc", b"L:XYZ"]


def test_lines_split_request_as_on_the_slide() -> None:
    framer = LineFramer(LIMIT)
    assert framer.receive_data(b"L:") == []
    assert framer.has_partial_message
    assert framer.receive_data(b"UPPER\n") == [b"L:UPPER"]
    assert not framer.has_partial_message


def test_lines_trailing_unterminated_line_is_a_message_at_eof() -> None:
    framer = LineFramer(LIMIT)
    assert framer.receive_data(b"U:a\nU:b") == [b"U:a"]
    assert framer.receive_eof() == [b"U:b"]


def test_lines_crlf_split_between_chunks() -> None:
    assert feed_chunks("line", [b"U:a\r", b"\n"]) == [b"U:a"]


def test_lines_exactly_the_limit_is_served() -> None:
    line = b"U:" + b"x" * (LIMIT - 2)
    assert feed_chunks("line", [line + b"\n"]) == [line]


def test_lines_over_limit_in_one_chunk_report_what_a_cut_stream_would() -> None:
    # The error reply must not depend on how TCP cut the stream (issue 6's fuzz contract): fed
    # one byte at a time only "over the limit" is known, so a whole line says the same.
    line = b"x" * (LIMIT + 1)
    whole = feed_chunks("line", [b"U:ok\n" + line + b"\nU:after\n"])
    assert whole == [b"U:ok", FrameTooLong(LIMIT + 1, LIMIT, exact=False)]
    assert isinstance(whole[1], FrameTooLong)
    assert (
        whole[1].describe() == f"message of over {LIMIT:,} bytes exceeds the {LIMIT:,}-byte limit"
    )


def test_lines_over_limit_without_newline_fails_early_and_buffers_little() -> None:
    framer = LineFramer(LIMIT)
    events: list[FrameEvent] = []
    for _ in range(LIMIT * 4):
        events += framer.receive_data(b"y")
        assert framer.buffered_bytes <= LIMIT + 1
    assert len(events) == 1
    assert isinstance(events[0], FrameTooLong)
    assert (
        events[0].describe() == f"message of over {LIMIT:,} bytes exceeds the {LIMIT:,}-byte limit"
    )
    assert framer.receive_data(b"\nU:x\n") == []  # finished after a violation


def test_lines_encode() -> None:
    assert LineFramer(LIMIT).encode(b"ABC") == b"ABC\n"


# --- length prefix ------------------------------------------------------------------------------


def frame(payload: bytes) -> bytes:
    return len(payload).to_bytes(4, "big") + payload


def test_length_whole_and_bytewise() -> None:
    data = frame(b"U:a") + frame(b"") + frame(b"L:B")
    assert feed_chunks("length", [data]) == [b"U:a", b"", b"L:B"]
    assert feed_chunks("length", [bytes([b]) for b in data]) == [b"U:a", b"", b"L:B"]


def test_length_header_over_limit_is_refused_before_buffering() -> None:
    framer = LengthPrefixFramer(LIMIT)
    events = framer.receive_data((2**32 - 1).to_bytes(4, "big") + b"abc")
    assert events == [FrameTooLong(2**32 - 1, LIMIT, exact=True)]
    assert framer.buffered_bytes == 0
    assert FrameTooLong(70_000, 65_536, True).describe() == (
        "message of 70,000 bytes exceeds the 65,536-byte limit"
    )


def test_length_truncated_at_eof() -> None:
    # 4 header bytes and 4 of the 5 payload bytes arrived.
    assert feed_chunks("length", [frame(b"U:abc")[:-1]]) == [TruncatedFrame(8)]


def test_length_encode_roundtrip() -> None:
    framer = LengthPrefixFramer(LIMIT)
    assert framer.receive_data(framer.encode(b"hello")) == [b"hello"]


# --- raw (naive on purpose) ---------------------------------------------------------------------


def test_raw_works_when_each_send_is_one_chunk() -> None:
    chunks = [b"U:lower", b"L:", b"UPPER\n", b"L:CONT\n", b"C:"]
    assert feed_chunks("raw", chunks) == [b"U:lower", b"L:UPPER\n", b"L:CONT\n", b"C:"]


def test_raw_breaks_when_sends_merge() -> None:
    # The lesson: two requests in one chunk become one request whose text holds the second.
    assert feed_chunks("raw", [b"U:aL:B"]) == [b"U:aL:B"]


def test_raw_breaks_when_a_request_is_split() -> None:
    assert feed_chunks("raw", [b"U:hel", b"lo"]) == [b"U:hel", TruncatedFrame(2)]


def test_raw_text_longer_than_1500_bytes_spills_into_a_command() -> None:
    events = RawFramer(65536).receive_data(b"U:" + b"a" * 1500 + b"U:b")
    assert events == [b"U:" + b"a" * 1500, b"U:b"]


# --- properties ---------------------------------------------------------------------------------

messages = st.lists(
    st.binary(max_size=40).filter(lambda m: b"\n" not in m and not m.endswith(b"\r")), max_size=8
)


@given(messages, st.lists(st.integers(min_value=0), max_size=20))
def test_lines_any_chunking_decodes_the_same(msgs: list[bytes], cuts: list[int]) -> None:
    data = b"".join(m + b"\n" for m in msgs)
    assert feed_chunks("line", split_at(data, cuts)) == msgs


@given(
    st.lists(st.binary(max_size=40), max_size=8), st.lists(st.integers(min_value=0), max_size=20)
)
def test_length_any_chunking_decodes_the_same(msgs: list[bytes], cuts: list[int]) -> None:
    data = b"".join(frame(m) for m in msgs)
    assert feed_chunks("length", split_at(data, cuts)) == msgs


@pytest.mark.parametrize("name", sorted(FRAMINGS))
@given(data=st.binary(max_size=300), cuts=st.lists(st.integers(min_value=0), max_size=30))
def test_any_input_never_raises_and_stays_bounded(name: str, data: bytes, cuts: list[int]) -> None:
    framer = make_framer(name, LIMIT)
    for chunk in split_at(data, cuts):
        for event in framer.receive_data(chunk):
            if isinstance(event, bytes):
                assert len(event) <= max(LIMIT, 2 + 1500)
        assert framer.buffered_bytes <= LIMIT + len(chunk) + 4
    framer.receive_eof()
