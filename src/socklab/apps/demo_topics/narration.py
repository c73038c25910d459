"""How a lesson talks: headings, indented steps, and the "Observe:" lines that carry the point."""

from __future__ import annotations

from collections.abc import Callable

from socklab.i18n import _

Say = Callable[[str], None]
# Every wait in a lesson is bounded by this; loopback answers in microseconds.
TIMEOUT_S = 5.0


def heading(say: Say, title: str) -> None:
    say("")
    say(f"== {title} ==")


def step(say: Say, text: str) -> None:
    say("   " + text)


def observe(say: Say, text: str) -> None:
    say("   -> " + _("Observe: {text}").format(text=text))


def show_bytes(data: bytes) -> str:
    """Bytes as a student would type them in Python: b'L:UPPER\\n'."""
    return repr(bytes(data))
