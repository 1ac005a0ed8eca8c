"""Named projection scenarios kept in DuckDB: save one, list them, read one back, compare several side by side."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from simulators.projection import Projection
from slmlab import store


def save_scenario(name: str, projection: Projection, *, db: str | Path | None = None) -> None:
    """Store (or replace) a projection under a name, with the run it scales and its assumptions."""
    if not name.strip():
        raise ValueError("a scenario needs a name")
    with store.transaction(db) as con:
        con.execute("DELETE FROM scenarios WHERE name = ?", [name])
        con.execute("INSERT INTO scenarios VALUES (?, ?, ?, ?, ?)",
                    [name, datetime.now(timezone.utc).replace(tzinfo=None), projection.basis.run_id,
                     json.dumps(projection.assumptions.as_dict()), json.dumps(projection.as_dict(), default=str)])


def list_scenarios(db: str | Path | None = None) -> list[dict[str, object]]:
    """Every saved scenario, newest first: name, when, the run it scales, its horizon."""
    with store.connect(db, read_only=True) as con:
        rows = con.execute("SELECT name, saved_at, run_id, assumptions FROM scenarios ORDER BY saved_at DESC").fetchall()
    return [{"name": n, "saved_at": t, "run_id": r, "months": json.loads(a)["months"]} for n, t, r, a in rows]


def load_scenario(name: str, db: str | Path | None = None) -> dict[str, object]:
    """A saved scenario's result (as `Projection.as_dict`); the error lists the saved names."""
    with store.connect(db, read_only=True) as con:
        rows = con.execute("SELECT result FROM scenarios WHERE name = ?", [name]).fetchall()
        names = [r[0] for r in con.execute("SELECT name FROM scenarios ORDER BY name").fetchall()]
    if not rows:
        raise ValueError(f"no scenario named '{name}'; saved: {', '.join(names) or 'none'}")
    return json.loads(rows[0][0])


def compare_scenarios(names: list[str], db: str | Path | None = None) -> list[dict[str, object]]:
    """One row per (scenario, policy): total cost over the horizon, break-even month, servers at the end."""
    rows = []
    for name in names:
        result = load_scenario(name, db)
        for policy, p in result["policies"].items():  # type: ignore[union-attr]
            rows.append({"scenario": name, "policy": policy, "months": result["months"], "total_usd": p["total_usd"],
                         "break_even_month": p["break_even_month"], "servers_at_end": p["servers_first_last"][1]})
    return rows
