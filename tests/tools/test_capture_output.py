"""The capture's line printer: batches written in order by its output thread, errors surfaced."""

from __future__ import annotations

import io
import threading

import pytest

from socklab.cli.capture import _Printer
from socklab.cli.environment import Environment


def printer_on(stdout: io.StringIO) -> _Printer:
    return _Printer(
        Environment(io.StringIO(), stdout, io.StringIO(), {}, False, False), hex_dump=False
    )


def test_batches_are_written_in_order_and_close_writes_the_rest() -> None:
    out = io.StringIO()
    printer = printer_on(out)
    for batch in range(50):
        for line in range(20):
            printer.say(f"{batch}.{line}")
        printer.flush()
    printer.say("summary")
    printer.close()
    expected = [f"{batch}.{line}" for batch in range(50) for line in range(20)] + ["summary"]
    assert out.getvalue() == "\n".join(expected) + "\n"


class _StalledStream(io.StringIO):
    """A terminal whose reader is asleep: write() waits until released."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def write(self, text: str) -> int:
        self.release.wait(10)
        return super().write(text)


def test_lagging_while_the_output_is_stalled_and_not_after() -> None:
    out = _StalledStream()
    printer = printer_on(out)
    for batch in range(3):
        printer.say(str(batch))
        printer.flush()
    assert printer.lagging()  # the capture loop skips the display now instead of waiting
    out.release.set()
    printer.close()
    assert not printer.lagging()
    assert out.getvalue() == "0\n1\n2\n"


class _ClosedPipe(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_write_error_reaches_the_capture_loop() -> None:
    printer = printer_on(_ClosedPipe())
    printer.say("line")
    with pytest.raises(BrokenPipeError):
        printer.close()
