"""The comparison as a chart (`bench --compare --svg FILE`): throughput and memory per model.

Two panels side by side share one list of rows: for each scenario a heading (its name and
workload), then one row per model with a bar of requests per second on the left and a bar of
the server's peak memory (RSS) on the right, each with its figure written at its end. Bars are
horizontal so that model names read as text, not at an angle, and every panel has its own
scale (shared by all scenarios, so bars compare across groups too), axis, ticks and unit. A
failed run is written as such, with no bar. Each model keeps its colour in every group (the
Okabe-Ito palette, told apart by colour-blind viewers too); the name on each row carries the
meaning, the colour only helps the eye.

Pure: a `Comparison` in, SVG text out; the words are translated, and the text is made XML
text by `socklab.tools.svg`.
"""

from __future__ import annotations

import math

from socklab.i18n import _, format_count, format_number
from socklab.tools.bench.results import BenchResult, Comparison, format_megabytes
from socklab.tools.bench.workload import describe_workload
from socklab.tools.svg import (
    GRID,
    INK,
    close_document,
    open_document,
    text_element,
    text_width,
)

# Okabe & Ito, "Color Universal Design" (2008): distinguishable with every common colour-vision
# deficiency, and dark enough against white for a projector.
PALETTE = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000")
FAILED_COLOUR = "#c00000"

FONT_PX = 20
SMALL_PX = 17
TITLE_PX = 26
MARGIN = 24
ROW_PX = 36
BAR_PX = 24
GROUP_PX = 46  # a scenario's heading row
THROUGHPUT_BAR_PX = 480
MEMORY_BAR_PX = 300
VALUE_ROOM_PX = 190  # the figure written after the longest bar
PANEL_GAP_PX = 40
TICKS = 4


def nice_scale(largest: float) -> tuple[float, float]:
    """(top, step) of an axis that shows `largest`: about `TICKS` steps of 1, 2 or 5 × 10^n."""
    if largest <= 0 or not math.isfinite(largest):
        return 1.0, 0.25
    raw = largest / TICKS
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    return math.ceil(largest / step) * step, step


def _peak_megabytes(result: BenchResult | None) -> float | None:
    if result is None or result.server is None or result.server.peak_rss_bytes is None:
        return None
    return result.server.peak_rss_bytes / 1e6


def _format_tick(value: float) -> str:
    return format_number(value) if value >= 10 or value == 0 else format_number(value, 1)


