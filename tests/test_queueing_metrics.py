"""The queue and the routing metrics against hand-computed cases and an independent event simulation."""

from __future__ import annotations

import numpy as np
import pytest

from simulators.metrics import aiq, aiq_routerbench, apgr, cpt, latency_percentiles, pgr, upper_hull
from simulators.queueing import fifo, simulate_events


def test_single_server_by_hand() -> None:
    # arrivals 0, 1, 2, 10; service 3, 1, 2, 1 -> starts 0, 3, 4, 10; waits 0, 2, 2, 0
    result = fifo(np.array([0.0, 1, 2, 10]), np.array([3.0, 1, 2, 1]))
    assert result.start.tolist() == [0, 3, 4, 10] and result.wait.tolist() == [0, 2, 2, 0]
    assert result.finish.tolist() == [3, 4, 6, 11]


def test_two_servers_by_hand() -> None:
    # arrivals 0, 0, 0, 1; service 4, 2, 3, 1: two start at 0, the third at 2 (server 2 frees), the fourth at 4
    result = fifo(np.array([0.0, 0, 0, 1]), np.array([4.0, 2, 3, 1]), servers=2)
    assert result.start.tolist() == [0, 0, 2, 4] and result.wait.tolist() == [0, 0, 2, 3]


@pytest.mark.parametrize("servers", [1, 2, 3, 8])
def test_queue_matches_an_event_simulation(servers: int) -> None:
    rng = np.random.default_rng(servers)
    arrivals = np.sort(rng.exponential(1.0, 2000).cumsum())
    service = rng.exponential(0.9 * servers, 2000)
    exact, events = fifo(arrivals, service, servers), simulate_events(arrivals, service, servers)
    np.testing.assert_allclose(exact.start, events.start, atol=1e-9)


def test_queue_refuses_unsorted_arrivals() -> None:
    with pytest.raises(ValueError, match="sorted"):
        fifo(np.array([1.0, 0.0]), np.array([1.0, 1.0]))


def test_pgr_apgr_and_cpt_by_hand() -> None:
    assert pgr(0.7, weak=0.6, strong=0.8) == pytest.approx(0.5)
    share = np.array([0.25, 0.5, 0.75])
    line = 0.6 + 0.2 * share  # a random router: quality rises linearly with the strong model's share
    assert apgr(share, line, 0.6, 0.8) == pytest.approx(0.5)
    assert cpt(share, line, 0.6, 0.8, 0.5) == pytest.approx(0.5)
    # RouteLLM's np.interp: a target past the best point reached is read as the last share reached
    assert cpt(share, line, 0.6, 0.8, 0.8) == pytest.approx(0.75)
    perfect = np.full(3, 0.8)  # strong quality over every share the sweep reached (no 0% / 100% points added)
    assert apgr(share, perfect, 0.6, 0.8) == pytest.approx(1.0)
    assert cpt(share, perfect, 0.6, 0.8, 0.5) == pytest.approx(0.25)


def test_aiq_by_hand() -> None:
    # hull (0, .5) (1, .7) (2, .6); non-decreasing: .7 after the peak; area 0.6 + 0.7 over a cost range of 2
    assert aiq(np.array([0.0, 1, 2]), np.array([0.5, 0.7, 0.6])) == pytest.approx(0.65)
    # RouterBench's code: (1, 2) drops (below the hull at 1), so the hull ends at cost 1: area 0.6 / 1
    assert aiq_routerbench(np.array([0.0, 1, 2]), np.array([0.5, 0.7, 0.6])) == pytest.approx(0.6)
    # with a group's largest cost of 2: extended flat at .7 to 2: (0.6 + 0.7) / 2
    assert aiq_routerbench(np.array([0.0, 1, 2]), np.array([0.5, 0.7, 0.6]), max_cost=2.0) == pytest.approx(0.65)
    # from cost 1 to 3 rising: the area starts at the cheapest point, the division is by the largest cost
    assert aiq_routerbench(np.array([1.0, 2, 3]), np.array([0.5, 0.5, 0.5])) == pytest.approx(1.0 / 3)
    xs, ys = upper_hull(np.array([0.0, 1, 2, 1]), np.array([0.5, 0.5, 0.9, 0.2]))
    assert xs.tolist() == [0, 2] and ys.tolist() == [0.5, 0.9]  # points under the chord are not on the hull


def test_latency_percentiles() -> None:
    assert latency_percentiles(np.arange(1, 101)) == pytest.approx({"p50": 50.5, "p95": 95.05, "p99": 99.01})
