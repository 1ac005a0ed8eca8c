"""How slmlab writes a figure for people: money, shares, durations (h / min / s / ms), counts, and provenance
badges; and the one table builder that the CLI tables, the pages, the downloads and the reports render through.

Every function takes a plain number (None or NaN print as "n/a"), so the same figure reads the same everywhere.
"""

from __future__ import annotations

import csv
import html
import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

Source = Literal["measured", "recorded", "catalogue", "assumption"]
SOURCES: tuple[Source, ...] = ("measured", "recorded", "catalogue", "assumption")
MISSING = "n/a"


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def _figure(value: float | None) -> float | None:
    """The value as a float; None when it is missing (None, NaN or infinite)."""
    return None if value is None or (isinstance(value, float) and not math.isfinite(value)) else float(value)


def money(value: float | None, cents: bool | None = None) -> str:
    """'$1,234' (cents below $100 or when asked: '$5.30'); negative as '-$12'."""
    amount = _figure(value)
    if amount is None:
        return MISSING
    show_cents = abs(amount) < 100 if cents is None else cents
    text = f"${abs(amount):,.2f}" if show_cents else f"${abs(amount):,.0f}"
    return ("-" if amount < 0 and text.strip("$0.,") else "") + text


def share(value: float | None, digits: int = 1) -> str:
    """A share of 1 as a percentage: 0.8979 -> '89.8%'."""
    v = _figure(value)
    return MISSING if v is None else f"{v * 100:,.{digits}f}%"


def points(value: float | None, digits: int = 1) -> str:
    """A difference of two shares in percentage points: -0.0399 -> '-4.0 points'."""
    v = _figure(value)
    return MISSING if v is None else f"{v * 100:+,.{digits}f} points"


def ratio(value: float | None) -> str:
    """A multiple: 0.6361 -> '0.64x'."""
    v = _figure(value)
    return MISSING if v is None else f"{v:,.2f}x"


def count(value: float | None) -> str:
    """A whole number with thousands separators."""
    v = _figure(value)
    return MISSING if v is None else f"{round(v):,}"


def duration(seconds: float | None, signed: bool = False) -> str:
    """Seconds scaled to the unit a person reads: '850 ms', '4.24 s', '12.5 min', '26.7 h'."""
    s = _figure(seconds)
    if s is None:
        return MISSING
    sign = ("+" if s > 0 else "-" if s < 0 else "") if signed else ("-" if s < 0 else "")
    a = abs(s)
    if a < 1:
        text = f"{a * 1000:,.0f} ms"
    elif a < 120:
        text = f"{a:,.2f} s"
    elif a < 2 * 3600:
        text = f"{a / 60:,.1f} min"
    else:
        text = f"{a / 3600:,.1f} h"
    return sign + text


def duration_ms(milliseconds: float | None, signed: bool = False) -> str:
    """`duration` of a figure stored in milliseconds."""
    ms = _figure(milliseconds)
    return MISSING if ms is None else duration(ms / 1000, signed)


def counts(values: dict[str, int] | None) -> str:
    """'assumption 19,366, measured 12' from a {name: count} dict."""
    return ", ".join(f"{k} {count(v)}" for k, v in (values or {}).items()) or "-"


def number(value: float | None, digits: int = 2) -> str:
    """A plain figure rounded for reading (never a long float)."""
    v = _figure(value)
    if v is None:
        return MISSING
    return f"{v:,.0f}" if v == round(v) and abs(v) >= 1 else f"{v:,.{digits}f}" if abs(v) >= 0.01 else f"{v:.3g}"


def text(value: object) -> str:
    """Any value as a person reads it: None as n/a, floats rounded, dicts as 'k v, k v'."""
    if _missing(value):
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return number(value)
    if isinstance(value, int):
        return count(value)
    if isinstance(value, dict):
        return ", ".join(f"{k} {text(v)}" for k, v in value.items()) or "-"
    if isinstance(value, (list, tuple)):
        return ", ".join(text(v) for v in value) or "-"
    return str(value)


def source_of(counts_by_source: dict[str, int] | None) -> Source:
    """The weakest source behind a figure: assumption if any part is assumed, else catalogue, recorded, measured."""
    present = {k for k, v in (counts_by_source or {}).items() if v}
    for kind in ("assumption", "catalogue", "recorded", "measured"):
        if kind in present:
            return kind
    return "assumption"


BADGE_COLOURS: dict[str, str] = {"measured": "green", "recorded": "blue", "catalogue": "violet", "assumption": "orange"}


def badge(source: str) -> str:
    """A Streamlit markdown badge naming a figure's source: ':orange-badge[assumption]'."""
    return f":{BADGE_COLOURS.get(source, 'gray')}-badge[{source}]"


# --- the one table builder -------------------------------------------------------------------------------------

Kind = Literal["text", "money", "share", "points", "ratio", "count", "duration_ms", "duration_s", "number"]
# Table cells are raw figures (object); each formatter takes the number its kind holds and prints None/NaN as
# "n/a", so the value type is Any rather than a union every formatter would have to accept.
_FORMATS: dict[str, Callable[[Any], str]] = {
    "text": text,
    "money": money,
    "share": share,
    "points": points,
    "ratio": ratio,
    "count": count,
    "duration_ms": duration_ms,
    "duration_s": duration,
    "number": number,
}


@dataclass(frozen=True)
class Column:
    """One column of a table: the key in each row, the heading people read, and how its values are written."""

    key: str
    heading: str
    kind: Kind = "text"
    help: str = ""

    def format(self, value: object) -> str:
        return _FORMATS[self.kind](value)


@dataclass(frozen=True)
class Table:
    """Rows of raw figures with their columns; rendered as text (CLI), strings (pages, CSV) or HTML (reports)."""

    columns: tuple[Column, ...]
    rows: tuple[dict[str, object], ...]

    def formatted(self) -> list[dict[str, str]]:
        """Every cell written for people, keyed by heading (a page's dataframe, a report's table)."""
        return [{c.heading: c.format(row.get(c.key)) for c in self.columns} for row in self.rows]

    def raw(self) -> list[dict[str, object]]:
        """Every cell as the figure itself, keyed by the column key (JSON, Parquet)."""
        return [{c.key: row.get(c.key) for c in self.columns} for row in self.rows]

    def text(self, width: int = 34) -> str:
        """Aligned plain text for a terminal: first column left, the rest right."""
        cells = [[c.heading for c in self.columns], *[list(r.values()) for r in self.formatted()]]
        widths = [max(len(row[i]) for row in cells) for i in range(len(self.columns))]
        widths[0] = min(widths[0], width)
        return "\n".join(
            "  ".join(
                cell[: widths[0]].ljust(widths[0]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)
            )
            for row in cells
        )

    def csv(self) -> str:
        """The raw figures as CSV under the column keys (a download that a spreadsheet can sum)."""
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=[c.key for c in self.columns], lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: ("" if _missing(v) else v) for k, v in row.items()} for row in self.raw())
        return out.getvalue()

    def html(self) -> str:
        """An HTML table (escaped), numbers right-aligned."""
        head = "".join(f"<th>{html.escape(c.heading)}</th>" for c in self.columns)
        body = "".join(
            "<tr>"
            + "".join(
                f'<td class="{"l" if c.kind == "text" else "r"}">{html.escape(row[c.heading])}</td>'
                for c in self.columns
            )
            + "</tr>"
            for row in self.formatted()
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def table(rows: Sequence[dict[str, object]], columns: Sequence[Column]) -> Table:
    """The table of `rows` under `columns`."""
    return Table(tuple(columns), tuple(rows))
