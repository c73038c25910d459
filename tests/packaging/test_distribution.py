"""The distributions: an sdist that rebuilds and tests, a wheel with its man pages and licence.

Distributions package from the sdist, so the test does what they do: build the sdist from this
tree, unpack it in a temporary folder, build the wheel from the unpacked tree, and run part of the
suite there (with that tree's `src` first on the path). Builds are offline (`--no-isolation`,
with the setuptools of the test extras): a few seconds.
"""

from __future__ import annotations

import fcntl
import os
import re
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import socklab

ROOT = Path(__file__).resolve().parents[2]
NAME = f"socklab-{socklab.__version__}"
COMMANDS_WITH_PAGES = ["socklab.1", "socklab-converter.1", "socklab-completion.1"]


def build(kind: str, source: Path, out: Path) -> Path:
    """`python -m build --KIND` of `source` into `out`; the one file it made."""
    subprocess.run(
        [sys.executable, "-m", "build", f"--{kind}", "--no-isolation", "--outdir", str(out)],
        cwd=source,
        check=True,
        capture_output=True,
        timeout=120,
    )
    (made,) = out.iterdir()
    return made


@pytest.fixture(scope="module")
def unpacked_sdist(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, list[str]]]:
    """The sdist unpacked (its top folder) and the names in the archive."""
    tmp = tmp_path_factory.mktemp("sdist")
    # One build for all xdist workers: two setuptools runs in the same source tree at once race
    # on its egg-info (the pytest-xdist recipe: a lock in the directory the workers share).
    shared = tmp_path_factory.getbasetemp().parent
    with open(shared / "sdist.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        built = shared / "sdist-dist"
        made = sorted(built.glob("*.tar.gz")) if built.is_dir() else []
        sdist = made[0] if made else build("sdist", ROOT, built)
    assert sdist.name == f"{NAME}.tar.gz"
    with tarfile.open(sdist) as archive:
        names = archive.getnames()
        archive.extractall(tmp / "unpacked", filter="data")
    yield tmp / "unpacked" / NAME, names


def test_sdist_holds_what_rebuilding_and_testing_need(
    unpacked_sdist: tuple[Path, list[str]],
) -> None:
    _tree, names = unpacked_sdist
    inside = {name.removeprefix(f"{NAME}/") for name in names}
    for needed in [
        "LICENSE",
        "README.md",
        "Makefile",
        "constraints.txt",
        "pyproject.toml",
        "scripts/compile_catalogs.py",
        "scripts/make_manpages.py",
        "src/socklab/i18n/locale/de/parts/core.po",
        "src/socklab/i18n/locale/de/LC_MESSAGES/socklab.mo",
        "tests/conftest.py",
        "tests/socklab_process.py",
        "tests/test_layers.py",
        "docs/PROTOCOL.md",
        "docs/de/TEACHING.md",
        "mkdocs.yml",
        *(f"man/{page}" for page in COMMANDS_WITH_PAGES),
    ]:
        assert needed in inside, needed
    assert not [name for name in inside if "__pycache__" in name or name.endswith(".pyc")]


def test_wheel_built_from_the_sdist_has_man_pages_licence_and_catalogue(
    unpacked_sdist: tuple[Path, list[str]], tmp_path: Path
) -> None:
    tree, _names = unpacked_sdist
    wheel = build("wheel", tree, tmp_path / "wheel")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = archive.read(f"{NAME}.dist-info/METADATA").decode()
    pages = {Path(name).name for name in names if f"{NAME}.data/data/share/man/man1/" in name}
    assert set(COMMANDS_WITH_PAGES) <= pages
    assert f"{NAME}.dist-info/licenses/LICENSE" in names
    assert "socklab/i18n/locale/de/LC_MESSAGES/socklab.mo" in names
    assert "socklab/py.typed" in names
    # `socklab examples` writes these from the installed package, in both languages.
    for language in ("en", "de"):
        assert f"socklab/apps/examples/programs/{language}/converter_server.py" in names
    assert not [name for name in names if name.endswith(".po")]  # sources stay in the sdist
    assert f"Version: {socklab.__version__}" in metadata
    assert "License-Expression: MIT" in metadata
    assert "Classifier: Topic :: System :: Networking" in metadata
    assert "Classifier: Intended Audience :: Education" in metadata


def test_part_of_the_suite_passes_from_the_unpacked_sdist(
    unpacked_sdist: tuple[Path, list[str]],
) -> None:
    tree, _names = unpacked_sdist
    environ = dict(os.environ, PYTHONPATH=str(tree / "src"), PYTHONDONTWRITEBYTECODE="1")
    where = subprocess.run(
        [sys.executable, "-c", "import socklab; print(socklab.__file__)"],
        cwd=tree,
        env=environ,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert Path(where.stdout.strip()).is_relative_to(tree)  # the unpacked code, not this tree's
    subset = ["tests/test_layers.py", "tests/i18n", "tests/protocol/test_framing.py"]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", *subset],
        cwd=tree,
        env=environ,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert re.search(r"\b\d+ passed\b", result.stdout)


def test_committed_man_pages_are_current() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "make_manpages.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_readme_has_no_link_a_package_index_cannot_follow() -> None:
    """PyPI shows README.md alone: relative links and ../ paths lead nowhere there."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)]+)\)", readme)
    assert all(target.startswith("https://") for target in targets), targets
    assert "../" not in readme
