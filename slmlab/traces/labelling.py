"""Seeded enterprise labels for traces that carry none: task, data class, residency, tenant and latency SLO.

Public traces record arrivals and token counts only. The replay needs to know what each request is and
where its data may go, so this step draws those labels from a documented mix. Each request's uniform numbers
are a hash of (seed, field, its rank in arrival order) (`label_kernel.uniform` gives the formula): the same
trace, mix and seed always give the same labels, whatever the row order of the file, and millions of
requests are labelled on every core at once. The mix and the seed are stored with the trace and every screen
shows the labels as synthetic.

The draw, per request (one uniform number per field):
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

TASKS = (
    "customer-service-reply",
    "document-extraction",
    "ticket-classification",
    "quality-control-check",
    "open-ended",
)
DATA_CLASSES = ("public", "internal", "confidential", "regulated")
RESIDENCIES = ("any", "eu-only", "on-premises-only")
LABEL_FIELDS = ("task", "data_class", "residency", "tenant", "latency_slo_ms")
DRAW = "splitmix64(seed, field, arrival rank), inverse CDF"  # stored with each trace's labelling: which draw made them


def _weights(**pairs: float) -> dict[str, float]:
    return {name.replace("_", "-"): weight for name, weight in pairs.items()}


@dataclass(frozen=True)
class LabelMix:
    """A configurable label mix; weights are relative (they need not sum to 1)."""

    name: str = "enterprise-default"
    seed: int = 20231116
    task: dict[str, float] = field(
        default_factory=lambda: _weights(
            customer_service_reply=0.40,
            ticket_classification=0.25,
            quality_control_check=0.10,
            document_extraction=0.10,
            open_ended=0.15,
        )
    )
    long_context_tokens: int = 2048
    long_context_task: dict[str, float] = field(
        default_factory=lambda: _weights(document_extraction=0.70, open_ended=0.15, customer_service_reply=0.15)
    )
    data_class_by_task: dict[str, dict[str, float]] = field(
        default_factory=lambda: {
            "customer-service-reply": _weights(internal=0.20, confidential=0.70, regulated=0.10),
            "document-extraction": _weights(internal=0.20, confidential=0.50, regulated=0.30),
            "ticket-classification": _weights(internal=0.50, confidential=0.50),
            "quality-control-check": _weights(internal=0.80, confidential=0.20),
            "open-ended": _weights(public=0.50, internal=0.40, confidential=0.10),
        }
    )
    residency_by_data_class: dict[str, dict[str, float]] = field(
        default_factory=lambda: {
            "public": {"any": 1.0},
            "internal": {"any": 0.80, "eu-only": 0.20},
            "confidential": {"any": 0.40, "eu-only": 0.45, "on-premises-only": 0.15},
            "regulated": {"eu-only": 0.40, "on-premises-only": 0.60},
        }
    )
    tenant: dict[str, float] = field(
        default_factory=lambda: _weights(
            retail_banking=0.40, insurance=0.30, wealth_management=0.20, group_functions=0.10
        )
    )
    latency_slo_ms_by_task: dict[str, float] = field(
        default_factory=lambda: {
            "customer-service-reply": 4000.0,
            "document-extraction": 15000.0,
            "ticket-classification": 1500.0,
            "quality-control-check": 2500.0,
            "open-ended": 20000.0,
        }
    )

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
        raise ValueError(
            f"label mix '{spec}' is neither a preset ({', '.join(PRESETS)}, none) nor an existing JSON file"
        )
    try:
        overrides = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"label mix file {path}: not valid JSON ({error})") from error
    known = set(LabelMix.__dataclass_fields__)
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(
            f"label mix file {path}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})"
        )
    overrides.setdefault("name", path.stem)
    return LabelMix(**overrides)


def _cumulative(tables: list[dict[str, float]], vocabulary: tuple[str, ...]) -> np.ndarray:
    """Inverse-CDF table: one row of cumulative probabilities per condition code, labels in vocabulary order.

    A row's draw is the first label whose cumulative probability exceeds its uniform number. Entries that
    reach 1 are set to infinity, so rounding never lands on a zero-weight tail label.
    """
    probabilities = np.zeros((len(tables), len(vocabulary)))
    for row, weights in enumerate(tables):
        for label, weight in weights.items():
            probabilities[row, vocabulary.index(label)] = weight
    cumulative = np.cumsum(probabilities / probabilities.sum(axis=1, keepdims=True), axis=1)
    cumulative[np.isclose(cumulative, 1.0) | (cumulative > 1.0)] = np.inf
    return cumulative


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
        vocabularies: dict[str, tuple[str, ...] | tuple[float, ...]] = {
            "task": TASKS,
            "data_class": DATA_CLASSES,
            "residency": RESIDENCIES,
            "tenant": self.tenants,
            "latency_slo_ms": self.slo_ms_by_task,
        }
        return vocabularies[name]

    def codes(self, name: str) -> np.ndarray:
        """One field's codes into its vocabulary."""
        return self.task if name == "latency_slo_ms" else getattr(self, name)

    def decoded(self, name: str) -> list[str]:
        """One field as label strings (for tests and small traces)."""
        vocabulary = self.vocabulary(name)
        return [vocabulary[code] for code in getattr(self, name)]


def draw_labels(
    input_tokens: np.ndarray,
    mix: LabelMix,
    recorded: dict[str, np.ndarray] | None = None,
    arrival_rank: np.ndarray | None = None,
) -> Labels:
    """Labels for requests; missing token counts count as short requests.

    `arrival_rank` is each row's position in arrival order (None: rows are in arrival order). `recorded` holds
    codes of labels the file already has (-1 where a row has none or one outside the vocabulary); later draws
    are conditioned on those, so a recorded invoice-extraction request gets a data class drawn for invoice
    extraction.
    """
    from slmlab.parallel import in_chunks
    from slmlab.traces.label_kernel import FIELDS, draw_codes, stream

    recorded = recorded or {}
    count = len(input_tokens)
    rank = np.arange(count, dtype=np.int64) if arrival_rank is None else np.asarray(arrival_rank, dtype=np.int64)
    tokens = np.asarray(input_tokens)
    if not np.issubdtype(tokens.dtype, np.integer):
        tokens = np.nan_to_num(tokens.astype(float), nan=0.0)
    long_context = (tokens >= mix.long_context_tokens).view(np.int8)
    none = np.zeros(0, dtype=np.int8)
    tenants = tuple(mix.tenant)
    codes = [np.empty(count, dtype=np.int8) for _ in range(FIELDS)]
    in_chunks(
        draw_codes,
        count,
        np.array([stream(mix.seed, f) for f in range(FIELDS)], dtype=np.uint64),
        rank,
        long_context,
        recorded.get("task", none).astype(np.int8),
        recorded.get("data_class", none).astype(np.int8),
        _cumulative([mix.task, mix.long_context_task], TASKS),
        _cumulative([mix.data_class_by_task[t] for t in TASKS], DATA_CLASSES),
        _cumulative([mix.residency_by_data_class[c] for c in DATA_CLASSES], RESIDENCIES),
        _cumulative([mix.tenant], tenants),
        *codes,
    )
    task, data_class, residency, tenant = codes
    return Labels(
        task=task,
        data_class=data_class,
        residency=residency,
        tenant=tenant,
        tenants=tenants,
        slo_ms_by_task=tuple(float(mix.latency_slo_ms_by_task[name]) for name in TASKS),
    )
