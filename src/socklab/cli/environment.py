"""The command's view of the world, injectable so tests can run a command in-process.

Every command is `run(args, env) -> ExitStatus`: it reads stdin and writes stdout/stderr only
through `env`. Status lines are flushed as they are written, so a script reading a pipe sees each
one at once (Python block-buffers stdout when it is not a terminal).
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TextIO


@dataclass
class Environment:
    stdin: TextIO
    stdout: TextIO
    stderr: TextIO
    environ: Mapping[str, str]
    stdin_isatty: bool
    stdout_isatty: bool
    # The words that started the command ("socklab hello client"): error lines begin with them.
    program: str = "socklab"
    # Its arguments as given, for a line that shows the command again (capture's sudo advice).
    arguments: tuple[str, ...] = ()
    stderr_isatty: bool = False
    # Where every line said or warned is copied as well: the `--log FILE` of servers and impair
    # (see cli.logfile).
    copy_lines_to: Callable[[str], None] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_process(cls) -> Environment:
        return cls(
            stdin=sys.stdin,
            stdout=sys.stdout,
            stderr=sys.stderr,
            environ=os.environ,
            stdin_isatty=_isatty(sys.stdin),
            stdout_isatty=_isatty(sys.stdout),
            stderr_isatty=_isatty(sys.stderr),
        )

    def say(self, line: str = "") -> None:
        """One line on stdout, flushed now; safe to call from server threads."""
        with self._lock:
            self.stdout.write(line + "\n")
            self.stdout.flush()
            if self.copy_lines_to is not None:
                self.copy_lines_to(line)

    def write_now(self, text: str, *, to_stderr: bool = False) -> None:
        """`text` as it is (no newline added), flushed now: for a progress line on a terminal."""
        stream = self.stderr if to_stderr else self.stdout
        with self._lock:
            stream.write(text)
            stream.flush()

    def warn(self, line: str) -> None:
        """One line on stderr, flushed now."""
        with self._lock:
            self.stderr.write(line + "\n")
            self.stderr.flush()
            if self.copy_lines_to is not None:
                self.copy_lines_to(line)

    def fail(self, line: str) -> None:
        """The error line that ends a command, in socklab's one style (`cli.failures`)."""
        from socklab.cli.failures import format_error_line

        self.warn(format_error_line(self.program, line))


def _isatty(stream: TextIO | None) -> bool:
    try:
        return bool(stream is not None and stream.isatty())
    except (ValueError, OSError):
        return False
