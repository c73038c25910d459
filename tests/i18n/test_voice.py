"""The German catalogue speaks in one voice: *du*, never *Sie*, and one word for each thing.

(That every msgid has a non-empty German translation is checked in test_catalogue.py.)
"""

from __future__ import annotations

import re

from tests.i18n.catalogue import german_translations

# Capitalised inside a sentence these words only address the reader formally ("Starten Sie es",
# "die Sie einsehen dürfen"); "sie" (they) is lower-case there. At the start of a sentence "Sie"
# may also mean "they", so an msgid whose German starts a sentence with it is listed here.
FORMAL_ADDRESS = re.compile(r"\b(Sie|Ihnen|Ihr|Ihre|Ihren|Ihrem|Ihrer|Ihres)\b")
SENTENCE_START = re.compile(r"(^|[.!?:;]\s+|\n)$")
ALLOWED_SENTENCE_START: set[str] = set()

# One German word for each thing, whichever command says it.
ONE_WORD = {
    r"\bConverter\b": "Konverter (the command name 'converter' stays lower-case)",
    r"\bVorgabe\b": "Standard (as in '(Standard: ...)')",
    r"\bKonvertierer\b": "Konverter",
}


def formal_address(text: str) -> list[str]:
    """The words of `text` that address the reader as *Sie*."""
    found = []
    for match in FORMAL_ADDRESS.finditer(text):
        at_sentence_start = SENTENCE_START.search(text[: match.start()]) is not None
        if not at_sentence_start or match.group(1) != "Sie":
            found.append(match.group(1))
        else:
            found.append("Sie (sentence start)")
    return found


def _forms(translation: str | tuple[str, ...]) -> list[str]:
    return [translation] if isinstance(translation, str) else list(translation)


def test_german_says_du_not_sie() -> None:
    wrong = [
        f"{message!r}: {form!r}"
        for message, translation in german_translations().items()
        if message not in ALLOWED_SENTENCE_START
        for form in _forms(translation)
        if formal_address(form)
    ]
    assert not wrong, "German addresses the reader with du:\n" + "\n".join(wrong)


def test_formal_address_is_recognised_and_they_is_not() -> None:
    assert formal_address("Starten Sie es mit sudo") == ["Sie"]
    assert formal_address("Prozesse, die Sie einsehen dürfen") == ["Sie"]
    assert formal_address("Lesen Sie Ihre Antworten") == ["Sie", "Ihre"]
    assert formal_address("Sie gehören zu anderen Benutzern") == ["Sie (sentence start)"]
    assert formal_address("Die Sockets: sie gehören anderen") == []
    assert formal_address("Starte es mit sudo; gib Python die Capability") == []


def test_one_german_word_for_each_thing() -> None:
    wrong = [
        f"{form!r}: say {word}"
        for translation in german_translations().values()
        for form in _forms(translation)
        for pattern, word in ONE_WORD.items()
        if re.search(pattern, form)
    ]
    assert not wrong, "\n".join(wrong)
