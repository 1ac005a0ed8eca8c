"""The enterprise labeller: seeded, documented, conditioned on token shape, stored as synthetic."""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from pathlib import Path

import duckdb
import numpy as np
import pytest

from slmlab.traces.importer import import_trace
from slmlab.traces.labelling import DRAW, PRESETS, LabelMix, draw_labels, load_label_mix
from tests.conftest import AZURE_CONV

GOLDEN = Path(__file__).parent / "golden" / "labels_azure_conv.json"


def _label_summary(db: Path) -> dict[str, object]:
    con = duckdb.connect(str(db), read_only=True)
    summary = {
        column: dict(con.execute(f"SELECT {column}, count(*) FROM requests GROUP BY 1 ORDER BY 1").fetchall())
        for column in ("task", "data_class", "residency", "tenant", "latency_slo_ms")
    }
    summary["first_ten"] = [
        list(row)
        for row in con.execute(
            "SELECT task, data_class, residency, tenant FROM requests ORDER BY seq LIMIT 10"
        ).fetchall()
    ]
    con.close()
    return {
        key: {str(k): v for k, v in value.items()} if isinstance(value, dict) else value
        for key, value in summary.items()
    }


def test_default_labels_of_the_azure_conversation_trace_match_the_golden_file(db: Path) -> None:
    """A change to the labeller or the default mix shows up as a reviewed diff of this file."""
    import_trace(AZURE_CONV, db=db)
    summary = _label_summary(db)
    if os.environ.get("SLMLAB_UPDATE_GOLDEN"):  # regenerate deliberately, then review and commit the diff
        GOLDEN.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    assert summary == json.loads(GOLDEN.read_text())


def test_labels_are_stored_as_synthetic_with_seed_and_mix(db: Path) -> None:
    result = import_trace(AZURE_CONV, db=db)
    con = duckdb.connect(str(db), read_only=True)
    stored = json.loads(con.execute("SELECT labelling FROM traces").fetchall()[0][0])
    con.close()
    assert stored == result.labelling
    assert stored["method"] == "synthetic" and stored["seed"] == 20231116 and stored["draw"] == DRAW
    assert stored["mix"] == LabelMix().to_json()
    assert set(stored["synthetic_fields"]) == {"task", "data_class", "residency", "tenant", "latency_slo_ms"}


def test_same_seed_same_labels_other_seed_other_labels() -> None:
    tokens = np.arange(5_000) % 4_000
    first, again = draw_labels(tokens, LabelMix()), draw_labels(tokens, LabelMix())
    other = draw_labels(tokens, LabelMix(seed=1))
    assert np.array_equal(first.task, again.task) and np.array_equal(first.residency, again.residency)
    assert not np.array_equal(first.task, other.task)


def test_long_context_requests_are_mostly_extraction() -> None:
    tokens = np.array([100] * 20_000 + [5_000] * 20_000)
    labels = draw_labels(tokens, LabelMix())
    short, long = Counter(labels.decoded("task")[:20_000]), Counter(labels.decoded("task")[20_000:])
    assert long["document-extraction"] / 20_000 == pytest.approx(0.70, abs=0.02)
    assert short["document-extraction"] / 20_000 == pytest.approx(0.10, abs=0.02)


def test_residency_follows_data_class() -> None:
    labels = draw_labels(np.zeros(50_000), LabelMix())
    pairs = Counter(zip(labels.decoded("data_class"), labels.decoded("residency")))
    assert pairs[("public", "eu-only")] == 0 and pairs[("public", "on-premises-only")] == 0
    assert pairs[("regulated", "any")] == 0
    assert pairs[("regulated", "on-premises-only")] > pairs[("regulated", "eu-only")]


def test_zero_weight_labels_are_never_drawn() -> None:
    mix = LabelMix(task={"open-ended": 1.0, "document-extraction": 0.0}, long_context_task={"open-ended": 1.0})
    assert set(draw_labels(np.arange(10_000), mix).decoded("task")) == {"open-ended"}


