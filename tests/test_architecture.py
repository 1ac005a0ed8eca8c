"""The house keeps its shape: four layers importing only downward, replay code without database access, ruff and
mypy clean.

`lint-imports` reads the contracts in pyproject.toml; these tests run it on a copy of the packages, once as they are
and once with a violation planted, so a contract that stopped checking anything would fail here.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from slmlab.paths import PROJECT_ROOT

PACKAGES = ("app", "bench", "simulators", "slmlab")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _copy_tree(target: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(PROJECT_ROOT / package, target / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy(PROJECT_ROOT / "pyproject.toml", target / "pyproject.toml")
    return target


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
    )


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not LINT_IMPORTS.exists():
        pytest.fail(f"{LINT_IMPORTS} is missing: `pip install -e '.[dev]'` installs import-linter")
    return _copy_tree(tmp_path_factory.mktemp("house"))


def test_the_layers_hold_as_the_tree_stands(tree: Path) -> None:
    result = _lint_imports(tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 2 kept, 0 broken." in result.stdout


@pytest.mark.parametrize(
    ("module", "planted", "contract"),
    [
        ("slmlab/paths.py", "import simulators.replay", "Four layers"),  # warehouse importing the replay layer
        ("simulators/metrics.py", "import bench.runner", "Four layers"),  # replay importing measurement
        ("bench/stats.py", "import app.cli.main", "Four layers"),  # measurement importing an interface
        ("simulators/metrics.py", "from slmlab import store", "no database access"),  # replay opening the database
        ("simulators/metrics.py", "import slmlab.traces.importer", "no database access"),  # ... through another module
    ],
)
def test_an_upward_or_database_import_breaks_the_contract(
    tmp_path: Path, module: str, planted: str, contract: str
) -> None:
    root = _copy_tree(tmp_path)
    path = root / module
    path.write_text(path.read_text(encoding="utf-8") + f"\n{planted}  # planted by the test\n", encoding="utf-8")
    result = _lint_imports(root)
    assert result.returncode != 0
    assert f"{contract}" in result.stdout and "BROKEN" in result.stdout


def test_ruff_lint_and_format_find_nothing() -> None:
    ruff = Path(sys.executable).with_name("ruff")
    for command in (["check"], ["format", "--check"]):
        result = subprocess.run(
            [str(ruff), *command, "--no-cache", "."], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, f"ruff {' '.join(command)}:\n{result.stdout}{result.stderr}"


def test_the_library_packages_type_check() -> None:
    """mypy over the warehouse, measurement and replay packages (settings in pyproject.toml) finds nothing."""
    mypy = Path(sys.executable).with_name("mypy")
    result = subprocess.run([str(mypy)], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
