"""Speed check: `slmlab bench` against llama.cpp's own llama-bench and llama-batched-bench, built from the very
llama.cpp that the installed llama-cpp-python vendors. Goal: harness / llama-bench >= 0.97 (median of
alternating pairs) for pp512, tg128 and pp512+tg128 at 1 and 2 threads on both shipped models, and the batched
service curve within 5% of llama-batched-bench for the same PP, TG and B.

The tools are NOT part of setup or CI. The first run downloads the source distribution of the installed
llama-cpp-python version from the package index (`pip download --no-binary :all: --no-deps`), and builds
`llama-bench` and `llama-batched-bench` from its `vendor/llama.cpp` with CMake (CPU build, default flags, the
same ones the wheel was built with) into a cache outside the repository:
$SLMLAB_LLAMA_TOOLS, else ~/.cache/slmlab/llama-tools/<version>/ (about 10 minutes on 2 cores). `--tools DIR`
uses binaries built elsewhere.

What is compared (each side: its own fresh process, one warm-up, `--reps` measured repetitions, mean):
  pp512         llama-bench -p 512 -n 0           vs harness test pp512, prefill tok/s
  tg128         llama-bench -p 0 -n 128           vs harness test tg128 (decode from an empty cache), decode tok/s
  pp512+tg128   llama-bench -pg 512,128           vs harness test pp512+tg128, (512+128) / total time
  batched       llama-batched-bench -npp PP -ntg TG -npl B   vs bench.batched.measure_curve, aggregate decode tok/s
                (and prefill tok/s); the harness picks greedy tokens (argmax of B logits rows) where
                llama-batched-bench feeds random ones, so its figure includes the sampling a server does
                (`--random-tokens` drops it for a like-for-like engine comparison).
Sides alternate (who goes first flips every round), so drift on a shared machine hits both alike; each side runs
under bench.contention's monitor and its line says how many cores other processes used meanwhile (CONTENDED past
the rule), so a ratio measured on a busy machine is seen as such.

    .venv/bin/python perf/harness_vs_llamabench.py [--models smollm2-135m,gemma3-270m] [--threads 1,2]
        [--tests pp512,tg128,pp512+tg128] [--rounds 3] [--reps 3] [--batched 1,2,4] [--pp 128 --tg 128]
        [--tools DIR] [--skip-single] [--skip-batched]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

GOAL_SINGLE = 0.97
GOAL_BATCHED = 0.05
TARGETS = ("llama-bench", "llama-batched-bench")


def tools_dir(version: str) -> Path:
    """Where the built tools live for one llama-cpp-python version."""
    root = os.environ.get("SLMLAB_LLAMA_TOOLS")
    return Path(root) if root else Path.home() / ".cache" / "slmlab" / "llama-tools" / version


def build_tools(version: str, cache: Path, jobs: int = 2) -> Path:
    """Download the installed version's sdist and build llama-bench + llama-batched-bench; returns the bin dir."""
    binaries = cache / "build" / "bin"
    if all((binaries / name).exists() for name in TARGETS):
        return binaries
    cache.mkdir(parents=True, exist_ok=True)
    sdist = next(cache.glob(f"llama_cpp_python-{version}.tar.gz"), None)
    if sdist is None:
        print(f"downloading the llama-cpp-python {version} source distribution ...", flush=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-binary",
                ":all:",
                "--no-deps",
                f"llama-cpp-python=={version}",
                "-d",
                str(cache),
            ],
            check=True,
        )
        sdist = next(cache.glob(f"llama_cpp_python-{version}.tar.gz"))
    source = cache / f"llama_cpp_python-{version}"
    if not source.exists():
        with tarfile.open(sdist) as archive:
            archive.extractall(cache, filter="data")
    llama = source / "vendor" / "llama.cpp"
    print(f"building {', '.join(TARGETS)} from {llama} (CPU, Release) ...", flush=True)
    subprocess.run(
        [
            "cmake",
            "-S",
            str(llama),
            "-B",
            str(cache / "build"),
            "-DCMAKE_BUILD_TYPE=Release",
            "-DLLAMA_BUILD_TOOLS=ON",
            "-DLLAMA_CURL=OFF",
            "-DLLAMA_BUILD_TESTS=OFF",
            "-DLLAMA_BUILD_EXAMPLES=OFF",
            "-DLLAMA_BUILD_SERVER=OFF",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    subprocess.run(
        ["cmake", "--build", str(cache / "build"), "-j", str(jobs), "--target", *TARGETS],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return binaries


def llama_bench(binary: Path, model: Path, test: str, threads: int, reps: int) -> float:
    """llama-bench's mean tok/s for one test (JSON output)."""
    shape = {
        "pp512": ["-p", "512", "-n", "0"],
        "tg128": ["-p", "0", "-n", "128"],
        "pp512+tg128": ["-p", "0", "-n", "0", "-pg", "512,128"],
    }[test]
    out = subprocess.run(
        [str(binary), "-m", str(model), "-t", str(threads), "-r", str(reps), "-o", "json", *shape],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return float(json.loads(out)[0]["avg_ts"])


def harness(model: Path, test: str, threads: int, reps: int) -> float:
    """The harness's figure for the same test (its own spawned worker)."""
    from bench.runner import BenchConfig, run_isolated

    raw = run_isolated(model, BenchConfig(test=test, reps=reps, threads=threads))
    metric = {"pp512": "prefill_tok_s", "tg128": "decode_tok_s", "pp512+tg128": "total_tok_s"}[test]
    return raw.summaries[metric].mean


def batched_bench(
    binary: Path, model: Path, batches: list[int], pp: int, tg: int, threads: int, reps: int = 1
) -> dict[int, dict]:
    """llama-batched-bench's per-B figures (one context sized for the largest B, as it is run), each B run `reps`
    times in a row (`-npl 1,1,1,4,...`) and averaged, as the harness averages its repetitions."""
    out = subprocess.run(
        [
            str(binary),
            "-m",
            str(model),
            "-c",
            str(max(batches) * (pp + tg)),
            "-b",
            "2048",
            "-ub",
            "512",
            "-npp",
            str(pp),
            "-ntg",
            str(tg),
            "-npl",
            ",".join(str(b) for b in batches for _ in range(reps)),
            "-t",
            str(threads),
            "--output-format",
            "jsonl",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    rows = [json.loads(line) for line in (out.stdout + out.stderr).splitlines() if line.startswith('{"n_kv_max"')]
    by_b: dict[int, list[dict]] = {}
    for r in rows:
        by_b.setdefault(int(r["pl"]), []).append(r)
    return {
        b: {
            "prefill_tok_s": statistics.fmean(float(r["speed_pp"]) for r in runs),
            "decode_tok_s": statistics.fmean(float(r["speed_tg"]) for r in runs),
        }
        for b, runs in by_b.items()
    }


def harness_batched(
    model: Path, batches: list[int], pp: int, tg: int, threads: int, greedy: bool, reps: int = 1
) -> dict[int, dict]:
    """bench.batched's curve for the same PP, TG and B (a spawned worker), each B the mean of `reps` runs."""
    from bench.batched import CurveConfig, run_curve_isolated

    points, _ = run_curve_isolated(
        model, CurveConfig(batches=tuple(batches), pp=pp, tg=tg, threads=threads, greedy=greedy, reps=reps)
    )
    return {p.batch: {"prefill_tok_s": p.prefill_tok_s, "decode_tok_s": p.decode_tok_s} for p in points if p.fits}


def timed_sides(sides: list, threads: int) -> tuple[dict, str]:
    """Run both sides in order, each under a contention monitor; returns the figures and who else was busy."""
    from bench.contention import ContentionMonitor

    got, notes = {}, []
    for side, run in sides:
        monitor = ContentionMonitor(threads).start()
        got[side] = run()
        report = monitor.stop()
        notes.append(
            f"{side}: others {report.others_cores_mean:.2f} cores" + (" CONTENDED" if report.contended else "")
        )
    return got, "; ".join(notes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="smollm2-135m,gemma3-270m")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--tests", default="pp512,tg128,pp512+tg128")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--batched", default="1,2,4")
    parser.add_argument("--pp", type=int, default=128)
    parser.add_argument("--tg", type=int, default=128)
    parser.add_argument("--tools", type=Path, default=None, help="folder holding built llama-bench binaries")
    parser.add_argument("--skip-single", action="store_true")
    parser.add_argument("--skip-batched", action="store_true")
    parser.add_argument(
        "--random-tokens",
        action="store_true",
        help="batched: feed random tokens as llama-batched-bench does (default: greedy picks)",
    )
    args = parser.parse_args()
    import llama_cpp

    from slmlab.models import resolve_model

    version = llama_cpp.__version__
    binaries = args.tools or build_tools(version, tools_dir(version))
    models = {name: resolve_model(name) for name in args.models.split(",")}
    threads = [int(t) for t in args.threads.split(",")]
    print(f"llama-cpp-python {version}; tools {binaries}; {args.rounds} alternating rounds, {args.reps} reps a side")
    medians: list[tuple[str, float]] = []
    if not args.skip_single:
        for name, path in models.items():
            for thread_count in threads:
                for test in args.tests.split(","):
                    ratios = []
                    for index in range(args.rounds):
                        sides = [
                            ("harness", partial(harness, path, test, thread_count, args.reps)),
                            (
                                "llama-bench",
                                partial(llama_bench, binaries / "llama-bench", path, test, thread_count, args.reps),
                            ),
                        ]
                        if index % 2:
                            sides.reverse()
                        got, busy = timed_sides(sides, thread_count)
                        ratios.append(got["harness"] / got["llama-bench"])
                        print(
                            f"  {name} t={thread_count} {test:12s} round {index + 1} ({sides[0][0]} first): "
                            f"harness {got['harness']:9.1f} tok/s, llama-bench {got['llama-bench']:9.1f} tok/s, "
                            f"ratio {ratios[-1]:.3f}  [{busy}]",
                            flush=True,
                        )
                    median = statistics.median(ratios)
                    medians.append((f"{name} t={thread_count} {test}", median))
                    verdict = "PASS" if median >= GOAL_SINGLE else "MISS"
                    print(
                        f"{name} t={thread_count} {test}: median ratio {median:.3f} "
                        f"(pairs: {', '.join(f'{r:.3f}' for r in ratios)})  {verdict} (goal >= {GOAL_SINGLE})",
                        flush=True,
                    )
    if not args.skip_batched:
        batches = [int(b) for b in args.batched.split(",")]
        for name, path in models.items():
            for thread_count in threads:
                per_b: dict[int, list[float]] = {b: [] for b in batches}
                for index in range(args.rounds):
                    sides = [
                        (
                            "harness",
                            partial(
                                harness_batched,
                                path,
                                batches,
                                args.pp,
                                args.tg,
                                thread_count,
                                not args.random_tokens,
                                args.reps,
                            ),
                        ),
                        (
                            "llama-batched-bench",
                            partial(
                                batched_bench,
                                binaries / "llama-batched-bench",
                                path,
                                batches,
                                args.pp,
                                args.tg,
                                thread_count,
                                args.reps,
                            ),
                        ),
                    ]
                    if index % 2:
                        sides.reverse()
                    got, busy = timed_sides(sides, thread_count)
                    print(f"  round {index + 1} ({sides[0][0]} first) [{busy}]", flush=True)
                    for b in batches:
                        ours, theirs = got["harness"].get(b), got["llama-batched-bench"].get(b)
                        if ours and theirs:
                            ratio = ours["decode_tok_s"] / theirs["decode_tok_s"]
                            per_b[b].append(ratio)
                            print(
                                f"  {name} t={thread_count} PP{args.pp} TG{args.tg} B={b} round {index + 1}: "
                                f"aggregate decode harness {ours['decode_tok_s']:8.1f}, llama-batched-bench "
                                f"{theirs['decode_tok_s']:8.1f} tok/s, ratio {ratio:.3f}; prefill "
                                f"{ours['prefill_tok_s']:8.1f} vs {theirs['prefill_tok_s']:8.1f}",
                                flush=True,
                            )
                for b, ratios in per_b.items():
                    if ratios:
                        median = statistics.median(ratios)
                        medians.append((f"{name} t={thread_count} batched B={b}", median))
                        verdict = "PASS" if abs(median - 1) <= GOAL_BATCHED else "MISS"
                        print(
                            f"{name} t={thread_count} batched B={b}: median ratio {median:.3f}  {verdict} "
                            f"(goal within {GOAL_BATCHED:.0%})",
                            flush=True,
                        )
    if medians:
        print("\nsummary (median of per-pair ratios, harness / llama.cpp tool):")
        for label, median in medians:
            print(f"  {label:45s} {median:.3f}")


if __name__ == "__main__":
    main()
