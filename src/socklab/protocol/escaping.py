"""The one function that turns a peer's bytes into text safe for a terminal.

Whatever a peer sends is printed somewhere: a server's log line, `--trace`, `capture`, `check`,
a chat message. Printed raw, `\\x1b]0;PWNED\\x07\\x1b[2J` sets the window title and clears the
screen, a CR or a newline forges a line of our own, and a 2 KiB request becomes one line that
fills the screen. Terminals act on more than ESC: C1 controls such as U+009B (CSI) start the
same sequences (ECMA-48 section 5.3), and format characters such as U+202E (right-to-left
override) reorder what is shown (the "Trojan Source" paper, CVE-2021-42574).

Strategy, so that what is shown is unambiguous and reads as typed:

* valid UTF-8 is shown as its characters (`straße` stays `straße`);
* C0 controls, DEL, C1 controls and every other character Python calls non-printable are shown
  as escapes: `\\n`, `\\r`, `\\t`, `\\x1b` for C0 and DEL, `\\u009b` for C1 and the other code
  points (so a C1 *character* never reads like an invalid *byte*);
* a byte that is not UTF-8 is shown as `\\xNN`;
* the backslash is shown as `\\\\`, so no peer can forge an escape; in quoted form the quote
  is escaped too;
* long data is cut at `max_bytes` (before escaping: a flood costs no more than the cut) and the
  total size is named: `"AAAA…" (2,078 bytes)`.

Pure: no I/O; the size note goes through the translation layer like every user-facing word.
"""

from __future__ import annotations

import codecs

from socklab.i18n import _, format_number

# Code points escaped by one table lookup: C0, DEL, C1, the backslash, and the bytes that are
# not UTF-8 (kept by the `surrogateescape` decoder as U+DC80..U+DCFF).
_NAMED = {0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t", 0x5C: "\\\\"}
_TABLE: dict[int, str] = {
    **{code: f"\\x{code:02x}" for code in (*range(0x20), 0x7F)},
    **{code: f"\\u{code:04x}" for code in range(0x80, 0xA0)},
    **{0xDC00 + byte: f"\\x{byte:02x}" for byte in range(0x80, 0x100)},
    **_NAMED,
}
_QUOTED_TABLE: dict[int, str] = {**_TABLE, 0x22: '\\"'}

# UTF-8 continuation bytes are 0b10xxxxxx; a character is at most 4 bytes long.
_CONTINUATION_MASK, _CONTINUATION = 0xC0, 0x80
_MAX_CHARACTER_BYTES = 4


def escape_for_terminal(
    data: bytes | str,
    *,
    max_bytes: int | None = None,
    quoted: bool = False,
    name_size: bool = True,
) -> str:
    """`data` as one line safe to print: control and invisible characters escaped.

    `max_bytes` cuts longer data (at a character boundary) and names its size; `quoted` wraps
    the text in double quotes and escapes the quotes inside. `name_size=False` leaves the size
    out (a cut text ends in … only), for a caller whose line names every size itself. A `str`
    (a chat message already decoded) is escaped the same way, counted in its UTF-8 bytes.
    """
    # surrogatepass: a chat message parsed from JSON may hold lone surrogates ("\\ud800"); they
    # come out as the bytes they encode to, shown as \\xNN.
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    size = len(raw)
    cut = size if max_bytes is None or size <= max_bytes else _character_boundary(raw, max_bytes)
    text = raw[:cut].decode("utf-8", "surrogateescape")
    # One C-speed translate for the frequent cases; the rare rest character by character.
    text = text.translate(_QUOTED_TABLE if quoted else _TABLE)
    if not text.isprintable():
        text = "".join(_escape_character(char) for char in text)
    if cut < size:
        text += "…"
    if quoted:
        text = f'"{text}"'
    if cut < size and name_size:
        text = _("{text} ({size} bytes)").format(text=text, size=format_number(size))
    return text


def escape_lines_for_terminal(data: bytes | str) -> str:
    """`data` that may span lines (a reply in raw framing, a sentence): each line escaped as
    `escape_for_terminal` does, the newlines kept. A peer's escape sequences, carriage returns
    and invalid bytes never reach the terminal raw; its lines still read as lines."""
    if isinstance(data, str):
        return "\n".join(escape_for_terminal(line) for line in data.split("\n"))
    return "\n".join(escape_for_terminal(line) for line in data.split(b"\n"))


def incomplete_character_bytes(data: bytes) -> int:
    """How many bytes at the end of `data` begin a UTF-8 character that is not complete yet.

    A byte stream may be cut anywhere (TCP segments, recv() calls): `straße` can arrive as
    `stra\\xc3` + `\\x9fe`. A view of a stream holds these bytes back and shows them with the
    next piece, so a character cut in two still reads as itself. 0 when the end is complete or
    not UTF-8 at all (then the escaper shows the bytes as \\xNN).
    """
    decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")
    # An incomplete character is at most 3 bytes long: only the tail needs looking at.
    decoder.decode(data[-(_MAX_CHARACTER_BYTES - 1) :])
    held, _flags = decoder.getstate()
    return len(held)


def _character_boundary(data: bytes, limit: int) -> int:
    """`limit`, moved back so that it does not split a UTF-8 character (at most 3 bytes)."""
    cut = limit
    while (
        cut > 0
        and limit - cut < _MAX_CHARACTER_BYTES - 1
        and data[cut] & _CONTINUATION_MASK == _CONTINUATION
    ):
        cut -= 1
    return cut if cut > 0 else limit


def _escape_character(char: str) -> str:
    if char.isprintable():
        return char
    code = ord(char)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


# `hexdump -C` and `tcpdump -X` both show 16 bytes a line: two groups of eight fit 80 columns.
HEXDUMP_BYTES_PER_LINE = 16


def hexdump_lines(data: bytes, *, indent: str = "", bars: bool = True) -> list[str]:
    """The other safe view of a peer's bytes: offset, 16 bytes in hex, the same bytes as text.

    `0000  4c 3a 55 0a  |L:U.|` as `hexdump -C` prints it (`--trace`), or with `bars=False`
    `0000  4c 3a 55 0a  L:U.` as `tcpdump -X` does (`capture --hex`). Only printable ASCII is
    shown as itself, every other byte as `.`, so nothing a peer sends reaches the terminal raw.
    """
    width = HEXDUMP_BYTES_PER_LINE * 3 - 1
    lines = []
    for offset in range(0, len(data), HEXDUMP_BYTES_PER_LINE):
        chunk = data[offset : offset + HEXDUMP_BYTES_PER_LINE]
        hex_part = " ".join(f"{byte:02x}" for byte in chunk)
        text = "".join(chr(byte) if 0x20 <= byte < 0x7F else "." for byte in chunk)
        shown = f"|{text}|" if bars else text
        lines.append(f"{indent}{offset:04x}  {hex_part:<{width}}  {shown}")
    return lines
