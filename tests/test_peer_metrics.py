"""slmlab's AIQ, APGR and CPT against re-implementations of the peers' own code, on shipped recorded outcomes.

The re-implementations below follow the peers' code step by step (same loops, same sort, same numpy calls;
`np.trapz` is `np.trapezoid` since numpy 2.0, the same sum):
* RouteLLM, lm-sys/RouteLLM @ 0aa24fd90b4b88cbc5155e306eef51b1a99797e8: `routellm/evals/evaluate.py`
  (`generate_results`: `pct_call_metric`, `auc_metric`, `apgr_metric`) and the sweep of
  `routellm/evals/benchmarks.py` (`GSM8K.evaluate` / `MMLU.evaluate`: `pd.qcut` thresholds, `>=` except the last).
* RouterBench, withmartian/routerbench @ 30e0925ac07a45108b9ee82086040a5664ea83e6: `evaluation/AIQ.py`
  (`get_non_descreasing_convex_hull_of`, `calc_AIQ`, `calculate_area_under_curve`).
RouteLLM drops prompts it found contaminated before it evaluates; that list is not shipped, so both sides here
use every prompt of the shipped files.
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from simulators import metrics
from slmlab.paths import DATASETS_DIR

ROUTELLM = DATASETS_DIR / "outcomes" / "routellm"
ROUTERBENCH = DATASETS_DIR / "samples" / "routerbench_head.csv"
WEAK, STRONG = "mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview"
TRAPZ = getattr(np, "trapz", None) or np.trapezoid


# ---- RouteLLM, re-implemented ---------------------------------------------------------------------------------


def routellm_sweep(correct: pd.DataFrame, win_rates: np.ndarray, num_results: int = 10) -> list[dict]:
    """benchmarks.py GSM8K/MMLU.evaluate: thresholds from pd.qcut bins; (strong %, accuracy %) per threshold."""
    _, thresholds = pd.qcut(pd.Series(win_rates), num_results, retbins=True)
    rows = []
    for i, threshold in enumerate(thresholds):
        selection = win_rates >= threshold if i != len(thresholds) - 1 else win_rates > threshold
        results = np.where(selection, correct[STRONG], correct[WEAK])
        models = np.where(selection, STRONG, WEAK)
        counts = Counter(models)
        rows.append(
            {
                "threshold": threshold,
                "strong_percentage": counts[STRONG] / len(results) * 100,
                "accuracy": sum(results) / len(results) * 100,
            }
        )
    return rows


def routellm_metrics(rows: list[dict], weak_accuracy: float, strong_accuracy: float) -> dict[str, float]:
    """evaluate.py generate_results for one method: CPT(20/50/80%) in %, AUC and APGR."""
    df = pd.DataFrame(rows).sort_values(by=["strong_percentage"])
    out = {}
    for pct in (0.2, 0.5, 0.8):
        out[f"cpt{int(pct * 100)}"] = np.interp(
            pct * (strong_accuracy - weak_accuracy) + weak_accuracy, df["accuracy"], df["strong_percentage"]
        )
    auc = TRAPZ(df["accuracy"], df["strong_percentage"] / 100)
    weak_auc = np.zeros([len(df)], dtype=float)
    weak_auc.fill(weak_accuracy)
    weak_auc = TRAPZ(weak_auc, df["strong_percentage"] / 100)
    strong_auc = np.zeros([len(df)], dtype=float)
    strong_auc.fill(strong_accuracy)
    strong_auc = TRAPZ(strong_auc, df["strong_percentage"] / 100)
    out["apgr"] = (auc - weak_auc) / (strong_auc - weak_auc)
    return out


# ---- RouterBench, re-implemented ------------------------------------------------------------------------------


def routerbench_hull(points: np.ndarray) -> np.ndarray:
    """AIQ.py get_non_descreasing_convex_hull_of, step by step."""
    pts = points[points[:, 0].argsort()]
    found: list = []
    for i in range(len(pts)):
        for j in range(i, len(pts)):
            x1, y1 = pts[i]
            x2, y2 = pts[j]
            for k in range(len(pts)):
                x, y = pts[k]
                if not x1 < x < x2:
                    continue
                chord = np.interp(x, [x1, x2], [y1, y2])
                for value in ((chord,) if y < chord else ()) + ((y,) if y >= chord else ()):
                    if x not in [fx for fx, _ in found]:
                        found.append([x, value])
                    else:
                        for n, (fx, fy) in enumerate(found):
                            if fx == x and fy < value:
                                found[n] = [x, value]
                                break
    if pts[-1][0] not in [fx for fx, _ in found] and pts[-1][1] >= found[-1][1]:
        found.append(pts[-1])
    if pts[0][0] not in [fx for fx, _ in found]:
        found = [pts[0]] + found
    hull = np.array(found, dtype=float)
    hull = hull[hull[:, 0].argsort()]
    drop = [i for i in range(1, len(hull)) if hull[i][1] < hull[i - 1][1]]
    return np.delete(hull, drop, axis=0)


def routerbench_calc_aiq(curves: list[np.ndarray]) -> list[float]:
    """AIQ.py calc_AIQ without the plot: hulls, the common largest cost, a flat point there, area / largest cost."""
    hulls = [routerbench_hull(points) for points in curves]
    top = max(np.max(hull[:, 0]) for hull in hulls)
    hulls = [np.vstack((hull, np.array([top, hull[-1, 1]]))) for hull in hulls]
    return [TRAPZ(hull[:, 1], hull[:, 0]) / top for hull in hulls]


# ---- shipped recorded data ------------------------------------------------------------------------------------


def routellm_outcomes(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path, usecols=["prompt", WEAK, STRONG])
    return frame.astype({WEAK: bool, STRONG: bool})


def mmlu_outcomes() -> pd.DataFrame:
    return pd.concat([routellm_outcomes(p) for p in sorted((ROUTELLM / "mmlu").glob("mmlu_*.csv"))], ignore_index=True)


def routerbench_rows() -> list[dict[str, str]]:
    with open(ROUTERBENCH, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def win_rates(kind: str, correct: pd.DataFrame, seed: int) -> np.ndarray:
    """A router's strong-win rate per prompt: random (RouteLLM's random router), or a noisy hint of which model
    is right (a router better than random), both seeded."""
    rng = np.random.default_rng(seed)
    if kind == "random":
        return rng.random(len(correct))
    hint = correct[STRONG].to_numpy(float) - correct[WEAK].to_numpy(float)
    return hint + rng.normal(0.0, 0.7, len(correct))


@pytest.mark.parametrize("data", ["gsm8k", "mmlu"])
@pytest.mark.parametrize("router", ["random", "hinted"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_apgr_and_cpt_equal_routellm_evaluate(data: str, router: str, seed: int) -> None:
    correct = routellm_outcomes(ROUTELLM / "gsm8k_responses.csv") if data == "gsm8k" else mmlu_outcomes()
    rows = routellm_sweep(correct, win_rates(router, correct, seed))
    weak, strong = correct[WEAK].mean() * 100, correct[STRONG].mean() * 100  # get_model_accuracy, in %
    peer = routellm_metrics(rows, weak, strong)
    share = np.array([r["strong_percentage"] for r in rows]) / 100
    quality = np.array([r["accuracy"] for r in rows]) / 100
    assert share.min() == 0.0 and share.max() == 1.0  # RouteLLM's sweep reaches both ends itself
    ours = metrics.apgr(share, quality, weak / 100, strong / 100)
    assert ours == pytest.approx(peer["apgr"], abs=1e-9)
    for target in (0.2, 0.5, 0.8):
        key = f"cpt{int(target * 100)}"
        assert metrics.cpt(share, quality, weak / 100, strong / 100, target) * 100 == pytest.approx(peer[key], abs=1e-9)
    if router == "hinted":
        assert ours > 0.6  # a router that knows something beats random (0.5): the comparison is not a trivial one


def test_apgr_counts_only_the_points_a_sweep_reaches() -> None:
    correct = routellm_outcomes(ROUTELLM / "gsm8k_responses.csv")
    rows = [r for r in routellm_sweep(correct, win_rates("hinted", correct, 3)) if r["strong_percentage"] <= 81]
    weak, strong = correct[WEAK].mean() * 100, correct[STRONG].mean() * 100
    share = np.array([r["strong_percentage"] for r in rows]) / 100
    quality = np.array([r["accuracy"] for r in rows]) / 100
    ours = metrics.apgr(share, quality, weak / 100, strong / 100)
    assert ours == pytest.approx(routellm_metrics(rows, weak, strong)["apgr"], abs=1e-9)
    with_fake_end = metrics.apgr(np.append(share, 1.0), np.append(quality, strong / 100), weak / 100, strong / 100)
    assert abs(with_fake_end - ours) > 0.01  # an added 100%-strong point would have changed the figure


def routerbench_curves(rows: list[dict[str, str]], pairs: list[tuple[str, str]]) -> list[np.ndarray]:
    """Two-model routers on the RouterBench rows: the first k prompts (file order) to the dearer model, k = 0..n;
    a point is (total recorded cost, mean recorded score), as RouterBench's router results record them."""
    curves = []
    for cheap, dear in pairs:
        points = []
        for k in range(len(rows) + 1):
            chosen = [dear if i < k else cheap for i in range(len(rows))]
            cost = sum(float(row[f"{m}|total_cost"]) for row, m in zip(rows, chosen))
            score = np.mean([float(row[m]) for row, m in zip(rows, chosen)])
            points.append([cost, score])
        curves.append(np.array(points))
    return curves


