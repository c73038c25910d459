"""The fault policy of `socklab impair`, pure: seeded decisions, exact byte counts, exact times."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from socklab.tools.impair.policy import (
    BURST_S,
    MAX_QUEUED_DATAGRAMS,
    REORDER_MAX_HOLD_S,
    DatagramImpairment,
    FaultSettings,
    QueueBudget,
    StreamEnding,
    StreamImpairment,
    TokenBucket,
)
from tests.tools.binomial_interval import binomial_interval

TRIALS = 2000


def run_datagrams(faults: FaultSettings, seed: int, count: int = TRIALS) -> list[bytes]:
    """Feed `count` numbered datagrams 1 ms apart; everything sent, in order of sending."""
    policy = DatagramImpairment(faults, random.Random(seed))
    out: list[bytes] = []
    now = 0.0
    for number in range(count):
        now = number * 0.001
        policy.receive_datagram(b"%d" % number, now)
        out += policy.take_due(now)
    while (deadline := policy.next_deadline()) is not None:
        out += policy.take_due(deadline)
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("probability", [0.05, 0.3, 0.5])
def test_loss_count_in_binomial_interval(seed: int, probability: float) -> None:
    out = run_datagrams(FaultSettings(loss=probability), seed)
    lost = TRIALS - len(out)
    assert lost in binomial_interval(TRIALS, probability)
    assert len(set(out)) == len(out)  # loss alone never duplicates


@pytest.mark.parametrize("seed", [4, 5])
def test_duplicate_count_in_binomial_interval(seed: int) -> None:
    policy = DatagramImpairment(FaultSettings(duplicate=0.2), random.Random(seed))
    out: list[bytes] = []
    for number in range(TRIALS):
        policy.receive_datagram(b"%d" % number, 0.0)
        out += policy.take_due(0.0)
    assert len(out) - TRIALS == policy.stats.duplicated
    assert policy.stats.duplicated in binomial_interval(TRIALS, 0.2)
    assert set(out) == {b"%d" % number for number in range(TRIALS)}


def test_reorder_holds_back_until_the_next_datagram_passes() -> None:
    out = run_datagrams(FaultSettings(reorder=0.2), seed=6)
    numbers = [int(datagram) for datagram in out]
    assert sorted(numbers) == list(range(TRIALS))  # nothing lost, nothing doubled
    overtaken = sum(1 for a, b in itertools.pairwise(numbers) if a > b)
    assert overtaken > 0
    stats_reordered = DatagramImpairment(FaultSettings(reorder=0.2), random.Random(6))
    for number in range(TRIALS):
        stats_reordered.receive_datagram(b"%d" % number, number * 0.001)
        stats_reordered.take_due(number * 0.001)
    assert stats_reordered.stats.reordered in binomial_interval(TRIALS, 0.2)


def test_a_held_datagram_without_successor_goes_after_the_hold_limit() -> None:
    policy = DatagramImpairment(FaultSettings(reorder=1.0), random.Random(1))
    policy.receive_datagram(b"last", 10.0)
    assert policy.take_due(10.0) == []
    assert policy.next_deadline() == pytest.approx(10.0 + REORDER_MAX_HOLD_S)
    assert policy.take_due(10.0 + REORDER_MAX_HOLD_S) == [b"last"]


class ScriptedRandom(random.Random):
    """random() answers from a script: decisions chosen by the test, not by chance."""

    def __init__(self, script: list[float]) -> None:
        super().__init__(0)
        self.script = list(script)

    def random(self) -> float:
        return self.script.pop(0)


def test_held_datagrams_go_right_after_their_successor() -> None:
    # reorder draws: a held, b held, c passes, d passes
    policy = DatagramImpairment(FaultSettings(reorder=0.5), ScriptedRandom([0.1, 0.1, 0.9, 0.9]))
    out: list[bytes] = []
    for datagram in (b"a", b"b", b"c", b"d"):
        policy.receive_datagram(datagram, 0.0)
        out += policy.take_due(0.0)
    assert out == [b"c", b"a", b"b", b"d"]
    assert policy.stats.reordered == 2


@pytest.mark.parametrize("faults", [FaultSettings(loss=0.3, duplicate=0.2, reorder=0.2)])
def test_same_seed_same_decisions(faults: FaultSettings) -> None:
    assert run_datagrams(faults, 7) == run_datagrams(faults, 7)
    assert run_datagrams(faults, 7) != run_datagrams(faults, 8)


def test_delay_and_jitter_bounds() -> None:
    policy = DatagramImpairment(FaultSettings(delay_s=0.1, jitter_s=0.02), random.Random(3))
    releases = []
    for _number in range(500):
        policy.receive_datagram(b"x", 5.0)
        deadline = policy.next_deadline()
        assert deadline is not None
        releases.append(deadline)
        policy.take_due(10.0)
    assert all(5.08 <= release <= 5.12 for release in releases)
    assert max(releases) - min(releases) > 0.03  # it does vary
    exact = DatagramImpairment(FaultSettings(delay_s=0.1), random.Random(3))
    exact.receive_datagram(b"y", 1.0)
    assert exact.take_due(1.0999) == []
    assert exact.take_due(1.1) == [b"y"]


def test_full_queue_drops_like_netem() -> None:
    policy = DatagramImpairment(FaultSettings(delay_s=1.0), random.Random(1))
    for _ in range(MAX_QUEUED_DATAGRAMS + 10):
        policy.receive_datagram(b"z", 0.0)
    assert policy.stats.dropped_queue_full == 10
    assert len(policy.take_due(1.0)) == MAX_QUEUED_DATAGRAMS


def test_shared_budget_bounds_all_flows() -> None:
    budget = QueueBudget(max_bytes=1000)
    flows = [
        DatagramImpairment(FaultSettings(delay_s=1.0), random.Random(n), budget=budget)
        for n in range(3)
    ]
    for flow in flows:
        for _ in range(5):
            flow.receive_datagram(b"q" * 100, 0.0)
    assert budget.used_bytes == 1000
    assert sum(flow.stats.dropped_queue_full for flow in flows) == 5
    for flow in flows:
        flow.take_due(1.0)
    assert budget.used_bytes == 0


def test_token_bucket_rate_is_exact() -> None:
    rate = 100_000
    bucket = TokenBucket(rate, now=0.0)
    release = 0.0
    for _ in range(150):
        release = bucket.release_time(1000, 0.0)
    # The first burst goes at once; every further byte waits for its token.
    assert release == pytest.approx((150 * 1000 - rate * BURST_S) / rate)


def test_token_bucket_lets_a_large_datagram_through_on_a_debt() -> None:
    bucket = TokenBucket(1000, now=0.0)  # capacity 20 bytes
    assert bucket.release_time(500, 0.0) == 0.0
    assert bucket.release_time(10, 0.0) == pytest.approx(0.49)


# --- streams ---------------------------------------------------------------------------------


def drain_stream(policy: StreamImpairment) -> list[tuple[float, bytes]]:
    out: list[tuple[float, bytes]] = []
    while (deadline := policy.next_deadline()) is not None:
        out += [(deadline, piece) for piece in policy.take_due(deadline)]
    return out


@settings(max_examples=50, deadline=None)
@given(
    data=st.binary(min_size=1, max_size=500),
    cuts=st.lists(st.integers(min_value=1, max_value=50), max_size=20),
    slice_bytes=st.integers(min_value=1, max_value=7),
    slice_delay_s=st.sampled_from([0.0, 0.001]),
)
def test_slices_deliver_the_same_bytes_in_order(
    data: bytes, cuts: list[int], slice_bytes: int, slice_delay_s: float
) -> None:
    policy = StreamImpairment(
        FaultSettings(
            slice_bytes=slice_bytes, slice_delay_s=slice_delay_s, jitter_s=0.005, delay_s=0.01
        ),
        random.Random(1),
    )
    position, now = 0, 0.0
    for cut in cuts:
        policy.receive_data(data[position : position + cut], now)
        position += cut
        now += 0.002
    policy.receive_data(data[position:], now)
    out = drain_stream(policy)
    assert b"".join(piece for _, piece in out) == data
    assert all(len(piece) <= slice_bytes for _, piece in out)
    times = [release for release, _ in out]
    assert times == sorted(times)  # jitter never reorders a byte stream


def test_slice_delay_spaces_the_slices() -> None:
    policy = StreamImpairment(FaultSettings(slice_bytes=2, slice_delay_s=0.01), random.Random(1))
    policy.receive_data(b"abcdef", 0.0)
    out = drain_stream(policy)
    assert [piece for _, piece in out] == [b"ab", b"cd", b"ef"]
    assert [release for release, _ in out] == pytest.approx([0.0, 0.01, 0.02])


@pytest.mark.parametrize("limit", [0, 1, 999, 1000, 1001])
def test_limit_bytes_forwards_exactly_n_then_closes(limit: int) -> None:
    policy = StreamImpairment(FaultSettings(limit_bytes=limit), random.Random(1))
    forwarded = b""
    for _ in range(10):
        policy.receive_data(b"x" * 333, 0.0)
        forwarded += b"".join(policy.take_due(0.0))
    assert len(forwarded) == min(limit, 3330)
    assert policy.ending is (StreamEnding.CLOSE if limit <= 3330 else None)
    assert policy.stats.bytes_discarded == 3330 - len(forwarded)


def test_reset_after_wins_when_smaller_and_waits_for_pending_bytes() -> None:
    policy = StreamImpairment(
        FaultSettings(limit_bytes=100, reset_after_bytes=10, delay_s=0.5), random.Random(1)
    )
    policy.receive_data(b"y" * 50, 0.0)
    assert policy.ending is None  # 10 bytes still wait out their delay
    assert b"".join(policy.take_due(0.5)) == b"y" * 10
    assert policy.ending is StreamEnding.RESET


def test_eof_passes_after_the_pending_bytes() -> None:
    policy = StreamImpairment(FaultSettings(delay_s=0.1), random.Random(1))
    policy.receive_data(b"last words", 0.0)
    policy.receive_eof()
    assert not policy.eof_due
    assert policy.take_due(0.1) == [b"last words"]
    assert policy.eof_due


def test_stream_rate_is_exact() -> None:
    rate = 100_000
    policy = StreamImpairment(FaultSettings(rate_bytes_per_s=rate), random.Random(1))
    policy.receive_data(b"r" * 150_000, 0.0)
    out = drain_stream(policy)
    assert sum(len(piece) for _, piece in out) == 150_000
    assert out[-1][0] == pytest.approx((150_000 - rate * BURST_S) / rate)
    assert max(len(piece) for _, piece in out) <= rate * BURST_S


def test_pending_bytes_are_counted_for_backpressure() -> None:
    policy = StreamImpairment(FaultSettings(delay_s=1.0), random.Random(1))
    policy.receive_data(b"p" * 4096, 0.0)
    assert policy.pending_bytes == 4096
    policy.take_due(1.0)
    assert policy.pending_bytes == 0


@pytest.mark.parametrize(
    "bad",
    [
        {"loss": 1.5},
        {"duplicate": -0.1},
        {"delay_s": -1.0},
        {"rate_bytes_per_s": 0},
        {"slice_bytes": 0},
        {"limit_bytes": -1},
    ],
)
def test_settings_refuse_impossible_values(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        FaultSettings(**bad)  # type: ignore[arg-type]
