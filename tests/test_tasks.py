"""Task sets: the real banking77 data, the seeded invoice generator, and labelled CSVs a user brings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.tasks import TASKS, TaskError, get_task, labelled_csv
from bench.tasks.invoices import FIELDS


def test_banking77_is_the_published_split_with_77_intents() -> None:
    task = get_task("banking77")
    assert len(task.labels) == 77 and len(task.examples("test")) == 3080 and len(task.examples("train")) == 10003
    assert task.examples("test")[0].text == "How do I locate my card?"
    assert {e.reference for e in task.examples("test")} == set(task.labels)


@pytest.mark.parametrize(
    "answer, label",
    [
        ("card_arrival", "card_arrival"),
        ("Card arrival", "card_arrival"),
        ("card arrival.\nmore", "card_arrival"),
        ("refund not showing up", "Refund_not_showing_up"),
        ("a card arrived", None),
        ("", None),
    ],
)
def test_answers_are_mapped_to_labels_tolerantly(answer: str, label: str | None) -> None:
    assert get_task("banking77").label_for(answer) == label


def test_label_styles_change_the_prompt_not_the_grading() -> None:
    task = get_task("banking77")
    example = task.examples("test")[0]
    assert "card arrival, card linking" in task.prompt(example, [], "words")
    assert "card_arrival, card_linking" in task.prompt(example, [], "names")
    assert task.grade("card arrival", example).correct and task.grade("card_arrival", example).correct
    with pytest.raises(TaskError):
        task.display_labels("shouting")


def test_few_shot_examples_cover_distinct_labels_and_are_seeded() -> None:
    task = get_task("banking77")
    shots = task.few_shot(10, seed=3)
    assert len({s.reference for s in shots}) == 10
    assert shots == task.few_shot(10, seed=3) and shots != task.few_shot(10, seed=4)
    prompt = task.prompt(task.examples("test")[5], shots, "words")
    assert prompt.index("Examples:") < prompt.rindex("Message:")  # the request comes last, after the shared part


def test_invoice_generator_is_seeded_and_its_gold_answer_scores_full_marks() -> None:
    task = get_task("invoices")
    first, again = task.examples("test"), task.examples("test")
    assert first == again and len(first) == 300 and first != task.examples("train")
    gold = json.loads(first[0].reference)
    assert set(gold) == set(FIELDS) and gold["currency"] in ("EUR", "USD", "GBP", "CHF")
    assert gold["total"] == pytest.approx(sum(i["quantity"] * i["unit_price"] for i in gold["line_items"]), abs=0.01)
    grade = task.grade("Here it is: " + first[0].reference, first[0])
    assert grade.correct and grade.valid and grade.score == 1.0


def test_invoice_grading_is_per_field() -> None:
    task = get_task("invoices")
    example = task.examples("test")[0]
    gold = json.loads(example.reference)
    wrong_total = {**gold, "total": gold["total"] + 1, "vendor": gold["vendor"].upper()}
    grade = task.grade(json.dumps(wrong_total), example)
    assert not grade.correct and grade.score == pytest.approx(0.8) and grade.fields["total"] is False
    assert grade.fields["vendor"] is True  # case does not matter for names
    assert task.grade('{"vendor": 3}', example).valid is False
    assert task.grade("no json at all", example).score == 0.0


def test_every_shipped_task_describes_its_source_and_licence() -> None:
    for name in TASKS:
        described = get_task(name).describe()
        assert described["source"] and described["licence"] and described["splits"]


def _csv(tmp_path: Path, text: str, name: str = "tickets.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def test_a_labelled_csv_becomes_a_classification_task(tmp_path: Path) -> None:
    path = _csv(tmp_path, "body,queue\nMy invoice is wrong,billing\nApp crashes,technical\nRefund please,billing\n")
    task = labelled_csv.load(path, "body", "queue")
    assert task.name == "tickets" and task.labels == ("billing", "technical")
    assert [e.reference for e in task.examples("test")] == ["billing", "technical", "billing"]
    assert "billing, technical" in task.prompt(task.examples("test")[0], [])


@pytest.mark.parametrize(
    "content, encoding, message",
    [
        ("body,queue\nhello,billing\n", "utf-8", "holds one label only"),
        ("text,label\nhello,a\n", "utf-8", "no column 'body', 'queue'"),
        ("body,queue\nhello,a\n,b\nok,\n", "utf-8", r"column 'body' is empty in 1 row\(s\), first rows 2"),
        ("body,queue\n", "utf-8", "no data rows"),
        ("body,queue\nCaf\xe9,a\nx,b\n", "latin-1", "not UTF-8 text"),
    ],
)
def test_bad_labelled_csvs_name_the_file_column_and_rows(
    tmp_path: Path, content: str, encoding: str, message: str
) -> None:
    path = _csv(tmp_path, content, encoding=encoding)
    with pytest.raises(TaskError, match=message) as error:
        labelled_csv.load(path, "body", "queue")
    assert str(path) in str(error.value)


def test_unknown_task_lists_the_shipped_ones() -> None:
    with pytest.raises(TaskError, match="banking77, invoices"):
        get_task("nope")
