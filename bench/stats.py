"""Summary statistics for repeated measurements: mean, standard deviation and a 95% interval that fits the quantity.

Speeds and latencies are positive, so their interval is built on the log scale (delta method: mean x exp(± t·cv/√n),
cv = sd/mean): it never goes below zero, and it widens upwards as a skewed positive quantity does. Quantities
that can be zero or negative keep the plain Student-t interval mean ± t·sd/√n. `n` is always reported.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

# Two-sided 95% Student-t critical values by degrees of freedom (1..30); beyond 30 the normal 1.96 is close.
_T95 = (
    12.706,
    4.303,
    3.182,
    2.776,
    2.571,
    2.447,
    2.365,
    2.306,
    2.262,
    2.228,
    2.201,
    2.179,
    2.160,
    2.145,
    2.131,
    2.120,
    2.110,
    2.101,
    2.093,
    2.086,
    2.080,
    2.074,
    2.069,
    2.064,
    2.060,
    2.056,
    2.052,
    2.048,
    2.045,
    2.042,
)


@dataclass(frozen=True)
class Summary:
    """n samples summarised; the interval (absent for a single sample) is on the log scale for positive samples,
    mean ± t(0.975, n-1)·sd/√n otherwise (`interval` says which)."""

    n: int
    mean: float
    sd: float | None
    ci95_low: float | None
    ci95_high: float | None
    interval: str = "t"

    def as_dict(self) -> dict[str, object]:
        """JSON-ready."""
        return asdict(self)


def summarise(samples: list[float]) -> Summary:
    """Mean, sample standard deviation and 95% interval of repeated measurements."""
    n = len(samples)
    if n == 0:
        raise ValueError("no samples to summarise")
    mean = sum(samples) / n
    if n == 1:
        return Summary(1, mean, None, None, None)
    sd = math.sqrt(sum((x - mean) ** 2 for x in samples) / (n - 1))
    t = _T95[n - 2] if n - 1 <= len(_T95) else 1.96
    if all(x > 0 for x in samples):
        factor = math.exp(t * sd / mean / math.sqrt(n))
        return Summary(n, mean, sd, mean / factor, mean * factor, "t on the log scale")
    half = t * sd / math.sqrt(n)
    return Summary(n, mean, sd, mean - half, mean + half, "t")


def percentile(samples: list[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100), as numpy's default."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
