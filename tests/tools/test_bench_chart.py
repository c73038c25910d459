"""`bench --compare --svg`'s chart (pure): a bar per figure, scaled per group, words where none."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree

from socklab.tools.bench.chart import ChartWords, render_comparison_svg

SVG = "{http://www.w3.org/2000/svg}"
WORDS = ChartWords(
    title="requests/s",
    memory="peak RSS",
    failed="failed",
    not_run="not run",
    not_measured="not measured",
    requests_unit="{value} req/s",
    memory_unit="{value} MB",
)


def test_bars_carry_their_figures_and_gaps_are_said_in_words() -> None:
    document = render_comparison_svg(
        ["asyncio/uvloop", "threads", "iterative"],
        ["c1_64", "udp32_64"],
        {
            ("asyncio/uvloop", "c1_64"): 20_000.0,
            ("threads", "c1_64"): 10_000.0,
            ("iterative", "c1_64"): None,  # failed
            ("asyncio/uvloop", "udp32_64"): 50_000.0,  # threads, iterative: not run
        },
        {"asyncio/uvloop": 30_000_000, "threads": 45_000_000, "iterative": None},
        WORDS,
    )
    root = ElementTree.fromstring(document.split("\n", 1)[1])
    assert root.tag == f"{SVG}svg"
    widths = [
        float(bar.get("width", "0")) for bar in root.iter(f"{SVG}rect") if bar.get("class") == "bar"
    ]
    # c1_64: 20k full length, 10k half; udp32_64: its one bar full; memory: 45 MB full, 30 MB 2/3
    assert widths == [560.0, 280.0, 560.0, 373.3, 560.0]
    texts = [node.text for node in root.iter(f"{SVG}text")]
    assert "20,000 req/s" in texts and "45 MB" in texts
    assert texts.count("failed") == 1 and texts.count("not run") == 2
    assert texts.count("not measured") == 1
