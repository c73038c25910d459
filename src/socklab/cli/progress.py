"""A progress line on a terminal: one line that each update overwrites, gone before real output.

Decoration only: it is written when the stream is a terminal and never otherwise, so pipes,
files and grading scripts see the same output with or without it. Updates end with no newline
(carriage return, then ECMA-48 "erase in line", `ESC [ K`), and `clear()` removes the line
before the next real line is written.
"""

from __future__ import annotations

from socklab.cli.environment import Environment

ERASE_LINE = "\r\x1b[K"


class ProgressLine:
    """Call order: show* -> clear (before any other output on the same stream) -> show* ..."""

    def __init__(self, env: Environment, *, to_stderr: bool = False) -> None:
        self._env = env
        self._to_stderr = to_stderr
        self.enabled = env.stderr_isatty if to_stderr else env.stdout_isatty
        self._shown = False

    def show(self, text: str) -> None:
        if self.enabled:
            self._env.write_now(ERASE_LINE + text, to_stderr=self._to_stderr)
            self._shown = True

    def clear(self) -> None:
        if self._shown:
            self._env.write_now(ERASE_LINE, to_stderr=self._to_stderr)
            self._shown = False
