"""docs/CONCURRENCY.md's feature matrix must say what RUNTIMES and FRAMINGS say."""

from __future__ import annotations

from pathlib import Path

from socklab.protocol.framing import FRAMINGS
from socklab.runtimes import RUNTIMES

DOC = Path(__file__).resolve().parents[2] / "docs" / "CONCURRENCY.md"
BEGIN = "<!-- feature-matrix: begin -->"
END = "<!-- feature-matrix: end -->"
# The naive framing carries a footnote in the header.
FOOTNOTES = {"raw": "¹"}


def feature_matrix() -> str:
    """The matrix as Markdown: a row per runtime, a column per TCP framing, then UDP."""
    framings = sorted(FRAMINGS)
    header = ["model", *(f"TCP {name}{FOOTNOTES.get(name, '')}" for name in framings), "UDP"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, info in sorted(RUNTIMES.items()):
        tcp = "yes" if "tcp" in info.transports else "—"
        udp = "yes" if "udp" in info.transports else "—"
        lines.append("| " + " | ".join([name, *([tcp] * len(framings)), udp]) + " |")
    return "\n".join(lines)


def test_the_documented_matrix_matches_the_registries() -> None:
    text = DOC.read_text(encoding="utf-8")
    documented = text.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    expected = feature_matrix()
    assert documented == expected, f"update docs/CONCURRENCY.md's matrix to:\n{expected}"


def test_every_model_is_described_in_the_docs() -> None:
    text = DOC.read_text(encoding="utf-8")
    for name in RUNTIMES:
        assert f"`{name}`" in text


if __name__ == "__main__":
    print(feature_matrix())
