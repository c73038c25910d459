"""The uppercase service of the lecture slides (port 12000): one message in, upper-cased out.

The slides' Python 2 code upper-cases a byte string; socklab upper-cases UTF-8 text with full
Unicode rules and leaves bytes that are not valid UTF-8 as they are (ASCII letters still
upper-cased), so no input can make the service fail.
"""

from __future__ import annotations

from socklab.protocol.converter import convert_text


def upper_case(message: bytes, *, max_reply_bytes: int | None = None) -> bytes:
    """`message` upper-cased; with `max_reply_bytes`, never longer than that (UDP: no amplification).

    `bytes.upper()` only touches ASCII and never changes the length, so it is the fallback both
    for invalid UTF-8 and for text whose Unicode upper case would be longer than allowed.
    """
    converted = convert_text(message, upper=True)
    if not isinstance(converted, bytes):
        return message.upper()
    if max_reply_bytes is not None and len(converted) > max_reply_bytes:
        return message.upper()
    return converted
