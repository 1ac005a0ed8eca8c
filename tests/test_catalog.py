"""The portfolio catalogue: prices from the shipped LiteLLM file, locations, residency rules, local service rates
from real benchmark runs, and user overrides, each number with its source."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.cli.main import main
from simulators.catalog import (
    CATALOGUE_VERSION,
    CatalogueError,
    api_model,
    build_portfolio,
    load_price_catalogue,
    local_model,
    location_of,
)
from slmlab import replay_store


def test_api_prices_come_from_the_shipped_catalogue_with_its_version() -> None:
    gpt4o = api_model("gpt-4o")
    assert (gpt4o.input_usd_per_mtok.value, gpt4o.output_usd_per_mtok.value) == pytest.approx((2.5, 10.0))
    assert gpt4o.input_usd_per_mtok.source == "catalogue" and CATALOGUE_VERSION in gpt4o.input_usd_per_mtok.detail
    assert gpt4o.context_window == 128000
    assert gpt4o.cost_usd(1000, 200) == pytest.approx(1000 * 2.5e-6 + 200 * 10e-6)
    assert gpt4o.ttft_ms.source == "assumption" and gpt4o.output_tok_s.source == "assumption"


@pytest.mark.parametrize(
    "key, location",
    [
        ("azure/eu/gpt-4o", "cloud-eu"),
        ("eu.anthropic.claude-3-5-sonnet-20240620-v1:0", "cloud-eu"),
        ("us.amazon.nova-pro-v1:0", "cloud-us"),
        ("gpt-4o", "cloud-us"),
        ("apac.amazon.nova-pro-v1:0", "cloud-other"),
    ],
)
def test_location_is_read_from_the_key_or_stated_as_an_assumption(key: str, location: str) -> None:
    found, why = location_of(key, "provider")
    assert found == location
    assert ("assumption" in why) == (key == "gpt-4o")


@pytest.mark.parametrize(
    "model, data_class, residency, allowed",
    [
        ("gpt-4o", "public", "any", True),
        ("gpt-4o", "confidential", "any", False),
        ("gpt-4o", "public", "eu-only", False),
        ("azure/eu/gpt-4o", "confidential", "eu-only", True),
        ("azure/eu/gpt-4o", "regulated", "any", False),
        ("azure/eu/gpt-4o", "public", "on-premises-only", False),
        ("smollm2-135m", "regulated", "on-premises-only", True),
    ],
)
def test_residency_and_data_class_rules(model: str, data_class: str, residency: str, allowed: bool) -> None:
    portfolio = build_portfolio(api=("gpt-4o", "azure/eu/gpt-4o"))
    assert portfolio.get(model).accepts(data_class, residency) is allowed


def test_unknown_api_model_suggests_close_keys() -> None:
    with pytest.raises(CatalogueError, match="similar keys: .*gpt-4o-mini"):
        api_model("gpt-4o-min")


@pytest.mark.model
def test_local_rates_are_the_default_profile_until_a_benchmark_runs_here(db: Path, capsys, monkeypatch) -> None:
    with replay_store.reader(db) as warehouse:
        before = local_model("smollm2-135m", warehouse)
    assert before.output_tok_s.source == "assumption" and before.output_tok_s.value == 113.0
    # a run on a busy machine is stored flagged and never becomes the local speed (bench.contention decides)
    monkeypatch.setattr("bench.contention.judge", lambda *args, **kwargs: ("test: busy",))
    assert main(["bench", "--model", "smollm2-135m", "--test", "pp16+tg8", "--reps", "1", "--threads", "1"]) == 0
    with replay_store.reader(db) as warehouse:
        assert local_model("smollm2-135m", warehouse).output_tok_s.source == "assumption"
    monkeypatch.setattr("bench.contention.judge", lambda *args, **kwargs: ())  # an idle machine
    assert main(["bench", "--model", "smollm2-135m", "--test", "pp16+tg8", "--reps", "1", "--threads", "1"]) == 0
    capsys.readouterr()
    with replay_store.reader(db) as warehouse:
        after = local_model("smollm2-135m", warehouse)
    assert after.output_tok_s.source == "measured" and "bench run 2" in after.output_tok_s.detail
    assert "newest uncontended run" in after.output_tok_s.detail
    assert after.output_tok_s.value != 113.0 and after.cost_usd(1000, 1000) == 0.0


def test_overrides_replace_fields_and_say_so(tmp_path: Path) -> None:
    path = tmp_path / "overrides.json"
    path.write_text(
        json.dumps(
            [
                {"name": "gpt-4o", "location": "cloud-eu", "ttft_ms": 350, "output_usd_per_mtok": 9.0},
                {"name": "gpt-4o-mini", "data_classes": ["public"]},
                {"name": "mistral/mistral-large-latest"},
            ]
        )
    )
    portfolio = build_portfolio(api=("gpt-4o", "gpt-4o-mini"), overrides=path)
    gpt4o = portfolio.get("gpt-4o")
    assert gpt4o.location == "cloud-eu" and "confidential" in gpt4o.data_classes
    assert gpt4o.ttft_ms.value == 350 and gpt4o.ttft_ms.source == "override" and str(path) in gpt4o.ttft_ms.detail
    assert gpt4o.input_usd_per_mtok.source == "catalogue"  # untouched fields keep their source
    assert portfolio.get("gpt-4o-mini").data_classes == ("public",)
    assert portfolio.get("mistral/mistral-large-latest").kind == "api"


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"name": "gpt-4o", "speed": 3}, "cannot override speed"),
        ({"name": "gpt-4o", "location": "moon"}, "location must be one of"),
        ({"name": "gpt-4o", "ttft_ms": -1}, "ttft_ms must be a number >= 0"),
        ({"name": "gpt-4o", "data_classes": ["secret"]}, "data_classes must be a list"),
    ],
)
def test_bad_overrides_name_the_file_entry_and_field(tmp_path: Path, entry: dict, message: str) -> None:
    path = tmp_path / "o.json"
    path.write_text(json.dumps([entry]))
    with pytest.raises(CatalogueError, match=message) as error:
        build_portfolio(api=("gpt-4o",), overrides=path)
    assert f"{path} entry 1" in str(error.value)


def test_a_broken_catalogue_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    path.write_text("{not json")
    with pytest.raises(CatalogueError, match="prices.json: not valid JSON"):
        load_price_catalogue(path)


@pytest.mark.model
def test_portfolio_command_lists_every_figure_with_its_source(capsys) -> None:
    assert main(["portfolio", "--api", "gpt-4o", "--json"]) == 0
    listed = {m["name"]: m for m in json.loads(capsys.readouterr().out)["models"]}
    assert set(listed) == {"smollm2-135m", "gemma3-270m", "gpt-4o"}
    assert listed["gpt-4o"]["input_usd_per_mtok"] == {
        "value": 2.5,
        "source": "catalogue",
        "detail": f"{CATALOGUE_VERSION}, key 'gpt-4o'",
    }
    assert main(["portfolio", "--api", "no-such-model"]) == 2
    assert "not in the price catalogue" in capsys.readouterr().err
