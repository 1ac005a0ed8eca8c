"""Published outcome files import as they are, and recorded figures (cost) win over the catalogue in a replay.

The shipped RouterBench rows (`datasets/samples/routerbench_head.csv`) are real; the index column, the blank
scores and the long layout below are made from them inside the test (as pandas writes them), since no published
file of those layouts is shipped."""

from __future__ import annotations

import csv
from pathlib import Path

import duckdb
import numpy as np
import pytest

from slmlab.traces.errors import TraceInputError
from slmlab.traces.importer import detect_format, import_trace
from tests.conftest import ROUTERBENCH_LONG_HEADER, SAMPLES, routerbench_long_rows

ROUTERBENCH = SAMPLES / "routerbench_head.csv"


def _rows() -> tuple[list[str], list[list[str]]]:
    with open(ROUTERBENCH, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    return rows[0], rows[1:]


def _write(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _query(db: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_a_pandas_index_column_is_ignored(db: Path, tmp_path: Path) -> None:
    header, rows = _rows()
    path = _write(tmp_path / "rb_indexed.csv", ["", *header], [[str(i), *row] for i, row in enumerate(rows)])
    assert detect_format(path).name == "routerbench"
    result = import_trace(path, db=db)
    assert (result.rows, result.outcomes) == (23, 23 * 11)
    assert result.report["index_column_ignored"] is True and result.report["unscored_rows_skipped"] == 0
    assert _query(db, "SELECT count(DISTINCT model) FROM outcomes")[0][0] == 11  # the index is not a model


def test_unscored_rows_are_skipped_and_counted(db: Path, tmp_path: Path) -> None:
    header, rows = _rows()
    gpt4 = header.index("gpt-4-1106-preview")
    claude = header.index("claude-v2")
    rows[2][gpt4] = ""
    rows[5][gpt4] = ""
    rows[5][claude] = ""
    rows[9][claude] = ""
    path = _write(tmp_path / "rb_blank.csv", header, rows)
    result = import_trace(path, db=db)
    assert result.rows == 20 and result.report["unscored_rows_skipped"] == 3
    assert result.report["unscored_by_model"] == {"claude-v2": 2, "gpt-4-1106-preview": 2}
    assert result.report["unscored_first_ids"] == [rows[i][0] for i in (2, 5, 9)]


def test_a_file_without_any_score_is_refused(db: Path, tmp_path: Path) -> None:
    header, rows = _rows()
    gpt4 = header.index("gpt-4-1106-preview")
    for row in rows:
        row[gpt4] = ""
    with pytest.raises(TraceInputError, match="blank score"):
        import_trace(_write(tmp_path / "rb_empty.csv", header, rows), db=db)


def _long(header: list[str], rows: list[list[str]]) -> tuple[list[str], list[list[str]]]:
    return ROUTERBENCH_LONG_HEADER, routerbench_long_rows(header, rows)


def test_the_long_layout_gives_the_same_outcomes_as_the_wide_one(tmp_path: Path) -> None:
    header, rows = _rows()
    long_header, long_rows = _long(header, rows)
    long_rows[7][5] = ""  # one blank performance: that row is skipped, and its prompt (now missing a model) too
    wide_db, long_db = tmp_path / "wide.duckdb", tmp_path / "long.duckdb"
    path = _write(tmp_path / "rb_long.csv", ["", *long_header], [[str(i), *r] for i, r in enumerate(long_rows)])
    assert detect_format(path).name == "routerbench-long"
    result = import_trace(path, db=long_db)
    assert result.report["unscored_rows_skipped"] == 1 and result.report["prompts_dropped_missing_a_model"] == 1
    assert (result.rows, result.outcomes) == (22, 22 * 11)
    import_trace(ROUTERBENCH, db=wide_db)
    sql = (
        f"SELECT request_id, model, score, cost_usd FROM outcomes WHERE request_id <> '{long_rows[7][0]}' ORDER BY ALL"
    )
    assert _query(long_db, sql) == _query(wide_db, sql)


# ---- recorded figures win -------------------------------------------------------------------------------------


def _recorded_sums() -> dict[str, float]:
    header, rows = _rows()
    models = [c[: -len("|total_cost")] for c in header if c.endswith("|total_cost")]
    return {m: sum(float(r[header.index(f"{m}|total_cost")]) for r in rows) for m in models}


def test_every_recorded_model_replays_at_its_recorded_cost(db: Path) -> None:
    from app.workflows import build_inputs
    from simulators.inputs import ReplayConfig
    from simulators.policies.registry import parse_policies
    from simulators.replay import run_policies

    import_trace(ROUTERBENCH, db=db)
    inputs = build_inputs(ReplayConfig("routerbench_head"), db=db)
    sums = _recorded_sums()
    assert set(inputs.model_names) == set(sums)  # all 11 recorded models
    uncatalogued = [m for m in inputs.portfolio.models if m.input_usd_per_mtok.source == "recorded"]
    assert len(uncatalogued) == 8  # no catalogue key, not even a provider key ending in the name
    for j, name in enumerate(inputs.model_names):  # every single model costs exactly what was recorded
        assert round(float(inputs.cost_usd[:, j].sum()), 2) == round(sums[name], 2)
        assert inputs.cost_usd[:, j].sum() == pytest.approx(sums[name], rel=1e-12)
    # roles by price: the frontier is the dearest model of the file, declared with the reason
    dearest = max(sums, key=sums.get)
    assert inputs.model_names[inputs.frontier] == dearest and "dearest" in inputs.roles["frontier"]
    assert inputs.model_names[inputs.small] == min(sums, key=sums.get) and "cheapest" in inputs.roles["small"]
    result = run_policies(inputs, parse_policies("frontier-only,oracle"))
    base = result.summaries["frontier-only"]
    assert round(base.cost_usd, 2) == round(sums[dearest], 2) and base.extra["cost_source"] == {"recorded": 23}
    oracle = result.summaries["oracle"]  # the oracle over all 11 recorded models
    assert oracle.quality >= base.quality and oracle.cost_usd <= base.cost_usd


def test_roles_follow_price_not_a_quality_tie(db: Path, tmp_path: Path) -> None:
    from app.workflows import build_inputs
    from simulators.inputs import ReplayConfig

    header, rows = _rows()
    keep = [
        "sample_id",
        "prompt",
        "eval_name",
        "claude-v2",
        "claude-instant-v1",
        "claude-v2|total_cost",
        "claude-instant-v1|total_cost",
    ]
    for row in rows:  # the same scores for both: a quality tie
        row[header.index("claude-instant-v1")] = row[header.index("claude-v2")]
    path = _write(tmp_path / "tie.csv", keep, [[r[header.index(c)] for c in keep] for r in rows])
    import_trace(path, db=db)
    inputs = build_inputs(ReplayConfig("tie"), db=db)
    assert inputs.p_correct[:, 0].mean() == inputs.p_correct[:, 1].mean()
    assert inputs.model_names[inputs.frontier] == "claude-v2"  # the dearer one, whatever the column order
    assert inputs.model_names[inputs.small] == "claude-instant-v1"
    assert inputs.cost_usd[:, inputs.small].sum() < inputs.cost_usd[:, inputs.frontier].sum()


def test_an_override_prices_a_model_the_catalogue_lacks_with_a_per_call_fee(db: Path, tmp_path: Path) -> None:
    import json

    from app.workflows import build_inputs
    from simulators.inputs import ReplayConfig

    header, rows = _rows()
    keep = [
        "sample_id",
        "prompt",
        "eval_name",
        "gpt-4-1106-preview",
        "mistralai/mistral-7b-chat",
        "gpt-4-1106-preview|total_cost",
    ]  # mistral's cost is not recorded here, nor in the catalogue
    path = _write(tmp_path / "partial.csv", keep, [[r[header.index(c)] for c in keep] for r in rows])
    import_trace(path, db=db)
    with pytest.raises(Exception, match="usd_per_call"):  # the error says how to price it
        build_inputs(ReplayConfig("partial"), db=db)
    overrides = tmp_path / "overrides.json"
    overrides.write_text(
        json.dumps(
            [
                {
                    "name": "mistralai/mistral-7b-chat",
                    "input_usd_per_mtok": 0.2,
                    "output_usd_per_mtok": 0.2,
                    "usd_per_call": 0.001,
                }
            ]
        )
    )
    inputs = build_inputs(ReplayConfig("partial", overrides=str(overrides)), db=db)
    j = inputs.model_names.index("mistralai/mistral-7b-chat")
    per_token = (inputs.input_tokens * 0.2 + inputs.output_tokens * 0.2) / 1e6
    np.testing.assert_allclose(inputs.cost_usd[:, j], per_token + 0.001, rtol=1e-12)
    assert set(inputs.cost_source[:, j].tolist()) == {2}  # 'override'


def test_benchmark_prompts_get_no_synthetic_labels_unless_asked(tmp_path: Path) -> None:
    from slmlab.traces.labelling import load_label_mix

    plain, asked = tmp_path / "plain.duckdb", tmp_path / "asked.duckdb"
    result = import_trace(ROUTERBENCH, db=plain)
    assert result.labelling.get("synthetic_fields") in ([], None)
    labelled = "SELECT count(*) FROM requests WHERE residency IS NOT NULL OR data_class IS NOT NULL"
    assert _query(plain, labelled) == [(0,)]
    result = import_trace(ROUTERBENCH, db=asked, label_mix=load_label_mix("enterprise-default"))
    assert "residency" in result.labelling["synthetic_fields"]
    assert _query(asked, "SELECT count(*) FROM requests WHERE residency IS NULL") == [(0,)]


def test_simulate_without_trace_replays_the_newest_import_and_says_so(db: Path, capsys) -> None:
    import json

    from app.cli.main import main

    import_trace(ROUTERBENCH, db=db)
    assert main(["simulate", "--policy", "cascade", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["trace"] == "routerbench_head" and out["trace_choice"].startswith("the newest imported trace")
    assert out["inputs"]["roles"]["frontier"].startswith("gpt-4-1106-preview: the dearest API model")
    assert "assumption decides this result" in out["policies"]["cascade"]["confidence_note"]
    assert main(["simulate", "--policy", "cascade"]) == 0
    text = capsys.readouterr().out
    assert "trace 'routerbench_head' (the newest imported trace" in text and "note: assumption decides" in text
    assert "cost per request as recorded for:" in text


def test_every_frugalgpt_priced_api_enters_through_overrides(tmp_path: Path) -> None:
    """FrugalGPT's own price list (51 APIs; per-token prices and a fixed fee per call) as overrides: every entry
    is priced without a catalogue look-up, at FrugalGPT's cost formula (llmvanilla.py: input x price + fixed +
    output x price; fixed_size is 0 throughout the file)."""
    import json

    from simulators.catalog import build_portfolio
    from slmlab.paths import DATASETS_DIR

    services = json.loads((DATASETS_DIR / "prices" / "frugalgpt-serviceinfo-2b23e6a.json").read_text())
    entries = [(f"{provider}/{model}", spec) for provider, models in services.items() for model, spec in models.items()]
    assert len(entries) == 51 and all(spec["fixed_size"] == 0 for _, spec in entries)
    overrides = tmp_path / "frugalgpt.json"
    overrides.write_text(
        json.dumps(
            [
                {
                    "name": name,
                    "input_usd_per_mtok": spec["cost_input"] * 1e6,
                    "output_usd_per_mtok": spec["cost_output"] * 1e6,
                    "usd_per_call": spec["cost_fixed"],
                }
                for name, spec in entries
            ]
        )
    )
    portfolio = build_portfolio((), tuple(name for name, _ in entries), overrides=overrides)
    assert len(portfolio.models) == 51
    for name, spec in entries:
        model = portfolio.get(name)
        expected = spec["cost_input"] * 700 + spec["cost_fixed"] + spec["cost_output"] * 300
        assert model.cost_usd(700, 300) == pytest.approx(expected, rel=1e-12)
        assert model.input_usd_per_mtok.source == "override"
    assert portfolio.get("ai21/j1-jumbo").usd_per_call.value == 0.005
