"""Issue 16: a hardware profile is any stored benchmark machine. Service curves measured elsewhere are imported
(llama-batched-bench's JSON Lines, or an slmlab export) under a machine name; a profile added for that machine
serves local models from its curves and prices them with its own capex, power and rent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.cli.main import main
from app.replay_assumptions import ReplayAssumptions
from slmlab import store
from slmlab.replay_store import reader
from slmlab.service_curves import list_service_curves, load_service_curve
from tests.conftest import SAMPLES, snapshot

SAMPLE = SAMPLES / "llama_batched_bench_smollm2_2vcpu.jsonl"
IMPORT = ["bench", "import", str(SAMPLE), "--model", "smollm2-135m", "--machine", "build-vm"]
PROFILE = ["profiles", "add", "build-box", "--machine", "build-vm", "--memory-gb", "4", "--slots", "8"]
PRICES = ["--capex-usd", "12000", "--lifetime-months", "24", "--watts-busy", "300", "--ops-usd-per-month", "20"]


def _lines() -> list[dict]:
    return [json.loads(line) for line in SAMPLE.read_text().splitlines() if line.strip()]


def test_llama_batched_bench_output_is_stored_as_the_named_machines_curve(db: Path, capsys) -> None:
    assert main(IMPORT) == 0
    assert "imported 1 service curve(s)" in capsys.readouterr().out
    curve = load_service_curve("smollm2-135m", "build-vm", db=db)
    assert curve is not None and curve.source == "imported" and not curve.contended
    lines = _lines()
    assert curve.batch.tolist() == [r["pl"] for r in lines] == [1, 2, 4, 8, 16]
    assert curve.decode_tok_s.tolist() == pytest.approx([r["speed_tg"] for r in lines], rel=1e-9)
    assert curve.prefill_tok_s.tolist() == pytest.approx([r["speed_pp"] for r in lines], rel=1e-9)
    assert curve.itl_s.tolist() == pytest.approx([r["t_tg"] / r["tg"] for r in lines], rel=1e-9)
    assert (curve.pp, curve.tg, curve.n_threads) == (128, 64, 2)
    # this machine's replay never reads another machine's curve as its own
    assert load_service_curve("smollm2-135m", db=db) is None
    with reader(db) as warehouse:
        assert warehouse.service_curve("smollm2-135m") is None
        assert warehouse.service_curve("smollm2-135m", "build-vm") is not None
    # idempotent: the same file twice stores it once
    assert main(IMPORT) == 0
    assert "all already stored" in capsys.readouterr().out
    assert len(list_service_curves(db=db)) == 1


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda r: r.update(is_pp_shared=1), "line 2: the prompt is shared"),
        (lambda r: r.pop("speed_tg"), "line 2: not llama-batched-bench --output-format jsonl (missing speed_tg)"),
        (lambda r: r.update(speed_pp=-3.0), "line 2: field 'speed_pp' must be above 0"),
        (lambda r: r.update(pl="two"), "line 2: field 'pl' must be a number"),
    ],
)
def test_a_bad_line_is_named_and_nothing_is_stored(db: Path, tmp_path: Path, capsys, edit, message: str) -> None:
    lines = _lines()
    edit(lines[1])
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(json.dumps(r) for r in lines) + "\n")
    with store.connect(db):
        pass  # an up-to-date warehouse, so the snapshot is of every table
    before = snapshot(db)
    assert main(["bench", "import", str(bad), "--model", "smollm2-135m", "--machine", "gpu"]) == 2
    assert message in capsys.readouterr().err
    assert snapshot(db) == before


def test_batched_bench_output_needs_model_and_machine(db: Path, capsys) -> None:
    assert main(["bench", "import", str(SAMPLE)]) == 2
    assert "names neither model nor machine: pass --model" in capsys.readouterr().err


def test_a_profile_of_the_imported_machine_serves_and_prices_the_replay(db: Path, capsys) -> None:
    assert main(IMPORT) == 0
    assert main([*PROFILE, *PRICES]) == 0
    capsys.readouterr()
    assert main(["profiles", "--json"]) == 0
    listed = {p["name"]: p for p in json.loads(capsys.readouterr().out)}
    assert listed["build-box"]["models_with_curves"] == ["smollm2-135m"]
    assert listed["this-machine"]["models_with_curves"] == []  # the imported curve is not this machine's
    argv = ["simulate", "--local", "smollm2-135m", "--policy", "small-only", "--json"]
    assert main([*argv, "--hardware", "build-box"]) == 0
    run = json.loads(capsys.readouterr().out)
    serving = run["inputs"]["local_serving"]["smollm2-135m"]
    assert serving["profile"] == "build-box" and serving["curve"].startswith("imported: service curve imp-")
    assert "on build-vm" in serving["curve"] and serving["priced_as"]["capex_usd"] == 12000.0
    servers = run["policies"]["small-only"]["servers_needed"]
    assert servers >= 1
    assert main(argv) == 0  # this machine: its own speeds x the assumed batch speed-up, a different fleet
    here = json.loads(capsys.readouterr().out)
    assert "imported" not in here["inputs"]["local_serving"]["smollm2-135m"]["curve"]
    # the projection prices the fleet as the profile it was sized on: hardware $12,000 / 24 months and $20 rent
    # per server-month, so operations / hardware = 20 / 500 in every month
    assert main(["project", "--run", str(run["run_id"]), "--json"]) == 0
    parts = json.loads(capsys.readouterr().out)["policies"]["small-only"]["components_total_usd"]
    assert parts["operations"] / parts["hardware"] == pytest.approx(20 / 500, rel=1e-6)


def test_a_profile_without_a_curve_of_the_model_refuses_instead_of_borrowing_this_machines_speed(
    db: Path, capsys
) -> None:
    assert main(IMPORT) == 0
    assert main(PROFILE) == 0
    capsys.readouterr()
    assert main(["simulate", "--local", "gemma3-270m", "--policy", "small-only", "--hardware", "build-box"]) == 2
    err = capsys.readouterr().err
    assert "no uncontended service curve of 'gemma3-270m'" in err
    assert "slmlab bench import FILE --model gemma3-270m --machine build-vm" in err


def test_profiles_are_checked_and_shipped_names_kept(db: Path, capsys) -> None:
    assert main(["profiles", "add", "bad", "--machine", "m", "--memory-gb", "-1"]) == 2
    assert "memory_bytes" in capsys.readouterr().err
    assert main(["profiles", "add", "this-machine", "--machine", "m"]) == 2
    assert "shipped profile" in capsys.readouterr().err
    assert main(["profiles", "add", "box", "--memory-gb", "4"]) == 2
    assert "needs --machine" in capsys.readouterr().err
    assert main(["profiles", "add", "box", "--machine", "m"]) == 0
    assert main(["profiles", "add", "box", "--machine", "m"]) == 2
    assert "--replace" in capsys.readouterr().err
    assert main(["profiles", "remove", "box"]) == 0
    assert main(["simulate", "--hardware", "box"]) == 2
    assert "no hardware profile 'box'" in capsys.readouterr().err


def test_an_slmlab_export_carries_curves_to_another_machine_under_a_new_name(db: Path, tmp_path: Path) -> None:
    assert main(IMPORT) == 0
    exported = tmp_path / "export.json"
    assert main(["bench", "export", str(exported)]) == 0
    other = tmp_path / "other.duckdb"
    assert main(["--db", str(other), "bench", "import", str(exported), "--machine", "lab-gpu"]) == 0
    curves = list_service_curves(db=other)
    assert [(c["machine"], c["source"], c["model"]) for c in curves] == [("lab-gpu", "imported", "smollm2-135m")]
    moved = load_service_curve("smollm2-135m", "lab-gpu", db=other)
    original = load_service_curve("smollm2-135m", "build-vm", db=db)
    assert moved is not None and original is not None
    assert moved.decode_tok_s.tolist() == original.decode_tok_s.tolist()
    assert main(["--db", str(other), "bench", "import", str(exported), "--machine", "lab-gpu"]) == 0  # idempotent
    assert len(list_service_curves(db=other)) == 1


def test_an_export_carries_the_wake_cost_and_a_bad_one_is_refused(db: Path, tmp_path: Path, capsys) -> None:
    from slmlab.service_curves import CurvePoint, CurveRun, save_service_curve

    run = CurveRun("smollm2-135m", "box", 1, 0, 8, 4, 23_040, False, wake=((0.3, 0.001), (3.0, 0.02)))
    save_service_curve(run, [CurvePoint(1, 12, True, 100.0, 50.0, 0.02, 0.02, 0.1)], db=db)
    exported = tmp_path / "export.json"
    assert main(["bench", "export", str(exported)]) == 0
    other = tmp_path / "other.duckdb"
    assert main(["--db", str(other), "bench", "import", str(exported), "--machine", "lab"]) == 0
    moved = load_service_curve("smollm2-135m", "lab", db=other)
    assert moved is not None and moved.wake == run.wake
    data = json.loads(exported.read_text())
    data["curves"][0]["wake"] = [[3.0, 0.02], [0.3, 0.001]]  # idle times out of order
    exported.write_text(json.dumps(data))
    capsys.readouterr()
    third = tmp_path / "third.duckdb"
    assert main(["--db", str(third), "bench", "import", str(exported), "--machine", "x"]) != 0
    err = capsys.readouterr().err
    assert "curve 0" in err and "wake" in err and "Traceback" not in err
    assert list_service_curves(db=third) == []  # nothing stored


def test_the_routing_form_carries_the_hardware_profile_into_the_command(tmp_path: Path) -> None:
    settings = ReplayAssumptions(trace="t", policies=("small-only",), hardware="build-box")
    args = settings.argv(tmp_path)
    assert args[args.index("--hardware") + 1] == "build-box"
    assert settings.config(tmp_path).profile == "build-box"
    assert "--hardware" not in ReplayAssumptions(trace="t", policies=("small-only",)).argv(tmp_path)


def test_the_benchmarks_page_says_an_imported_curve_is_another_machines(db: Path) -> None:
    from tests.test_app_benchmarks import open_page

    assert main(IMPORT) == 0
    at = open_page(db)
    assert any("(imported: machine build-vm)" in str(o) for s in at.selectbox for o in s.options)
    assert any("Imported from machine 'build-vm': this machine's replay does not use it" in c.value for c in at.caption)
