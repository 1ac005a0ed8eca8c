"""Task sets, one file each; add a task by writing its module and one line in TASKS."""

from __future__ import annotations

from collections.abc import Callable

from bench.tasks import banking77, invoices
from bench.tasks.base import ClassificationTask, Example, Grade, Task, TaskError

TASKS: dict[str, Callable[[], Task]] = {
    "banking77": banking77.load,
    "invoices": invoices.load,
}

__all__ = ["TASKS", "ClassificationTask", "Example", "Grade", "Task", "TaskError", "get_task", "resolve_task"]


def get_task(name: str) -> Task:
    """A shipped task by name; the error lists the known ones."""
    if name not in TASKS:
        raise TaskError(
            f"unknown task '{name}'; shipped tasks: {', '.join(TASKS)} (or bring a labelled CSV with --task-csv FILE)"
        )
    return TASKS[name]()


def resolve_task(name: str, db=None) -> Task:
    """A shipped task, or a CSV task stored earlier in the database (its rows live in the task's trace)."""
    if name in TASKS:
        return TASKS[name]()
    from bench.tasks import labelled_csv
    from slmlab import store
    from slmlab.paths import resolve_db_path

    if resolve_db_path(db).exists():
        with store.connect(db, read_only=True) as con:
            found = con.execute(
                "SELECT t.trace_id, t.source_file FROM traces t WHERE t.name = ? AND t.format = 'labelled-csv'",
                [f"task:{name}:test"],
            ).fetchall()
            if found:
                rows = con.execute(
                    "SELECT request_id, prompt, reference, source_row FROM requests WHERE trace_id = ? ORDER BY seq",
                    [found[0][0]],
                ).fetchall()
                return labelled_csv.build(name, [Example(*row) for row in rows], found[0][1])
    return get_task(name)


def stored_csv_tasks(db=None) -> list[str]:
    """Names of the CSV tasks stored in the database by earlier evaluations."""
    from slmlab import store
    from slmlab.paths import resolve_db_path

    if not resolve_db_path(db).exists():
        return []
    with store.connect(db, read_only=True) as con:
        rows = con.execute("SELECT name FROM traces WHERE format = 'labelled-csv' ORDER BY name").fetchall()
    return [row[0].split(":")[1] for row in rows]
