"""learned: a logistic-regression router trained on recorded (or realised) outcomes: it predicts whether the
weak model answers a request correctly from what is known when the request arrives (task, data class, the
source's category such as the MMLU subject, input-length bucket) and sends it to the weak model when that
probability clears the threshold. Cross-fitted: each request is routed by a model trained on the other folds
only, so no request's own outcome ever informs its route (no leakage), and every request is routed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulators.inputs import ReplayError, ReplayInputs
from simulators.policies.base import Policy, Routing, choose, column, param, policy_rng, single

TOKEN_BUCKETS = np.array([64, 128, 256, 512, 1024, 2048, 4096, 8192], dtype=np.float64)
MAX_CATEGORIES = 64


def feature_codes(inputs: ReplayInputs) -> tuple[np.ndarray, list[int]]:
    """One small integer per feature per request (categorical), and each feature's number of levels."""
    categories = np.where((inputs.category >= 0) & (inputs.category < MAX_CATEGORIES), inputs.category, MAX_CATEGORIES)
    columns = [
        inputs.task + 1,
        inputs.data_class + 1,
        categories,
        np.searchsorted(TOKEN_BUCKETS, inputs.input_tokens, side="right"),
    ]
    levels = [int(c.max()) + 1 if c.size else 1 for c in columns]
    return np.stack([np.asarray(c, dtype=np.int64) for c in columns], axis=1), levels


def one_hot(codes: np.ndarray, levels: list[int]) -> np.ndarray:
    """Intercept plus one column per level of every feature."""
    blocks = [np.ones((len(codes), 1))] + [np.eye(k)[codes[:, i]] for i, k in enumerate(levels)]
    return np.hstack(blocks)


def fit_logistic(
    x: np.ndarray, positives: np.ndarray, totals: np.ndarray, ridge: float = 1.0, iterations: int = 25
) -> np.ndarray:
    """L2-regularised logistic regression on grouped rows (positives of totals per row), by Newton's method."""
    w = np.zeros(x.shape[1])
    penalty = ridge * np.eye(x.shape[1])
    penalty[0, 0] = 0.0  # the intercept is not shrunk
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-x @ w))
        gradient = x.T @ (positives - totals * p) - penalty @ w
        hessian = (x * (totals * p * (1 - p))[:, None]).T @ x + penalty
        step = np.linalg.solve(hessian + 1e-9 * np.eye(len(w)), gradient)
        w += step
        if np.max(np.abs(step)) < 1e-8:
            break
    return w


@dataclass(frozen=True)
class Learned(Policy):
    """Weak model when the cross-fitted P(weak model right) >= threshold, else the strong model."""

    name = "learned"
    summary = (
        "logistic regression on request features, cross-fitted on recorded outcomes: "
        "weak model when P(right) >= threshold"
    )
    sweep = ("threshold", tuple(i / 20 for i in range(21)))
    threshold: float = param(0.5, "predicted probability that the weak model is right needed to use it")
    folds: int = param(5, "cross-fitting folds (each request is routed by a model that never saw it)")
    weak: str = param("small", "the model the router tries to use")
    strong: str = param("frontier", "the model otherwise")

    def predict(self, inputs: ReplayInputs) -> np.ndarray:
        """Out-of-fold P(weak model right) per request."""
        if self.folds < 2:
            raise ReplayError("learned: folds must be at least 2")
        weak = column(inputs, self.weak)
        codes, levels = feature_codes(inputs)
        key = np.zeros(inputs.n, dtype=np.int64)  # one integer per combination of feature levels
        for i, k in enumerate(levels):
            key = key * k + codes[:, i]
        unique_keys, group = np.unique(key, return_inverse=True)
        combos = np.empty((len(unique_keys), len(levels)), dtype=np.int64)
        rest = unique_keys.copy()
        for i in reversed(range(len(levels))):
            combos[:, i], rest = rest % levels[i], rest // levels[i]
        x = one_hot(combos, levels)
        fold = policy_rng(inputs, self.name).permutation(inputs.n) % self.folds
        right = inputs.correct[:, weak].astype(np.float64)
        size = len(combos)
        total_n = np.bincount(group, minlength=size).astype(np.float64)
        total_pos = np.bincount(group, weights=right, minlength=size)
        predicted = np.empty(inputs.n)
        for f in range(self.folds):
            held = fold == f
            n_f = np.bincount(group[held], minlength=size)
            pos_f = np.bincount(group[held], weights=right[held], minlength=size)
            w = fit_logistic(x, total_pos - pos_f, total_n - n_f)
            predicted[held] = (1.0 / (1.0 + np.exp(-x @ w)))[group[held]]
        return predicted

    def route(self, inputs: ReplayInputs, candidates: np.ndarray) -> Routing:
        use_weak = self.predict(inputs) >= self.threshold
        target = np.where(use_weak, column(inputs, self.weak), column(inputs, self.strong))
        return single(choose(target, inputs, candidates))