def render_comparison_svg(comparison: Comparison) -> str:
    """The chart of a `bench --compare` run as an SVG document."""
    title = _("socklab bench --compare: {scenarios}").format(
        scenarios=", ".join(comparison.scenarios)
    )
    results = [cell.result for cell in comparison.cells if cell.result is not None]
    throughput_top, throughput_step = nice_scale(
        max([result.requests_per_s for result in results] + [0.0])
    )
    memory_top, memory_step = nice_scale(
        max([_peak_megabytes(result) or 0.0 for result in results] + [0.0])
    )
    colours = {
        server: PALETTE[index % len(PALETTE)] for index, server in enumerate(comparison.servers)
    }

    labels_width = max([text_width(server, FONT_PX) for server in comparison.servers] + [60.0])
    throughput_x = MARGIN + labels_width + 16
    memory_x = throughput_x + THROUGHPUT_BAR_PX + VALUE_ROOM_PX + PANEL_GAP_PX
    width = memory_x + MEMORY_BAR_PX + VALUE_ROOM_PX + MARGIN

    body: list[str] = []
    y = MARGIN + TITLE_PX
    body.append(text_element(MARGIN, y, title, size=TITLE_PX, weight="bold"))
    subtitle = _describe_runs(results)
    if subtitle:
        y += SMALL_PX + 10
        body.append(text_element(MARGIN, y, subtitle, size=SMALL_PX))
    y += 20 + FONT_PX
    body.append(
        text_element(
            throughput_x, y, _("requests per second (more is better)"), size=FONT_PX, weight="bold"
        )
    )
    memory_heading = _("server peak memory, RSS (less is better)")
    body.append(text_element(memory_x, y, memory_heading, size=FONT_PX, weight="bold"))
    width = max(width, memory_x + text_width(memory_heading, FONT_PX) + MARGIN)
    y += 8
    bars: list[str] = []
    spans: list[tuple[float, float]] = []  # each scenario's rows: the grid runs behind them only
    for scenario in comparison.scenarios:
        cells = [
            cell
            for server in comparison.servers
            if (cell := comparison.cell(server, scenario)) is not None
        ]
        if not cells:
            continue
        y += GROUP_PX
        workload = next((cell.result.workload for cell in cells if cell.result), None)
        heading = scenario if workload is None else f"{scenario}: {describe_workload(workload)}"
        bars.append(text_element(MARGIN, y - 10, heading, size=FONT_PX, weight="bold"))
        span_top = y
        for cell in cells:
            middle = y + ROW_PX / 2
            bars.append(text_element(MARGIN, middle + 7, cell.server, size=FONT_PX))
            result = cell.result
            if result is None:
                bars.append(
                    text_element(
                        throughput_x,
                        middle + 7,
                        _("failed"),
                        size=FONT_PX,
                        weight="bold",
                        fill=FAILED_COLOUR,
                        css_class="",
                    )
                )
                y += ROW_PX
                continue
            figure = format_number(result.requests_per_s)
            if result.errors.total:
                figure += " " + format_count("{count} error", "{count} errors", result.errors.total)
            bars += _bar(
                throughput_x,
                middle,
                result.requests_per_s / throughput_top * THROUGHPUT_BAR_PX,
                colours[cell.server],
                figure,
            )
            megabytes = _peak_megabytes(result)
            bars += _bar(
                memory_x,
                middle,
                0.0 if megabytes is None else megabytes / memory_top * MEMORY_BAR_PX,
                colours[cell.server],
                format_megabytes(None if megabytes is None else round(megabytes * 1e6)),
            )
            y += ROW_PX
        spans.append((span_top, y))
    plot_bottom = y + 8
    # The last group's lines reach down to the axis.
    spans = [*spans[:-1], (spans[-1][0], plot_bottom)] if spans else [(y, plot_bottom)]
    axes = _axis(throughput_x, THROUGHPUT_BAR_PX, throughput_top, throughput_step, spans)
    axes += _axis(memory_x, MEMORY_BAR_PX, memory_top, memory_step, spans)
    y = plot_bottom + 10 + SMALL_PX + 14 + FONT_PX
    axes.append(
        text_element(
            throughput_x + THROUGHPUT_BAR_PX / 2,
            y,
            _("requests/s (req/s)"),
            size=FONT_PX,
            anchor="middle",
        )
    )
    axes.append(
        text_element(
            memory_x + MEMORY_BAR_PX / 2, y, _("megabytes (MB)"), size=FONT_PX, anchor="middle"
        )
    )
    y += 16 + SMALL_PX
    footnote = _(
        "One machine's figures: compare the models with each other, not with another computer."
    )
    axes.append(text_element(MARGIN, y, footnote, size=SMALL_PX))
    width = max(
        width, text_width(title, TITLE_PX) + 2 * MARGIN, text_width(footnote, SMALL_PX) + 2 * MARGIN
    )
    height = y + MARGIN

    document = open_document(width, height, title)
    document += axes
    document += body
    document += bars
    return close_document(document)


def _describe_runs(results: list[BenchResult]) -> str:
    if not results:
        return ""
    first = results[0].workload
    return _("Each run: a fresh server, {warmup} s of warm-up, then {duration} s measured.").format(
        warmup=format_number(first.warmup_s, None), duration=format_number(first.duration_s, None)
    )


def _bar(x: float, middle: float, length: float, colour: str, figure: str) -> list[str]:
    length = max(0.0, length)
    return [
        f'<rect x="{x:.1f}" y="{middle - BAR_PX / 2:.1f}" width="{length:.1f}" '
        f'height="{BAR_PX}" fill="{colour}"/>',
        text_element(x + length + 8, middle + 7, figure, size=FONT_PX),
    ]


def _axis(
    x: float, length: float, top: float, step: float, spans: list[tuple[float, float]]
) -> list[str]:
    """Grid lines at each tick behind each group's rows, the axes, the tick labels below."""
    parts = []
    y_bottom = spans[-1][1]
    for index in range(round(top / step) + 1):
        value = index * step
        tick_x = x + value / top * length
        css_class, colour, stroke = ("rule", INK, 2) if index == 0 else ("grid", GRID, 1)
        for span_top, span_bottom in spans:
            parts.append(
                f'<line class="{css_class}" x1="{tick_x:.1f}" y1="{span_top:.1f}" '
                f'x2="{tick_x:.1f}" y2="{span_bottom:.1f}" stroke="{colour}" '
                f'stroke-width="{stroke}"/>'
            )
        parts.append(
            text_element(
                tick_x,
                y_bottom + 10 + SMALL_PX,
                _format_tick(value),
                size=SMALL_PX,
                anchor="middle",
            )
        )
    parts.append(
        f'<line class="rule" x1="{x:.1f}" y1="{y_bottom:.1f}" x2="{x + length:.1f}" '
        f'y2="{y_bottom:.1f}" stroke="{INK}" stroke-width="2"/>'
    )
    return parts


__all__ = ["PALETTE", "nice_scale", "render_comparison_svg"]
