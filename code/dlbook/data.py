"""Small data sets made in code or shipped with the package, seeded splits, mini-batches.

No downloads: everything a chapter trains on is generated here or ships with
the package (``dlbook/resources``). Each random draw takes a seed or a
``np.random.Generator``.

References
----------
- Alpaydin & Kaynak (1998). Optical Recognition of Handwritten Digits. UCI Machine
  Learning Repository, https://doi.org/10.24432/C50P49 (CC BY 4.0).
- Shakespeare, *The Sonnets* (1609), public domain; Project Gutenberg's text
  (see ``dlbook/resources/SONNETS_SOURCE.txt``).
- Hochreiter & Schmidhuber (1997). Long Short-Term Memory (the long-lag tasks
  that :func:`first_symbol` simplifies).
"""

from __future__ import annotations

from collections.abc import Iterator
from importlib import resources

import numpy as np

from .core import as_generator, check_positive_int

__all__ = [
    "spirals",
    "moons",
    "circles",
    "digits",
    "place_on_canvas",
    "split",
    "as_arrays",
    "batches",
    "num_batches",
    "first_symbol",
    "digit_sequences",
    "sonnets",
    "sonnet_split",
    "CharVocab",
    "stream_batches",
]


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


def place_on_canvas(images: np.ndarray, size: int = 16, rng=0) -> tuple[np.ndarray, np.ndarray]:
    """Each image pasted at a random position of a larger blank canvas.

    ``images (N, h, w)`` -> ``canvases (N, size, size)`` (zeros elsewhere,
    same dtype) and ``offsets (N, 2)``, the row and column of each image's
    top-left corner, drawn uniformly from ``0 .. size - h`` and
    ``0 .. size - w``. The label of a digit does not change with its
    position: a task where a network that shares weights across positions
    (a convolution) has an advantage over one that does not. ``rng`` is a
    seed or a Generator. Chapter 4.
    """
    images = np.asarray(images)
    if images.ndim != 3:
        raise ValueError(f"images must have shape (N, h, w), got {images.shape}")
    n, h, w = images.shape
    size = check_positive_int(size, "size")
    if size < max(h, w):
        raise ValueError(f"canvas size {size} is smaller than the images ({h}x{w})")
    gen = as_generator(rng)
    offsets = np.stack([gen.integers(0, size - h + 1, n), gen.integers(0, size - w + 1, n)], axis=1)
    out = np.zeros((n, size, size), dtype=images.dtype)
    rows = offsets[:, 0, None, None] + np.arange(h)[None, :, None]  # (N, h, 1)
    cols = offsets[:, 1, None, None] + np.arange(w)[None, None, :]  # (N, 1, w)
    out[np.arange(n)[:, None, None], rows, cols] = images
    return out, offsets


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


# ---------------------------------------------------------------------------
# Sequences (chapter 6)
# ---------------------------------------------------------------------------
def first_symbol(
    n: int, length: int, symbols: int = 8, noise: int = 4, rng=0
) -> tuple[np.ndarray, np.ndarray]:
    """The memory task: read a symbol, then ``length - 1`` noise tokens, then name the symbol.

    .. math:: y_n \\sim \\mathcal U\\{0, \\dots, S-1\\}, \\quad x_{n,1} = y_n, \\quad
              x_{n,t} \\sim \\mathcal U\\{S, \\dots, S+M-1\\}\\ (t = 2, \\dots, T)

    The first token is one of ``S = symbols`` symbols; the other ``T - 1``
    are drawn from ``M = noise`` distractor tokens that carry no information
    about the label. To answer after the last step a network must keep the
    first token in its state for ``T - 1`` steps (the lag). Chance accuracy
    is ``1 / S``; the vocabulary has ``S + M`` tokens. Returns ``X (n, T)``
    int64 token ids and ``y (n,)`` int64. A simplified form of the long
    time-lag tasks of Hochreiter & Schmidhuber (1997). Chapter 6.
    """
    n = check_positive_int(n, "n")
    length = check_positive_int(length, "length")
    symbols = check_positive_int(symbols, "symbols", minimum=2)
    noise = check_positive_int(noise, "noise")
    gen = as_generator(rng)
    y = gen.integers(0, symbols, size=n, dtype=np.int64)
    X = gen.integers(symbols, symbols + noise, size=(n, length), dtype=np.int64)
    X[:, 0] = y
    return X, y


def digit_sequences(
    images: np.ndarray, labels: np.ndarray, n: int, length: int, rng=0
) -> tuple[np.ndarray, np.ndarray]:
    """Sequences of digit images labelled with the running sum of their digits.

    Draws ``n`` sequences of ``length`` images from the pool ``images (M, 8,
    8)`` (with replacement) and labels step ``t`` with ``y_1 + ... + y_t``, an
    integer in ``[0, 9 t]``. Returns ``X (n, length, 1, 8, 8)`` (a channel
    axis added, the pool's dtype) and ``sums (n, length)`` int64. Build the
    training and test sequences from disjoint pools (e.g. the parts of
    :func:`split`), so a test sequence shows only unseen images. Chapter 6's
    CNN-LSTM labels every step.
    """
    images = np.asarray(images)
    labels = np.asarray(labels)
    if images.ndim != 3 or images.shape[1:] != (8, 8):
        raise ValueError(f"images must have shape (M, 8, 8), got {images.shape}")
    if labels.shape != (len(images),):
        raise ValueError(f"labels must have shape ({len(images)},), got {labels.shape}")
    n = check_positive_int(n, "n")
    length = check_positive_int(length, "length")
    idx = as_generator(rng).integers(0, len(images), size=(n, length))
    X = images[idx][:, :, None]  # (n, T, 8, 8) -> (n, T, 1, 8, 8)
    return X, np.cumsum(labels[idx], axis=1).astype(np.int64)


