"""Lines about peers (`upper server`, the converter's -v over UDP): a flood gives a few lines a
second and one summary line."""

from __future__ import annotations

from socklab.apps.peer_lines import PeerLineLimiter, summarize_datagrams


def test_lines_beyond_the_budget_become_one_summary_per_window() -> None:
    now = [0.0]
    lines: list[str] = []
    limiter = PeerLineLimiter(
        lines.append, summarize_datagrams, lines_per_window=2, clock=lambda: now[0]
    )
    for number in range(9_414):
        limiter.offer(("10.0.0.1", 1000 + number % 3), lambda n=number: f"line {n}")
    assert lines == ["line 0", "line 1"]
    now[0] = 1.0
    limiter.tick()
    assert lines[2:] == ["… and 9,412 more datagrams from 3 peers"]
    limiter.offer(("10.0.0.1", 1000), lambda: "line after")
    assert lines[3:] == ["line after"]  # a new window
    limiter.flush()
    assert len(lines) == 4  # nothing was held back


def test_the_stop_reports_what_was_held_back() -> None:
    lines: list[str] = []
    limiter = PeerLineLimiter(
        lines.append, summarize_datagrams, lines_per_window=1, clock=lambda: 0.0
    )
    limiter.offer(("::1", 5), lambda: "first")
    limiter.offer(("::1", 5), lambda: "second")
    limiter.flush()
    assert lines == ["first", "… and 1 more datagram from 1 peer"]
