"""`--log FILE`: lines appended to a file, each with its timestamp, through stdlib logging.

The servers (hello, upper, converter) and `impair` copy every line they print, the -v lines
among them, with `add_log_option`; the chat appends its conversation. The file is opened for
appending and never rotated by socklab: rotation is the system's job (logrotate's copytruncate,
newsyslog), as for any daemon that keeps its log open.

A log that cannot be written to any more (disk full, a quota, an I/O error) is said once, on
stderr, and no more is written to it; the lines go on to the terminal. Left to stdlib logging, every line printed a
"--- Logging error ---" traceback, and a peer whose requests fill the disk through -v would
have flooded the terminal with them.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from socklab.cli.failures import format_error_line
from socklab.errors import UsageError
from socklab.i18n import _

if TYPE_CHECKING:
    import logging

    from socklab.cli.environment import Environment

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

# Each open log gets a logger of its own (two in one process must not share handlers).
_log_numbers = itertools.count(1)


class LineLog:
    """A file that lines are appended to, one timestamp each; safe to call from any thread.

    `failure` is the reason the file could not be written to, once that happened; from then on
    `write` does nothing.
    """

    def __init__(self, path: str) -> None:
        import logging  # only when a log is asked for: servers start without it

        log = self

        class _Handler(logging.FileHandler):
            def handleError(self, record: logging.LogRecord) -> None:
                import sys

                error = sys.exc_info()[1]
                reason = getattr(error, "strerror", None) or str(error)
                log.failure = log.failure or reason

        self.path = path
        self.failure: str | None = None
        self._reported = False
        self._lock = threading.Lock()
        try:
            handler = _Handler(path, mode="a", encoding="utf-8")
        except OSError as exc:
            raise UsageError(
                _("cannot open log file {path}: {reason}").format(
                    path=path, reason=exc.strerror or exc
                )
            ) from exc
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", TIME_FORMAT))
        self._handler = handler
        self._logger: logging.Logger = logging.getLogger(f"socklab.log.{next(_log_numbers)}")
        self._logger.propagate = False
        self._logger.setLevel(logging.INFO)
        self._logger.addHandler(handler)

    def write(self, line: str) -> str | None:
        """Append `line`; the one line to show the user when this write found the file broken."""
        if self.failure is not None:
            return None
        self._logger.info(line)  # the handler writes and flushes under its own lock
        with self._lock:  # two threads may both have found it broken: one says so
            if self.failure is None or self._reported:
                return None
            self._reported = True
        return _(
            "cannot write to the log file {path} any more: {reason}. Lines go on to the terminal only; free space and start again with --log"
        ).format(path=self.path, reason=self.failure)

    def close(self) -> None:
        self._logger.removeHandler(self._handler)
        with contextlib.suppress(OSError):  # its last flush, on a full disk
            self._handler.close()


def add_log_option(parser: argparse.ArgumentParser) -> None:
    """`--log FILE` for a command whose printed lines are its record (servers, impair)."""
    parser.add_argument(
        "--log",
        metavar="FILE",
        help=_("also append every line printed to FILE, each with the date and time"),
    )
    parser.set_defaults(copies_lines_to_log=True)


@contextlib.contextmanager
def copying_lines(env: Environment, args: argparse.Namespace) -> Iterator[None]:
    """While inside, every line the command prints also goes to its `--log` file, if any."""
    path = getattr(args, "log", None) if getattr(args, "copies_lines_to_log", False) else None
    if path is None:
        yield
        return
    log = LineLog(path)
    previous = env.copy_lines_to

    def copy(line: str) -> None:
        # Called under env's lock (say, warn): the one line about the log goes straight out.
        problem = log.write(line)
        if problem is not None:
            env.stderr.write(format_error_line(env.program, problem) + "\n")
            env.stderr.flush()

    env.copy_lines_to = copy
    try:
        yield
    finally:
        env.copy_lines_to = previous
        log.close()
