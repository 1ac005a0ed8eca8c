"""Seeded enterprise labels for traces that carry none: task, data class, residency, tenant and latency SLO.

Public traces record arrivals and token counts only. The replay needs to know what each request is and
where its data may go, so this step draws those labels from a documented mix, in arrival order, from one
numpy PCG64 stream seeded by the mix: the same trace, mix and seed always give the same labels. The mix
and the seed are stored with the trace and every screen shows the labels as synthetic.

The draw, per request in arrival order (one uniform number per field, fields in this order):
1. task: from `long_context_task` when input tokens >= `long_context_tokens` (long prompts are mostly
   documents to extract from), else from `task`;
2. data class: from `data_class_by_task[task]`;
3. residency requirement: from `residency_by_data_class[data_class]`;
4. tenant: from `tenant`;
and latency SLO = `latency_slo_ms_by_task[task]`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

TASKS = ("customer-service-reply", "document-extraction", "ticket-classification", "quality-control-check", "open-ended")
DATA_CLASSES = ("public", "internal", "confidential", "regulated")
RESIDENCIES = ("any", "eu-only", "on-premises-only")
LABEL_FIELDS = ("task", "data_class", "residency", "tenant", "latency_slo_ms")


def _weights(**pairs: float) -> dict[str, float]:
    return {name.replace("_", "-"): weight for name, weight in pairs.items()}


@dataclass(frozen=True)
class LabelMix:
    """A configurable label mix; weights are relative (they need not sum to 1)."""

    name: str = "enterprise-default"
    seed: int = 20231116
    task: dict[str, float] = field(default_factory=lambda: _weights(
        customer_service_reply=0.40, ticket_classification=0.25, quality_control_check=0.10,
        document_extraction=0.10, open_ended=0.15))
    long_context_tokens: int = 2048
    long_context_task: dict[str, float] = field(default_factory=lambda: _weights(
        document_extraction=0.70, open_ended=0.15, customer_service_reply=0.15))
    data_class_by_task: dict[str, dict[str, float]] = field(default_factory=lambda: {
        "customer-service-reply": _weights(internal=0.20, confidential=0.70, regulated=0.10),
        "document-extraction": _weights(internal=0.20, confidential=0.50, regulated=0.30),
        "ticket-classification": _weights(internal=0.50, confidential=0.50),
        "quality-control-check": _weights(internal=0.80, confidential=0.20),
        "open-ended": _weights(public=0.50, internal=0.40, confidential=0.10),
    })
    residency_by_data_class: dict[str, dict[str, float]] = field(default_factory=lambda: {
        "public": {"any": 1.0},
        "internal": {"any": 0.80, "eu-only": 0.20},
        "confidential": {"any": 0.40, "eu-only": 0.45, "on-premises-only": 0.15},
        "regulated": {"eu-only": 0.40, "on-premises-only": 0.60},
    })
    tenant: dict[str, float] = field(default_factory=lambda: _weights(
        retail_banking=0.40, insurance=0.30, wealth_management=0.20, group_functions=0.10))
    latency_slo_ms_by_task: dict[str, float] = field(default_factory=lambda: {
        "customer-service-reply": 4000.0, "document-extraction": 15000.0, "ticket-classification": 1500.0,
        "quality-control-check": 2500.0, "open-ended": 20000.0,
    })

    def __post_init__(self) -> None:
        _check_distribution("task", self.task, TASKS)
        _check_distribution("long_context_task", self.long_context_task, TASKS)
        for task in TASKS:
            if task not in self.data_class_by_task:
                raise ValueError(f"label mix '{self.name}': data_class_by_task has no entry for task '{task}'")
            _check_distribution(f"data_class_by_task[{task}]", self.data_class_by_task[task], DATA_CLASSES)
            if task not in self.latency_slo_ms_by_task or self.latency_slo_ms_by_task[task] <= 0:
                raise ValueError(f"label mix '{self.name}': latency_slo_ms_by_task needs a positive value for '{task}'")
        for data_class in DATA_CLASSES:
            if data_class not in self.residency_by_data_class:
                raise ValueError(f"label mix '{self.name}': residency_by_data_class has no entry for '{data_class}'")
            _check_distribution(
                f"residency_by_data_class[{data_class}]", self.residency_by_data_class[data_class], RESIDENCIES
            )
        _check_distribution("tenant", self.tenant, None)
        if self.long_context_tokens < 0:
            raise ValueError(f"label mix '{self.name}': long_context_tokens must be >= 0")

    def to_json(self) -> dict[str, object]:
        """The full mix, stored with the trace so the labels can be reproduced."""
        return asdict(self)


def _check_distribution(where: str, weights: dict[str, float], vocabulary: tuple[str, ...] | None) -> None:
    if not weights:
        raise ValueError(f"label mix: {where} is empty")
    for label, weight in weights.items():
        if vocabulary is not None and label not in vocabulary:
            raise ValueError(f"label mix: {where} has unknown label '{label}' (known: {', '.join(vocabulary)})")
        if not (isinstance(weight, (int, float)) and weight >= 0 and np.isfinite(weight)):
            raise ValueError(f"label mix: {where}['{label}'] must be a non-negative number, got {weight!r}")
    if sum(weights.values()) <= 0:
        raise ValueError(f"label mix: {where} weights sum to zero")


PRESETS: dict[str, LabelMix] = {
    "enterprise-default": LabelMix(),
    "regulated-heavy": LabelMix(
        name="regulated-heavy",
        data_class_by_task={
            "customer-service-reply": _weights(confidential=0.50, regulated=0.50),
            "document-extraction": _weights(confidential=0.30, regulated=0.70),
            "ticket-classification": _weights(internal=0.30, confidential=0.40, regulated=0.30),
            "quality-control-check": _weights(internal=0.60, confidential=0.40),
            "open-ended": _weights(public=0.30, internal=0.40, confidential=0.30),
        },
    ),
}


def load_label_mix(spec: str | None) -> LabelMix | None:
    """A preset name, a JSON file (keys override the default mix), or 'none' for no synthetic labels."""
    if spec is None:
        return PRESETS["enterprise-default"]
    if spec.lower() == "none":
        return None
    if spec in PRESETS:
        return PRESETS[spec]
    path = Path(spec)
    if not path.exists():
        raise ValueError(f"label mix '{spec}' is neither a preset ({', '.join(PRESETS)}, none) nor an existing JSON file")
    try:
        overrides = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"label mix file {path}: not valid JSON ({error})") from error
    known = set(LabelMix.__dataclass_fields__)
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"label mix file {path}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    overrides.setdefault("name", path.stem)
    return LabelMix(**overrides)


def _draw_given(
    uniform: np.ndarray, condition: np.ndarray, tables: list[dict[str, float]], vocabulary: tuple[str, ...]
) -> np.ndarray:
    """Inverse-CDF draw of a label code per row from the distribution selected by that row's condition code.

    A row gets the first label whose cumulative probability exceeds its uniform number; labels are taken in
    vocabulary order. Zero-weight labels can never be drawn.
    """
    probabilities = np.zeros((len(tables), len(vocabulary)))
    for row, weights in enumerate(tables):
        for label, weight in weights.items():
            probabilities[row, vocabulary.index(label)] = weight
    cumulative = np.cumsum(probabilities / probabilities.sum(axis=1, keepdims=True), axis=1)
    cumulative[np.isclose(cumulative, 1.0) | (cumulative > 1.0)] = np.inf  # rounding never reaches a zero-weight tail
    from simulators.traces.draw_kernel import inverse_cdf_codes  # numba loads only when labels are drawn

    codes = np.empty(len(uniform), dtype=np.int8)
    inverse_cdf_codes(uniform, condition, cumulative, codes)
    return codes


@dataclass(frozen=True)
class Labels:
    """Drawn labels as small integer codes into fixed vocabularies (cheap for millions of requests)."""

    task: np.ndarray
    data_class: np.ndarray
    residency: np.ndarray
    tenant: np.ndarray
    tenants: tuple[str, ...]
    slo_ms_by_task: tuple[float, ...]

    @property
    def latency_slo_ms(self) -> np.ndarray:
        """Each request's SLO, which follows from its task."""
        return np.asarray(self.slo_ms_by_task)[self.task]

    def vocabulary(self, name: str) -> tuple[str, ...] | tuple[float, ...]:
        """The labels the codes of one field index into (the SLO is coded by task)."""
        return {"task": TASKS, "data_class": DATA_CLASSES, "residency": RESIDENCIES, "tenant": self.tenants,
                "latency_slo_ms": self.slo_ms_by_task}[name]

    def codes(self, name: str) -> np.ndarray:
        """One field's codes into its vocabulary."""
        return self.task if name == "latency_slo_ms" else getattr(self, name)

    def decoded(self, name: str) -> list[str]:
        """One field as label strings (for tests and small traces)."""
        vocabulary = self.vocabulary(name)
        return [vocabulary[code] for code in getattr(self, name)]


