"""Small data sets made in code, and seeded splits.

No downloads: everything a chapter trains on is generated here or ships with
the package. Each generator takes a seed or a ``np.random.Generator``.
"""

from __future__ import annotations

import numpy as np

from .core import as_generator

__all__ = ["spirals", "moons", "circles", "split"]


def _check_n(n: int, name: str = "n") -> int:
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"{name} must be a positive integer, got {n!r}")
    return int(n)


def spirals(n: int = 300, classes: int = 3, noise: float = 0.2, rng=0):
    """``classes`` interleaved spiral arms in the plane, ``n`` points per arm.

    Arm ``k`` follows radius ``r = t`` and angle ``4t + 2πk/classes`` for
    ``t`` in [0, 1], with Gaussian noise of std ``noise`` on the angle.
    Returns ``X (classes*n, 2)`` float64 and ``y (classes*n,)`` int64.
    """
    n, classes = _check_n(n), _check_n(classes, "classes")
    gen = as_generator(rng)
    t = np.tile(np.linspace(0.0, 1.0, n), classes)
    y = np.repeat(np.arange(classes), n)
    angle = 4.0 * t + 2.0 * np.pi * y / classes + noise * gen.standard_normal(t.shape)
    X = np.stack([t * np.cos(angle), t * np.sin(angle)], axis=1)
    return X, y.astype(np.int64)


def moons(n: int = 200, noise: float = 0.1, rng=0):
    """Two interleaving half circles, ``n`` points each, with Gaussian noise."""
    n = _check_n(n)
    gen = as_generator(rng)
    a = np.linspace(0.0, np.pi, n)
    upper = np.stack([np.cos(a), np.sin(a)], axis=1)
    lower = np.stack([1.0 - np.cos(a), 0.5 - np.sin(a)], axis=1)
    X = np.concatenate([upper, lower]) + noise * gen.standard_normal((2 * n, 2))
    y = np.repeat(np.arange(2), n)
    return X, y.astype(np.int64)


def circles(n: int = 200, factor: float = 0.5, noise: float = 0.05, rng=0):
    """An inner circle (label 1, radius ``factor``) inside an outer one (label 0)."""
    n = _check_n(n)
    if not 0 < factor < 1:
        raise ValueError(f"factor must lie in (0, 1), got {factor}")
    gen = as_generator(rng)
    a = gen.uniform(0.0, 2.0 * np.pi, 2 * n)
    r = np.repeat([1.0, factor], n)
    X = np.stack([r * np.cos(a), r * np.sin(a)], axis=1) + noise * gen.standard_normal((2 * n, 2))
    y = np.repeat(np.arange(2), n)
    return X, y.astype(np.int64)


def split(X: np.ndarray, y: np.ndarray, fractions=(0.7, 0.15, 0.15), rng=0):
    """Shuffle and split into train/validation/test parts by ``fractions``.

    Returns ``[(X_train, y_train), (X_val, y_val), (X_test, y_test)]`` (as many
    parts as fractions). The same seed gives the same split.
    """
    X, y = np.asarray(X), np.asarray(y)
    if len(X) != len(y):
        raise ValueError(f"X and y lengths differ: {len(X)} vs {len(y)}")
    fr = np.asarray(fractions, dtype=np.float64)
    if np.any(fr <= 0) or not np.isclose(fr.sum(), 1.0):
        raise ValueError(f"fractions must be positive and sum to 1, got {tuple(fractions)}")
    order = as_generator(rng).permutation(len(X))
    cuts = np.round(np.cumsum(fr)[:-1] * len(X)).astype(int)
    return [(X[idx], y[idx]) for idx in np.split(order, cuts)]