def test_mix_from_json_file_overrides_the_default(tmp_path: Path, db: Path) -> None:
    path = tmp_path / "all-regulated.json"
    path.write_text(
        json.dumps(
            {"seed": 7, "data_class_by_task": {task: {"regulated": 1.0} for task in LabelMix().data_class_by_task}}
        )
    )
    mix = load_label_mix(str(path))
    assert mix.name == "all-regulated" and mix.seed == 7
    import_trace(AZURE_CONV, db=db, label_mix=mix)
    assert _label_summary(db)["data_class"] == {"regulated": 19_366}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"task": {"poetry": 1.0}}, "unknown label 'poetry'"),
        ({"task": {"open-ended": -1}}, "non-negative"),
        ({"colour": "blue"}, "unknown key(s) colour"),
        ({"task": {}}, "is empty"),
    ],
)
def test_bad_mix_files_are_rejected_clearly(tmp_path: Path, content: dict, message: str) -> None:
    path = tmp_path / "mix.json"
    path.write_text(json.dumps(content))
    with pytest.raises(ValueError, match=re.escape(message)):
        load_label_mix(str(path))


def test_presets_and_none() -> None:
    assert load_label_mix(None) is PRESETS["enterprise-default"]
    assert load_label_mix("regulated-heavy").name == "regulated-heavy"
    assert load_label_mix("none") is None
    with pytest.raises(ValueError, match="neither a preset"):
        load_label_mix("no-such-mix")


def test_label_mix_none_stores_no_labels(db: Path) -> None:
    result = import_trace(AZURE_CONV, db=db, label_mix=None)
    assert result.labelling["method"] == "none"
    assert _label_summary(db)["task"] == {"None": 19_366}


def test_draws_are_conditioned_on_labels_the_file_records(db: Path, tmp_path: Path) -> None:
    """A trace that records its task gets data classes drawn for that task, and keeps the task as recorded."""
    source = tmp_path / "invoices.csv"
    rows = [f"{i * 0.5},{100 + i},{20},document-extraction" for i in range(4_000)]
    source.write_text("arrival,input_tokens,output_tokens,task\n" + "\n".join(rows) + "\n")
    result = import_trace(source, db=db)
    assert result.labelling["method"] == "mixed" and result.labelling["recorded_fields"] == ["task"]
    summary = _label_summary(db)
    assert summary["task"] == {"document-extraction": 4_000}
    assert "public" not in summary["data_class"]  # document extraction never draws public data
    assert summary["data_class"]["regulated"] / 4_000 == pytest.approx(0.30, abs=0.03)


def _reference_labels(tokens: np.ndarray, ranks: np.ndarray, mix: LabelMix) -> list[tuple[int, int, int, int]]:
    """The documented formula in plain Python: uniform(seed, field, rank), then the inverse-CDF tables."""
    from slmlab.traces.label_kernel import uniform
    from slmlab.traces.labelling import DATA_CLASSES, RESIDENCIES, TASKS, _cumulative

    tables = [
        _cumulative([mix.task, mix.long_context_task], TASKS),
        _cumulative([mix.data_class_by_task[t] for t in TASKS], DATA_CLASSES),
        _cumulative([mix.residency_by_data_class[c] for c in DATA_CLASSES], RESIDENCIES),
        _cumulative([mix.tenant], tuple(mix.tenant)),
    ]

    def code(field: int, row: int, rank: int) -> int:
        value = uniform(mix.seed, field, rank)
        return sum(value >= threshold for threshold in tables[field][row][:-1])

    labels = []
    for tokens_in, rank in zip(tokens.tolist(), ranks.tolist()):
        task = code(0, int(tokens_in >= mix.long_context_tokens), rank)
        data_class = code(1, task, rank)
        labels.append((task, data_class, code(2, data_class, rank), code(3, 0, rank)))
    return labels


def test_compiled_draw_follows_the_documented_formula() -> None:
    rng = np.random.default_rng(5)
    tokens, ranks = rng.integers(0, 6_000, 400), rng.permutation(400)
    mix = LabelMix(seed=123456789)
    labels = draw_labels(tokens, mix, arrival_rank=ranks)
    drawn = list(
        zip(labels.task.tolist(), labels.data_class.tolist(), labels.residency.tolist(), labels.tenant.tolist())
    )
    assert drawn == _reference_labels(tokens, ranks, mix)


def test_labels_follow_the_request_not_the_row_order_of_the_file() -> None:
    """A request keeps its labels when the file lists requests in another order (same arrival ranks)."""
    tokens = np.arange(20_000) % 5_000
    in_order = draw_labels(tokens, LabelMix())
    shuffle = np.random.default_rng(1).permutation(len(tokens))
    shuffled = draw_labels(tokens[shuffle], LabelMix(), arrival_rank=shuffle)
    for name in ("task", "data_class", "residency", "tenant"):
        assert np.array_equal(getattr(shuffled, name), getattr(in_order, name)[shuffle])
