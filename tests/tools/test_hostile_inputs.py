"""Hostile programs and peers against the new surfaces (docs/RELIABILITY.md, "Hostile peers").

Each test starts the real `socklab` as a subprocess against a hostile program or peer of its
own on loopback, bounded in time, and checks that the bad input is dropped or shown escaped,
that no traceback reaches the user, and that what came after the bad input is not lost.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.socklab_process import run_socklab

HOSTILE = Path(__file__).resolve().parents[1] / "fixtures" / "hostile"


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="finds the pipe through /proc")
def test_trace_survives_garbage_on_its_event_pipe() -> None:
    """Nested brackets deeper than json decodes once ended trace's reader thread: a traceback
    on stderr, the pipe closed, and every later call of the program missing from the trace."""
    result = run_socklab(
        ["trace", "--", sys.executable, str(HOSTILE / "trace_pipe_garbage.py")], timeout_s=30
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "done\n"
    assert "Traceback" not in result.stderr
    assert "RecursionError" not in result.stderr
    # The program's own calls after the garbage are all traced.
    traced = [line for line in result.stderr.splitlines() if line.startswith("[trace] ")]
    assert any("listen(" in line for line in traced), result.stderr
    assert any("close(" in line for line in traced), result.stderr
    assert "\x1b" not in result.stderr
