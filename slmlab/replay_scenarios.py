"""Named replay scenarios in the warehouse: the `slmlab simulate` arguments that reproduce a replay with every
assumption set on the Routing replay page, so `slmlab simulate --scenario NAME` runs it again from the CLI."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from slmlab import store
from slmlab.replay_store import NotStored


def save_replay_scenario(
    name: str, argv: list[str], settings: dict[str, object], *, db: str | Path | None = None
) -> None:
    """Store (or replace) a scenario under a name."""
    if not name.strip():
        raise ValueError("a scenario needs a name")
    if "--scenario" in argv:
        raise ValueError("a scenario cannot name another scenario")
    with store.transaction(db) as con:
        con.execute("DELETE FROM replay_scenarios WHERE name = ?", [name.strip()])
        con.execute(
            "INSERT INTO replay_scenarios VALUES (?, ?, ?, ?)",
            [name.strip(), datetime.now(UTC).replace(tzinfo=None), json.dumps(argv), json.dumps(settings, default=str)],
        )


def load_replay_scenario(name: str, db: str | Path | None = None) -> list[str]:
    """The `slmlab simulate` arguments of a saved scenario; the error lists the saved names."""
    with store.connect(db, read_only=True) as con:
        rows = con.execute("SELECT argv FROM replay_scenarios WHERE name = ?", [name]).fetchall()
        names = [r[0] for r in con.execute("SELECT name FROM replay_scenarios ORDER BY name").fetchall()]
    if not rows:
        raise NotStored(f"no replay scenario named '{name}'; saved: {', '.join(names) or 'none'}")
    return [str(a) for a in json.loads(rows[0][0])]


def list_replay_scenarios(db: str | Path | None = None) -> list[dict[str, object]]:
    """Every saved replay scenario, newest first: name, when, and its arguments."""
    with store.connect(db, read_only=True) as con:
        rows = con.execute("SELECT name, saved_at, argv FROM replay_scenarios ORDER BY saved_at DESC").fetchall()
    return [{"name": n, "saved_at": t, "argv": json.loads(a)} for n, t, a in rows]
