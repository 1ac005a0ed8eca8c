"""Label combinations: every request's labels read back exactly through its label_set code, NULLs included."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from slmlab.traces.label_sets import encode_label_sets

FIELDS = ["task", "data_class", "residency", "tenant", "latency_slo_ms"]


def _few(n: int) -> pa.Table:  # a few combinations: numbered by the digits of their key
    rng = np.random.default_rng(3)
    task = pa.array(rng.choice(["a", "b", None], n).tolist())
    tenant = pa.array(rng.choice(["x", "y"], n).tolist()).dictionary_encode()
    slo = pa.array(rng.choice([1500.0, 4000.0], n))
    return pa.table({"task": task, "tenant": tenant, "latency_slo_ms": slo})


def _many(n: int) -> pa.Table:  # more distinct values than an int32 key can hold: renumbered from 0
    return pa.table(
        {
            "task": [f"t{i}" for i in range(n)],
            "data_class": [f"d{i % 7}" for i in range(n)],
            "residency": [f"r{i}" for i in range(n)],
            "tenant": [f"u{i}" for i in range(n)],
            "latency_slo_ms": np.arange(n, dtype=float),
        }
    )


@pytest.mark.parametrize("make", [_few, _many], ids=["digits", "renumbered"])
def test_each_request_reads_back_its_own_labels(make) -> None:
    requests = make(3_000)
    codes, sets = encode_label_sets(requests)
    by_code = {row["label_set"]: row for row in sets.to_pylist()}
    assert len(by_code) == len(sets)  # one row per combination
    expected = requests.to_pylist()
    for code, row in zip(codes.tolist(), expected):
        stored = by_code[code]
        assert all(stored[f] == row.get(f) for f in FIELDS)
    distinct = {tuple(row.get(f) for f in FIELDS) for row in expected}
    assert len(sets) == len(distinct)


def test_a_trace_without_labels_has_one_empty_combination() -> None:
    codes, sets = encode_label_sets(pa.table({"seq": [0, 1, 2]}))
    assert codes.tolist() == [0, 0, 0]
    assert sets.to_pylist() == [{"label_set": 0, **dict.fromkeys(FIELDS)}]
