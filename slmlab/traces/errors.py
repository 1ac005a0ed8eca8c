"""One error type for bad trace input, so the CLI and the dashboard say the same thing and exit 2."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

SHOWN_OFFENDERS = 5


class TraceInputError(ValueError):
    """The file cannot be imported as given; names the file, the column and the first offending rows."""

    def __init__(
        self,
        file: str | Path,
        problem: str,
        *,
        column: str | None = None,
        offenders: Sequence[tuple[int, str]] = (),
        total: int | None = None,
        hint: str | None = None,
    ) -> None:
        self.file = str(file)
        self.problem = problem
        self.column = column
        self.offenders = list(offenders)[:SHOWN_OFFENDERS]
        self.total = total if total is not None else len(offenders)
        self.hint = hint
        super().__init__(self.render())

    def render(self) -> str:
        """Human-readable message: file, column, problem, first rows and how many in all."""
        where = f"{self.file}: column '{self.column}'" if self.column else self.file
        text = f"{where}: {self.problem}"
        if self.offenders:
            shown = "; ".join(f"row {row}: {detail}" for row, detail in self.offenders)
            more = f" (first {len(self.offenders)} of {self.total} rows)" if self.total > len(self.offenders) else ""
            text += f" in {self.total} row(s){more}: {shown}"
        if self.hint:
            text += f". {self.hint}"
        return text

    def as_dict(self) -> dict[str, object]:
        """Machine-readable form for `--json` output."""
        return {
            "file": self.file,
            "column": self.column,
            "problem": self.problem,
            "offending_rows": [{"row": row, "detail": detail} for row, detail in self.offenders],
            "offending_row_count": self.total,
            "hint": self.hint,
            "message": self.render(),
        }


def on_upload(filename: str, content: bytes, work: Callable[[Path], T]) -> T:
    """Run `work` on bytes the dashboard received, saved under the upload's own name in a temporary folder; an
    error names the uploaded file, not the temporary copy."""
    safe_name = Path(filename).name or "upload.csv"
    with tempfile.TemporaryDirectory(prefix="slmlab-upload-") as folder:
        path = Path(folder) / safe_name
        path.write_bytes(content)
        try:
            return work(path)
        except TraceInputError as error:
            raise TraceInputError(
                safe_name,
                error.problem,
                column=error.column,
                offenders=error.offenders,
                total=error.total,
                hint=error.hint,
            ) from error
