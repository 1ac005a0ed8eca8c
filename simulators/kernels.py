"""The replay's per-request loops, compiled with numba: FIFO queues on local capacity (one or several servers),
admission control for the SLO-aware policy, the cascade's tier walk, pricing, and the accounting of every attempt.

A queue is a recursion over requests in arrival order and cannot be written as whole-array numpy steps for
several servers; these kernels are single passes in machine code instead. Passes where each request stands alone
(pricing, the cascade, accounting) are compiled with `nogil=True` and split across the machine's cores by
`in_chunks`; only the queues themselves run on one core. `cache=True` keeps the compiled code beside this file,
so only the first replay on a machine pays the compile time (a few seconds).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from slmlab.parallel import CORES, PARALLEL_FROM, _helpers, in_chunks

# Columns of a portfolio's rate table (one row per model): what an attempt costs and how long it takes follows
# from these and the request's token counts, so the engine prices each attempt where it charges it.
INPUT_PRICE, OUTPUT_PRICE, PREFILL, FIRST_TOKEN, DECODE = range(5)


@njit(cache=True, inline="always")
def attempt_price(
    rates: np.ndarray, j: int, tokens_in: float, tokens_out: float
) -> tuple[float, float, float]:  # pragma: no cover - compiled
    """One request on model j: price in USD (prices per million tokens), time to first token (input tokens at
    the prefill speed; an API's fixed time when prefill is 0) and service time in seconds (queueing excluded)."""
    cost = (tokens_in * rates[j, INPUT_PRICE] + tokens_out * rates[j, OUTPUT_PRICE]) / 1e6
    first = tokens_in / rates[j, PREFILL] if rates[j, PREFILL] > 0 else rates[j, FIRST_TOKEN]
    return cost, first, first + tokens_out / rates[j, DECODE]


@njit(cache=True, nogil=True)
def _price_and_time(
    lo: int,
    hi: int,
    rates: np.ndarray,
    j: int,
    tokens_in: np.ndarray,
    tokens_out: np.ndarray,
    cost: np.ndarray,
    first: np.ndarray,
    service: np.ndarray,
) -> None:  # pragma: no cover - compiled
    for i in range(lo, hi):
        cost[i], first[i], service[i] = attempt_price(rates, j, tokens_in[i], tokens_out[i])


def price_matrices(
    rates: np.ndarray, tokens_in: np.ndarray, tokens_out: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`attempt_price` of every request on every model: (cost, first token, service), each (requests, models),
    stored model-major (Fortran order) so one model's column is contiguous."""
    n, m = tokens_in.size, rates.shape[0]
    cost, first, service = (np.empty((n, m), order="F") for _ in range(3))
    for j in range(m):
        in_chunks(_price_and_time, n, rates, j, tokens_in, tokens_out, cost[:, j], first[:, j], service[:, j])
    return cost, first, service


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
def fifo_admission(
    arrivals: np.ndarray, service: np.ndarray, servers: int, limit: np.ndarray, can_refuse: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover
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


@njit(cache=True, nogil=True)
def _attempt_layout(lo: int, hi: int, attempts: np.ndarray, m: int) -> tuple[np.ndarray, int]:  # pragma: no cover
    k = attempts.shape[1]
    seen = np.zeros(k, dtype=np.int64)  # per tier a bit mask of models; bit 0 collects the -1 pads
    gaps = 0
    for t in range(k):  # tier by tier, so the mask and the count stay in registers
        mask = 0
        for i in range(lo, hi):
            mask |= np.int64(1) << (attempts[i, t] + 1)
            if t > 0:
                gaps += (attempts[i, t] >= 0) & (attempts[i, t - 1] < 0)
        seen[t] = mask
    return seen, gaps


def attempt_layout(attempts: np.ndarray, m: int) -> tuple[np.ndarray, bool]:
    """One pass over a routing: which models each tier sends attempts to, and whether some request skips a tier
    (a gap before a later attempt)."""
    if m > 62:
        raise ValueError(f"a routing over {m} models: the layout pass handles at most 62")
    chunks = in_chunks(_attempt_layout, attempts.shape[0], attempts, m)
    masks = np.bitwise_or.reduce([chunk[0] for chunk in chunks])  # type: ignore[index]
    used = (masks[:, None] >> np.arange(1, m + 1)) & 1 > 0
    return used, any(chunk[1] > 0 for chunk in chunks)  # type: ignore[index]


@njit(cache=True, nogil=True)
def _last_attempt(lo: int, hi: int, attempts: np.ndarray, final: np.ndarray) -> None:  # pragma: no cover
    for i in range(lo, hi):
        last = -1
        for t in range(attempts.shape[1]):
            last = attempts[i, t] if attempts[i, t] >= 0 else last
        final[i] = last


def last_attempt(attempts: np.ndarray) -> np.ndarray:
    """Each request's last model, the one that answered it (-1: no attempt, rejected)."""
    final = np.empty(attempts.shape[0], dtype=np.int16)
    in_chunks(_last_attempt, attempts.shape[0], attempts, final)
    return final


@njit(cache=True, nogil=True)
def _cascade(
    lo: int, hi: int, targets: np.ndarray, confidence: np.ndarray, thresholds: np.ndarray, attempts: np.ndarray
) -> int:  # pragma: no cover - compiled
    k = targets.shape[1]
    unrouted = 0
    for i in range(lo, hi):
        done, made = False, 0  # (a count, not a flag: numba compiles the flag into a branch per request)
        for t in range(k):
            j = targets[i, t]
            here = (not done) & (j >= 0)
            attempts[i, t] = j if here else -1
            made += here
            done |= here & (confidence[i, max(j, 0)] >= thresholds[t])
        unrouted += made == 0
    return unrouted


def cascade(targets: np.ndarray, confidence: np.ndarray, thresholds: np.ndarray) -> tuple[np.ndarray, bool]:
    """A cascade's attempts: per request the tier targets in order (-1: the tier has no model for it; no model
    twice in a row), stopping after the first tier whose confidence clears its threshold (one per tier but the
    last); and whether some request got no attempt."""
    attempts = np.empty(targets.shape, dtype=np.int16)
    every_threshold = np.append(np.asarray(thresholds, dtype=np.float64), np.inf)
    unrouted = in_chunks(_cascade, targets.shape[0], targets, confidence, every_threshold, attempts)
    return attempts, sum(unrouted) > 0  # type: ignore[arg-type]


_TRACE_ORDER = np.empty(0, dtype=np.int64)  # `_queue` takes requests in trace order


@njit(cache=True, nogil=True)
def _queue(
    lo: int,
    hi: int,
    t: int,
    order: np.ndarray,
    attempts: np.ndarray,
    ready: np.ndarray,
    later: bool,
    rates: np.ndarray,
    tokens_in: np.ndarray,
    tokens_out: np.ndarray,
    is_local: np.ndarray,
    free: np.ndarray,
    start: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """Positions lo..hi of tier t's pass through the queues, requests in `order` (empty: trace order); `later`:
    keep `ready` up to date for a later tier."""
    reorder = order.size > 0
    for position in range(lo, hi):
        i = order[position] if reorder else position
        j = attempts[i, t]
        begin = ready[i]
        if j >= 0:
            service = attempt_price(rates, j, tokens_in[i], tokens_out[i])[2]
            if is_local[j]:
                begin = max(begin, free[j, 0])
                replace_min(free, j, begin + service)
            if later:
                ready[i] = begin + service
        start[t, i] = begin


def queue_starts(
    attempts: np.ndarray,
    arrival: np.ndarray,
    rates: np.ndarray,
    tokens_in: np.ndarray,
    tokens_out: np.ndarray,
    is_local: np.ndarray,
    tier_local: np.ndarray,
    servers: int,
    tiers: int,
) -> np.ndarray:
    """Start of every attempt of the first `tiers` tiers, shape (tiers, requests): attempts run tier after tier;
    within a tier a local model's FIFO queue serves requests in the order they became ready (ties: trace order).
    Valid when each local model serves one tier; an API attempt starts as soon as the request is ready."""
    n = attempts.shape[0]
    free, start = np.zeros((rates.shape[0], servers)), np.empty((tiers, n))
    ready = arrival.copy() if tiers > 1 else arrival  # one tier: nothing is ready later than it arrived
    for t in range(tiers):
        order = np.argsort(ready, kind="stable") if t > 0 and tier_local[t] else _TRACE_ORDER
        _queue(0, n, t, order, attempts, ready, tiers > 1, rates, tokens_in, tokens_out, is_local, free, start)
    return start


@njit(cache=True, nogil=True)
def _account(
    lo: int,
    hi: int,
    attempts: np.ndarray,
    start: np.ndarray,
    arrival: np.ndarray,
    rates: np.ndarray,
    tokens_in: np.ndarray,
    tokens_out: np.ndarray,
    permitted: np.ndarray,
    correct: np.ndarray,
    slo_ms: np.ndarray,
    total: np.ndarray,
    wait: np.ndarray,
    ttft: np.ndarray,
    latency: np.ndarray,
    first_attempt: np.ndarray,
    wasted: np.ndarray,
    right: np.ndarray,
    violation: np.ndarray,
    late: np.ndarray,
) -> None:  # pragma: no cover - compiled
    k, given = attempts.shape[1], start.shape[0]
    for i in range(lo, hi):
        ready, cost_i, wait_i, begun, first, tries, right_i, broke = arrival[i], 0.0, 0.0, 0.0, 0.0, 0, False, False
        for t in range(k):
            j = attempts[i, t]
            if j < 0:
                continue
            cost, first_token, service = attempt_price(rates, j, tokens_in[i], tokens_out[i])
            begin = start[t, i] if t < given else ready
            tries += 1
            cost_i += cost
            wait_i += begin - ready
            broke |= not permitted[i, j]
            begun, first, right_i = begin, begin + first_token, correct[i, j]
            ready = begin + service
        total[i], wait[i], right[i], violation[i] = cost_i, wait_i, right_i, broke
        if tries == 0:  # rejected: no answer, no latency
            latency[i] = ttft[i] = first_attempt[i] = np.nan
            wasted[i], late[i] = 0.0, False
        else:
            latency[i], ttft[i] = ready - arrival[i], first - arrival[i]
            first_attempt[i] = begun - arrival[i] if tries > 1 else np.nan
            wasted[i] = (tries - 1) * (tokens_in[i] + tokens_out[i])
            late[i] = latency[i] > slo_ms[i] / 1000.0  # False where the request has no SLO (NaN)


def settle(
    attempts: np.ndarray,
    arrival: np.ndarray,
    rates: np.ndarray,
    tokens_in: np.ndarray,
    tokens_out: np.ndarray,
    permitted: np.ndarray,
    correct: np.ndarray,
    slo_ms: np.ndarray,
    is_local: np.ndarray,
    tier_local: np.ndarray,
    servers: int,
    queueing: bool,
    given_start: np.ndarray,
) -> tuple[np.ndarray, ...]:
    """Every attempt priced, timed and charged, and each request's answer read off its last attempt: (cost,
    wait, TTFT, latency, time before the answering attempt, wasted tokens, correct, residency broken, SLO missed).

    The queues come first, on one core: `queue_starts` times the tiers up to the last one with a local model
    (none without queueing), unless the caller passes the start of every attempt (`given_start`, shape (tiers,
    requests); empty when not given), as it must when one local model serves two tiers. Later attempts start
    as soon as the request is ready. Then the accounting, each request on its own, on every core.
    `tier_local[t]`: some attempt of tier t goes to a local model."""
    n = attempts.shape[0]
    tiers = 0  # how many tiers the queues time: up to the last one with a local model
    if given_start.shape[0] == 0 and queueing and tier_local.any():
        tiers = int(np.flatnonzero(tier_local)[-1]) + 1
    total, wait, ttft, latency, first_attempt, wasted = (np.empty(n) for _ in range(6))
    right, violation, late = (np.empty(n, dtype=np.bool_) for _ in range(3))
    outputs = (total, wait, ttft, latency, first_attempt, wasted, right, violation, late)
    inputs = (arrival, rates, tokens_in, tokens_out, permitted, correct, slo_ms)
    if tiers == 1 and CORES > 1 and n >= PARALLEL_FROM:
        _queue_beside_accounts(attempts, inputs, is_local, servers, outputs)
    else:
        start = (
            given_start
            if not tiers
            else queue_starts(attempts, arrival, rates, tokens_in, tokens_out, is_local, tier_local, servers, tiers)
        )
        in_chunks(_account, n, attempts, start, *inputs, *outputs)
    return outputs


def _queue_beside_accounts(
    attempts: np.ndarray,
    inputs: tuple[np.ndarray, ...],
    is_local: np.ndarray,
    servers: int,
    outputs: tuple[np.ndarray, ...],
) -> None:
    """Only the first tier queues, in trace order: this thread walks the queue block by block and hands each
    block to the other cores for accounting as soon as its start times are known; when the queue is done, it
    takes the blocks nobody has started yet, from the back."""
    arrival, rates, tokens_in, tokens_out = inputs[:4]
    n = attempts.shape[0]
    free, start = np.zeros((rates.shape[0], servers)), np.empty((1, n))
    bounds = [n * b // QUEUE_BLOCKS for b in range(QUEUE_BLOCKS + 1)]
    handed = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        _queue(lo, hi, 0, _TRACE_ORDER, attempts, arrival, False, rates, tokens_in, tokens_out, is_local, free, start)
        handed.append((lo, hi, _helpers().submit(_account, lo, hi, attempts, start, *inputs, *outputs)))
    for lo, hi, future in reversed(handed):
        if future.cancel():
            _account(lo, hi, attempts, start, *inputs, *outputs)
    for _, _, future in handed:
        if not future.cancelled():
            future.result()


QUEUE_BLOCKS = 32  # blocks of the queue handed over for accounting one by one
