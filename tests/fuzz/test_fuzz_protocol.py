"""The atheris harness: 30,000 coverage-guided inputs in CI, 100,000 with `-m slow`, plus the
harness's own checks.

atheris (libFuzzer) exits the process when it finds a failure, so it runs as a subprocess with
a fixed seed (reproducible) and a bound on time; a failure prints the crashing input. The
measured figure on the 2-core CI machine is about 30 s for 100,000 runs on a quiet machine,
over 170 s on a loaded one: CI runs 30,000 (the same seed, so the same first 30,000 inputs). The first tests feed
the harness known inputs directly, so a harness that checks nothing cannot pass unnoticed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.fuzz.fuzz_protocol import FRAMINGS, check_protocol_input, run_session

HARNESS = Path(__file__).with_name("fuzz_protocol.py")
REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
RUNS = {"ci": 30_000, "full": 100_000}


@pytest.mark.parametrize(
    "stream",
    [
        b"U:abc\nL:DEF\r\nC:\n",
        b"U:" + b"x" * 40 + b"\n",  # over a small limit, as one line
        b"U:stra\xc3",  # UTF-8 cut in the middle of a character
        b"\x00\x00\x00\x05U:abc\x00\x00",  # length framing with a partial header
        b"\xff\xff\xff\xffU:",
        b"",
    ],
)
@pytest.mark.parametrize("first_byte", [0, 1, 2, 0x80, 0x81, 0x82])
def test_harness_accepts_known_streams(first_byte: int, stream: bytes) -> None:
    check_protocol_input(bytes([first_byte, 4]) + stream)


def test_harness_sees_a_reply_that_depends_on_chunking() -> None:
    """The comparison is real: raw framing (exempt in the harness) differs when trickled."""
    whole = run_session("raw", 1500, [b"U:ab"], end_with_eof=False)
    trickled = run_session("raw", 1500, [b"U", b":", b"a", b"b"], end_with_eof=False)
    assert whole != trickled
    assert "raw" in FRAMINGS


@pytest.mark.timeout(180)
@pytest.mark.parametrize("scale", ["ci", pytest.param("full", marks=pytest.mark.slow)])
def test_atheris_finds_no_failure(scale: str, tmp_path: Path) -> None:
    runs = RUNS[scale]
    result = subprocess.run(
        [
            sys.executable,
            str(HARNESS),
            f"-runs={runs}",
            "-seed=20261123",
            "-max_len=1024",
            f"-artifact_prefix={tmp_path}/",
        ],
        capture_output=True,
        text=True,
        timeout=170,
        cwd=REPOSITORY_ROOT,
        check=False,
    )
    tail = "\n".join(result.stderr.splitlines()[-30:])
    assert result.returncode == 0, tail
    assert f"Done {runs} runs" in result.stderr, tail
