"""The German catalogue is complete, compiled, and keeps every placeholder of its msgids."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

from tests.i18n.catalogue import (
    ROOT,
    argparse_message_ids,
    german_translations,
    placeholders,
    used_message_ids,
)


def test_every_message_used_in_src_has_a_german_translation() -> None:
    translations = german_translations()
    missing = {
        message: places
        for message, places in used_message_ids().items()
        if message not in translations
    }
    report = "\n".join(f"  {places[0]}: {message!r}" for message, places in missing.items())
    assert not missing, (
        f"{len(missing)} message(s) have no German translation. Add them to your area's "
        f"src/socklab/i18n/locale/de/parts/<area>.po and run 'make i18n':\n{report}"
    )


def test_argparse_words_have_german_translations() -> None:
    translations = german_translations()
    missing = sorted(str(m) for m in argparse_message_ids() if m not in translations)
    assert not missing, f"argparse messages of this Python without German: {missing}"


def test_compiled_catalogue_is_up_to_date() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "compile_catalogs.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_translations_keep_the_placeholders_of_their_msgid() -> None:
    wrong = []
    for message, translation in german_translations().items():
        singular = message if isinstance(message, str) else message[0]
        plural = message if isinstance(message, str) else message[1]
        forms = [translation] if isinstance(translation, str) else list(translation)
        for index, form in enumerate(forms):
            source = singular if index == 0 else plural
            if placeholders(form) != placeholders(source):
                wrong.append(f"{source!r} -> {form!r}")
    assert not wrong, "placeholders differ:\n" + "\n".join(wrong)


def test_placeholder_check_can_fail() -> None:
    assert placeholders("Port {port} on {host}") != placeholders("Port {porta} auf {host}")
    assert placeholders("invalid %(type)s: %(value)r") != placeholders("ungültig %(type)s")


def test_catalogue_check_compares_messages_not_bytes() -> None:
    spec = importlib.util.spec_from_file_location(
        "compile_catalogs", ROOT / "scripts" / "compile_catalogs.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    expected = {"Hello": "Hallo", ("1 file", "{n} files"): ("1 Datei", "{n} Dateien")}
    assert module.differences(expected, dict(expected)) == []
    changed = {"Hello": "Servus", ("1 file", "{n} files"): ("1 Datei", "{n} Dateien")}
    assert module.differences(expected, changed) == ["translated differently: 'Hello'"]
    assert module.differences(expected, {"Hello": "Hallo"}) == ["missing: ('1 file', '{n} files')"]
    assert module.differences({}, {"Extra": "Extra"}) == ["not in the .po parts: 'Extra'"]
