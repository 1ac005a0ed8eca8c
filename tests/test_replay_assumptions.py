"""The Routing replay page's settings in the CLI's terms: files, the policy spec, the one reproducing command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.cli.main import build_parser
from app.replay_assumptions import ReplayAssumptions, default_data_rules, parse_overrides, shipped_quality
from simulators.inputs import DEFAULT_ASSUMPTIONS


def test_keeping_confidential_data_local_wraps_every_deployable_policy_and_closes_the_api_models(
    tmp_path: Path,
) -> None:
    settings = ReplayAssumptions(
        trace="t",
        policies=("frontier-only", "cascade", "oracle", "residency-aware+random"),
        keep_confidential_local=True,
    )
    assert settings.policy_spec() == "frontier-only,residency-aware+cascade,oracle,residency-aware+random"
    overrides = {o["name"]: o["data_classes"] for o in settings.overrides()}
    assert overrides == {
        "gpt-4o": ["public", "internal"],  # cloud-us: confidential was never allowed there
        "gpt-4o-mini": ["public", "internal"],
        "azure/eu/gpt-4o": ["public", "internal"],  # cloud-eu would take confidential data by default
    }
    assert ReplayAssumptions(trace="t", policies=("cascade",)).overrides() == []


def test_page_overrides_win_field_by_field_and_bad_json_says_so() -> None:
    extra = parse_overrides('[{"name": "gpt-4o", "ttft_ms": 900}, {"name": "gpt-4.1", "input_usd_per_mtok": 2}]')
    settings = ReplayAssumptions(trace="t", policies=("cascade",), api_ttft_ms=500.0, extra_overrides=extra)
    by_name = {o["name"]: o for o in settings.overrides()}
    assert by_name["gpt-4o"]["ttft_ms"] == 900 and by_name["gpt-4o-mini"]["ttft_ms"] == 500.0
    assert by_name["gpt-4.1"] == {"name": "gpt-4.1", "input_usd_per_mtok": 2}
    with pytest.raises(ValueError, match="not valid JSON"):
        parse_overrides("[{name: 1}]")
    with pytest.raises(ValueError, match="each with a 'name'"):
        parse_overrides('[{"ttft_ms": 1}]')


def test_the_command_is_one_the_cli_parses_back_to_the_same_settings(tmp_path: Path) -> None:
    quality = shipped_quality()
    quality["gemma3-270m"]["open-ended"] = 0.5
    settings = ReplayAssumptions(
        trace="t",
        policies=("frontier-only", "cascade"),
        keep_confidential_local=True,
        servers=2,
        size_to="",
        volume=2.0,
        profiles=("gemma3-270m=3",),
        quality=quality,
        params=("cascade.threshold=0.7",),
    )
    argv = settings.argv(tmp_path)
    args = build_parser().parse_args(argv)
    assert (args.trace, args.policy, args.servers, args.volume) == ("t", "frontier-only,residency-aware+cascade", 2, 2)
    assert args.profile == ["gemma3-270m=3"] and args.param == ["cascade.threshold=0.7"]
    written = json.loads(Path(args.assumptions).read_text())["models"]
    assert written["gemma3-270m"]["open-ended"] == 0.5 and Path(args.assumptions) != DEFAULT_ASSUMPTIONS
    assert settings.argv(tmp_path) == argv  # the same settings name the same files
    unchanged = ReplayAssumptions(trace="t", policies=("cascade",), quality=shipped_quality())
    assert "--assumptions" not in unchanged.argv(tmp_path)  # the shipped quality is not copied
    # local fleets: sized to the default SLO unless the page asks for another SLO or a fixed fleet
    assert "--servers" not in unchanged.argv(tmp_path) and "--size-to" not in unchanged.argv(tmp_path)
    fixed = ReplayAssumptions(trace="t", policies=("cascade",), servers=3, size_to="", quality=shipped_quality())
    parsed = build_parser().parse_args(fixed.argv(tmp_path))
    assert parsed.servers == 3 and parsed.size_to is None and fixed.config(tmp_path).size_to is None
    slower = ReplayAssumptions(trace="t", policies=("cascade",), size_to="p95=9s", quality=shipped_quality())
    assert build_parser().parse_args(slower.argv(tmp_path)).size_to == "p95=9s" == slower.config(tmp_path).size_to


def test_deployment_rules_by_data_class_close_one_location_and_combine_with_the_switch() -> None:
    rules = default_data_rules()
    assert rules == {"cloud-eu": ("public", "internal", "confidential"), "cloud-us": ("public", "internal")}
    assert ReplayAssumptions(trace="t", policies=("cascade",), data_rules=rules).overrides() == []  # as catalogued
    us_public_only = {**rules, "cloud-us": ("public",)}
    settings = ReplayAssumptions(trace="t", policies=("cascade",), data_rules=us_public_only)
    assert {o["name"]: o["data_classes"] for o in settings.overrides()} == {
        "gpt-4o": ["public"],
        "gpt-4o-mini": ["public"],
    }
    both = ReplayAssumptions(trace="t", policies=("cascade",), data_rules=us_public_only, keep_confidential_local=True)
    assert {o["name"]: o["data_classes"] for o in both.overrides()} == {
        "gpt-4o": ["public"],
        "gpt-4o-mini": ["public"],
        "azure/eu/gpt-4o": ["public", "internal"],  # the switch takes confidential from the EU region too
    }
