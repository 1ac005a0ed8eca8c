"""The replay's assumptions as a person sets them on the Routing replay page (quality per model and task, API
latency, deployment rules by data class with one "keep confidential data local" switch, benchmark runs, volume,
servers), turned into exactly what the CLI accepts: files for `--assumptions` and `--overrides`, flags, and the
one `slmlab simulate` command that reproduces the run.

Files are written under the results folder with a name from their content, so the same settings give the same
file and a stored run's configuration keeps pointing at it.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from simulators.catalog import DEFAULT_API_MODELS, DEFAULT_DATA_CLASSES, load_price_catalogue, location_of
from simulators.deployment import DEFAULT_PROFILE, DEFAULT_SLO
from simulators.inputs import DEFAULT_ASSUMPTIONS, ReplayConfig
from simulators.policies.registry import BASELINE, POLICIES
from slmlab.paths import PROJECT_ROOT

KEPT_LOCAL = ("confidential", "regulated")  # the classes the switch keeps on the premises
WRAPPER = "residency-aware"
SETTINGS_DIR = PROJECT_ROOT / "results" / "replay-assumptions"


@dataclass(frozen=True)
class ReplayAssumptions:
    """Everything the page lets a person change about a replay, in the CLI's terms."""

    trace: str
    policies: tuple[str, ...]  # registry names or compositions, as `--policy` takes them
    keep_confidential_local: bool = False
    servers: int = 1  # a fixed fleet per local model, used when size_to is empty
    size_to: str = DEFAULT_SLO  # the SLO each local fleet is sized to ('' : the fixed fleet above)
    hardware: str = DEFAULT_PROFILE  # the hardware profile local models are served on
    volume: float = 1.0
    speed: float = 1.0
    seed: int = 0
    profiles: tuple[str, ...] = ()  # MODEL=RUN[,RUN]: the benchmark runs a local model's speed is read from
    api_ttft_ms: float | None = None  # API latency for every API model; None: the catalogue's assumption
    api_output_tok_s: float | None = None
    quality: dict[str, dict[str, float]] | None = None  # model -> task -> share; None: the shipped file
    params: tuple[str, ...] = ()  # policy.key=value
    extra_overrides: tuple[dict[str, object], ...] = ()  # portfolio overrides as `slmlab portfolio` documents them
    api_models: tuple[str, ...] = field(default=DEFAULT_API_MODELS)
    # deployment rules by data class: per cloud location, the classes its API models may receive (None or a
    # location left out: the catalogue's default, `default_data_rules`)
    data_rules: dict[str, tuple[str, ...]] | None = None

    def policy_spec(self) -> str:
        """`--policy`: with the switch on, every deployable policy is kept to the rules (residency-aware in front)."""
        if not self.keep_confidential_local:
            return ",".join(self.policies)
        wrapped = []
        for spec in self.policies:
            head = spec.split("+", 1)[0]
            reference = head in POLICIES and POLICIES[head].kind == "reference"
            keep = spec == BASELINE or reference or head == WRAPPER
            wrapped.append(spec if keep else f"{WRAPPER}+{spec}")
        return ",".join(wrapped)

    def _ruled_classes(self, location: str) -> tuple[str, ...]:
        """The data classes an API model at `location` may receive under these rules and the switch."""
        allowed = (self.data_rules or {}).get(location, DEFAULT_DATA_CLASSES[location])
        return tuple(c for c in allowed if not (self.keep_confidential_local and c in KEPT_LOCAL))

    def overrides(self) -> list[dict[str, object]]:
        """Portfolio overrides: API latency, and each API model's data classes where the rules or the switch change
        them from the catalogue's default."""
        if not (
            self.data_rules
            or self.keep_confidential_local
            or self.api_ttft_ms is not None
            or self.api_output_tok_s is not None
        ):
            return [dict(e) for e in self.extra_overrides]
        catalogue = load_price_catalogue()
        locations = {k: location_of(k, (catalogue.get(k) or {}).get("litellm_provider"))[0] for k in self.api_models}
        ruled = {k: loc for k, loc in locations.items() if self._ruled_classes(loc) != DEFAULT_DATA_CLASSES[loc]}
        if not (
            ruled or self.keep_confidential_local or self.api_ttft_ms is not None or self.api_output_tok_s is not None
        ):
            return [dict(e) for e in self.extra_overrides]  # rules as the catalogue has them: nothing to override
        entries = []
        for key in self.api_models:
            entry: dict[str, object] = {"name": key}
            if key in ruled or self.keep_confidential_local:
                entry["data_classes"] = list(self._ruled_classes(locations[key]))
            if self.api_ttft_ms is not None:
                entry["ttft_ms"] = float(self.api_ttft_ms)
            if self.api_output_tok_s is not None:
                entry["output_tok_s"] = float(self.api_output_tok_s)
            if len(entry) > 1:  # something to change
                entries.append(entry)
        by_name = {str(e["name"]): e for e in entries}
        for extra in self.extra_overrides:  # the user's own entries win, field by field
            name = str(extra["name"])
            if name in by_name:
                by_name[name].update(extra)
            else:
                entries.append(dict(extra))
        return entries

    def files(self, folder: Path = SETTINGS_DIR) -> tuple[Path | None, Path]:
        """(overrides file or None, quality assumptions file), written once per content."""
        overrides = self.overrides()
        override_path = _write(folder, "overrides", overrides) if overrides else None
        if self.quality is None:
            return override_path, DEFAULT_ASSUMPTIONS
        shipped = json.loads(Path(DEFAULT_ASSUMPTIONS).read_text(encoding="utf-8"))
        if self.quality == shipped.get("models"):
            return override_path, DEFAULT_ASSUMPTIONS
        edited = {**shipped, "about": "quality assumptions edited on the Routing replay page", "models": self.quality}
        return override_path, _write(folder, "quality", edited)

    def config(self, folder: Path = SETTINGS_DIR) -> ReplayConfig:
        """The replay configuration these settings stand for (files written as needed)."""
        overrides, quality = self.files(folder)
        return ReplayConfig(
            trace=self.trace,
            overrides=None if overrides is None else str(overrides),
            assumptions=str(quality),
            servers=self.servers,
            size_to=self.size_to or None,
            profile=self.hardware,
            profiles=self.profiles,
            speed=self.speed,
            volume=self.volume,
            seed=self.seed,
        )

    def argv(self, folder: Path = SETTINGS_DIR) -> list[str]:
        """The `slmlab simulate` arguments that reproduce the replay."""
        config = self.config(folder)
        args = ["simulate", "--trace", self.trace, "--policy", self.policy_spec()]
        if not self.size_to:  # a fixed fleet
            args += ["--servers", str(self.servers)]
        elif self.size_to != DEFAULT_SLO:
            args += ["--size-to", self.size_to]
        if self.hardware != DEFAULT_PROFILE:
            args += ["--hardware", self.hardware]
        for flag, value, default in (
            ("--volume", self.volume, 1.0),
            ("--speed", self.speed, 1.0),
            ("--seed", self.seed, 0),
        ):
            if value != default:
                args += [flag, f"{value:g}"]
        if config.overrides:
            args += ["--overrides", _relative(config.overrides)]
        if config.assumptions and Path(config.assumptions) != Path(DEFAULT_ASSUMPTIONS):
            args += ["--assumptions", _relative(config.assumptions)]
        for profile in self.profiles:
            args += ["--profile", profile]
        for param in self.params:
            args += ["--param", param]
        return args

    def command(self, folder: Path = SETTINGS_DIR) -> str:
        """The one command line that reproduces the replay."""
        return "slmlab " + shlex.join(self.argv(folder))