PAIRS = [
    ("mistralai/mistral-7b-chat", "gpt-4-1106-preview"),
    ("claude-instant-v1", "claude-v2"),
    ("meta/llama-2-70b-chat", "gpt-3.5-turbo-1106"),
    ("WizardLM/WizardLM-13B-V1.2", "zero-one-ai/Yi-34B-Chat"),
]


def test_aiq_equals_routerbench_code_for_a_group_of_routers() -> None:
    curves = routerbench_curves(routerbench_rows(), PAIRS)
    peer = routerbench_calc_aiq(curves)
    top = max(metrics.routerbench_hull_max_cost(c[:, 0], c[:, 1]) for c in curves)
    for curve, expected in zip(curves, peer):
        assert metrics.aiq_routerbench(curve[:, 0], curve[:, 1], max_cost=top) == pytest.approx(expected, abs=1e-9)
    for curve in curves:  # one router alone: its own largest hull cost
        assert metrics.aiq_routerbench(curve[:, 0], curve[:, 1]) == pytest.approx(
            routerbench_calc_aiq([curve])[0], abs=1e-9
        )


@pytest.mark.parametrize("seed", range(40))
def test_aiq_equals_routerbench_code_on_random_subsets(seed: int) -> None:
    rng = np.random.default_rng(seed)
    rows = routerbench_rows()
    pick = rng.choice(len(rows), size=int(rng.integers(6, len(rows))), replace=False)
    pair = PAIRS[seed % len(PAIRS)]
    curve = routerbench_curves([rows[i] for i in pick], [pair])[0]
    curve = curve[rng.permutation(len(curve))]  # the peer sorts; the order given must not matter
    if len(np.unique(curve[:, 0])) < 3:
        pytest.skip("RouterBench's code needs three distinct costs")
    assert metrics.aiq_routerbench(curve[:, 0], curve[:, 1]) == pytest.approx(
        routerbench_calc_aiq([curve])[0], abs=1e-9
    )


