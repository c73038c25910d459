"""A latency histogram with bounded memory and about 1.5 % resolution, mergeable across processes.

Strategy (the idea of HdrHistogram, reduced to what a benchmark report needs): a value in
nanoseconds falls into one of 64 linear sub-buckets of its power of two, so the bucket index
costs a `bit_length()`, a shift and an add — no logarithm, no sort, no per-sample allocation —
and the relative error of any percentile is below 1/64. Counts live in a flat list that covers
values up to a few minutes; a longer latency goes into the last bucket.
"""

from __future__ import annotations

SUB_BUCKET_BITS = 6
SUB_BUCKETS = 1 << SUB_BUCKET_BITS  # 64 per power of two: at most 1/64 relative error
_LINEAR_LIMIT = SUB_BUCKETS * 2  # values below this get a bucket each
_MAX_SHIFT = 32  # 2**(32 + 7) ns = 550 s: far beyond any closed-loop request
BUCKET_COUNT = (_MAX_SHIFT + 2) * SUB_BUCKETS


def bucket_of(value_ns: int) -> int:
    """The bucket index of `value_ns` (monotone in the value)."""
    if value_ns < _LINEAR_LIMIT:
        return value_ns if value_ns > 0 else 0
    shift = value_ns.bit_length() - (SUB_BUCKET_BITS + 1)
    if shift > _MAX_SHIFT:
        return BUCKET_COUNT - 1
    return (shift << SUB_BUCKET_BITS) + (value_ns >> shift)


def bucket_range(index: int) -> tuple[int, int]:
    """[low, high) in nanoseconds of the values that land in bucket `index`."""
    if index < _LINEAR_LIMIT:
        return index, index + 1
    shift = (index >> SUB_BUCKET_BITS) - 1
    mantissa = index - (shift << SUB_BUCKET_BITS)
    return mantissa << shift, (mantissa + 1) << shift


class LatencyHistogram:
    """Counts of latencies; `record` is the hot path of the load generator."""

    __slots__ = ("count", "counts", "max_ns", "total_ns")

    def __init__(self) -> None:
        self.counts = [0] * BUCKET_COUNT
        self.count = 0
        self.total_ns = 0
        self.max_ns = 0

    def record(self, value_ns: int, times: int = 1) -> None:
        self.counts[bucket_of(value_ns)] += times
        self.count += times
        self.total_ns += value_ns * times
        if value_ns > self.max_ns:
            self.max_ns = value_ns

    def merge(self, other: LatencyHistogram) -> None:
        counts = self.counts
        for index, value in enumerate(other.counts):
            if value:
                counts[index] += value
        self.count += other.count
        self.total_ns += other.total_ns
        self.max_ns = max(self.max_ns, other.max_ns)

    def percentile_ns(self, percent: float) -> int:
        """The latency below which `percent` % of the samples lie (bucket midpoint); 0 if empty."""
        if not 0 <= percent <= 100:
            raise ValueError("percent must be within 0-100")
        if self.count == 0:
            return 0
        # Nearest-rank definition: the smallest value with at least percent % of samples <= it.
        rank = max(1, -(-self.count * percent // 100))
        seen = 0
        for index, value in enumerate(self.counts):
            seen += value
            if seen >= rank:
                low, high = bucket_range(index)
                return min((low + high - 1) // 2, self.max_ns) if high - low > 1 else low
        return self.max_ns

    @property
    def mean_ns(self) -> float:
        return self.total_ns / self.count if self.count else 0.0
