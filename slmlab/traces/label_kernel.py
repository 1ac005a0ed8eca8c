"""The labeller's draw, compiled with numba: every request's uniform numbers come from a counter-based hash of
(seed, field, arrival rank), so any request's labels are computed on their own, in any row order, on every core.

uniform(seed, field, rank) = top 53 bits of splitmix64(stream + rank * 0x9E3779B97F4A7C15) / 2**53, where
stream = splitmix64(seed * 4 + field) and splitmix64(x) is Steele, Lea and Flood's 64-bit finaliser:
    z = x + 0x9E3779B97F4A7C15; z = (z ^ z >> 30) * 0xBF58476D1CE4E5B9; z = (z ^ z >> 27) * 0x94D049BB133111EB;
    z ^ z >> 31            (all arithmetic modulo 2**64)
A label's code is then how many of the first (labels - 1) cumulative probabilities of its distribution are
<= the uniform number (inverse CDF). `uniform` below is the same formula in plain Python, for checks.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_GAMMA = 0x9E3779B97F4A7C15
_MIX1, _MIX2 = 0xBF58476D1CE4E5B9, 0x94D049BB133111EB
_MASK = (1 << 64) - 1
FIELDS = 4  # task, data class, residency, tenant


def _splitmix64(x: int) -> int:
    z = (x + _GAMMA) & _MASK
    z = ((z ^ (z >> 30)) * _MIX1) & _MASK
    z = ((z ^ (z >> 27)) * _MIX2) & _MASK
    return z ^ (z >> 31)


def stream(seed: int, field: int) -> int:
    """The 64-bit key of one field's numbers under a seed."""
    return _splitmix64((seed * FIELDS + field) & _MASK)


def uniform(seed: int, field: int, rank: int) -> float:
    """One request's number for one field: the reference for the compiled kernel."""
    return (_splitmix64((stream(seed, field) + rank * _GAMMA) & _MASK) >> 11) * 2.0**-53


@njit(cache=True, inline="always")
def _uniform(key: np.uint64, rank: np.int64) -> float:  # pragma: no cover - compiled
    z = key + np.uint64(rank) * np.uint64(_GAMMA) + np.uint64(_GAMMA)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(_MIX1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(_MIX2)
    z = z ^ (z >> np.uint64(31))
    return float(z >> np.uint64(11)) * 2.0**-53


@njit(cache=True, inline="always")
def _code(value: float, cumulative: np.ndarray, row: int | np.integer) -> np.int8:  # pragma: no cover - compiled
    code = 0
    for column in range(cumulative.shape[1] - 1):
        if value >= cumulative[row, column]:
            code += 1
    return np.int8(code)


@njit(cache=True, nogil=True)
def draw_codes(
    lo: int,
    hi: int,
    keys: np.ndarray,
    rank: np.ndarray,
    long_context: np.ndarray,
    recorded_task: np.ndarray,
    recorded_class: np.ndarray,
    task_table: np.ndarray,
    class_table: np.ndarray,
    residency_table: np.ndarray,
    tenant_table: np.ndarray,
    task: np.ndarray,
    data_class: np.ndarray,
    residency: np.ndarray,
    tenant: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """Rows [lo, hi): task given long context, data class given task, residency given data class, and tenant.
    A recorded code (>= 0; empty arrays when nothing is recorded) replaces the draw and conditions the next."""
    for i in range(lo, hi):
        r = rank[i]
        t = _code(_uniform(keys[0], r), task_table, long_context[i])
        if recorded_task.shape[0] and recorded_task[i] >= 0:
            t = recorded_task[i]
        c = _code(_uniform(keys[1], r), class_table, t)
        if recorded_class.shape[0] and recorded_class[i] >= 0:
            c = recorded_class[i]
        task[i], data_class[i] = t, c
        residency[i] = _code(_uniform(keys[2], r), residency_table, c)
        tenant[i] = _code(_uniform(keys[3], r), tenant_table, 0)
