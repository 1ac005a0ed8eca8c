"""What every subcommand shares: exit codes, progress lines on stderr, number formats."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

EXIT_BAD_INPUT = 2
EXIT_DATABASE = 3

Command = Callable[[str, str], argparse.ArgumentParser]  # registers one subcommand: (name, help) -> its parser


def progress(start: float) -> Callable[[str], None]:
    """A printer of timed stage lines on stderr, so stdout stays clean for --json."""

    def say(stage: str) -> None:
        print(f"[{time.perf_counter() - start:6.1f}s] {stage}", file=sys.stderr, flush=True)

    return say


def fmt(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def mix_text(mix: dict[str, float]) -> str:
    return ", ".join(f"{label} {share:.0%}" for label, share in mix.items()) or "-"


def interval(summary: dict[str, object], digits: int = 1) -> str:
    text = f"{summary['mean']:,.{digits}f}"
    if summary.get("ci95_low") is not None:
        low, high = summary["ci95_low"], summary["ci95_high"]
        text += f"  (95% interval {low:,.{digits}f} to {high:,.{digits}f}, n={summary['n']})"
    return text
