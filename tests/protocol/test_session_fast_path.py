"""The single-complete-line fast path gives exactly what the general path gives.

`ConverterSession.receive_data` answers a chunk that is one whole line without building a frame
list; these tests feed the same input through sessions and compare with a reference decoding
that goes through `LineFramer.receive_data` only (same chunks), for whole chunks, bytes one at a time, and
every edge the fast path must refuse (partial line buffered, CR LF, over-long line, errors, C:).
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from socklab.protocol.framing.lines import LineFramer
from socklab.protocol.session import ConverterSession, SessionClosing, encoded_greeting


def replies(
    chunks: list[bytes], *, max_message_bytes: int = 64, fast: bool = True
) -> tuple[bytes, list[object]]:
    session = ConverterSession("line", max_message_bytes=max_message_bytes, greet=False)
    if not fast:
        session._maybe_single_message = None  # the general path alone
    out = []
    for chunk in chunks:
        if session.should_close:
            break
        session.receive_data(chunk)
        out.append(session.data_to_send())
    return b"".join(out), session.take_events()


def test_one_line_chunk_is_answered() -> None:
    assert replies([b"U:abc\n"]) == (b"ABC\n", [])
    assert replies([b"L:ABC\r\n"]) == (b"abc\n", [])


def test_fast_path_refuses_what_it_cannot_take() -> None:
    framer = LineFramer(8)
    assert framer.maybe_single_message(b"U:a\n") == b"U:a"
    assert framer.maybe_single_message(b"U:a\r\n") == b"U:a"
    assert framer.maybe_single_message(b"U:a\nU:b\n") is None  # two lines
    assert framer.maybe_single_message(b"U:a") is None  # no newline yet
    assert framer.maybe_single_message(b"") is None  # nothing at all
    assert framer.maybe_single_message(b"U:abcdefgh\n") is None  # over the limit: general path
    framer.receive_data(b"U:")
    assert framer.maybe_single_message(b"a\n") is None  # a partial line is buffered


def test_partial_then_single_line_joins_correctly() -> None:
    assert replies([b"U:ab", b"c\n", b"L:X\n"]) == (b"ABC\nx\n", [])


def test_errors_and_close_keep_their_events() -> None:
    out, events = replies([b"X:1\n", b"U:\xff\n", b"C:\n", b"U:never\n"])
    assert out.startswith(b"E:unknown command")
    assert b"E:request is not valid UTF-8" in out
    assert b"NEVER" not in out
    assert isinstance(events[-1], SessionClosing)


def test_over_long_single_line_is_rejected_as_before() -> None:
    out, events = replies([b"U:" + b"a" * 100 + b"\n"], max_message_bytes=64)
    assert out.startswith(b"E:message of ") and out.endswith(b"exceeds the 64-byte limit\n")
    assert isinstance(events[-1], SessionClosing)


def test_greeting_constant_matches_the_session() -> None:
    for framing in ("line", "length"):
        assert ConverterSession(framing).data_to_send() == encoded_greeting(framing)


lines = st.lists(
    st.sampled_from([b"U:ab", b"L:CD", b"U:", b"X:", b"C:", b"U:\xc3\x9f", b"L:" + b"Q" * 70]),
    max_size=6,
).map(lambda items: b"".join(item + b"\n" for item in items))


@given(lines, st.data())
def test_any_chunking_answers_like_the_general_path(data: bytes, draw: st.DataObject) -> None:
    cuts = sorted(draw.draw(st.lists(st.integers(0, len(data)), max_size=8)))
    chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True) if b > a]
    assert replies(chunks) == replies(chunks, fast=False)
