"""Fixtures shared by every test: servers started as subprocesses and always stopped by PID."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import pytest

from tests.socklab_process import SocklabProcess


@pytest.fixture
def start_socklab() -> Iterator[Callable[..., SocklabProcess]]:
    """Start `socklab ARGS...`; every process started is stopped when the test ends."""
    started: list[SocklabProcess] = []

    def start(args: Sequence[str], **kwargs: object) -> SocklabProcess:
        process = SocklabProcess(args, **kwargs)  # type: ignore[arg-type]
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()