def test_aiq_code_and_paper_formula_differ_and_both_are_named() -> None:
    curve = routerbench_curves(routerbench_rows(), PAIRS[:1])[0]
    code, paper = metrics.aiq_routerbench(curve[:, 0], curve[:, 1]), metrics.aiq_paper(curve[:, 0], curve[:, 1])
    xs, ys = metrics.upper_hull(curve[:, 0], curve[:, 1])
    assert paper == pytest.approx(metrics.trapezoid(np.maximum.accumulate(ys), xs) / (xs[-1] - xs[0]))
    assert code != pytest.approx(paper)  # divided by the largest cost, not the cost range


def test_routerbench_code_needs_three_costs() -> None:
    assert np.isnan(metrics.aiq_routerbench(np.array([1.0, 2.0]), np.array([0.5, 0.6])))


def test_a_replay_sweep_reports_what_the_peers_code_gives_on_its_own_points(db: Path) -> None:
    """slmlab's own sweep on the imported GSM8K outcomes: the stored APGR/CPT/AIQ equal the peers' code run on the
    points that sweep reached."""
    from app.workflows import build_inputs
    from simulators.inputs import ReplayConfig
    from simulators.policies.registry import parse_policies
    from simulators.replay import run_policies
    from slmlab.traces.importer import import_trace

    import_trace(ROUTELLM / "gsm8k_responses.csv", db=db)
    inputs = build_inputs(ReplayConfig("gsm8k_responses"), db=db)
    result = run_policies(inputs, parse_policies("small-only,random,budget"), sweep=True)
    weak, strong = result.summaries["small-only"].quality, result.summaries["frontier-only"].quality
    curves = {}
    for label in ("random", "budget"):
        points = [p for p in result.points if p["policy"] == label]
        rows = [{"strong_percentage": p["frontier_share"] * 100, "accuracy": p["quality"] * 100} for p in points]
        peer = routellm_metrics(rows, weak * 100, strong * 100)
        sweep = result.summaries[label].sweep
        assert sweep["apgr"] == pytest.approx(peer["apgr"], abs=1e-9)
        assert sweep["cpt50"] * 100 == pytest.approx(peer["cpt50"], abs=1e-9)
        assert sweep["cpt80"] * 100 == pytest.approx(peer["cpt80"], abs=1e-9)
        curves[label] = np.array([[p["cost_usd"], p["quality"]] for p in points])
    assert max(p["frontier_share"] for p in result.points if p["policy"] == "budget") < 1.0  # never reaches 100%
    peer_aiq = routerbench_calc_aiq(list(curves.values()))
    for (label, _), expected in zip(curves.items(), peer_aiq):
        assert result.summaries[label].sweep["aiq_routerbench"] == pytest.approx(expected, abs=1e-9)


