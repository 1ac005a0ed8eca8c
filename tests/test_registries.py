"""Registries are the only source of choices, and library calls leave process-wide settings alone."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest

from app.cli.main import build_parser
from app.pages import PAGES
from bench.tasks import TASKS
from simulators.inputs import ReplayError
from simulators.policies.base import param
from simulators.policies.frontier_only import FrontierOnly
from simulators.policies.registry import _convert
from simulators.projection import HARDWARE_PRESETS
from slmlab.models import SHIPPED
from slmlab.paths import PROJECT_ROOT
from slmlab.traces.formats import FORMATS


@dataclass(frozen=True)
class _Typed(FrontierOnly):
    """A policy with one parameter of each kind the converter must read or refuse."""

    name: ClassVar[str] = "typed"
    flag: bool = param(False, "a switch")
    ratio: float = param(0.5, "a share")
    names: tuple[str, ...] = param((), "models")
    limits: frozenset[str] = param(frozenset(), "not settable from text")


@pytest.mark.parametrize(("text", "value"), [("true", True), ("False", False), ("no", False), ("1", True)])
def test_a_bool_parameter_is_parsed_not_taken_as_truthy_text(text: str, value: bool) -> None:
    assert _convert(_Typed, "flag", text) is value


def test_parameters_convert_by_declared_type_and_refuse_what_they_cannot_read() -> None:
    assert _convert(_Typed, "ratio", "0.25") == 0.25
    assert _convert(_Typed, "names", "a, b,") == ("a", "b")
    with pytest.raises(ReplayError, match="flag must be bool, got 'maybe'"):
        _convert(_Typed, "flag", "maybe")
    with pytest.raises(ReplayError, match="limits has type .* cannot be set from text"):
        _convert(_Typed, "limits", "{}")
    with pytest.raises(ReplayError, match="has no parameter 'nope'"):
        _convert(_Typed, "nope", "1")


def _help(*argv: str) -> str:
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    return commands[argv[0]].format_help()


def test_cli_help_lists_what_the_registries_hold() -> None:
    flat = " ".join(_help("import").split())
    assert all(name in flat for name in FORMATS)
    bench, evaluate = " ".join(_help("bench").split()), " ".join(_help("eval").split())
    assert all(key in bench and key in evaluate for key in SHIPPED)
    assert all(task in evaluate for task in TASKS)
    assert all(preset in " ".join(_help("project").split()) for preset in HARDWARE_PRESETS)


def test_every_page_file_is_registered_once_and_every_registered_page_exists() -> None:
    files = {p.name for p in (PROJECT_ROOT / "app" / "app_pages").glob("*.py") if p.name != "__init__.py"}
    registered = [Path(p.file).name for p in PAGES]
    assert sorted(registered) == sorted(files) and len(set(registered)) == len(registered)
    assert PAGES[0].url_path == "/" and all(p.url_path == "/" + Path(p.file).stem for p in PAGES[1:])


def test_process_wide_settings_are_made_only_at_entry_points() -> None:
    """glibc's thresholds are set where a process starts (the CLI, the dashboard, the speed checks), never inside a
    library call such as an import or a replay."""
    callers = sorted(
        str(path.relative_to(PROJECT_ROOT))
        for folder in ("app", "bench", "simulators", "slmlab", "perf")
        for path in (PROJECT_ROOT / folder).rglob("*.py")
        if "keep_freed_memory(" in path.read_text(encoding="utf-8") and path.name != "allocator.py"
    )
    assert callers == ["app/cli/main.py", "app/main.py", "perf/import_speed.py", "perf/replay_speed.py"]
