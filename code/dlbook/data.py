"""Small data sets made in code or shipped with the package, seeded splits, mini-batches.

No downloads: everything a chapter trains on is generated here or ships with
the package (``dlbook/resources``). Each random draw takes a seed or a
``np.random.Generator``.

References
----------
- Alpaydin & Kaynak (1998). Optical Recognition of Handwritten Digits. UCI Machine
  Learning Repository, https://doi.org/10.24432/C50P49 (CC BY 4.0).
"""

from __future__ import annotations

from collections.abc import Iterator
from importlib import resources

import numpy as np

from .core import as_generator, check_positive_int

__all__ = ["spirals", "moons", "circles", "digits", "split", "as_arrays", "batches", "num_batches"]


def spirals(n: int = 300, classes: int = 3, noise: float = 0.2, rng=0):
    """``classes`` interleaved spiral arms in the plane, ``n`` points per arm.

    Arm ``k`` follows radius ``r = t`` and angle ``4t + 2πk/classes`` for
    ``t`` in [0, 1], with Gaussian noise of std ``noise`` on the angle.
    Returns ``X (classes*n, 2)`` float64 and ``y (classes*n,)`` int64.
    """
    n, classes = check_positive_int(n, "n"), check_positive_int(classes, "classes")
    gen = as_generator(rng)
    t = np.tile(np.linspace(0.0, 1.0, n), classes)
    y = np.repeat(np.arange(classes), n)
    angle = 4.0 * t + 2.0 * np.pi * y / classes + noise * gen.standard_normal(t.shape)
    X = np.stack([t * np.cos(angle), t * np.sin(angle)], axis=1)
    return X, y.astype(np.int64)


def moons(n: int = 200, noise: float = 0.1, rng=0):
    """Two interleaving half circles, ``n`` points each, with Gaussian noise."""
    n = check_positive_int(n, "n")
    gen = as_generator(rng)
    a = np.linspace(0.0, np.pi, n)
    upper = np.stack([np.cos(a), np.sin(a)], axis=1)
    lower = np.stack([1.0 - np.cos(a), 0.5 - np.sin(a)], axis=1)
    X = np.concatenate([upper, lower]) + noise * gen.standard_normal((2 * n, 2))
    y = np.repeat(np.arange(2), n)
    return X, y.astype(np.int64)


def circles(n: int = 200, factor: float = 0.5, noise: float = 0.05, rng=0):
    """An inner circle (label 1, radius ``factor``) inside an outer one (label 0)."""
    n = check_positive_int(n, "n")
    if not 0 < factor < 1:
        raise ValueError(f"factor must lie in (0, 1), got {factor}")
    gen = as_generator(rng)
    a = gen.uniform(0.0, 2.0 * np.pi, 2 * n)
    r = np.repeat([1.0, factor], n)
    X = np.stack([r * np.cos(a), r * np.sin(a)], axis=1) + noise * gen.standard_normal((2 * n, 2))
    y = np.repeat(np.arange(2), n)
    return X, y.astype(np.int64)


def digits(flatten: bool = True, scale: bool = True, dtype=np.float64):
    """The 1,797 8x8 handwritten digits of Alpaydin & Kaynak (1998), with their labels.

    Each image counts the "on" pixels of a 32x32 bitmap in 4x4 blocks, so its
    values are integers 0..16. Returns ``X, y`` with ``y (1797,)`` int64 in 0..9
    (about 180 per class) and ``X`` in ``dtype``:

    - ``flatten=True``: ``(1797, 64)``, each row the image read row by row;
      ``flatten=False``: ``(1797, 8, 8)``;
    - ``scale=True``: values divided by 16, in [0, 1]; ``scale=False``: 0..16.

    The test part of the UCI "Optical Recognition of Handwritten Digits" set,
    as packaged by scikit-learn (see ``dlbook/resources/DIGITS_LICENSE.txt``,
    CC BY 4.0). Chapter 3 trains its first real classifier on it.
    """
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    with resources.files("dlbook").joinpath("resources", "digits.npz").open("rb") as f:
        with np.load(f) as data:
            images, labels = data["images"], data["labels"]  # (1797, 8, 8) and (1797,) uint8
    X = images.astype(dtype)
    if scale:
        X /= 16.0
    if flatten:
        X = X.reshape(len(X), 64)  # (N, 8, 8) -> (N, 64)
    return X, labels.astype(np.int64)


def split(X: np.ndarray, y: np.ndarray, fractions=(0.7, 0.15, 0.15), rng=0, stratify: bool = False):
    """Shuffle and split into train/validation/test parts by ``fractions``.

    Returns ``[(X_train, y_train), (X_val, y_val), (X_test, y_test)]`` (as many
    parts as fractions). The same seed gives the same split. With
    ``stratify=True`` (``y`` holding class labels) each class is split by the
    fractions on its own, so every part has the classes in the same
    proportions (part sizes may then differ by a sample or two per class from
    the unstratified ones); each part is then shuffled.
    """
    X, y = np.asarray(X), np.asarray(y)
    if len(X) != len(y):
        raise ValueError(f"X and y lengths differ: {len(X)} vs {len(y)}")
    fr = np.asarray(fractions, dtype=np.float64)
    if fr.ndim != 1 or fr.size < 1 or np.any(fr <= 0) or not np.isclose(fr.sum(), 1.0):
        raise ValueError(f"fractions must be positive and sum to 1, got {tuple(np.atleast_1d(fractions))}")
    gen = as_generator(rng)
    if not stratify:
        order = gen.permutation(len(X))
        cuts = np.round(np.cumsum(fr)[:-1] * len(X)).astype(int)
        return [(X[idx], y[idx]) for idx in np.split(order, cuts)]
    if y.ndim != 1:
        raise ValueError(f"stratify=True needs 1-D class labels y, got shape {y.shape}")
    parts: list[list[np.ndarray]] = [[] for _ in fr]
    for c in np.unique(y):
        members = gen.permutation(np.flatnonzero(y == c))
        cuts = np.round(np.cumsum(fr)[:-1] * len(members)).astype(int)
        for part, chunk in zip(parts, np.split(members, cuts), strict=True):
            part.append(chunk)
    out = []
    for part in parts:
        idx = gen.permutation(np.concatenate(part))
        out.append((X[idx], y[idx]))
    return out


