"""The one escaper: every byte from a peer reaches a terminal visible and inert."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from socklab.protocol.escaping import (
    escape_for_terminal,
    hexdump_lines,
    incomplete_character_bytes,
)

# What a hostile peer sends to paint on an operator's terminal: OSC (window title), CSI (clear
# screen), a C1 CSI in UTF-8 and as a raw byte, a CR that rewrites the line, bidi override.
HOSTILE = b"\x1b]0;PWNED\x07\x1b[2J\xc2\x9b2J\x9b\rforged\n\xe2\x80\xaeabc\x7f"


def test_hostile_sequences_become_visible_escapes() -> None:
    shown = escape_for_terminal(HOSTILE)
    assert shown == ("\\x1b]0;PWNED\\x07\\x1b[2J\\u009b2J\\x9b\\rforged\\n\\u202eabc\\x7f")
    assert shown.isprintable()


def test_text_reads_as_typed_and_backslash_cannot_forge_an_escape() -> None:
    assert escape_for_terminal("U:straße 🙂".encode()) == "U:straße 🙂"
    assert escape_for_terminal(b"\\x1b") == "\\\\x1b"
    assert escape_for_terminal(b'say "hi"') == 'say "hi"'
    assert escape_for_terminal(b'say "hi"', quoted=True) == '"say \\"hi\\""'


def test_long_data_is_cut_before_escaping_with_its_size() -> None:
    assert escape_for_terminal(b"a" * 2078, max_bytes=4) == "aaaa… (2,078 bytes)"
    assert escape_for_terminal(b"a" * 2078, max_bytes=4, quoted=True) == '"aaaa…" (2,078 bytes)'
    # Never inside a UTF-8 character: ß is 2 bytes.
    assert escape_for_terminal("ß".encode() * 10, max_bytes=5) == "ßß… (20 bytes)"
    assert escape_for_terminal(b"abc", max_bytes=3) == "abc"
    # A line that names every size itself asks for the cut text alone: one size, not two.
    assert escape_for_terminal(b"a" * 2078, max_bytes=4, quoted=True, name_size=False) == (
        '"aaaa…"'
    )


def test_text_that_is_already_a_string_is_escaped_the_same_way() -> None:
    assert escape_for_terminal("a\x1b[2Jb\u0085\ud800") == "a\\x1b[2Jb\\u0085\\xed\\xa0\\x80"


@given(st.binary(max_size=300), st.booleans(), st.none() | st.integers(1, 64))
def test_anything_comes_out_as_one_printable_line(
    data: bytes, quoted: bool, max_bytes: int | None
) -> None:
    shown = escape_for_terminal(data, max_bytes=max_bytes, quoted=quoted)
    assert shown.isprintable()


def test_hexdump_lines_as_hexdump_c_prints_them() -> None:
    assert hexdump_lines(b"L:U\n\x1b[2J" + bytes(range(0x7E, 0x86)) + b"x") == [
        "0000  4c 3a 55 0a 1b 5b 32 4a 7e 7f 80 81 82 83 84 85  |L:U..[2J~.......|",
        "0010  78                                               |x|",
    ]
    assert hexdump_lines(b"") == []


def test_incomplete_character_bytes_finds_a_character_cut_at_the_end() -> None:
    assert incomplete_character_bytes(b"stra\xc3") == 1
    assert incomplete_character_bytes(b"a\xf0\x9f\x98") == 3
    assert incomplete_character_bytes("straße".encode()) == 0
    assert incomplete_character_bytes(b"\xff") == 0  # not UTF-8: nothing to wait for
    assert incomplete_character_bytes(b"\x9f\x98") == 0  # continuations without a start
    assert incomplete_character_bytes(b"") == 0


@given(st.text(), st.data())
def test_holding_back_the_incomplete_tail_shows_any_cut_text_as_typed(
    text: str, data: st.DataObject
) -> None:
    encoded = text.encode("utf-8", "surrogatepass")
    cut = data.draw(st.integers(0, len(encoded)))
    first, second = encoded[:cut], encoded[cut:]
    held = incomplete_character_bytes(first)
    shown = escape_for_terminal(first[: len(first) - held]) + escape_for_terminal(
        first[len(first) - held :] + second
    )
    assert shown == escape_for_terminal(encoded)


def test_escape_lines_keeps_newlines_and_escapes_the_rest() -> None:
    from socklab.protocol.escaping import escape_lines_for_terminal

    assert escape_lines_for_terminal(b"upper\nl:\x1b[2J\xff\r") == "upper\nl:\\x1b[2J\\xff\\r"
    assert escape_lines_for_terminal("STRASSE\n\u202e") == "STRASSE\n\\u202e"
