"""Running a program as it is, with every socket call it makes reported to a tracer.

Two ways in, chosen by `method_for`:

* PYTHON: the command runs unchanged, with a directory first on its PYTHONPATH that holds a
  start-up file (`sitecustomize.py`, written for this run into a temporary directory and removed
  afterwards). It loads `socklab.tools.trace.hook`, which traces the program's sockets and writes
  events to a pipe this process reads (`wire`).
* STRACE (Linux, any language): the command runs under strace, whose output goes to a pipe this
  process reads and parses (`strace`).

Either way the program keeps its own stdin, stdout and stderr, and its exit status is returned
(a signal's death as 128 + its number, as a shell reports it). `TracedProgram` is used in this
order: start (the constructor) -> wait() [-> interrupt() -> wait()]* -> done.
"""

from __future__ import annotations

import enum
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from socklab.tools.trace.hook import FD_VARIABLE, PYTHONPATH_VARIABLE, WINDOWS_HANDLE_PREFIX
from socklab.tools.trace.strace import STRACE_OPTIONS, StraceParser
from socklab.tools.trace.wire import MAX_EVENT_BYTES, decode_event
from socklab.tracing.events import TraceEvent, Tracer

# A strace line carries at most 256 bytes as \xNN (1 KiB) plus its call; iovecs several times that.
MAX_STRACE_LINE_BYTES = 64 * 1024
# After the program ended, the last events still in the pipe are read for at most this long: a
# child it left running may hold the pipe open for ever.
DRAIN_TIMEOUT_S = 5.0
_PYTHON_NAME = re.compile(r"^(?:python(?:\d+(?:\.\d+)*)?w?|pypy\d*(?:\.\d+)?|py)(?:\.exe)?$")
_SHEBANG_BYTES = 128

# The start-up file: finds socklab where this socklab lives (put last on sys.path for the
# import only, so the program's own modules win), installs the hook, then hands over to the
# sitecustomize ours hides. `failure` is a translated line for a Python that cannot run socklab.
_STARTUP_FILE = """\
# Written by `socklab trace` for one run of a program, and removed after it.
def _socklab_trace():
    import os, sys
    here = os.path.dirname(os.path.abspath(__file__))
    package_parent = {package_parent!r}
    added = package_parent not in sys.path
    if added:
        sys.path.append(package_parent)
    try:
        from socklab.tools.trace import hook
    except Exception as exc:
        sys.stderr.write({failure!r}.format(error=exc) + "\\n")
        return
    finally:
        if added:
            sys.path.remove(package_parent)
    hook.install_from_environment()
    hook.load_next_sitecustomize(here)


_socklab_trace()
del _socklab_trace
"""


class TraceMethod(enum.Enum):
    PYTHON = "python"
    STRACE = "strace"


def is_python_program(command: Sequence[str]) -> bool:
    """Does `command` start a Python interpreter (python3, python3.12, py, or a #! script)?"""
    program = command[0]
    if _PYTHON_NAME.match(os.path.basename(program)):
        return True
    found = shutil.which(program)
    if found is None:
        return False
    try:
        with open(found, "rb") as file:
            first = file.read(_SHEBANG_BYTES)
    except OSError:
        return False
    if not first.startswith(b"#!"):
        return False
    words = first[2:].split(b"\n", 1)[0].split()
    return any(
        _PYTHON_NAME.match(os.path.basename(word.decode(errors="replace"))) for word in words
    )


def method_for(command: Sequence[str], *, force_strace: bool = False) -> TraceMethod:
    if force_strace or not is_python_program(command):
        return TraceMethod.STRACE
    return TraceMethod.PYTHON


def strace_path() -> str | None:
    """strace, where it can trace (Linux), else None."""
    return shutil.which("strace") if sys.platform.startswith("linux") else None


def _lines(pipe: int, limit: int) -> Iterator[bytes]:
    """Complete lines from `pipe` until its end; a line longer than `limit` is skipped whole."""
    with os.fdopen(pipe, "rb") as stream:
        skipping = False
        while True:
            line = stream.readline(limit + 1)
            if not line:
                return
            complete = line.endswith(b"\n")
            if not skipping and complete:
                yield line
            skipping = not complete


