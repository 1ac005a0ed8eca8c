"""A task CSV without a header row (`slmlab eval --task-csv FILE --no-header`): columns by position."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.tasks import labelled_csv
from bench.tasks.base import TaskError
from slmlab.paths import DATASETS_DIR

BANKING = DATASETS_DIR / "tasks" / "banking77" / "test.csv"


def test_a_headerless_copy_of_a_real_task_file_loads_the_same_examples(tmp_path: Path) -> None:
    lines = BANKING.read_text(encoding="utf-8").splitlines(keepends=True)
    assert lines[0].strip() == "text,category"
    headerless = tmp_path / "banking-no-header.csv"
    headerless.write_text("".join(lines[1:201]), encoding="utf-8")
    with_header = tmp_path / "banking-head.csv"
    with_header.write_text("".join(lines[:201]), encoding="utf-8")
    plain = labelled_csv.load(headerless, "1", "2", no_header=True)
    named = labelled_csv.load(with_header, "text", "category")
    assert [(e.text, e.reference) for e in plain.examples("test")] == [
        (e.text, e.reference) for e in named.examples("test")
    ]
    assert len(plain.examples("test")) == 200  # the first line is data, not a header
    with pytest.raises(TaskError, match="no column '3'"):
        labelled_csv.load(headerless, "3", "2", no_header=True)


def test_the_cli_takes_no_header(tmp_path: Path) -> None:
    from app.cli.eval import _task
    from app.cli.main import build_parser

    lines = BANKING.read_text(encoding="utf-8").splitlines(keepends=True)
    headerless = tmp_path / "b.csv"
    headerless.write_text("".join(lines[1:51]), encoding="utf-8")
    args = build_parser().parse_args(["eval", "--task-csv", str(headerless), "--no-header"])
    assert len(_task(args).examples("test")) == 50
