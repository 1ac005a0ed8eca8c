"""Any labelled CSV a user brings (a text column and a label column) as a classification task."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from bench.tasks.base import ClassificationTask, Example, TaskError

MAX_LABELS = 200


@dataclass(frozen=True)
class LabelledCsv(ClassificationTask):
    """Every row is a test example; few-shot examples come from the same rows and are left out of scoring."""

    rows: tuple[Example, ...] = ()
    trace_format = "labelled-csv"

    def splits(self) -> tuple[str, ...]:
        return ("test",)

    def examples(self, split: str) -> list[Example]:
        if split != "test":
            raise TaskError(f"a task from a CSV file has only the split 'test', not '{split}'")
        return list(self.rows)

    def user_message(self, text: str) -> str:
        return f"Text: {text}\nLabel:"


def task_name_for(path: Path) -> str:
    """A task name from a file name: lower case, letters, digits, dashes."""
    return re.sub(r"[^a-z0-9]+", "-", path.stem.lower()).strip("-") or "csv-task"


def build(name: str, examples: list[Example], origin: str) -> LabelledCsv:
    """The task over these examples, its label set being the distinct labels they use."""
    labels = tuple(sorted({e.reference for e in examples}))
    if len(labels) > MAX_LABELS:
        raise TaskError(f"{origin}: {len(labels)} distinct labels; at most {MAX_LABELS} fit in a prompt")
    return LabelledCsv(
        name=name,
        kind="classification",
        enterprise_task="ticket-classification",
        description=f"Your labelled file {origin}: {len(examples):,} rows, {len(labels)} labels.",
        instructions=(
            "Classify the text. Reply with exactly one label from this list, written exactly as listed, "
            "and nothing else.\nLabels: {labels}"
        ),
        source=origin,
        licence="supplied by the user",
        synthetic=False,
        labels=labels,
        rows=tuple(examples),
    )


def header(path: str | Path) -> list[str]:
    """The column names of a CSV file (for choosing the text and label columns)."""
    try:
        with Path(path).open(newline="", encoding="utf-8-sig") as handle:
            return next(csv.reader(handle), [])
    except (UnicodeDecodeError, csv.Error) as error:
        raise TaskError(f"{path}: not a readable UTF-8 CSV ({error})") from None


def load(
    path: str | Path,
    text_column: str,
    label_column: str,
    name: str | None = None,
    origin: str | None = None,
    *,
    no_header: bool = False,
) -> LabelledCsv:
    """Read and check the file; errors name the file (or `origin`, for uploads), the column and the first rows.
    `no_header`: the first line is data, and the columns are named by their position, '1' first."""
    shown = origin or str(path)
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            if no_header:
                width = len(next(csv.reader(handle), []))
                handle.seek(0)
                reader = csv.DictReader(handle, fieldnames=[str(i) for i in range(1, width + 1)])
            else:
                reader = csv.DictReader(handle)
            header = reader.fieldnames or []
            missing = [c for c in (text_column, label_column) if c not in header]
            if missing:
                raise TaskError(
                    f"{shown}: no column {', '.join(repr(c) for c in missing)}; "
                    f"the header has {', '.join(repr(h) for h in header) or 'nothing'}"
                )
            records = list(reader)
    except FileNotFoundError:
        raise TaskError(f"{shown}: no such file") from None
    except UnicodeDecodeError as error:
        raise TaskError(f"{shown}: not UTF-8 text (byte {error.start}); save it as UTF-8 CSV") from None
    except csv.Error as error:
        raise TaskError(f"{shown}: not a readable CSV ({error})") from None
    if not records:
        raise TaskError(f"{shown}: no data rows")
    for column in (text_column, label_column):
        empty = [row for row, record in enumerate(records, start=1) if not (record.get(column) or "").strip()]
        if empty:
            first = ", ".join(map(str, empty[:5]))
            raise TaskError(f"{shown}: column '{column}' is empty in {len(empty)} row(s), first rows {first}")
    examples = [
        Example(f"row-{row}", record[text_column].strip(), record[label_column].strip(), row)
        for row, record in enumerate(records, start=1)
    ]
    if len({e.reference for e in examples}) < 2:
        raise TaskError(f"{shown}: column '{label_column}' holds one label only; a classification needs two or more")
    return build(name or task_name_for(Path(shown)), examples, shown)
