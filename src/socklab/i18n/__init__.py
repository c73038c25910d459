"""The one translation layer: every user-facing line goes through `_()`.

Strategy: GNU gettext with English source strings as message ids, so English needs no catalogue
and a missing German entry falls back to readable English. Catalogues live in
`locale/<lang>/LC_MESSAGES/socklab.po` and are compiled to `.mo` inside the package, so an
installed socklab needs no gettext tools. Placeholders use `str.format` names:
`_("Listening on port {port}").format(port=port)` keeps the word order free for translators.

The language is chosen once per process: `--lang` wins, then LC_ALL, LC_MESSAGES, LANG
(the POSIX order); anything that is not German falls back to English.

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

SUPPORTED_LANGUAGES = ("en", "de")
DOMAIN = "socklab"
# os.path, not pathlib: every server process loads this module, and pathlib pulls in urllib.
LOCALE_DIR = os.path.join(os.path.dirname(__file__), "locale")

_translation: gettext.NullTranslations = gettext.NullTranslations()
_language = "en"


def choose_language(explicit: str | None, environ: Mapping[str, str]) -> str:
    """The language code to use: `explicit` if given, else the POSIX locale variables."""
    if explicit:
        candidates = [explicit]
    else:
        candidates = [environ.get(name, "") for name in ("LC_ALL", "LC_MESSAGES", "LANG")]
    for value in candidates:
        if not value:
            continue
        code = value.split(".")[0].split("_")[0].split("-")[0].lower()
        # "C" and "POSIX" mean "no localisation": English.
        return code if code in SUPPORTED_LANGUAGES else "en"
    return "en"


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


def current_language() -> str:
    """The language chosen by `set_language` ("en" until then)."""
    return _language


def _(message: str) -> str:
    """Translate one message id (an English sentence) into the current language."""
    return _translation.gettext(message)


def ngettext(singular: str, plural: str, count: int) -> str:
    """Translate a message that depends on a count ("1 client" / "2 clients")."""
    return _translation.ngettext(singular, plural, count)