def sonnets() -> list[str]:
    """Shakespeare's 154 sonnets, each a string that starts with its Roman numeral.

    Read from ``dlbook/resources/sonnets.txt`` (public domain; Project
    Gutenberg's text, see ``SONNETS_SOURCE.txt`` there): 95,728 characters of
    plain ASCII. Each string is the numeral line, a blank line and the poem,
    ending in a newline. Chapter 6 trains a character-level language model on
    them.
    """
    text = resources.files("dlbook").joinpath("resources", "sonnets.txt").read_text(encoding="ascii")
    lines = text.split("\n")
    starts = [i for i, line in enumerate(lines) if line and line.strip("IVXLC") == "" and line.strip()]
    poems = []
    for k, start in enumerate(starts):
        stop = starts[k + 1] if k + 1 < len(starts) else len(lines)
        poems.append("\n".join(lines[start:stop]).rstrip() + "\n")
    return poems


def sonnet_split(val_fraction: float = 0.1, rng=0) -> tuple[str, str]:
    """The sonnets shuffled with ``rng`` and split whole: ``(train_text, val_text)``.

    ``round(154 * val_fraction)`` poems go to validation; each part is its
    poems joined by a blank line. Splitting by poem (not by position in one
    long string) keeps every validation line unseen in training. Chapter 6.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must lie in (0, 1), got {val_fraction!r}")
    poems = sonnets()
    order = as_generator(rng).permutation(len(poems))
    n_val = max(1, round(len(poems) * val_fraction))
    val = [poems[i] for i in order[:n_val]]
    train = [poems[i] for i in order[n_val:]]
    return "\n".join(train), "\n".join(val)


class CharVocab:
    """The characters of a text as token ids 0 to ``V-1`` (sorted by code point).

    ``vocab = CharVocab(text)``; ``vocab.encode("love") -> int64 array``;
    ``vocab.decode(ids) -> str``; ``len(vocab)`` is ``V``. Encoding a
    character the vocabulary lacks raises ``ValueError`` naming it. Chapter 6.
    """

    def __init__(self, text: str) -> None:
        if not isinstance(text, str) or not text:
            raise ValueError("CharVocab needs a non-empty string")
        self.chars = "".join(sorted(set(text)))
        self._index = {c: i for i, c in enumerate(self.chars)}

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        missing = sorted(set(text) - set(self._index))
        if missing:
            raise ValueError(f"characters not in the vocabulary: {''.join(missing)!r}")
        return np.fromiter((self._index[c] for c in text), dtype=np.int64, count=len(text))

    def decode(self, ids) -> str:
        ids = np.asarray(ids)
        if ids.size and (ids.min() < 0 or ids.max() >= len(self.chars)):
            raise ValueError(
                f"token ids must lie in [0, {len(self.chars) - 1}], got [{ids.min()}, {ids.max()}]"
            )
        return "".join(self.chars[i] for i in ids.reshape(-1))

    def __repr__(self) -> str:
        return f"CharVocab({len(self)} characters)"


def stream_batches(ids: np.ndarray, batch_size: int, seq_len: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Consecutive windows of a long token stream, for truncated backpropagation through time.

    The stream is cut into ``batch_size`` equal rows (the tail that does not
    fit is dropped), and each row is read left to right in windows of
    ``seq_len``: batch ``k`` holds positions ``[k L, (k+1) L)`` of every row,
    so row ``n`` of batch ``k + 1`` continues row ``n`` of batch ``k`` and a
    model may carry its final state across. Yields ``(x (B, L), y (B, L))``
    with ``y`` the next token of each position (the last window may be
    shorter). Chapter 6.
    """
    ids = np.asarray(ids)
    if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"ids must be a 1-D integer array, got dtype {ids.dtype} and shape {ids.shape}")
    batch_size = check_positive_int(batch_size, "batch_size")
    seq_len = check_positive_int(seq_len, "seq_len")
    per_row = (len(ids) - 1) // batch_size
    if per_row < 1:
        raise ValueError(f"{len(ids)} tokens are too few for {batch_size} rows")
    x_all = ids[: batch_size * per_row].reshape(batch_size, per_row)  # (B, R)
    y_all = ids[1 : batch_size * per_row + 1].reshape(batch_size, per_row)
    return ((x_all[:, s : s + seq_len], y_all[:, s : s + seq_len]) for s in range(0, per_row, seq_len))
