"""FIFO queueing of requests on finite local capacity, on recorded arrival times.

One server: departure D_n = max(A_n, D_{n-1}) + S_n unrolls to D = C + cummax(A - C_prev) with C the running sum
of service times, so the exact Lindley recursion runs vectorised in numpy. Several servers: the exact
Kiefer-Wolfowitz recursion (each request takes the server that frees first), a compiled heap walk in arrival order;
`simulate_events` is an independent event-by-event simulation the tests check both against.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np

from simulators import kernels


@dataclass(frozen=True)
class QueueResult:
    """Per request, in the order given: when service started and ended, and how long it waited."""

    start: np.ndarray
    finish: np.ndarray
    wait: np.ndarray


def _check(arrivals: np.ndarray, service: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    arrivals = np.asarray(arrivals, dtype=np.float64)
    service = np.asarray(service, dtype=np.float64)
    if arrivals.shape != service.shape or arrivals.ndim != 1:
        raise ValueError("arrivals and service times must be 1-D arrays of the same length")
    if arrivals.size and (np.any(np.diff(arrivals) < 0) or np.any(service < 0) or not np.all(np.isfinite(service))):
        raise ValueError("arrivals must be sorted and service times finite and >= 0")
    return arrivals, service


def fifo(arrivals: np.ndarray, service: np.ndarray, servers: int = 1) -> QueueResult:
    """Exact FIFO queue with `servers` identical servers, requests served in arrival order."""
    arrivals, service = _check(arrivals, service)
    if servers < 1:
        raise ValueError("servers must be at least 1")
    if servers == 1:
        done = np.cumsum(service)
        before = done - service  # work done before request n if the server never idled
        finish = done + np.maximum.accumulate(arrivals - before)
        start = finish - service
    else:
        start = kernels.fifo_start(arrivals, service, servers)  # each request takes the server that frees first
        finish = start + service
    return QueueResult(start=start, finish=finish, wait=start - arrivals)


def simulate_events(arrivals: np.ndarray, service: np.ndarray, servers: int = 1) -> QueueResult:
    """Event-by-event simulation (arrivals and completions in time order), kept simple as a cross-check."""
    arrivals, service = _check(arrivals, service)
    events: list[tuple[float, int, int]] = [
        (a, 1, i) for i, a in enumerate(arrivals.tolist())
    ]  # 0 completion, 1 arrival
    heapq.heapify(events)
    busy, waiting = 0, []
    start = np.zeros_like(arrivals)
    while events:
        time, kind, index = heapq.heappop(events)
        if kind == 1:
            waiting.append(index)
        else:
            busy -= 1
        while busy < servers and waiting:
            chosen = waiting.pop(0)
            start[chosen] = time
            busy += 1
            heapq.heappush(events, (time + service[chosen], 0, chosen))
    finish = start + service
    return QueueResult(start=start, finish=finish, wait=start - arrivals)


def fifo_admission(
    arrivals: np.ndarray, service: np.ndarray, servers: int, limit: np.ndarray, can_refuse: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """FIFO with admission control, in arrival order: a request whose wait + service would exceed its limit is
    refused (it never joins the queue) unless it cannot be; returns (admitted, over the limit when it arrived)."""
    arrivals, service = _check(arrivals, service)
    if servers < 1:
        raise ValueError("servers must be at least 1")
    return kernels.fifo_admission(
        arrivals, service, servers, np.asarray(limit, dtype=np.float64), np.asarray(can_refuse, dtype=np.bool_)
    )
