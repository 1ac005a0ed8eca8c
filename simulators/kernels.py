"""The replay's sequential parts, compiled with numba: FIFO queues on local capacity (one or several servers),
admission control for the SLO-aware policy, and the per-request accounting of every attempt.

A queue is a recursion over requests in arrival order and cannot be written as whole-array numpy steps for
several servers; these kernels are single passes in machine code instead. Everything that does vectorise
(policies, pricing, metrics) stays in numpy. `cache=True` keeps the compiled code beside this file, so only
the first replay on a machine pays the compile time (about 2 s).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def replace_min(heaps: np.ndarray, row: int, value: float) -> None:  # pragma: no cover - compiled
    """heapq.heapreplace on row `row` of an array of float min-heaps: drop the smallest, insert `value`. Indexing
    the 2-D array directly (no row view) keeps numba from reference-counting a view on every request."""
    size, i = heaps.shape[1], 0
    while True:
        child = 2 * i + 1
        if child >= size:
            break
        if child + 1 < size and heaps[row, child + 1] < heaps[row, child]:
            child += 1
        if heaps[row, child] < value:
            heaps[row, i] = heaps[row, child]
            i = child
        else:
            break
    heaps[row, i] = value


@njit(cache=True)
def fifo_start(arrivals: np.ndarray, service: np.ndarray, servers: int) -> np.ndarray:  # pragma: no cover
    """Start of service of each request, served in the order given by the server that frees first
    (Kiefer-Wolfowitz)."""
    free = np.zeros((1, servers))
    start = np.empty(arrivals.size)
    for i in range(arrivals.size):
        begin = arrivals[i] if arrivals[i] > free[0, 0] else free[0, 0]
        start[i] = begin
        replace_min(free, 0, begin + service[i])
    return start


@njit(cache=True)
def fifo_admission(arrivals: np.ndarray, service: np.ndarray, servers: int, limit: np.ndarray,
                   can_refuse: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover
    """FIFO with admission control: a request whose wait + service would pass its limit is refused unless it
    cannot be; returns (admitted, over the limit when it arrived)."""
    n = arrivals.size
    free = np.zeros((1, servers))
    admitted, over = np.ones(n, dtype=np.bool_), np.zeros(n, dtype=np.bool_)
    for i in range(n):
        begin = arrivals[i] if arrivals[i] > free[0, 0] else free[0, 0]
        if begin - arrivals[i] + service[i] > limit[i]:
            over[i] = True
            if can_refuse[i]:
                admitted[i] = False
                continue
        replace_min(free, 0, begin + service[i])
    return admitted, over


@njit(cache=True)
def attempt_layout(attempts: np.ndarray, m: int) -> tuple[np.ndarray, bool]:  # pragma: no cover - compiled
    """One pass over a routing: which models each tier sends attempts to, and whether some request skips a tier
    (a gap before a later attempt). Branch-free: column 0 of `seen` collects the -1 pads."""
    n, k = attempts.shape
    seen = np.zeros((k, m + 1), dtype=np.int64)
    gaps = 0
    for t in range(k):
        for i in range(n):
            j = attempts[i, t]
            seen[t, j + 1] = 1
            if t > 0:
                gaps += (j >= 0) & (attempts[i, t - 1] < 0)
    return seen[:, 1:] > 0, gaps > 0


@njit(cache=True)
def last_attempt(attempts: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    """Each request's last model, the one that answered it (-1: no attempt, rejected)."""
    n, k = attempts.shape
    final = np.empty(n, dtype=np.int16)
    for i in range(n):
        last = -1
        for t in range(k):
            last = attempts[i, t] if attempts[i, t] >= 0 else last
        final[i] = last
    return final


