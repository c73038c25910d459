"""The one translation layer: every user-facing line goes through `_()`.

Strategy: GNU gettext with English source strings as message ids, so English needs no catalogue
and a missing German entry falls back to readable English. Catalogues live in
`locale/<lang>/LC_MESSAGES/socklab.po` and are compiled to `.mo` inside the package, so an
installed socklab needs no gettext tools. Placeholders use `str.format` names:
`_("Listening on port {port}").format(port=port)` keeps the word order free for translators.

The language is chosen once per process: `--lang` wins, then LANGUAGE (a colon-separated list of
preferences, as GNU gettext reads it: the first supported one wins), then LC_ALL, LC_MESSAGES,
LANG (the POSIX order); anything that is not German falls back to English.

Counts go through `ngettext` (or `format_count`, which also formats the number) (German and English both have one singular and one plural form:
`Plural-Forms: nplurals=2; plural=(n != 1);`), and every number a user reads goes through
`format_number`, which writes the language's separators: "65,537" and "0.98" in English,
"65.537" and "0,98" in German (the Duden's thousands point and decimal comma). Babel knows every
locale's separators, but it is only a development dependency (it compiles the catalogue); two
languages need two lines of data, not a runtime dependency.

argparse writes words of its own ("usage:", "show this help message and exit", its error
messages) through module-level `_` and `ngettext` names bound from gettext's global domain.
`set_language` points those names at this catalogue, so help and usage errors are in one
language; argparse's msgids are translated in parts/core.po like ours.
"""

from __future__ import annotations

import argparse
import gettext
import os
from collections.abc import Mapping
from typing import NamedTuple

SUPPORTED_LANGUAGES = ("en", "de")
DOMAIN = "socklab"
# os.path, not pathlib: every server process loads this module, and pathlib pulls in urllib.
LOCALE_DIR = os.path.join(os.path.dirname(__file__), "locale")

# (thousands separator, decimal separator) of each language: en as in "65,537.5", de as in
# "65.537,5" (DIN 5008 and the Duden group thousands with a point and write a decimal comma).
NUMBER_SEPARATORS = {"en": (",", "."), "de": (".", ",")}

_translation: gettext.NullTranslations = gettext.NullTranslations()
_language = "en"


def _language_code(value: str) -> str:
    """ "de_DE.UTF-8@euro" -> "de"; "C" and "POSIX" -> "c", "posix" (supported by no catalogue)."""
    return value.split(".")[0].split("@")[0].split("_")[0].split("-")[0].strip().lower()


def choose_language(explicit: str | None, environ: Mapping[str, str]) -> str:
    """The language code to use: `explicit` if given, else LANGUAGE, then the POSIX variables.

    LANGUAGE is a list of preferences ("fr:de:en"): the first language socklab speaks wins, and a
    list naming none of them leaves the choice to the locale variables. Of LC_ALL, LC_MESSAGES and
    LANG the first one set decides, and anything but German ("C", "POSIX", "fr_FR") is English.
    GNU gettext ignores LANGUAGE when the locale is "C"; socklab does not, because containers and
    CI machines often run with LANG=C.UTF-8 and LANGUAGE=de should still mean German there.
    """
    if explicit:
        code = _language_code(explicit)
        return code if code in SUPPORTED_LANGUAGES else "en"
    for preference in environ.get("LANGUAGE", "").split(":"):
        code = _language_code(preference)
        if code in SUPPORTED_LANGUAGES:
            return code
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = environ.get(name, "")
        if value:
            code = _language_code(value)
            return code if code in SUPPORTED_LANGUAGES else "en"
    return "en"


def current_language() -> str:
    """The code of the language this process speaks ("en" or "de")."""
    return _language


def set_language(language: str) -> None:
    """Switch the process-wide catalogue; unknown languages fall back to English."""
    global _translation, _language
    _language = language if language in SUPPORTED_LANGUAGES else "en"
    _translation = gettext.translation(
        DOMAIN, localedir=LOCALE_DIR, languages=[_language], fallback=True
    )
    # argparse looks its `_`/`ngettext` up at call time (Lib/argparse.py imports them from
    # gettext at module level), so rebinding them translates every word it prints.
    setattr(argparse, "_", _)  # noqa: B010 - argparse has no public hook for this
    setattr(argparse, "ngettext", ngettext)  # noqa: B010


def _(message: str) -> str:
    """Translate one message id (an English sentence) into the current language."""
    return _translation.gettext(message)