class TracedProgram:
    """One traced run of `command`; events reach `tracer` from a reader thread, in order."""

    def __init__(
        self,
        command: Sequence[str],
        tracer: Tracer,
        *,
        method: TraceMethod,
        startup_failure: str = "socklab trace: {error}",
    ) -> None:
        self.method = method
        self._tracer = tracer
        self._output_gone = False
        self._directory = tempfile.TemporaryDirectory(prefix="socklab-trace-")
        read_end, write_end = os.pipe()
        env = dict(os.environ)
        try:
            if method is TraceMethod.PYTHON:
                args = list(command)
                self._write_startup_file(startup_failure)
                env[PYTHONPATH_VARIABLE] = env.get("PYTHONPATH", "")
                env["PYTHONPATH"] = os.pathsep.join(
                    part for part in (self._directory.name, env.get("PYTHONPATH")) if part
                )
                env[FD_VARIABLE], options = _pass_pipe(write_end)
                consume: Callable[[int], None] = self._read_events
            else:
                strace = strace_path() or "strace"
                args = [strace, *STRACE_OPTIONS, "-o", f"/dev/fd/{write_end}", "--", *command]
                options = {"pass_fds": (write_end,)}
                consume = self._read_strace
            self.process = subprocess.Popen(args, env=env, **options)
        except BaseException:
            os.close(read_end)
            self._directory.cleanup()
            raise
        finally:
            os.close(write_end)
        self._reader = threading.Thread(target=consume, args=(read_end,), daemon=True)
        self._reader.start()

    def _write_startup_file(self, failure: str) -> None:
        import socklab

        package_parent = str(Path(socklab.__file__).resolve().parent.parent)
        text = _STARTUP_FILE.format(package_parent=package_parent, failure=failure)
        Path(self._directory.name, "sitecustomize.py").write_text(text, encoding="utf-8")

    def _show(self, event: TraceEvent) -> None:
        """Hand `event` to the tracer; once its output is gone, only drain the pipe.

        The pipe must be read to its end whatever happens: a program whose pipe is full would
        block in its next socket call.
        """
        if self._output_gone:
            return
        try:
            self._tracer(event)
        except (OSError, ValueError):  # stderr closed, --output's file closed or its disk full
            self._output_gone = True

    def _read_events(self, pipe: int) -> None:
        for line in _lines(pipe, MAX_EVENT_BYTES):
            event = decode_event(line)
            if event is not None:
                self._show(event)

    def _read_strace(self, pipe: int) -> None:
        parser = StraceParser()
        for line in _lines(pipe, MAX_STRACE_LINE_BYTES):
            for event in parser.feed_line(line.decode("ascii", "replace")):
                self._show(event)

    def wait(self) -> int:
        """Block until the program ends; its exit status (128 + N if signal N ended it)."""
        status = self.process.wait()
        self._reader.join(DRAIN_TIMEOUT_S)
        self._directory.cleanup()
        return 128 - status if status < 0 else status

    def interrupt(self) -> None:
        """Pass Ctrl+C on to the program, unless the terminal already gave it one."""
        if self.process.poll() is not None or _terminal_delivers_interrupts():
            return
        targets = [self.process.pid]
        if self.method is TraceMethod.STRACE:  # strace ignores SIGINT; its tracee must get it
            targets = _children(self.process.pid) or targets
        for pid in targets:
            try:
                os.kill(pid, signal.SIGINT)
            except ProcessLookupError:
                continue


def _pass_pipe(write_end: int) -> tuple[str, dict[str, Any]]:
    """The pipe's name for the program's environment, and the Popen options that pass it on.

    Windows has no pass_fds: the pipe's handle is made inheritable and listed for this child
    alone (subprocess's documented `handle_list`); the hook opens it as a descriptor again.
    """
    if sys.platform == "win32":
        import msvcrt

        handle = msvcrt.get_osfhandle(write_end)
        os.set_handle_inheritable(handle, True)
        startupinfo = subprocess.STARTUPINFO(lpAttributeList={"handle_list": [handle]})
        return f"{WINDOWS_HANDLE_PREFIX}{handle}", {"startupinfo": startupinfo}
    return str(write_end), {"pass_fds": (write_end,)}


def _terminal_delivers_interrupts() -> bool:
    """Ctrl+C on our terminal reaches the whole foreground process group, the program with us.

    On Windows it reaches every process attached to the console, so it is never passed on.
    """
    if sys.platform == "win32":
        return True
    try:
        fd = os.open("/dev/tty", os.O_RDONLY | os.O_NOCTTY)
    except OSError:
        return False
    try:
        return os.tcgetpgrp(fd) == os.getpgrp()
    except OSError:
        return False
    finally:
        os.close(fd)


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text(encoding="ascii")
    except OSError:
        return []
    return [int(word) for word in text.split()]