def default_data_rules(api_models: tuple[str, ...] = DEFAULT_API_MODELS) -> dict[str, tuple[str, ...]]:
    """Per cloud location of these API models, the data classes the catalogue lets its models receive."""
    catalogue = load_price_catalogue()
    locations = sorted({location_of(k, (catalogue.get(k) or {}).get("litellm_provider"))[0] for k in api_models})
    return {location: DEFAULT_DATA_CLASSES[location] for location in locations}


def _write(folder: Path, kind: str, content: object) -> Path:
    text = json.dumps(content, indent=1, sort_keys=True) + "\n"
    path = Path(folder) / f"{kind}-{hashlib.sha256(text.encode()).hexdigest()[:12]}.json"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return path


def _relative(path: str) -> str:
    """A path under the project as the CLI run from the project root takes it."""
    try:
        return str(Path(path).resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


def parse_overrides(text: str) -> tuple[dict[str, object], ...]:
    """Portfolio overrides typed on the page: a JSON list of objects, each with a 'name' (as `--overrides` takes)."""
    if not text.strip():
        return ()
    try:
        entries = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"Portfolio overrides: not valid JSON ({error})") from None
    if not isinstance(entries, list) or not all(isinstance(e, dict) and "name" in e for e in entries):
        raise ValueError("Portfolio overrides: expected a JSON list of objects, each with a 'name'")
    return tuple(entries)


def shipped_quality() -> dict[str, dict[str, float]]:
    """The shipped quality assumptions, model -> task -> share (the page's editable starting point)."""
    return json.loads(Path(DEFAULT_ASSUMPTIONS).read_text(encoding="utf-8"))["models"]
