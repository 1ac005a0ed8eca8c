"""The user's hardware profiles in the warehouse: machines whose service curves were imported (`slmlab bench
import`), with the capex, power, memory and slots that price and size them (`slmlab profiles add`). The shipped
profiles stay in datasets/assumptions/serving_profiles.json; `simulators.deployment` checks and merges both."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from slmlab import store


def stored_profiles(db: str | Path | None = None) -> dict[str, dict]:
    """Every stored profile by name, as a serving_profiles.json entry (read as a replay reads them)."""
    from slmlab.replay_store import reader

    with reader(db) as warehouse:
        return warehouse.hardware_profiles()


def save_profile(name: str, entry: dict, *, db: str | Path | None = None, replace: bool = False) -> None:
    """Store one checked profile entry; an existing name is refused unless `replace`."""
    with store.transaction(db) as con:
        exists = con.execute("SELECT count(*) FROM hardware_profiles WHERE name = ?", [name]).fetchall()[0][0]
        if exists and not replace:
            raise ValueError(f"hardware profile '{name}' is already stored (pass --replace to overwrite it)")
        con.execute("DELETE FROM hardware_profiles WHERE name = ?", [name])
        con.execute(
            "INSERT INTO hardware_profiles VALUES (?, ?, ?)",
            [name, datetime.now(UTC).replace(tzinfo=None), json.dumps(entry)],
        )


def remove_profile(name: str, *, db: str | Path | None = None) -> None:
    """Forget one stored profile (its imported curves stay)."""
    with store.transaction(db) as con:
        if not con.execute("SELECT count(*) FROM hardware_profiles WHERE name = ?", [name]).fetchall()[0][0]:
            raise ValueError(f"no stored hardware profile '{name}' (shipped profiles cannot be removed)")
        con.execute("DELETE FROM hardware_profiles WHERE name = ?", [name])
