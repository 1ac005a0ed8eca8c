"""The README documents what the code registers, and CI runs the README's test command verbatim."""

from __future__ import annotations

import re

import pytest

from app.cli.main import build_parser
from bench.tasks import TASKS
from simulators.policies.registry import POLICIES
from slmlab.paths import PROJECT_ROOT
from slmlab.traces.formats import FORMATS
from slmlab.traces.labelling import PRESETS

README = (PROJECT_ROOT / "README.md").read_text()


def _subcommands() -> list[str]:
    parser = build_parser()
    (action,) = [a for a in parser._actions if a.dest == "command"]
    return list(action.choices)


@pytest.mark.parametrize("name", list(FORMATS))
def test_every_registered_format_is_documented(name: str) -> None:
    assert f"| `{name}` |" in README


@pytest.mark.parametrize("command", _subcommands())
def test_every_cli_subcommand_is_documented(command: str) -> None:
    assert f"`slmlab {command}" in README


@pytest.mark.parametrize("preset", list(PRESETS))
def test_every_label_mix_preset_is_documented(preset: str) -> None:
    assert f"`{preset}`" in README


def test_readme_opens_with_exactly_two_commands_and_ci_runs_the_second() -> None:
    blocks = re.findall(r"```bash\n(.*?)\n```", README.split("---")[0], flags=re.S)
    assert len(blocks) == 2 and all("\n" not in block for block in blocks)
    assert "dashboard" in blocks[0] and "pytest" in blocks[1]
    ci = (PROJECT_ROOT / ".ci" / "run").read_text()
    assert blocks[1] in ci.splitlines()


@pytest.mark.parametrize("task", list(TASKS))
def test_every_registered_task_is_documented(task: str) -> None:
    assert f"| `{task}` |" in README


@pytest.mark.parametrize("policy", list(POLICIES))
def test_every_registered_policy_is_documented(policy: str) -> None:
    assert f"| `{policy}` |" in README
