"""Saved projection scenarios side by side (the warehouse keeps them: `slmlab.replay_store.save_scenario`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def compare_scenarios(results: Mapping[str, Mapping[str, Any]]) -> list[dict[str, object]]:
    """One row per (scenario, policy) of saved results by name: total cost over the horizon, break-even month,
    servers at the end."""
    rows = []
    for name, result in results.items():
        for policy, p in result["policies"].items():
            rows.append(
                {
                    "scenario": name,
                    "policy": policy,
                    "months": result["months"],
                    "total_usd": p["total_usd"],
                    "break_even_month": p["break_even_month"],
                    "servers_at_end": p["servers_first_last"][1],
                }
            )
    return rows
