"""The documentation site (mkdocs.yml over docs/): it builds with --strict, offline, and covers the
public library; the German teaching page keeps up with the English one.

`mkdocs build --strict` fails on any broken link, missing anchor, page left out of the nav or
docstring mkdocstrings cannot render (mkdocs.yml turns each into a warning). Where this machine
lets a test make a network namespace (Linux, as root: CI), the build runs in one with no network
at all, so a theme or plugin that fetches fonts or scripts at build time fails here, not in an
offline classroom.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import socklab
from tests.i18n.test_voice import ONE_WORD, formal_address

PROJECT = Path(__file__).resolve().parents[1]
DOCS = PROJECT / "docs"
BUILD_TIMEOUT_S = 120


def without_network() -> list[str]:
    """A command prefix that runs a program with no network (an empty namespace), or [] where
    this machine does not allow one."""
    unshare = shutil.which("unshare")
    if unshare is None or not sys.platform.startswith("linux"):
        return []
    probe = subprocess.run([unshare, "--net", "true"], capture_output=True, timeout=10)
    return [unshare, "--net"] if probe.returncode == 0 else []


def mkdocs_build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    if shutil.which("mkdocs", path=str(Path(sys.executable).parent)) is None:
        pytest.fail("mkdocs is not installed: pip install -e '.[docs]' (make test installs it)")
    return subprocess.run(
        [
            *without_network(),
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--config-file",
            str(config),
            "--site-dir",
            str(site),
        ],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
        # Without Material's notice about its successor on every build.
        env=dict(os.environ, NO_MKDOCS_2_WARNING="1"),
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The whole site, built once with --strict from mkdocs.yml."""
    out = tmp_path_factory.mktemp("docs-site") / "site"
    result = mkdocs_build(PROJECT / "mkdocs.yml", out)
    assert result.returncode == 0, result.stderr[-4000:]
    return out


@pytest.mark.timeout(BUILD_TIMEOUT_S + 30)
def test_every_page_is_built_and_links_to_nothing_outside(site: Path) -> None:
    pages = {path.relative_to(DOCS).with_suffix(".html") for path in DOCS.rglob("*.md")}
    built = {path.relative_to(site) for path in site.rglob("*.html")}
    assert pages <= built, sorted(map(str, pages - built))
    assert Path("de/TEACHING.html") in pages
    # Opened from disk, the search reads its index from a script (the offline plugin).
    assert (site / "search" / "search_index.js").read_text(encoding="utf-8").startswith("var ")
    for page in site.rglob("*.html"):
        html = page.read_text(encoding="utf-8")
        # What a browser loads by itself (fonts, styles, scripts): all from the site's own files.
        loaded = re.findall(r'<(?:link|script)\b[^>]*\b(?:href|src)="([^"]+)"', html)
        assert not [url for url in loaded if re.match(r"(?:https?:)?//", url)], page
        assert "fonts.googleapis.com" not in html, page
        # Every link within the site, the theme's own (navigation, language menu) included,
        # leads to a file that is there: the site is browsed from disk. (404.html is for a web
        # server to show at any depth, so its links start at the root.)
        for target in re.findall(r'<a\b[^>]*\bhref="([^"#?]+)', html):
            if page.name != "404.html" and not re.match(r"[a-z]+:|//", target):
                assert (page.parent / target).exists(), f"{page.relative_to(site)}: {target}"


@pytest.mark.timeout(BUILD_TIMEOUT_S + 30)
def test_the_api_reference_documents_every_public_name(site: Path) -> None:
    html = (site / "API.html").read_text(encoding="utf-8")
    documented = set(re.findall(r'id="socklab\.(\w+)"', html))
    public = {name for name in socklab.__all__ if not name.startswith("__")}
    assert public <= documented, sorted(public - documented)
    # Rendered from the docstrings, not left as directives.
    assert ":::" not in html
    assert "Serve a protocol on" in html  # socklab.serve's docstring
    assert "Base of every error socklab raises on purpose." in html


@pytest.mark.timeout(BUILD_TIMEOUT_S + 30)
def test_a_broken_link_fails_the_strict_build(tmp_path: Path) -> None:
    """The project's settings (strict, validation), inherited by a small site with a link to a
    page that does not exist, one to a section that does not exist, and a page left out of the
    nav: each is reported, and the build fails."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text(
        "# Home\n\nSee [the labs](LABS.md) and [framing](TOOLS.md#framing).\n", encoding="utf-8"
    )
    (docs / "TOOLS.md").write_text("# Tools\n\n## Capture\n", encoding="utf-8")
    (docs / "FORGOTTEN.md").write_text("# Not in the nav\n", encoding="utf-8")
    config = tmp_path / "mkdocs.yml"
    config.write_text(
        f"INHERIT: {PROJECT / 'mkdocs.yml'}\n"
        f"docs_dir: {docs}\n"
        "nav:\n  - index.md\n  - TOOLS.md\n"
        "plugins:\n  - search\n",
        encoding="utf-8",
    )
    result = mkdocs_build(config, tmp_path / "site")
    assert result.returncode != 0
    assert re.search(r"WARNING.*'LABS\.md'", result.stderr), result.stderr[-3000:]
    assert re.search(r"WARNING.*anchor '#framing'", result.stderr), result.stderr[-3000:]
    assert re.search(
        r"WARNING.*not included in the \"nav\"[^\n]*\n +- FORGOTTEN\.md", result.stderr
    )


GERMAN_PAGES = sorted(path.name for path in (DOCS / "de").glob("*.md") if path.name != "index.md")


def table_keys(text: str) -> list[str]:
    """The options, commands and topics that start table rows (`--name NAME`, `/msg NAME text`,
    `stream`): the same in a page and its translation, where the messages are translated."""
    return re.findall(r"^\| `([-/][^`]*|\w+)`", text, re.M)


@pytest.mark.parametrize("name", GERMAN_PAGES)
def test_a_german_page_translates_all_of_its_english_page(name: str) -> None:
    """docs/de/X.md translates docs/X.md: every section, every option, topic and command row;
    the English page points to it."""
    english = (DOCS / name).read_text(encoding="utf-8")
    german = (DOCS / "de" / name).read_text(encoding="utf-8")
    assert len(re.findall(r"^## ", german, re.M)) == len(re.findall(r"^## ", english, re.M))
    assert table_keys(german) == table_keys(english)
    assert f"(de/{name})" in english
    # The catalogue's voice: du, never Sie, and one word for each thing.
    assert not formal_address(german)
    assert not [word for word in ONE_WORD if re.search(word, german)]


def test_the_teaching_docs_have_german_pages() -> None:
    assert {"TEACHING.md", "CHAT.md"} <= set(GERMAN_PAGES)
    # Every lesson of `socklab demo` and every chat option and command is in the comparison.
    assert len(table_keys((DOCS / "TEACHING.md").read_text(encoding="utf-8"))) >= 10
    assert len(table_keys((DOCS / "CHAT.md").read_text(encoding="utf-8"))) >= 15
