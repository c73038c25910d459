"""`bench --compare --svg FILE`: the comparison as a chart of requests/s and peak memory per model.

The chart is drawn in-process from a small made-up comparison (figures chosen so that every
bar's length can be checked), then once from a real, short `bench --compare` run.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from socklab.i18n import set_language
from socklab.runtimes import RUNTIMES
from socklab.tools.bench.chart import (
    MEMORY_BAR_PX,
    PALETTE,
    THROUGHPUT_BAR_PX,
    nice_scale,
    render_comparison_svg,
)
from socklab.tools.bench.results import (
    BenchResult,
    CompareCell,
    Comparison,
    ErrorCounts,
    LatencySummary,
    ServerUsage,
)
from socklab.tools.bench.workload import SCENARIOS
from socklab.tools.svg import SVG_NAMESPACE
from tests.socklab_process import run_socklab

SVG = f"{{{SVG_NAMESPACE}}}"


@pytest.fixture
def english() -> Iterator[None]:
    set_language("en")  # an in-process test before this one may have left German behind
    yield


def result(
    scenario: str, requests_per_s: int, rss_mb: float | None, errors: int = 0
) -> BenchResult:
    return BenchResult(
        target=("127.0.0.1", 50000),
        workload=SCENARIOS[scenario].workload(duration_s=2.0, warmup_s=0.5, framing="line"),
        model="m",
        processes=1,
        requests=requests_per_s * 2,
        elapsed_s=2.0,
        latency=LatencySummary(50.0, 90.0, 99.0, 99.9, 120.0, 60.0),
        errors=ErrorCounts(mismatched=errors),
        idle_connected=0,
        bench_cpu_cores=0.5,
        server=ServerUsage(
            pid=1, cpu_cores=1.0, peak_rss_bytes=None if rss_mb is None else int(rss_mb * 1e6)
        ),
    )


COMPARISON = Comparison(
    servers=("threads", "selectors", "asyncio/uvloop"),
    scenarios=("c100_64", "c100_idle10k"),
    cells=(
        CompareCell("threads", "c100_64", result("c100_64", 10_000, 20.0)),
        CompareCell("selectors", "c100_64", result("c100_64", 20_000, 10.0)),
        CompareCell("asyncio/uvloop", "c100_64", result("c100_64", 40_000, 40.0, errors=3)),
        CompareCell("threads", "c100_idle10k", None, "could not start 10,000 threads"),
        CompareCell("selectors", "c100_idle10k", result("c100_idle10k", 5_000, None)),
    ),
)


def texts_of(root: ET.Element) -> list[str]:
    return ["".join(element.itertext()) for element in root.iter(f"{SVG}text")]


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    return root


@pytest.mark.parametrize(
    ("largest", "top", "step"),
    [(37_000, 40_000, 10_000), (41_000, 60_000, 20_000), (8.3, 10, 5), (0, 1, 0.25)],
)
def test_axes_end_on_a_round_number(largest: float, top: float, step: float) -> None:
    assert nice_scale(largest) == (top, step)


@pytest.mark.usefixtures("english")
def test_the_chart_has_a_bar_per_model_with_its_figure_axes_and_units() -> None:
    root = parse(render_comparison_svg(COMPARISON))
    texts = texts_of(root)
    assert "socklab bench --compare: c100_64, c100_idle10k" in texts
    assert root.find(f"{SVG}title") is not None
    for label in (
        "requests per second (more is better)",
        "server peak memory, RSS (less is better)",
        "requests/s (req/s)",
        "megabytes (MB)",
        "c100_64: TCP line, 100 connections, 64 B",
        "c100_idle10k: TCP line, 100 connections, 64 B, 10,000 idle",
        "10,000",
        "20,000",
        "40,000 3 errors",
        "20.0 MB",
        "40.0 MB",
        "failed",
        "-",
    ):
        assert label in texts, label
    # Both axes end on a round number above the largest figure, with ticks in between.
    assert "40,000" in texts and "0" in texts and "50" not in texts
    # Rows are labelled with the model: threads twice (one per scenario), uvloop once.
    assert texts.count("threads") == 2 and texts.count("asyncio/uvloop") == 1
    bars = [rect for rect in root.iter(f"{SVG}rect") if rect.attrib["fill"] in PALETTE]
    widths = {(rect.attrib["fill"], round(float(rect.attrib["width"]))) for rect in bars}
    threads, selectors, uvloop = PALETTE[:3]
    # Throughput on a 0..40,000 axis; memory on a 0..40 MB one: lengths in proportion.
    assert (threads, THROUGHPUT_BAR_PX // 4) in widths
    assert (selectors, THROUGHPUT_BAR_PX // 2) in widths
    assert (uvloop, THROUGHPUT_BAR_PX) in widths
    assert (selectors, MEMORY_BAR_PX // 4) in widths
    assert (uvloop, MEMORY_BAR_PX) in widths
    assert (selectors, 0) in widths  # no memory figure: no bar, and "-" beside it
    # The failed run draws no bar: 3 + 1 throughput bars, as many memory bars.
    assert len(bars) == 8


def test_a_german_chart_says_it_in_german() -> None:
    set_language("de")
    try:
        texts = texts_of(parse(render_comparison_svg(COMPARISON)))
    finally:
        set_language("en")
    assert "Anfragen pro Sekunde (mehr ist besser)" in texts
    assert "gescheitert" in texts


@pytest.mark.usefixtures("english")
def test_an_empty_comparison_is_still_a_picture() -> None:
    root = parse(
        render_comparison_svg(Comparison(servers=("threads",), scenarios=("c1_64",), cells=()))
    )
    assert "socklab bench --compare: c1_64" in texts_of(root)


# --- the command ----------------------------------------------------------------------------------


def test_bench_compare_svg_draws_every_model(tmp_path: Path) -> None:
    chart = tmp_path / "compare.svg"
    done = run_socklab(
        [
            "bench",
            "--compare",
            "--scenarios",
            "c1_64",
            "--duration",
            "0.3",
            "--warmup",
            "0",
            "--svg",
            str(chart),
        ],
        timeout_s=110,
    )
    assert done.returncode == 0, done.stderr
    assert f"Chart written to {chart}." in done.stdout
    root = parse(chart.read_text(encoding="utf-8"))
    texts = texts_of(root)
    assert "socklab bench --compare: c1_64" in texts
    for model in RUNTIMES:
        assert any(text == model or text.startswith(model + "/") for text in texts), model
    bars = [rect for rect in root.iter(f"{SVG}rect") if rect.attrib["fill"] in PALETTE]
    assert bars and all(float(rect.attrib["width"]) > 0 for rect in bars)


def test_svg_without_compare_is_a_one_line_usage_error(tmp_path: Path) -> None:
    chart = tmp_path / "compare.svg"
    done = run_socklab(["bench", "--svg", str(chart)], timeout_s=30)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "socklab bench: --svg draws the comparison: add --compare (socklab bench --compare --svg FILE)"
    )
    assert not chart.exists()


def test_an_unwritable_chart_fails_before_the_comparison_runs(tmp_path: Path) -> None:
    chart = tmp_path / "missing" / "compare.svg"
    done = run_socklab(["bench", "--compare", "--svg", str(chart)], timeout_s=30)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert lines[0].startswith(f"socklab bench: cannot write the picture {chart}: ")
    assert done.stdout == ""
