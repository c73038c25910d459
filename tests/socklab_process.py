"""Running the real `socklab` command as a subprocess, as a user would, with readiness waits.

Every process is started with its own pipes, read by a thread into a queue (so a full pipe can
never block the server), and stopped by PID: SIGTERM first, SIGKILL after a bound.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

STOP_TIMEOUT_S = 10.0


def socklab_command() -> list[str]:
    """The installed console script next to this interpreter, else `python -m socklab`."""
    script = Path(sys.executable).parent / ("socklab.exe" if os.name == "nt" else "socklab")
    if script.exists():
        return [str(script)]
    found = shutil.which("socklab")
    return [found] if found else [sys.executable, "-m", "socklab"]


def child_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("SOCKLAB_DEBUG", None)
    # LANGUAGE wins over LC_ALL and LANG (as in GNU gettext): a developer's LANGUAGE=de must not
    # turn the English expectations of every test German.
    env.pop("LANGUAGE", None)
    env["LANG"] = env["LC_ALL"] = "C.UTF-8"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def free_port(kind: int = socket.SOCK_STREAM, host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (bind to 0, read it, close)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, kind) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class SocklabProcess:
    """A running `socklab ...` subprocess with line-by-line access to its output."""

    def __init__(
        self,
        args: Sequence[str],
        *,
        stdin_data: bytes | None = None,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        prefix: Sequence[str] = (),
    ) -> None:
        self.args = list(args)
        # `prefix` runs socklab through a launcher that execs it (same PID), such as
        # `ip netns exec NAME` for tests in a network namespace.
        self.proc = subprocess.Popen(
            [*prefix, *socklab_command(), *self.args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=child_environment(env),
            cwd=cwd,
        )
        self.stdout_lines: list[str] = []
        self.stderr_lines: list[str] = []
        self._stdout_queue: queue.Queue[str | None] = queue.Queue()
        self._readers = [
            threading.Thread(
                target=self._pump,
                args=(self.proc.stdout, self.stdout_lines, self._stdout_queue),
                daemon=True,
            ),
            threading.Thread(
                target=self._pump, args=(self.proc.stderr, self.stderr_lines, None), daemon=True
            ),
        ]
        for reader in self._readers:
            reader.start()
        if stdin_data is not None:
            assert self.proc.stdin is not None
            self.proc.stdin.write(stdin_data)
            self.proc.stdin.close()

    @property
    def pid(self) -> int:
        return self.proc.pid

    @staticmethod
    def _pump(stream: object, lines: list[str], sink: queue.Queue[str | None] | None) -> None:
        assert stream is not None
        for raw in iter(stream.readline, b""):  # type: ignore[attr-defined]
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            lines.append(line)
            if sink is not None:
                sink.put(line)
        if sink is not None:
            sink.put(None)

    def wait_for_line(self, pattern: str, timeout_s: float = 15.0) -> re.Match[str]:
        """Block until a stdout line matches `pattern` (re.search); fail with the output so far."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    self._explain(f"no line matching {pattern!r} within {timeout_s} s")
                )
            try:
                line = self._stdout_queue.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
                raise AssertionError(
                    self._explain(f"process ended before a line matched {pattern!r}")
                )
            match = regex.search(line)
            if match:
                return match

    def wait_listening(self, timeout_s: float = 15.0) -> tuple[str, int]:
        """Wait for the standard 'listening on HOST:PORT' line of socklab servers."""
        match = self.wait_for_line(r"listening on (?:\[([^\]]+)\]|([^\s:\[]+)):(\d+)\b", timeout_s)
        return match.group(1) or match.group(2), int(match.group(3))

    def send_signal(self, signum: int) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signum)

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM, wait, SIGKILL if needed; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=timeout_s)
        for reader in self._readers:
            reader.join(timeout_s)
        return self.proc.returncode

    def wait(self, timeout_s: float = STOP_TIMEOUT_S) -> int:
        try:
            code = self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise AssertionError(self._explain(f"still running after {timeout_s} s")) from None
        for reader in self._readers:
            reader.join(timeout_s)
        return code

    def _explain(self, what: str) -> str:
        return (
            f"socklab {' '.join(self.args)}: {what}\n--- stdout ---\n"
            + "\n".join(self.stdout_lines)
            + "\n--- stderr ---\n"
            + "\n".join(self.stderr_lines)
        )


def run_socklab(
    args: Sequence[str],
    *,
    input_text: str | None = None,
    timeout_s: float = 30.0,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command to completion (bounded) and capture its output as text."""
    return subprocess.run(
        [*socklab_command(), *args],
        input=input_text if input_text is not None else "",
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env=child_environment(env),
        check=False,
    )
