"""banking77: real customer-support messages of a bank, each labelled with one of 77 intents (PolyAI, CC-BY-4.0)."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from bench.tasks.base import ClassificationTask, Example, TaskError
from slmlab.paths import DATASETS_DIR

FOLDER = DATASETS_DIR / "tasks" / "banking77"


@cache
def _read(path: Path) -> tuple[Example, ...]:
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames != ["text", "category"]:
                raise TaskError(f"{path}: expected the header 'text,category', found {reader.fieldnames}")
            return tuple(
                Example(f"{path.stem}-{row}", record["text"], record["category"], row)
                for row, record in enumerate(reader, start=1)
            )
    except FileNotFoundError:
        raise TaskError(f"{path} is missing: the banking77 task ships in datasets/tasks/banking77/") from None


@dataclass(frozen=True)
class Banking77(ClassificationTask):
    """Intent classification over the published train (10,003) and test (3,080) splits."""

    folder: Path = FOLDER

    def splits(self) -> tuple[str, ...]:
        return ("test", "train")

    def examples(self, split: str) -> list[Example]:
        if split not in self.splits():
            raise TaskError(f"banking77 has the splits test and train, not '{split}'")
        return list(_read(self.folder / f"{split}.csv"))

    def user_message(self, text: str) -> str:
        return f"Message: {text}\nIntent:"


def load(folder: Path = FOLDER) -> Banking77:
    """The task with its 77 labels read from categories.json."""
    labels = tuple(json.loads((folder / "categories.json").read_text(encoding="utf-8")))
    return Banking77(
        name="banking77",
        kind="classification",
        enterprise_task="ticket-classification",
        description="Route a bank customer's message to one of 77 intents (real messages, real labels).",
        instructions=(
            "You sort messages sent to a bank's customer support. Reply with the one intent from this "
            "list that fits the message, written exactly as listed, and nothing else.\n"
            "Intents: {labels}"
        ),
        source="PolyAI task-specific-datasets, banking_data/ (Casanueva et al. 2020)",
        licence="CC-BY-4.0",
        synthetic=False,
        labels=labels,
        folder=folder,
    )
