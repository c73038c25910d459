"""The `-v` line names why a connection closed in the user's language, for every reason."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from socklab.cli.converter import describe_close_reason
from socklab.i18n import set_language
from socklab.protocol.closing import CloseReason


@pytest.fixture
def german() -> Iterator[None]:
    set_language("de")
    yield
    set_language("en")


def test_every_reason_has_its_own_words() -> None:
    words = {describe_close_reason(reason) for reason in CloseReason}
    assert len(words) == len(CloseReason)


@pytest.mark.usefixtures("german")
def test_every_reason_is_translated() -> None:
    for reason in CloseReason:
        german_words = describe_close_reason(reason)
        set_language("en")
        english_words = describe_close_reason(reason)
        set_language("de")
        assert german_words != english_words, reason