def num_batches(n: int, batch_size: int, drop_last: bool = False) -> int:
    """How many mini-batches :func:`batches` yields for ``n`` samples (steps per epoch)."""
    n, batch_size = check_positive_int(n, "n"), check_positive_int(batch_size, "batch_size")
    return n // batch_size if drop_last else -(-n // batch_size)


def as_arrays(X, y: np.ndarray | None = None, name: str = "data") -> tuple[np.ndarray, ...]:
    """The data as a tuple of arrays with the same first axis: ``(X, y)`` or ``X`` itself if a tuple.

    ``as_arrays(X, y)`` gives ``(X, y)``; ``as_arrays((src, tgt_in, tgt_out))``
    gives the tuple. Every entry must be a NumPy array with at least one axis,
    all of the same length and not empty; otherwise ``TypeError`` or
    ``ValueError`` naming the shapes.
    """
    if y is None:
        if not isinstance(X, tuple):
            raise TypeError(f"{name}: pass X and y, or one tuple of arrays (inputs..., target)")
        arrays = tuple(X)
    else:
        if isinstance(X, tuple):
            raise TypeError(f"{name}: pass either X and y or one tuple of arrays, not both")
        arrays = (X, y)
    if len(arrays) < 2:
        raise ValueError(f"{name}: needs at least two arrays (inputs..., target), got {len(arrays)}")
    for i, a in enumerate(arrays):
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{name}: array {i} must be a NumPy array, got {type(a).__name__}")
        if a.ndim < 1:
            raise ValueError(f"{name}: array {i} must have a first (sample) axis, got shape {a.shape}")
    lengths = {len(a) for a in arrays}
    if len(lengths) != 1:
        shapes = ", ".join(str(a.shape) for a in arrays)
        raise ValueError(f"{name}: the arrays must have the same number of rows, got shapes {shapes}")
    if len(arrays[0]) == 0:
        raise ValueError(f"{name}: the arrays are empty (shape {arrays[0].shape})")
    return arrays


def batches(
    *args,
    rng: np.random.Generator | int | None = None,
    shuffle: bool = True,
    drop_last: bool = False,
) -> Iterator[tuple[np.ndarray, ...]]:
    """Iterate over mini-batches of several arrays in lockstep: one pass over the data (an epoch).

    Two forms: ``batches(X, y, batch_size)`` yields ``(X_b, y_b)``;
    ``batches((A, B, C), batch_size)`` yields ``(A_b, B_b, C_b)`` (e.g.
    source, decoder input and target of a translation model). A fourth or
    third positional argument is ``rng``. Shapes: every array ``(N, ...)`` ->
    batches ``(B, ...)`` with ``B = batch_size`` except a smaller last one
    (dropped with ``drop_last=True``). With ``shuffle=True`` the order is a
    permutation drawn from ``rng`` (required; pass the same Generator every
    epoch to get a new order each time, as :func:`dlbook.train.fit` does) and
    the batches are copies; with ``shuffle=False`` they are views in the
    stored order. Every sample appears exactly once per pass (once at most
    with ``drop_last``). Arguments are checked when ``batches`` is called,
    not at the first batch.
    """
    if args and isinstance(args[0], tuple):
        arrays, rest = as_arrays(args[0]), args[1:]
    elif len(args) >= 2:
        arrays, rest = as_arrays(args[0], args[1], name="X and y"), args[2:]
    else:
        raise TypeError("batches(X, y, batch_size) or batches((A, B, ...), batch_size)")
    if not rest or len(rest) > 2:
        raise TypeError("batches needs batch_size (and optionally rng) after the data")
    batch_size = check_positive_int(rest[0], "batch_size")
    if len(rest) == 2:
        rng = rest[1]
    n = len(arrays[0])
    order = None
    if shuffle:
        if rng is None:
            raise ValueError("shuffle=True needs rng (a seed or a np.random.Generator): no hidden global RNG")
        order = as_generator(rng).permutation(n)
    elif rng is not None:
        as_generator(rng)  # still refuse a wrong type
    stop = n - n % batch_size if drop_last else n
    return _batch_iter(arrays, batch_size, order, stop)


def _batch_iter(arrays, batch_size, order, stop):
    for start in range(0, stop, batch_size):
        if order is None:
            yield tuple(a[start : start + batch_size] for a in arrays)
        else:
            idx = order[start : start + batch_size]
            yield tuple(a[idx] for a in arrays)
