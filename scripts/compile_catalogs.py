#!/usr/bin/env python3
"""Compile the German catalogue: merge locale/de/parts/*.po into LC_MESSAGES/socklab.mo.

Each area of socklab keeps its own part (core.po, ports.po, chat.po, ...), so work on different
commands never edits the same file. A msgid translated differently in two parts is an error.
Usage: compile_catalogs.py [--check]   (--check: fail if the committed .mo is out of date)
"""

from __future__ import annotations

import datetime
import io
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

FIXED_DATE = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)
LOCALE = Path(__file__).resolve().parent.parent / "src" / "socklab" / "i18n" / "locale"


def merged_catalog(language: str) -> Catalog:
    # A fixed creation date: otherwise babel stamps "now" into the header, the .mo changes every
    # minute and --check can never agree with the committed file.
    merged = Catalog(
        locale=language, domain="socklab", creation_date=FIXED_DATE, revision_date=FIXED_DATE
    )
    origin: dict[str, str] = {}
    for part in sorted((LOCALE / language / "parts").glob("*.po")):
        with part.open("rb") as handle:
            catalog = read_po(handle, locale=language)
        for message in catalog:
            if not message.id or not message.string:
                continue
            key = message.id if isinstance(message.id, str) else message.id[0]
            previous = merged.get(message.id)
            if previous is not None and previous.string != message.string:
                raise SystemExit(f"{part.name}: {key!r} is translated differently in {origin[key]}")
            merged.add(message.id, message.string)
            origin[key] = part.name
    return merged


def compiled(language: str) -> bytes:
    buffer = io.BytesIO()
    write_mo(buffer, merged_catalog(language), use_fuzzy=False)
    return buffer.getvalue()


def main(argv: list[str]) -> int:
    check = "--check" in argv
    for language_dir in sorted(p for p in LOCALE.iterdir() if (p / "parts").is_dir()):
        target = language_dir / "LC_MESSAGES" / "socklab.mo"
        data = compiled(language_dir.name)
        if check:
            if not target.exists() or target.read_bytes() != data:
                print(f"{target} is out of date: run 'make i18n'", file=sys.stderr)
                return 1
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        print(f"wrote {target.relative_to(LOCALE.parent.parent.parent.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
