"""The shell around socklab: completions, --version, the exit-status table, the version's place.

Completion scripts are generated from the parser and then run by the real shells: bash and fish
are asked to complete a partial command line, zsh checks the syntax. .ci/run installs zsh and fish.
"""

from __future__ import annotations

import importlib.metadata
import platform
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

import socklab
from socklab.cli.commands import command_summaries
from socklab.cli.status import ExitStatus, exit_status_table, explained_exit_statuses
from socklab.i18n import set_language
from tests.socklab_process import run_socklab

ROOT = Path(__file__).resolve().parents[2]


def completion(shell: str) -> str:
    result = run_socklab(["completion", shell])
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout


def bash_completes(script: str, words: list[str]) -> list[str]:
    """What bash's completion function offers for the last (partial) word of `words`."""
    program = (
        'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); '
        'COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}; _shtab_socklab; printf "%s\\n" "${COMPREPLY[@]}"'
    )
    result = subprocess.run(
        ["bash", "-c", program, "bash", script, *words],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return result.stdout.split()


def test_bash_completion_is_valid_and_completes_commands_and_options(tmp_path: Path) -> None:
    script = tmp_path / "socklab.bash"
    script.write_text(completion("bash"), encoding="utf-8")
    subprocess.run(["bash", "-n", str(script)], check=True, timeout=30)
    text = script.read_text(encoding="utf-8")
    for command in command_summaries():
        assert command in text
    assert bash_completes(str(script), ["socklab", "conv"]) == ["converter"]
    assert bash_completes(str(script), ["socklab", "converter", "server", "--fram"]) == [
        "--framing"
    ]
    assert "--log" in bash_completes(str(script), ["socklab", "impair", "--l"])


@pytest.mark.skipif(
    shutil.which("zsh") is None, reason="zsh is not installed (.ci/run installs it)"
)
def test_zsh_completion_is_valid_zsh(tmp_path: Path) -> None:
    script = tmp_path / "_socklab"
    script.write_text(completion("zsh"), encoding="utf-8")
    subprocess.run(["zsh", "-n", str(script)], check=True, timeout=30)
    text = script.read_text(encoding="utf-8")
    assert text.startswith("#compdef socklab")
    assert all(command in text for command in command_summaries())


@pytest.mark.skipif(
    shutil.which("fish") is None, reason="fish is not installed (.ci/run installs it)"
)
def test_fish_completion_completes_commands(tmp_path: Path) -> None:
    script = tmp_path / "socklab.fish"
    script.write_text(completion("fish"), encoding="utf-8")
    subprocess.run(["fish", "--no-execute", str(script)], check=True, timeout=30)
    result = subprocess.run(
        ["fish", "--no-config", "-c", f"source {script}; complete -C 'socklab conv'"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert [line.split("\t")[0] for line in result.stdout.splitlines()] == ["converter"]


def test_an_unknown_shell_is_a_usage_error() -> None:
    result = run_socklab(["completion", "tcsh"])
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "invalid choice" in result.stderr


def test_version_names_python_the_event_loop_and_the_platform() -> None:
    result = run_socklab(["--version"])
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"socklab {importlib.metadata.version('socklab')}"
    assert lines[1] == f"Python: {platform.python_version()} ({platform.python_implementation()})"
    try:
        import uvloop
    except ImportError:
        assert lines[2] == "Event loop: asyncio (uvloop: none)"
    else:
        assert lines[2] == f"Event loop: uvloop {uvloop.__version__}"
    assert lines[3] == f"Platform: {platform.platform()}"
    german = run_socklab(["--lang", "de", "--version"]).stdout.splitlines()
    assert german[2].startswith("Ereignisschleife: ") and german[3].startswith("Plattform: ")


def test_the_version_lives_in_one_place() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert importlib.metadata.version("socklab") == socklab.__version__


def test_help_ends_with_every_exit_status() -> None:
    result = run_socklab(["--help"], env={"COLUMNS": "100"})
    assert result.returncode == 0
    epilog = result.stdout.split("Exit statuses:\n", 1)[1].splitlines()
    set_language("en")
    table = exit_status_table()
    assert [int(line.split(maxsplit=1)[0]) for line in epilog] == [int(s) for s in table]
    for line, meaning in zip(epilog, table.values(), strict=True):
        assert line.split(maxsplit=1)[1] == meaning
    assert set(explained_exit_statuses()) == set(ExitStatus)  # each has its own sentence


def test_readme_exit_status_table_is_the_codes_table() -> None:
    """README.md's "Exit statuses" table lists the same statuses and meanings as the code."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Exit statuses", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| (\d+) \| (.+?) \|$", section, re.M)
    set_language("en")
    assert [(int(code), meaning) for code, meaning in rows] == [
        (int(status), meaning) for status, meaning in exit_status_table().items()
    ]
