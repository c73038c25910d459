"""Fixtures shared by the runtime tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.runtimes.servers import RunningServer


@pytest.fixture
def servers() -> Iterator[list[RunningServer]]:
    """Servers a test started (append them): stopped by PID when the test ends."""
    started: list[RunningServer] = []
    yield started
    for server in started:
        server.process.stop()
