"""Where slmlab finds its database and shipped data, so every entry point agrees."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATASETS_DIR = PROJECT_ROOT / "datasets"
DEFAULT_DB = Path("results") / "slmlab.duckdb"
DB_ENV_VAR = "SLMLAB_DB"
NO_DEFAULTS_ENV_VAR = "SLMLAB_NO_DEFAULTS"  # set by `slmlab dashboard --no-defaults`


def resolve_db_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The database file: `--db` beats `SLMLAB_DB` beats `results/slmlab.duckdb` (relative to the project root)."""
    if explicit:
        return Path(explicit).expanduser()
    from_env = os.environ.get(DB_ENV_VAR)
    if from_env:
        return Path(from_env).expanduser()
    return PROJECT_ROOT / DEFAULT_DB
