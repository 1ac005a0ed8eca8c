"""Roofline: real bandwidth probe sanity, exact byte accounting, and the decode-ceiling arithmetic."""

from __future__ import annotations

import dataclasses
import math

import pytest

from bench import roofline
from bench.roofline import (
    KV_TYPE_BYTES,
    Bandwidth,
    DecodeCeiling,
    decode_ceiling,
    efficiency,
    kv_cache_bytes,
    measure_bandwidth,
)

SMALL = {"array_mb": 16, "repetitions": 2}


@pytest.fixture(scope="module")
def measured() -> Bandwidth:
    """One real two-thread measurement shared by the sanity tests (keeps the suite fast)."""
    return measure_bandwidth(threads=2, **SMALL)


def test_real_measurement_is_positive_and_finite(measured: Bandwidth) -> None:
    for value in (measured.read_gb_s, measured.triad_gb_s, *measured.samples_read_gb_s, *measured.samples_triad_gb_s):
        assert math.isfinite(value) and value > 0.1


def test_real_measurement_keeps_every_sample_and_reports_the_best(measured: Bandwidth) -> None:
    assert len(measured.samples_read_gb_s) == len(measured.samples_triad_gb_s) == measured.repetitions == 2
    assert measured.read_gb_s == max(measured.samples_read_gb_s)
    assert measured.triad_gb_s == max(measured.samples_triad_gb_s)


def test_real_measurement_records_its_setup(measured: Bandwidth) -> None:
    assert measured.threads == 2
    assert measured.array_bytes == 16_000_000
    assert "24 B/element" in measured.method and "2 thread(s)" in measured.method
    assert measured.as_dict()["samples_read_gb_s"] == measured.samples_read_gb_s
    assert set(measured.as_dict()) == {f.name for f in dataclasses.fields(Bandwidth)}
    with pytest.raises(dataclasses.FrozenInstanceError):
        measured.read_gb_s = 1.0  # type: ignore[misc]


@pytest.mark.parametrize("threads", [1, 3])
def test_threads_are_honoured(threads: int) -> None:
    assert measure_bandwidth(threads=threads, array_mb=2, repetitions=1).threads == threads


@pytest.mark.parametrize(("physical", "expected"), [(3, 3), (None, "os")])
def test_default_threads_are_physical_cores(
    monkeypatch: pytest.MonkeyPatch, physical: int | None, expected: int | str
) -> None:
    monkeypatch.setattr(roofline.psutil, "cpu_count", lambda logical=True: physical)
    monkeypatch.setattr(roofline.os, "cpu_count", lambda: 5)
    assert measure_bandwidth(array_mb=2, repetitions=1).threads == (5 if expected == "os" else expected)


def test_byte_accounting_with_a_fake_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """16 MB array: read counts 16e6 B per rep, triad 3 x 16e6 B (STREAM); warm-up runs are not samples."""
    # (start, end) pairs: read warm-up, read x2, triad warm-up, triad x2.
    ticks = iter([0, 9, 0, 1, 0, 0.5, 0, 9, 0, 2, 0, 1])
    monkeypatch.setattr(roofline.time, "perf_counter", lambda: next(ticks))
    result = measure_bandwidth(threads=1, array_mb=16, repetitions=2)
    assert result.samples_read_gb_s == pytest.approx((0.016, 0.032))
    assert result.samples_triad_gb_s == pytest.approx((0.024, 0.048))
    assert (result.read_gb_s, result.triad_gb_s) == pytest.approx((0.032, 0.048))


def test_kv_cache_bytes_smollm2_135m_like() -> None:
    assert kv_cache_bytes(30, 192, 192, 512) == 30 * 512 * 384 * 2 == 11_796_480
    assert kv_cache_bytes(30, 192, 192, 512, KV_TYPE_BYTES["q8_0"]) == 6_266_880
    assert kv_cache_bytes(30, 192, 192, 512, KV_TYPE_BYTES["q4_0"]) == 3_317_760
    assert kv_cache_bytes(30, 192, 192, 512, KV_TYPE_BYTES["f32"]) == 23_592_960
    assert kv_cache_bytes(30, 192, 192, 0) == 0


def test_decode_ceiling_weights_only() -> None:
    ceiling = decode_ceiling(100_000_000, 10.0)
    assert ceiling == DecodeCeiling(100_000_000, 100_000_000, 0, 0, 10.0, 100.0)


def test_decode_ceiling_adds_the_kv_cache() -> None:
    ceiling = decode_ceiling(90_000_000, 10.0, kv_bytes=10_000_000, depth=512)
    assert ceiling.bytes_per_token == 100_000_000
    assert ceiling.kv_bytes_per_token_at_depth == 10_000_000 and ceiling.depth == 512
    assert ceiling.ceiling_tok_s == pytest.approx(100.0)


def test_efficiency_is_a_fraction_of_the_ceiling() -> None:
    ceiling = decode_ceiling(100_000_000, 10.0)
    assert efficiency(50.0, ceiling) == pytest.approx(0.5)
    assert efficiency(0.0, ceiling) == 0.0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: decode_ceiling(100, 0.0), "bandwidth_gb_s must be > 0"),
        (lambda: decode_ceiling(100, -5.0), "bandwidth_gb_s must be > 0"),
        (lambda: decode_ceiling(100, math.nan), "bandwidth_gb_s must be a finite number"),
        (lambda: decode_ceiling(0, 10.0), "weights_bytes must be an integer >= 1"),
        (lambda: decode_ceiling(100, 10.0, kv_bytes=-1), "kv_bytes must be an integer >= 0"),
        (lambda: decode_ceiling(100, 10.0, depth=-1), "depth must be an integer >= 0"),
        (lambda: kv_cache_bytes(30, 192, 192, -1), "depth .* must be an integer >= 0"),
        (lambda: kv_cache_bytes(0, 192, 192, 512), "n_layer must be an integer >= 1"),
        (lambda: kv_cache_bytes(30, 192, 192, 512, 0.0), "bytes_per_element must be > 0"),
        (lambda: efficiency(-1.0, decode_ceiling(100, 10.0)), "measured_tok_s must be >= 0"),
        (lambda: measure_bandwidth(threads=0, array_mb=1), "threads must be an integer >= 1"),
        (lambda: measure_bandwidth(array_mb=0), "array_mb must be an integer >= 1"),
        (lambda: measure_bandwidth(threads=1, array_mb=1, repetitions=0), "repetitions must be an integer >= 1"),
        (lambda: measure_bandwidth(threads=True, array_mb=1), "threads must be an integer"),
    ],
)
def test_bad_inputs_raise_helpful_errors(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()
