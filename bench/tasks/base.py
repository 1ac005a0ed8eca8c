"""What a task set is: labelled examples, the instructions a model gets, and the scorer that grades its answer."""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field
from typing import Literal

from slmlab.traces.labelling import TASKS


class TaskError(ValueError):
    """A task set cannot be loaded or built; the message names the file, column or rows."""


@dataclass(frozen=True)
class Example:
    """One labelled input: `reference` is the gold label, or the gold fields as JSON for extraction."""

    example_id: str
    text: str
    reference: str
    row: int  # 1-based data row in the source file, or the generator's index + 1


@dataclass(frozen=True)
class Grade:
    """How an answer scored: valid means it parsed as a label of the set or as JSON matching the schema."""

    correct: bool
    score: float  # 0..1; the share of fields right for extraction
    valid: bool
    fields: dict[str, bool] = field(default_factory=dict)


LABEL_STYLES = ("names", "words")  # labels as published (card_arrival), or as plain words (card arrival)


def _normalise_label(text: str) -> str:
    return re.sub(r"[\s\-]+", "_", text.strip().strip(".\"'`").lower())


@dataclass(frozen=True)
class Task:
    """A task set: the prompt parts shared by every request, and how one answer is graded."""

    name: str
    kind: Literal["classification", "extraction"]
    enterprise_task: str  # one of the labeller's task vocabulary, so a routing replay can treat it like traffic
    description: str
    instructions: str
    source: str
    licence: str
    synthetic: bool

    def __post_init__(self) -> None:
        if self.enterprise_task not in TASKS:
            raise TaskError(f"task '{self.name}': enterprise task must be one of {', '.join(TASKS)}")

    trace_format = "task"  # the format its requests are stored under; user CSV tasks use "labelled-csv"

    def json_schema(self) -> dict[str, object] | None:
        """The JSON schema answers must follow (extraction tasks), else None."""
        return None

    def splits(self) -> tuple[str, ...]:
        """Names of the splits this task has."""
        raise NotImplementedError

    def examples(self, split: str) -> list[Example]:
        """Every example of a split, in source order."""
        raise NotImplementedError

    def grade(self, answer: str, example: Example) -> Grade:
        """Grade a model's raw answer text against the example's reference."""
        raise NotImplementedError

    def user_message(self, text: str) -> str:
        """The part of the prompt that differs per request (kept last so the shared prefix is reusable)."""
        return f"Input:\n{text}\nAnswer:"

    def instructions_for(self, label_style: str) -> str:
        """The shared instructions as the model reads them."""
        return self.instructions

    def shown_answer(self, reference: str, label_style: str) -> str:
        """How a reference answer is written in worked examples."""
        return reference

    def prompt(self, example: Example, shots: list[Example], label_style: str = "names") -> str:
        """Instructions, then worked examples, then the request: everything before the request is shared."""
        parts = [self.instructions_for(label_style)]
        if shots:
            parts.append("Examples:")
            parts.extend(f"{self.user_message(s.text)} {self.shown_answer(s.reference, label_style)}" for s in shots)
        parts.append(self.user_message(example.text))
        return "\n\n".join(parts)

    def shot_pool(self) -> list[Example]:
        """Where worked examples come from: the training split, or the only split when there is none."""
        return self.examples("train" if "train" in self.splits() else self.splits()[0])

    def few_shot(self, count: int, seed: int) -> list[Example]:
        """`count` seeded examples from the shot pool."""
        if count <= 0:
            return []
        pool = self.shot_pool()
        return random.Random(seed).sample(pool, min(count, len(pool)))

    def describe(self) -> dict[str, object]:
        """For `slmlab eval --list` and the dashboard."""
        return {
            "name": self.name,
            "kind": self.kind,
            "enterprise_task": self.enterprise_task,
            "description": self.description,
            "splits": list(self.splits()),
            "source": self.source,
            "licence": self.licence,
            "synthetic": self.synthetic,
        }


@dataclass(frozen=True)
class ClassificationTask(Task):
    """Pick one label from a fixed set; the scorer is exact match after normalising case and separators."""

    labels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(set(self.labels)) < 2:
            raise TaskError(f"task '{self.name}' needs at least two distinct labels")
        forms = [_normalise_label(label) for label in self.labels]
        if len(set(forms)) < len(forms):
            clash = sorted({f for f in forms if forms.count(f) > 1})
            raise TaskError(f"task '{self.name}': labels differ only in case or separators ({', '.join(clash)})")

    def display_labels(self, label_style: str) -> tuple[str, ...]:
        """The label set as the model sees and writes it."""
        if label_style not in LABEL_STYLES:
            raise TaskError(f"label style must be one of {', '.join(LABEL_STYLES)}, not '{label_style}'")
        if label_style == "names":
            return self.labels
        return tuple(" ".join(re.split(r"[_\s]+", label.strip())).lower() for label in self.labels)

    def shown_answer(self, reference: str, label_style: str) -> str:
        return self.display_labels(label_style)[self.labels.index(reference)] if reference in self.labels else reference

    def instructions_for(self, label_style: str) -> str:
        """The instructions with the label list (their "{labels}" placeholder) written in the chosen style."""
        return self.instructions.replace("{labels}", ", ".join(self.display_labels(label_style)))

    def label_for(self, answer: str) -> str | None:
        """The label an answer names, tolerating case, spaces for underscores and a trailing full stop."""
        wanted = _normalise_label(answer.splitlines()[0] if answer.strip() else "")
        return self._by_normal_form().get(wanted)

    def _by_normal_form(self) -> dict[str, str]:
        return {_normalise_label(label): label for label in self.labels}

    def grade(self, answer: str, example: Example) -> Grade:
        """Right when the answer names the reference label; invalid when it names no label of the set."""
        label = self.label_for(answer)
        right = label == example.reference
        return Grade(correct=right, score=float(right), valid=label is not None)

    def few_shot(self, count: int, seed: int) -> list[Example]:
        """One example each of `count` different labels (seeded), so shots show the label space, not one class."""
        if count <= 0:
            return []
        pool = self.shot_pool()
        by_label: dict[str, list[Example]] = {}
        for example in pool:
            by_label.setdefault(example.reference, []).append(example)
        rng = random.Random(seed)
        labels = sorted(by_label)
        rng.shuffle(labels)
        chosen = [rng.choice(by_label[label]) for label in labels[:count]]
        while len(chosen) < min(count, len(pool)):  # more shots than labels: top up from the whole pool
            extra = rng.choice(pool)
            if extra not in chosen:
                chosen.append(extra)
        return chosen


def parse_json_object(answer: str) -> dict | None:
    """The first JSON object in an answer (models sometimes wrap it in prose or code fences), or None."""
    start = answer.find("{")
    if start < 0:
        return None
    try:
        value, _ = json.JSONDecoder().raw_decode(answer[start:])
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None
