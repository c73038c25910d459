"""A converter server started by bench itself: `socklab converter server` as a child process.

The child listens on port 0 of loopback; its "listening on HOST:PORT" line tells the port (the
message is read in English, `--lang en`, whatever the user's language). Its stdout is drained by
a thread so a full pipe can never stall it. It is stopped by PID: SIGTERM (the server's graceful
stop), then SIGKILL after a bound. CPU time and the peak resident set size are read with psutil
while it runs; the peak is the kernel's high-water mark (Linux VmHWM, Windows peak working set)
where there is one, else the largest of the samples taken.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from types import TracebackType

from socklab.errors import SocklabError, UsageError
from socklab.i18n import _, format_number
from socklab.tools.bench.placement import running_on

READY_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 5.0
_LISTENING = re.compile(r"listening on \[?([0-9a-fA-F.:]+)\]?:(\d+)")
_MODEL = re.compile(r"model ([\w/.-]+)\)")


class ServerStartError(SocklabError):
    """The server bench started did not come up."""


def server_command(
    model: str,
    *,
    framing: str,
    transport: str,
    event_loop: str,
    max_clients: int,
) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "socklab",
        "--lang",
        "en",
        "converter",
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--model",
        model,
        "--max-clients",
        str(max_clients),
    ]
    if transport == "udp":
        command.append("--udp")
    else:
        command += ["--framing", framing]
    if event_loop != "auto":
        command += ["--loop", event_loop]
    return command


def read_peak_rss_bytes(pid: int) -> int | None:
    """The kernel's high-water mark of the process's resident set, where the OS keeps one."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import psutil

        peak = getattr(psutil.Process(pid).memory_info(), "peak_wset", None)
    except Exception:  # psutil.Error, or the process is gone
        return None
    return int(peak) if peak is not None else None


class ServerProcess:
    """A running converter server child; use as a context manager."""

    def __init__(self, command: Sequence[str], *, cpus: tuple[int, ...] | None = None) -> None:
        """Start the server, on `cpus` if given (see `placement`; `pinned` says if it is)."""
        import psutil

        self.command = tuple(command)
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        # Only the start runs on the server's cores: the child inherits them, this process's
        # threads started below (the output reader) do not.
        with running_on(cpus) as self.pinned:
            self.proc = subprocess.Popen(
                list(command),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=env,
                text=True,
                encoding="utf-8",
                errors="replace",
            )
        self.output: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._pump, daemon=True)
        self._reader.start()
        self._psutil_process = psutil.Process(self.proc.pid)
        self._sampled_peak = 0
        self._cpu_mark: tuple[float, float] | None = None
        self.model_label = ""
        try:
            self.address = self._wait_listening()
        except BaseException:
            self.stop()
            raise

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line.rstrip("\n"))
            self._lines.put(line)
        self._lines.put(None)

    def _wait_listening(self) -> tuple[str, int]:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ServerStartError(
                    _("the server did not report listening within {seconds} s").format(
                        seconds=format_number(READY_TIMEOUT_S, None)
                    )
                )
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                self.proc.wait(STOP_TIMEOUT_S)
                detail = "; ".join(self.output[-3:]) or "no output"
                raise ServerStartError(
                    f"the server exited with status {self.proc.returncode} ({detail})"
                )
            match = _LISTENING.search(line)
            if match:
                model = _MODEL.search(line)
                self.model_label = model.group(1) if model else ""
                return match.group(1), int(match.group(2))

    def _cpu_seconds(self) -> float:
        times = self._psutil_process.cpu_times()
        return float(times.user + times.system)

    def sample(self) -> None:
        """Note the current RSS (for systems without a kernel high-water mark)."""
        with contextlib.suppress(Exception):
            self._sampled_peak = max(self._sampled_peak, self._psutil_process.memory_info().rss)

    def mark_cpu(self) -> None:
        """Start of the measured window."""
        with contextlib.suppress(Exception):
            self._cpu_mark = (self._cpu_seconds(), time.perf_counter())

    def cpu_cores_since_mark(self) -> float:
        if self._cpu_mark is None:
            return 0.0
        cpu0, wall0 = self._cpu_mark
        try:
            cpu1 = self._cpu_seconds()
        except Exception:
            return 0.0
        wall = time.perf_counter() - wall0
        return (cpu1 - cpu0) / wall if wall > 0 else 0.0

    def peak_rss_bytes(self) -> int | None:
        self.sample()
        peak = read_peak_rss_bytes(self.proc.pid)
        if peak is not None:
            return peak
        return self._sampled_peak or None

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            detail = "; ".join(self.output[-3:]) or "no output"
            raise ServerStartError(
                f"the server exited during the run with status {self.proc.returncode} ({detail})"
            )

    def stop(self) -> None:
        """SIGTERM by PID (a graceful stop), SIGKILL if it has not exited within the bound."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(STOP_TIMEOUT_S)
        self._reader.join(STOP_TIMEOUT_S)

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def ensure_model_exists(model: str, transport: str) -> None:
    from socklab.runtimes import RUNTIMES

    info = RUNTIMES.get(model)
    if info is None:
        raise UsageError(f"unknown model {model!r}; choose one of {', '.join(sorted(RUNTIMES))}")
    if transport not in info.transports:
        raise UsageError(f"the {model} model does not serve {transport.upper()}")


__all__ = ["ServerProcess", "ServerStartError", "server_command"]
