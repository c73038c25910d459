"""What the i18n tests compare: the msgids the code uses and the German catalogue parts.

Message ids are extracted with babel's Python extractor (keywords `_`, `ngettext`, `format_count`, `lazy_gettext` and `lazy_ngettext`), the
same way `pybabel extract` would, from every module under src/socklab; argparse's own msgids
are extracted from the argparse module of the running interpreter.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract, extract_from_dir
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "src" / "socklab"
PARTS = SOURCE / "i18n" / "locale" / "de" / "parts"
KEYWORDS = {
    "_": None,
    "ngettext": (1, 2),
    "format_count": (1, 2),
    "lazy_gettext": None,
    "lazy_ngettext": (1, 2),
}

MessageId = str | tuple[str, str]


def used_message_ids() -> dict[MessageId, list[str]]:
    """msgid -> ["path:line", ...] for every translatable string in src/socklab."""
    found: dict[MessageId, list[str]] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
        str(SOURCE), method_map=[("**.py", "python")], keywords=KEYWORDS
    ):
        key = message if isinstance(message, str) else tuple(message[:2])
        found.setdefault(key, []).append(f"src/socklab/{filename}:{lineno}")  # type: ignore[arg-type]
    return found


def argparse_message_ids() -> set[MessageId]:
    with open(argparse.__file__, "rb") as source:
        return {
            message if isinstance(message, str) else tuple(message[:2])  # type: ignore[misc]
            for _lineno, message, _comments, _context in extract(
                "python", source, keywords=KEYWORDS
            )
        }


def german_parts() -> dict[str, Catalog]:
    catalogs = {}
    for part in sorted(PARTS.glob("*.po")):
        with part.open("rb") as handle:
            catalogs[part.name] = read_po(handle, locale="de")
    return catalogs


def german_translations() -> dict[MessageId, str | tuple[str, ...]]:
    """msgid -> msgstr over every part (empty translations left out)."""
    merged: dict[MessageId, str | tuple[str, ...]] = {}
    for catalog in german_parts().values():
        for message in catalog:
            if not message.id or not message.string:
                continue
            if isinstance(message.string, tuple) and not all(message.string):
                continue
            key = message.id if isinstance(message.id, str) else tuple(message.id[:2])
            merged[key] = message.string  # type: ignore[index]
    return merged


BRACE_PLACEHOLDER = re.compile(r"(?<!\{)\{([A-Za-z_][A-Za-z0-9_]*)(?:[!:][^}]*)?\}")
PERCENT_PLACEHOLDER = re.compile(r"%(\([A-Za-z_]+\))?[#0\- +]*\d*(?:\.\d+)?[sdrifgx%]")


def placeholders(text: str) -> tuple[list[str], list[str]]:
    """The {name} placeholders (sorted) and the %-placeholders (sorted) of `text`."""
    braces = sorted(match.group(1) for match in BRACE_PLACEHOLDER.finditer(text))
    percents = sorted(match.group(0) for match in PERCENT_PLACEHOLDER.finditer(text))
    return braces, percents