def ngettext(singular: str, plural: str, count: int) -> str:
    """Translate a message that depends on a count ("1 client" / "2 clients")."""
    return _translation.ngettext(singular, plural, count)


def format_number(value: float, decimals: int | None = 0) -> str:
    """`value` with `decimals` digits after the point, thousands grouped, in the current language.

    format_number(65537) is "65,537" in English and "65.537" in German; format_number(0.98, 2) is
    "0.98" and "0,98". decimals=None writes as many digits as the value needs (at most six, no
    exponent: 12.5 -> "12.5", 30.0 -> "30"), for numbers a user typed. Pass the count itself to
    `ngettext` and this text to the message.
    """
    return _format_number_in(_language, value, decimals)


def _format_number_in(language: str, value: float, decimals: int | None) -> str:
    if decimals is None:
        _whole, _point, fraction = f"{value:.6f}".rstrip("0").partition(".")
        decimals = len(fraction)
    grouped = f"{value:,.{decimals}f}"
    thousands, decimal = NUMBER_SEPARATORS[language]
    # One pass over the characters, so that swapping "," and "." cannot mix them up.
    return grouped.translate(str.maketrans(",.", thousands + decimal))


def format_count(singular: str, plural: str, count: int) -> str:
    """A counted noun in the right form and number format: "1 request", "65,537 requests".

    `singular` and `plural` are msgids with a `{count}` placeholder, translated with `ngettext`
    (extraction keyword `format_count:1,2`, like `ngettext`).
    """
    return ngettext(singular, plural, count).format(count=format_number(count))


class Fixed(NamedTuple):
    """A number to show with exactly `decimals` digits after the point in a `Deferred`."""

    value: float
    decimals: int


class Deferred(str):
    """A message made where the words are known but shown later: its `str` value is English,
    `translated()` is the current language at the time it is called.

    The sans-I/O core (`protocol/`) words what a peer did wrong once, and the same words go both
    onto the wire (an `E:` reply, a chat `bye` reason: English, part of the protocol) and to a
    user's terminal (translated). Being a `str`, a Deferred goes wherever the English line went
    (`.encode()`, slicing, comparison); the CLI shows it with `translate()`. Numbers among the
    values are formatted when the text is made (English) and again when it is translated: an
    `int` with no decimals, a `float` with as many as it has (round it first), a `Fixed` with
    its own number of decimals.
    """

    _singular: str
    _plural: str | None
    _count: int | None
    _values: dict[str, object]

    def __new__(
        cls, singular: str, plural: str | None, count: int | None, values: dict[str, object]
    ) -> Deferred:
        english = _render(gettext.NullTranslations(), "en", singular, plural, count, values)
        text = super().__new__(cls, english)
        text._singular, text._plural, text._count, text._values = singular, plural, count, values
        return text

    def translated(self) -> str:
        """The message in the language of this process, as it is now."""
        return _render(
            _translation, _language, self._singular, self._plural, self._count, self._values
        )

    def __reduce__(self) -> tuple[object, ...]:
        # A worker process may pickle an event that carries one.
        return (Deferred, (self._singular, self._plural, self._count, self._values))


def _render(
    catalogue: gettext.NullTranslations,
    language: str,
    singular: str,
    plural: str | None,
    count: int | None,
    values: dict[str, object],
) -> str:
    if plural is None or count is None:
        template = catalogue.gettext(singular)
    else:
        template = catalogue.ngettext(singular, plural, count)
        values = {"count": count, **values}
    return template.format(**{name: _shown(language, value) for name, value in values.items()})


def _shown(language: str, value: object) -> object:
    if isinstance(value, Fixed):
        return _format_number_in(language, value.value, value.decimals)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _format_number_in(language, value, 0 if isinstance(value, int) else None)
    return value


def lazy_gettext(message: str, **values: object) -> Deferred:
    """`_(message).format(**values)`, translated only when shown (see `Deferred`)."""
    return Deferred(message, None, None, values)


def lazy_ngettext(singular: str, plural: str, count: int, **values: object) -> Deferred:
    """`ngettext(...)` with `{count}` and `values` filled in, translated only when shown."""
    return Deferred(singular, plural, count, values)


def translate(text: str) -> str:
    """`text` in the current language if it is a `Deferred`, else unchanged (peer data, ...)."""
    return text.translated() if isinstance(text, Deferred) else text
