"""Every command of the lab sheets (docs/LABS.md, docs/de/LABS.md) runs, as written (issue 18).

Each lab runs in a fresh folder. The sheets' fenced ```sh blocks are taken in order: a plain
block's commands run to completion and must exit 0 (`sh fails`: must exit non-zero, as the lab
means them to); a `sh keep-running` block starts its commands in the background and waits for
their ready line, and they are stopped by PID when the lab is done (one that ended by itself
must have ended with 0). `root` blocks need root (CI runs them as root); `sudo` is dropped when
the test is root already. The sheets' ports are replaced by free ones, so labs run in parallel
with other tests. No traceback may appear anywhere. The German sheet must have the same
commands as the English one.
"""

from __future__ import annotations

import os
import queue
import re
import shlex
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.socklab_process import child_environment, free_port, socklab_command

DOCS = Path(__file__).resolve().parents[2] / "docs"
SHEETS = {"en": DOCS / "LABS.md", "de": DOCS / "de" / "LABS.md"}
LAB_HEADING = re.compile(r"^## (?:Lab|Übung) (\d+)", re.MULTILINE)
BLOCK = re.compile(r"^```sh([^\n]*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
SHEET_PORTS = ("9998", "9999", "12000", "50000", "50001", "50002")
READY = re.compile(r"(?i)listening|ready to receive|capturing")
READY_TIMEOUT_S = 20.0
COMMAND_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
LABS = 5


@dataclass(frozen=True)
class Block:
    flags: frozenset[str]
    commands: tuple[str, ...]


def labs(sheet: Path) -> dict[int, list[Block]]:
    text = sheet.read_text(encoding="utf-8")
    headings = list(LAB_HEADING.finditer(text))
    found: dict[int, list[Block]] = {}
    for index, heading in enumerate(headings):
        end = headings[index + 1].start() if index + 1 < len(headings) else len(text)
        blocks = []
        for match in BLOCK.finditer(text, heading.end(), end):
            commands = tuple(
                line.strip()
                for line in match.group(2).splitlines()
                if line.strip() and not line.strip().startswith("#")
            )
            blocks.append(Block(frozenset(match.group(1).split()), commands))
        found[int(heading.group(1))] = blocks
    return found


def test_both_sheets_have_five_labs_with_the_same_commands_each_graded_by_check() -> None:
    english, german = labs(SHEETS["en"]), labs(SHEETS["de"])
    assert sorted(english) == list(range(1, LABS + 1))
    assert english == german
    for blocks in english.values():
        last = blocks[-1]
        assert "keep-running" not in last.flags and "fails" not in last.flags
        assert last.commands[-1].startswith("socklab check "), last


def shell_command(command: str, ports: dict[str, str]) -> str:
    for sheet_port, port in ports.items():
        command = re.sub(rf"\b{sheet_port}\b", port, command)
    if os.geteuid() == 0 and command.startswith("sudo "):
        command = command.removeprefix("sudo ")
    command = re.sub(r"(^|\| )python3 ", rf"\g<1>{shlex.quote(sys.executable)} ", command)
    return command


def environment() -> dict[str, str]:
    env = child_environment()
    bin_dir = str(Path(socklab_command()[0]).parent)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    return env


class Background:
    """A keep-running command, started at once, waited for until its ready line."""

    def __init__(self, command: str, cwd: Path) -> None:
        self.command = command
        self.process = subprocess.Popen(
            ["bash", "-c", f"exec {command}"],
            cwd=cwd,
            env=environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.lines: list[str] = []
        self._ready: queue.Queue[bool] = queue.Queue()
        self._reader = threading.Thread(target=self._pump, daemon=True)
        self._reader.start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for raw in iter(self.process.stdout.readline, b""):
            line = raw.decode("utf-8", "replace")
            self.lines.append(line)
            if READY.search(line):
                self._ready.put(True)
        self._ready.put(False)

    def wait_ready(self) -> None:
        try:
            ready = self._ready.get(timeout=READY_TIMEOUT_S)
        except queue.Empty:
            ready = False
        assert ready, f"{self.command}: no ready line: {''.join(self.lines)}"

    def stop(self) -> int | None:
        """Stop it by its PID; its exit status if it had ended by itself, else None."""
        ended = self.process.poll()
        if ended is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT_S)
        self._reader.join(STOP_TIMEOUT_S)
        return ended


@pytest.mark.parametrize("lab", range(1, LABS + 1))
def test_every_command_of_the_lab_runs(lab: int, tmp_path: Path) -> None:
    blocks = labs(SHEETS["en"])[lab]
    if any("root" in block.flags for block in blocks) and os.geteuid() != 0:
        pytest.skip("this lab captures packets: root only (CI runs it as root)")
    ports = {sheet_port: str(free_port()) for sheet_port in SHEET_PORTS}
    started: list[Background] = []
    try:
        for block in blocks:
            for line in block.commands:
                command = shell_command(line, ports)
                if "keep-running" in block.flags:
                    started.append(Background(command, tmp_path))
                    started[-1].wait_ready()
                    continue
                result = subprocess.run(
                    ["bash", "-c", command],
                    cwd=tmp_path,
                    env=environment(),
                    capture_output=True,
                    text=True,
                    timeout=COMMAND_TIMEOUT_S,
                    check=False,
                )
                said = result.stdout + result.stderr
                assert "Traceback" not in said, f"{command}\n{said}"
                if "fails" in block.flags:
                    assert result.returncode != 0, f"{command} should fail\n{said}"
                else:
                    assert result.returncode == 0, f"{command}: {result.returncode}\n{said}"
    finally:
        endings = [(background, background.stop()) for background in started]
    for background, ended in endings:
        output = "".join(background.lines)
        assert "Traceback" not in output, f"{background.command}\n{output}"
        assert ended in (None, 0), f"{background.command} ended with {ended}\n{output}"
