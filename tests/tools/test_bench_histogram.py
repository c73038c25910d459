"""The latency histogram: bucket arithmetic, percentiles within its resolution, merging."""

from __future__ import annotations

import random

import pytest

from socklab.tools.bench.histogram import (
    BUCKET_COUNT,
    SUB_BUCKETS,
    LatencyHistogram,
    bucket_of,
    bucket_range,
)


def test_buckets_are_monotone_and_contain_their_values() -> None:
    previous = -1
    for value in sorted([*range(0, 5000), *(int(1.37**k) for k in range(20, 80))]):
        index = bucket_of(value)
        assert index >= previous
        previous = index
        low, high = bucket_range(index)
        if index < BUCKET_COUNT - 1:
            assert low <= value < high


def test_relative_error_is_below_one_sub_bucket() -> None:
    for value in (150, 999, 12_345, 987_654, 45_000_000):
        low, high = bucket_range(bucket_of(value))
        assert (high - low) / low <= 1 / SUB_BUCKETS


def test_percentiles_of_a_known_distribution() -> None:
    histogram = LatencyHistogram()
    for value in range(1, 100_001):  # 1 .. 100,000 ns, uniform
        histogram.record(value * 1000)
    for percent in (50, 90, 99, 99.9):
        exact = percent / 100 * 100_000 * 1000
        assert histogram.percentile_ns(percent) == pytest.approx(exact, rel=1 / SUB_BUCKETS)
    assert histogram.max_ns == 100_000_000
    assert histogram.percentile_ns(100) <= histogram.max_ns


def test_merge_equals_recording_everything_in_one() -> None:
    rng = random.Random(7)
    values = [rng.randrange(1_000, 5_000_000) for _ in range(5_000)]
    whole, first, second = LatencyHistogram(), LatencyHistogram(), LatencyHistogram()
    for index, value in enumerate(values):
        whole.record(value)
        (first if index % 2 else second).record(value)
    first.merge(second)
    assert first.counts == whole.counts
    assert first.count == whole.count == 5_000
    assert first.max_ns == whole.max_ns
    assert first.percentile_ns(99) == whole.percentile_ns(99)


def test_weighted_record_and_empty() -> None:
    histogram = LatencyHistogram()
    assert histogram.percentile_ns(50) == 0
    histogram.record(2_000, times=4)
    assert histogram.count == 4
    assert histogram.mean_ns == 2_000
    with pytest.raises(ValueError):
        histogram.percentile_ns(101)