def test_mt_bench_sweeps_use_the_mean_judge_score_as_routellm_does(db: Path) -> None:
    """MT-Bench records ratings, not right/wrong: RouteLLM averages them, so the sweep's figures use the mean
    recorded score of the answering model (and say so), and equal evaluate.py's on those points."""
    from app.workflows import build_inputs
    from simulators.inputs import ReplayConfig
    from simulators.policies.registry import parse_policies
    from simulators.replay import run_policies
    from slmlab.traces.importer import import_trace

    import_trace(ROUTELLM / "mt_bench_judgements.jsonl", db=db)
    inputs = build_inputs(ReplayConfig("mt_bench_judgements"), db=db)
    result = run_policies(inputs, parse_policies("small-only,random"), sweep=True)
    weak, strong = (result.summaries[k].extra["score"] for k in ("small-only", "frontier-only"))
    sweep = result.summaries["random"].sweep
    assert sweep["quality_figure"] == "mean recorded score"
    scores = []
    for value in (p["value"] for p in result.points if p["policy"] == "random"):
        from simulators.policies.registry import with_value
        from simulators.replay import replay_policy, summarise

        random_policy = next(p for p in parse_policies("random") if p.label == "random")
        policy = with_value(random_policy, "strong_share", value)
        s = summarise(inputs, replay_policy(inputs, policy), policy)
        scores.append({"strong_percentage": s.frontier_share * 100, "accuracy": s.extra["score"] * 10})
    peer = routellm_metrics(scores, weak * 10, strong * 10)  # RouteLLM's MT-Bench scale: ratings 1-10
    assert sweep["apgr"] == pytest.approx(peer["apgr"], abs=1e-9)
    assert sweep["cpt50"] * 100 == pytest.approx(peer["cpt50"], abs=1e-9)
