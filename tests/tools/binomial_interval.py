"""The central interval of a binomial distribution, for checking random fault counts."""

from __future__ import annotations

import math


def binomial_interval(trials: int, probability: float, confidence: float = 0.99) -> range:
    """Counts k with P(X < low) <= (1-c)/2 and P(X > high) <= (1-c)/2, X ~ Bin(trials, p)."""
    tail = (1.0 - confidence) / 2.0

    def pmf(k: int) -> float:
        log = (
            math.lgamma(trials + 1)
            - math.lgamma(k + 1)
            - math.lgamma(trials - k + 1)
            + k * math.log(probability)
            + (trials - k) * math.log1p(-probability)
        )
        return math.exp(log)

    cumulative, low = 0.0, 0
    while cumulative + pmf(low) <= tail:
        cumulative += pmf(low)
        low += 1
    cumulative, high = 0.0, trials
    while cumulative + pmf(high) <= tail:
        cumulative += pmf(high)
        high -= 1
    return range(low, high + 1)
