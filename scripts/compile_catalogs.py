#!/usr/bin/env python3
"""Compile the German catalogue: merge locale/de/parts/*.po into LC_MESSAGES/socklab.mo.

Each area of socklab keeps its own part (core.po, ports.po, chat.po, ...), so work on different
commands never edits the same file. A msgid translated differently in two parts is an error.
Usage: compile_catalogs.py [--check]   (--check: fail if the committed .mo is out of date)

--check compares what the catalogues *say* (every msgid with its translations), never the .mo
bytes: babel releases lay the same messages out differently (2.19 changed the byte layout), and a
new release of a tool must not turn a correct catalogue red.
"""

from __future__ import annotations

import datetime
import io
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import read_mo, write_mo
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


MessageId = str | tuple[str, ...]
Translation = str | tuple[str, ...]


def messages_of(catalog: Catalog) -> dict[MessageId, Translation]:
    """msgid -> translation, the header entry left out: the content a .mo carries."""
    return {
        (message.id if isinstance(message.id, str) else tuple(message.id)): (
            message.string if isinstance(message.string, str) else tuple(message.string)
        )
        for message in catalog
        if message.id and message.string
    }


def committed_messages(target: Path) -> dict[MessageId, Translation]:
    with target.open("rb") as handle:
        return messages_of(read_mo(handle))


def differences(
    expected: dict[MessageId, Translation], found: dict[MessageId, Translation]
) -> list[str]:
    """One line per msgid that is missing, extra or translated differently in `found`."""
    lines = [f"missing: {key!r}" for key in expected if key not in found]
    lines += [f"not in the .po parts: {key!r}" for key in found if key not in expected]
    lines += [
        f"translated differently: {key!r}"
        for key, value in expected.items()
        if key in found and found[key] != value
    ]
    return lines


def main(argv: list[str]) -> int:
    check = "--check" in argv
    for language_dir in sorted(p for p in LOCALE.iterdir() if (p / "parts").is_dir()):
        target = language_dir / "LC_MESSAGES" / "socklab.mo"
        if check:
            if not target.exists():
                print(f"{target} is missing: run 'make i18n'", file=sys.stderr)
                return 1
            expected = messages_of(merged_catalog(language_dir.name))
            stale = differences(expected, committed_messages(target))
            if stale:
                shown = "\n  ".join(stale[:20])
                more = f"\n  ... and {len(stale) - 20} more" if len(stale) > 20 else ""
                print(f"{target} is out of date: run 'make i18n'\n  {shown}{more}", file=sys.stderr)
                return 1
            continue
        data = compiled(language_dir.name)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        print(f"wrote {target.relative_to(LOCALE.parent.parent.parent.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
