"""Running the course's own programs (tests/fixtures/course_programs.py) as subprocesses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.socklab_process import child_environment

COURSE_PROGRAMS = Path(__file__).resolve().parent.parent / "fixtures" / "course_programs.py"


def start_course_program(program: str, port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-u", str(COURSE_PROGRAMS), program, str(port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_environment(),
    )


def wait_for_output_line(proc: subprocess.Popen[str], expected: str) -> None:
    """Read the program's stdout until `expected` appears (bounded by the test timeout)."""
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if expected in line:
            return
    raise AssertionError(f"{expected!r} never printed; output: {seen}")


def finish(
    proc: subprocess.Popen[str], stdin_text: str = "", timeout_s: float = 15.0
) -> tuple[str, str]:
    try:
        return proc.communicate(stdin_text, timeout=timeout_s)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