@njit(cache=True)
def settle(attempts: np.ndarray, arrival: np.ndarray, service: np.ndarray, first_token: np.ndarray,
           cost: np.ndarray, permitted: np.ndarray, correct: np.ndarray, input_tokens: np.ndarray,
           output_tokens: np.ndarray, slo_ms: np.ndarray, is_local: np.ndarray, tier_local: np.ndarray,
           servers: int, queueing: bool, given_start: np.ndarray):  # pragma: no cover
    """Every attempt timed and charged, and each request's answer read off its last attempt.

    Attempts run tier after tier. Within a tier, requests reach a local model's FIFO queue in the order they
    became ready (ties: trace order); valid when each local model serves one tier. Otherwise the caller passes
    the start of every attempt (`given_start`, shape (tiers, requests); empty when not given). `tier_local[t]`:
    some attempt of tier t goes to a local model."""
    n, k = attempts.shape
    m = service.shape[1]
    free = np.zeros((m, servers))
    # per request: when it is ready for its next attempt (its latency at the end), cost so far, time queued, start
    # of the latest attempt, time to first token, attempts made, answer, residency break
    latency, total, wait = np.empty(n), np.empty(n), np.empty(n)
    first_attempt, ttft, wasted = np.empty(n), np.empty(n), np.empty(n)
    tries, right = np.empty(n, dtype=np.int8), np.empty(n, dtype=np.bool_)
    violation, late = np.empty(n, dtype=np.bool_), np.empty(n, dtype=np.bool_)
    given = given_start.shape[0] > 0
    # Only the first tier queueing (in trace order): one pass, each request through all its tiers in turn.
    # Otherwise tier after tier, a later tier's local queue serving in the order requests became ready.
    by_request = given or not queueing or not tier_local[1:].any()
    passes = 1 if by_request else k
    for p in range(passes):
        reorder = not by_request and p > 0 and tier_local[p]
        order = np.argsort(latency, kind="mergesort") if reorder else np.empty(0, dtype=np.int64)
        for position in range(n):
            i = order[position] if reorder else position
            if p == 0:  # the state lives in scalars within a pass, in the arrays between passes
                ready, cost_i, wait_i, begun, first, tries_i, right_i, broke = arrival[i], 0.0, 0.0, 0.0, 0.0, 0, False, False
            else:
                ready, cost_i, wait_i, begun, first = latency[i], total[i], wait[i], first_attempt[i], ttft[i]
                tries_i, right_i, broke = tries[i], right[i], violation[i]
            for t in range(0 if by_request else p, k if by_request else p + 1):
                j = attempts[i, t]
                if j < 0:
                    continue
                if given:
                    begin = given_start[t, i]
                else:
                    begin = ready
                    if queueing and is_local[j]:
                        if free[j, 0] > begin:
                            begin = free[j, 0]
                        replace_min(free, j, begin + service[i, j])
                tries_i += 1
                cost_i += cost[i, j]
                wait_i += begin - ready
                broke |= not permitted[i, j]
                begun, first, right_i = begin, begin + first_token[i, j], correct[i, j]
                ready = begin + service[i, j]
            total[i], wait[i], tries[i], right[i], violation[i] = cost_i, wait_i, tries_i, right_i, broke
            if p < passes - 1:
                latency[i], first_attempt[i], ttft[i] = ready, begun, first
            elif tries_i == 0:  # rejected: no answer, no latency
                latency[i] = ttft[i] = first_attempt[i] = np.nan
                wasted[i], late[i] = 0.0, False
            else:
                latency[i], ttft[i] = ready - arrival[i], first - arrival[i]
                first_attempt[i] = begun - arrival[i] if tries_i > 1 else np.nan
                wasted[i] = (tries_i - 1) * (input_tokens[i] + output_tokens[i])
                late[i] = latency[i] > slo_ms[i] / 1000.0  # False where the request has no SLO (NaN)
    return total, wait, ttft, latency, first_attempt, wasted, right, violation, late
    for t in range(k):  # a local queue at a later tier serves in the order requests became ready
        order = np.argsort(latency, kind="mergesort") if t > 0 and tier_local[t] else np.arange(n)
        for i in order:
            if attempts[i, t] >= 0:
                _attempt(i, t, attempts[i, t], given_start, queueing, is_local, free, service, first_token, cost,
                         permitted, correct, outputs)
    for i in range(n):
        _finish(i, arrival, input_tokens, output_tokens, slo_ms, outputs, wasted, late)
    return total, wait, ttft, latency, first_attempt, wasted, right, violation, late
