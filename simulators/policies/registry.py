"""Every routing policy by name: one file per policy, one line here. `parse_policy` builds compositions such as
'residency-aware+cascade' (wrappers first, separated by '+') and applies `policy.key=value` parameters."""

from __future__ import annotations

import typing
from collections.abc import Callable
from dataclasses import fields, replace

from simulators.inputs import ReplayError
from simulators.policies.base import Policy
from simulators.policies.budget import Budget
from simulators.policies.cascade import Cascade
from simulators.policies.frontier_only import FrontierOnly
from simulators.policies.learned import Learned
from simulators.policies.oracle import Oracle
from simulators.policies.random_split import RandomSplit
from simulators.policies.residency import ResidencyAware
from simulators.policies.slo_overflow import SloOverflow
from simulators.policies.small_only import SmallOnly
from simulators.policies.static_map import StaticMap

POLICIES: dict[str, type[Policy]] = {
    cls.name: cls
    for cls in (
        FrontierOnly,
        SmallOnly,
        RandomSplit,
        StaticMap,
        Cascade,
        ResidencyAware,
        Budget,
        SloOverflow,
        Learned,
        Oracle,
    )
}
BASELINE = "frontier-only"


def is_wrapper(cls: type[Policy]) -> bool:
    """A wrapper has an `inner` policy (residency-aware, slo-overflow)."""
    return any(f.name == "inner" for f in fields(cls))


def _convert(cls: type[Policy], key: str, text: str) -> object:
    """A parameter value from its text, by the field's declared type."""
    names = {f.name: f for f in fields(cls) if f.name != "inner"}
    if key not in names:
        raise ReplayError(f"policy '{cls.name}' has no parameter '{key}'; it has: {', '.join(names) or 'none'}")
    kind = typing.get_type_hints(cls)[key]
    convert = _CONVERTERS.get(kind)
    if convert is None:
        raise ReplayError(f"policy '{cls.name}': parameter {key} has type {kind}, which cannot be set from text")
    try:
        return convert(text)
    except ValueError:
        raise ReplayError(
            f"policy '{cls.name}': {key} must be {getattr(kind, '__name__', kind)}, got '{text}'"
        ) from None


def _bool(text: str) -> bool:
    """'true'/'false' (also yes/no, 1/0): never the truthiness of the text itself."""
    value = text.strip().lower()
    if value in ("true", "yes", "1", "on"):
        return True
    if value in ("false", "no", "0", "off"):
        return False
    raise ValueError(text)


_CONVERTERS: dict[object, Callable[[str], object]] = {  # a parameter's declared type -> how its text is read
    float: float,
    int: int,
    bool: _bool,
    str: str,
    tuple[float, ...]: lambda text: tuple(float(v) for v in text.split(",") if v.strip()),
    tuple[str, ...]: lambda text: tuple(v.strip() for v in text.split(",") if v.strip()),
}


def parse_params(items: list[str]) -> dict[str, dict[str, str]]:
    """`policy.key=value` strings as {policy: {key: value}}; the error names the bad item."""
    params: dict[str, dict[str, str]] = {}
    for item in items:
        head, eq, value = item.partition("=")
        policy, dot, key = head.partition(".")
        if not (eq and dot and policy and key):
            raise ReplayError(f"parameter '{item}' is not policy.key=value (for example cascade.threshold=0.7)")
        if policy not in POLICIES:
            raise ReplayError(f"parameter '{item}': no policy '{policy}' (policies: {', '.join(POLICIES)})")
        params.setdefault(policy, {})[key] = value
    return params


def build(name: str, params: dict[str, dict[str, str]] | None = None, inner: Policy | None = None) -> Policy:
    """One policy with its parameters (and inner policy, for a wrapper)."""
    if name not in POLICIES:
        raise ReplayError(f"no policy '{name}'; policies: {', '.join(POLICIES)}")
    cls = POLICIES[name]
    values = {key: _convert(cls, key, text) for key, text in (params or {}).get(name, {}).items()}
    if inner is not None:
        values["inner"] = inner
    return cls(**values)


def parse_policy(spec: str, params: dict[str, dict[str, str]] | None = None) -> Policy:
    """'cascade', or a composition 'residency-aware+slo-overflow+cascade' (wrappers in front)."""
    parts = [p.strip() for p in spec.split("+")]
    if not all(parts):
        raise ReplayError(f"policy '{spec}': empty name in the composition")
    for part in parts[:-1]:
        if part in POLICIES and not is_wrapper(POLICIES[part]):
            raise ReplayError(
                f"policy '{spec}': only wrappers ({', '.join(n for n, c in POLICIES.items() if is_wrapper(c))})"
                f" can stand in front of another policy, not '{part}'"
            )
    policy = build(parts[-1], params)
    for part in reversed(parts[:-1]):
        policy = build(part, params, inner=policy)
    return policy


def parse_policies(spec: str, params: dict[str, dict[str, str]] | None = None) -> list[Policy]:
    """A comma-separated list in which 'all' stands for every registered policy with its defaults
    ('all,residency-aware+cascade' adds a composition); frontier-only always comes first."""
    names = [n for s in spec.split(",") if s.strip() for n in (POLICIES if s.strip() == "all" else [s.strip()])]
    names = list(dict.fromkeys(names))
    if not names:
        raise ReplayError("name at least one policy, or 'all'")
    policies = [parse_policy(name, params) for name in names]
    if not any(p.label == BASELINE for p in policies):
        policies.insert(0, build(BASELINE, params))
    return policies


def with_value(policy: Policy, key: str, value: float) -> Policy:
    """The same policy with one parameter changed (a sweep point); a wrapper passes it to its inner policy."""
    if any(f.name == key for f in fields(policy)):
        return replace(policy, **{key: value})
    inner = getattr(policy, "inner", None)
    if isinstance(inner, Policy):
        return replace(policy, inner=with_value(inner, key, value))  # type: ignore[call-arg]
    raise ReplayError(f"policy '{policy.label}' has no parameter '{key}'")


def sweep_of(policy: Policy) -> tuple[str, tuple[float, ...]] | None:
    """The parameter and grid a sweep varies for this policy (a wrapper sweeps its inner policy's)."""
    if policy.sweep is not None:
        return policy.sweep
    inner = getattr(policy, "inner", None)
    return sweep_of(inner) if isinstance(inner, Policy) else None
