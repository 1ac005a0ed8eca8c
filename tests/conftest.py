"""Shared fixtures: every test gets its own database file; real shipped data lives under datasets/."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from slmlab.models import GGUFMetadata
from slmlab.paths import DATASETS_DIR

AZURE_CONV = DATASETS_DIR / "traces" / "azure-llm-inference-2023-conv.csv"
AZURE_CODE = DATASETS_DIR / "traces" / "azure-llm-inference-2023-code.csv"
ROUTELLM = DATASETS_DIR / "outcomes" / "routellm"
SAMPLES = DATASETS_DIR / "samples"


@pytest.fixture(autouse=True)
def isolated_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point SLMLAB_DB at a fresh file so no test touches results/slmlab.duckdb."""
    path = tmp_path / "warehouse.duckdb"
    monkeypatch.setenv("SLMLAB_DB", str(path))
    monkeypatch.setenv("SLMLAB_CACHE_DIR", str(tmp_path / "cache"))
    return path


@pytest.fixture
def db(isolated_db: Path) -> Path:
    """The test's database file path."""
    return isolated_db


def snapshot(db: Path) -> dict[str, list[tuple]]:
    """Every row of every warehouse table, to prove a failed import changed nothing."""
    if not db.exists():
        return {}
    con = duckdb.connect(str(db), read_only=True)
    try:
        tables = [row[0] for row in con.execute("SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall()]
        return {t: sorted(con.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in tables}
    finally:
        con.close()


@pytest.fixture(scope="session")
def smollm2_llama():
    """The real shipped SmolLM2-135M loaded once for in-process decoding tests (evaluations use their own worker)."""
    from llama_cpp import Llama

    from slmlab.models import resolve_model

    return Llama(
        model_path=str(resolve_model("smollm2-135m")), n_ctx=4096, n_threads=2, n_threads_batch=2, verbose=False
    )


def tiny_gguf_metadata() -> GGUFMetadata:
    """GGUF metadata of a made-up one-layer model, for tests that store benchmark runs without running one."""
    return GGUFMetadata(
        path="tiny.gguf",
        file_bytes=1,
        sha256="s",
        architecture="llama",
        name="tiny",
        parameters=1,
        tensor_bytes=1,
        quantization="Q4_1",
        context_length=8,
        n_layer=1,
        n_embd=8,
        n_head=1,
        n_head_kv=1,
        head_dim_k=8,
        head_dim_v=8,
        chat_template=False,
    )


ROUTERBENCH_LONG_HEADER = ["sample_id", "prompt", "eval_name", "model_name", "model_response", "performance", "cost"]


def routerbench_long_rows(header: list[str], rows: list[list[str]]) -> list[list[str]]:
    """RouterBench's long layout (the one its convert_to_wide_format starts from) of wide rows: one row per prompt
    and model, columns as ROUTERBENCH_LONG_HEADER."""
    fixed = ("sample_id", "prompt", "eval_name", "oracle_model_to_route_to")
    models = [c for c in header if "|" not in c and c not in fixed]
    out = []
    for row in rows:
        cell = dict(zip(header, row))
        for model in models:
            out.append(
                [
                    cell["sample_id"],
                    cell["prompt"],
                    cell["eval_name"],
                    model,
                    cell[f"{model}|model_response"],
                    cell[model],
                    cell[f"{model}|total_cost"],
                ]
            )
    return out
