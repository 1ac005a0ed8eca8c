"""What every routing policy shares: the routing it returns, the way it names models, and how it picks among the
models a request may go to.

A policy is a frozen dataclass whose fields are its parameters (with help text), and `route()` turns the replay
inputs into attempts: per request, the models tried in order; the last one answers. `candidates` is the (n, m)
mask of models the policy may use: all of them, unless a wrapper in front (residency-aware) narrows it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field, fields
from functools import cached_property
from typing import ClassVar, TypeVar

import numpy as np

from simulators import kernels
from simulators.inputs import ReplayError, ReplayInputs
from simulators.results import PolicyKind

NO_MODEL = -1


T = TypeVar("T")


def param(default: T, help: str) -> T:
    """A policy parameter with its help text (one source for the CLI, the dashboard and the stored config)."""
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class Routing:
    """Per request, the model columns tried in order (-1 pads; no attempt at all means rejected), and why."""

    attempts: np.ndarray  # (n, k) int16
    reason: np.ndarray | None = None  # (n,) int8 index into `reasons`, -1 for none
    reasons: tuple[str, ...] = ()
    notes: dict[str, object] = field(default_factory=dict)

    @cached_property
    def final(self) -> np.ndarray:
        """The model that answered each request (-1: rejected)."""
        return kernels.last_attempt(self.attempts)


def single(
    choice: np.ndarray,
    reason: np.ndarray | None = None,
    reasons: tuple[str, ...] = (),
    notes: dict[str, object] | None = None,
) -> Routing:
    """A routing with one attempt per request."""
    attempts = np.asarray(choice, dtype=np.int16)[:, None]
    return Routing(attempts=attempts, reason=reason, reasons=reasons, notes=notes if notes is not None else {})


@dataclass(frozen=True)
class Policy(ABC):
    """A routing policy: one file per policy under simulators/policies/, one line in registry.py."""

    name: ClassVar[str]
    kind: ClassVar[PolicyKind] = "deployable"  # 'reference': a bound to compare with, never deployed (the oracle)
    summary: ClassVar[str]  # one line for `slmlab simulate --list` and the README
    sweep: ClassVar[tuple[str, tuple[float, ...]] | None] = None  # the parameter a sweep varies, and its grid

    @abstractmethod
    def route(self, inputs: ReplayInputs, candidates: np.ndarray) -> Routing:
        """The attempts for every request of the replay."""

    def describe(self) -> dict[str, object]:
        """Name and parameters, JSON-ready (nested for wrappers)."""
        values = {
            f.name: (
                getattr(self, f.name).describe() if isinstance(getattr(self, f.name), Policy) else getattr(self, f.name)
            )
            for f in fields(self)
        }
        return {"policy": self.label, **values}

    @property
    def label(self) -> str:
        """The name shown in results: a wrapper names what it wraps (residency-aware+cascade)."""
        inner = getattr(self, "inner", None)
        return f"{self.name}+{inner.label}" if isinstance(inner, Policy) else self.name


def column(inputs: ReplayInputs, name: str) -> int:
    """A model column from a name, or the roles 'frontier' and 'small'."""
    if name == "frontier":
        return inputs.frontier
    if name == "small":
        return inputs.small
    names = inputs.model_names
    if name not in names:
        raise ReplayError(
            f"model '{name}' is not in the portfolio ({', '.join(names)}); "
            "use a portfolio name or the roles 'frontier' / 'small'"
        )
    return names.index(name)


def choose(target: np.ndarray | int, inputs: ReplayInputs, candidates: np.ndarray) -> np.ndarray:
    """Each request's target model where it may go there, else the best-quality model it may go to (-1: none)."""
    n = candidates.shape[0]
    target = np.broadcast_to(np.asarray(target, dtype=np.int16), (n,))
    rows = np.arange(n)
    chosen = np.where((target >= 0) & candidates[rows, np.maximum(target, 0)], target, NO_MODEL).astype(np.int16)
    for j in inputs.ranking:
        missing = chosen == NO_MODEL
        if not missing.any():
            break
        chosen = np.where(missing & candidates[:, j], j, chosen).astype(np.int16)
    return chosen


def policy_rng(inputs: ReplayInputs, salt: str) -> np.random.Generator:
    """A policy's own seeded stream: same seed, same decisions, independent of the other draws."""
    digest = int.from_bytes(salt.encode()[:8].ljust(8, b"\0"), "little")
    return np.random.Generator(np.random.PCG64([int(inputs.config.seed), 4, digest]))
