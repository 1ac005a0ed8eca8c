"""What the replay layer reads, as an interface: the warehouse's reader (`slmlab.replay_store.ReplayReader`)
implements it on one connection that the caller opens, so nothing under `simulators/` opens a database."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import pyarrow as pa

    from slmlab.replay_store import BenchRow, TraceRow
    from slmlab.service_curves import ServiceCurve


class Warehouse(Protocol):
    """The reads a replay needs: a trace and its requests, quality, confidences, recorded latencies, benchmark runs,
    stored costs."""

    def trace(self, name: str) -> TraceRow: ...

    def recorded_models(self, trace_id: int) -> tuple[str, ...]: ...

    def recorded_figures(self, trace_id: int) -> list[tuple[str, str, float | None, float | None, float | None]]: ...

    def recorded_latencies(self, trace_id: int) -> pa.Table: ...

    def requests(self, trace_id: int, *, chars_per_token: float, input_tokens: int, output_tokens: int) -> pa.Table: ...

    def quality(self, trace_id: int, models: list[str]) -> pa.Table: ...

    def confidences(self) -> list[tuple[str, str, bool, list[float]]]: ...

    def latest_bench(self, model_name: str) -> BenchRow | None: ...

    def service_curve(self, model: str, machine: str | None = None) -> ServiceCurve | None: ...

    def has_measured_runs(self) -> bool: ...

    def bench_run(self, run_id: int) -> BenchRow: ...

    def run_costs(self, run_id: int) -> pa.Table: ...
