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
        general_path_only(session)
    return feed(session, chunks), session.take_events()


def general_path_only(session: ConverterSession) -> None:
    session._maybe_single_message = None
    session._holds_one_bare_line = None


def feed(session: ConverterSession, chunks: list[bytes]) -> bytes:
    """Every reply, through `receive_data()` and `data_to_send()`, until the session closes."""
    out = []
    for chunk in chunks:
        if session.should_close:
            break
        session.receive_data(chunk)
        out.append(session.data_to_send())
    return b"".join(out)


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
    st.sampled_from(
        [b"U:ab", b"L:CD", b"U:", b"X:", b"C:", b"U:\xc3\x9f", b"L:" + b"Q" * 70, b"U:a\rb\r", b""]
    ),
    max_size=6,
).map(lambda items: b"".join(item + b"\n" for item in items))


@given(lines, st.data())
def test_any_chunking_answers_like_the_general_path(data: bytes, draw: st.DataObject) -> None:
    cuts = sorted(draw.draw(st.lists(st.integers(0, len(data)), max_size=8)))
    chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True) if b > a]
    assert replies(chunks) == replies(chunks, fast=False)


def exchanged(chunks: list[bytes], framing: str = "line") -> tuple[bytes, list[object], int]:
    """What `exchange()` answers, chunk by chunk, with the events and the request count."""
    session = ConverterSession(framing, max_message_bytes=64, greet=False)
    out = []
    for chunk in chunks:
        if session.should_close:
            break
        out.append(session.exchange(chunk))
    return b"".join(out), session.take_events(), session.requests_served


def fed(chunks: list[bytes], framing: str = "line") -> tuple[bytes, list[object], int]:
    """The same through `receive_data()` and `data_to_send()`, the general path only."""
    session = ConverterSession(framing, max_message_bytes=64, greet=False)
    general_path_only(session)
    return feed(session, chunks), session.take_events(), session.requests_served


@given(lines, st.data())
def test_exchange_answers_like_receive_then_send(data: bytes, draw: st.DataObject) -> None:
    cuts = sorted(draw.draw(st.lists(st.integers(0, len(data)), max_size=8)))
    chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True) if b > a]
    assert exchanged(chunks) == fed(chunks)
    framed = [len(line).to_bytes(4, "big") + line for line in data.split(b"\n") if line]
    assert exchanged(framed, "length") == fed(framed, "length")


def test_exchange_sends_a_pending_greeting_first() -> None:
    session = ConverterSession("line")
    assert session.exchange(b"U:a\n") == encoded_greeting("line") + b"A\n"
    assert session.requests_served == 1


def test_in_place_answers_only_ascii_case_requests() -> None:
    from socklab.protocol.converter import answer_ascii_in_place

    assert answer_ascii_in_place(b"U:abc\n") == b"ABC\n"
    assert answer_ascii_in_place(b"L:ABC\n") == b"abc\n"
    assert answer_ascii_in_place(b"U:\n") == b"\n"
    assert answer_ascii_in_place(b"U:\xc3\x9f\n") is None  # non-ASCII: full Unicode mapping
    assert answer_ascii_in_place(b"C:\n") is None
    assert answer_ascii_in_place(b"X:a\n") is None


def test_bare_line_check_refuses_what_cannot_be_answered_in_place() -> None:
    framer = LineFramer(8)
    assert framer.holds_one_bare_line(b"U:a\n")
    assert framer.holds_one_bare_line(b"\n")
    assert not framer.holds_one_bare_line(b"U:a\r\n")  # the CR must go: general path
    assert not framer.holds_one_bare_line(b"U:a\nU:b\n")
    assert not framer.holds_one_bare_line(b"U:a")
    assert not framer.holds_one_bare_line(b"")
    assert framer.holds_one_bare_line(b"U:abcdef\n")  # 8 bytes: at the limit
    assert not framer.holds_one_bare_line(b"U:abcdefg\n")  # 9 bytes: over it
    framer.receive_data(b"U:")
    assert not framer.holds_one_bare_line(b"a\n")  # a partial line is buffered