def _keep_recorded(drawn: np.ndarray, recorded: np.ndarray | None) -> np.ndarray:
    return drawn if recorded is None else np.where(recorded >= 0, recorded, drawn).astype(np.int8)


def draw_labels(
    input_tokens: np.ndarray, mix: LabelMix, recorded: dict[str, np.ndarray] | None = None
) -> Labels:
    """Labels for requests given in arrival order; missing token counts count as short requests.

    `recorded` holds codes of labels the file already has (-1 where a row has none or one outside the
    vocabulary); later draws are conditioned on those, so a recorded invoice-extraction request gets a data
    class drawn for invoice extraction.
    """
    recorded = recorded or {}
    count = len(input_tokens)
    generator = np.random.Generator(np.random.PCG64(mix.seed))
    uniform = np.empty(count)  # one field's numbers at a time: the same stream as random((4, count)), a quarter the memory
    tokens = np.asarray(input_tokens)
    if not np.issubdtype(tokens.dtype, np.integer):
        tokens = np.nan_to_num(tokens.astype(float), nan=0.0)
    long_context = (tokens >= mix.long_context_tokens).astype(np.int8)
    task = _draw_given(generator.random(out=uniform), long_context, [mix.task, mix.long_context_task], TASKS)
    task = _keep_recorded(task, recorded.get("task"))
    data_class = _draw_given(
        generator.random(out=uniform), task, [mix.data_class_by_task[t] for t in TASKS], DATA_CLASSES
    )
    data_class = _keep_recorded(data_class, recorded.get("data_class"))
    residency = _draw_given(
        generator.random(out=uniform), data_class, [mix.residency_by_data_class[c] for c in DATA_CLASSES], RESIDENCIES
    )
    tenants = tuple(mix.tenant)
    tenant = _draw_given(generator.random(out=uniform), np.zeros(count, dtype=np.int8), [mix.tenant], tenants)
    return Labels(
        task=task, data_class=data_class, residency=residency, tenant=tenant, tenants=tenants,
        slo_ms_by_task=tuple(float(mix.latency_slo_ms_by_task[name]) for name in TASKS),
    )
