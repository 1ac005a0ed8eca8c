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
def replace_min(heap: np.ndarray, value: float) -> None:  # pragma: no cover - compiled
    """heapq.heapreplace on a float min-heap stored in an array: drop the smallest, insert `value`."""
    size, i = heap.size, 0
    while True:
        child = 2 * i + 1
        if child >= size:
            break
        if child + 1 < size and heap[child + 1] < heap[child]:
            child += 1
        if heap[child] < value:
            heap[i] = heap[child]
            i = child
        else:
            break
    heap[i] = value


@njit(cache=True)
def fifo_start(arrivals: np.ndarray, service: np.ndarray, servers: int) -> np.ndarray:  # pragma: no cover
    """Start of service of each request, served in the order given by the server that frees first
    (Kiefer-Wolfowitz)."""
    free = np.zeros(servers)
    start = np.empty(arrivals.size)
    for i in range(arrivals.size):
        begin = arrivals[i] if arrivals[i] > free[0] else free[0]
        start[i] = begin
        replace_min(free, begin + service[i])
    return start


@njit(cache=True)
def fifo_admission(arrivals: np.ndarray, service: np.ndarray, servers: int, limit: np.ndarray,
                   can_refuse: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover
    """FIFO with admission control: a request whose wait + service would pass its limit is refused unless it
    cannot be; returns (admitted, over the limit when it arrived)."""
    n = arrivals.size
    free = np.zeros(servers)
    admitted, over = np.ones(n, dtype=np.bool_), np.zeros(n, dtype=np.bool_)
    for i in range(n):
        begin = arrivals[i] if arrivals[i] > free[0] else free[0]
        if begin - arrivals[i] + service[i] > limit[i]:
            over[i] = True
            if can_refuse[i]:
                admitted[i] = False
                continue
        replace_min(free, begin + service[i])
    return admitted, over


@njit(cache=True)
def settle(attempts: np.ndarray, arrival: np.ndarray, service: np.ndarray, first_token: np.ndarray,
           cost: np.ndarray, permitted: np.ndarray, correct: np.ndarray, tokens: np.ndarray, slo_s: np.ndarray,
           is_local: np.ndarray, servers: int, queueing: bool, given_start: np.ndarray):  # pragma: no cover
    """Every attempt timed and charged, and each request's answer read off its last attempt.

    Attempts run tier after tier. Within a tier, requests reach a local model's FIFO queue in the order they
    became ready (ties: trace order); valid when each local model serves one tier. Otherwise the caller passes
    the start of every attempt (`given_start`, shape (tiers, requests); empty when not given)."""
    n, k = attempts.shape
    m = service.shape[1]
    free = np.zeros((m, servers))
    latency = arrival.copy()  # when the request is ready for its next attempt; its latency at the end
    total, wait = np.zeros(n), np.zeros(n)
    ttft, first_attempt, wasted = np.empty(n), np.empty(n), np.empty(n)  # first_attempt: start of the latest try
    right, violation, late = np.zeros(n, dtype=np.bool_), np.zeros(n, dtype=np.bool_), np.empty(n, dtype=np.bool_)
    tries = np.zeros(n, dtype=np.int8)
    given = given_start.shape[0] > 0
    for t in range(k):
        needs_order = False
        if t > 0 and queueing and not given:
            for i in range(n):
                j = attempts[i, t]
                if j >= 0 and is_local[j]:
                    needs_order = True  # a local queue at a later tier serves in the order requests became ready
                    break
        order = np.argsort(latency, kind="mergesort") if needs_order else np.empty(0, dtype=np.int64)
        for position in range(n):
            i = order[position] if needs_order else position
            j = attempts[i, t]
            if j < 0:
                continue
            ready = latency[i]
            if given:
                begin = given_start[t, i]
            else:
                begin = ready
                if queueing and is_local[j]:
                    if free[j, 0] > begin:
                        begin = free[j, 0]
                    replace_min(free[j], begin + service[i, j])
            tries[i] += 1
            total[i] += cost[i, j]
            wait[i] += begin - ready
            if not permitted[i, j]:
                violation[i] = True
            first_attempt[i] = begin
            latency[i] = begin + service[i, j]
            ttft[i] = begin + first_token[i, j]
            right[i] = correct[i, j]
    for i in range(n):
        if tries[i] == 0:  # rejected: no answer, no latency
            latency[i] = ttft[i] = first_attempt[i] = np.nan
            wasted[i] = 0.0
            late[i] = False
            continue
        latency[i] -= arrival[i]
        ttft[i] -= arrival[i]
        first_attempt[i] = first_attempt[i] - arrival[i] if tries[i] > 1 else np.nan
        wasted[i] = (tries[i] - 1) * tokens[i]
        late[i] = latency[i] > slo_s[i]  # False where the request has no SLO (NaN)
    return total, wait, ttft, latency, first_attempt, wasted, right, violation, late
