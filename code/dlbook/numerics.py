"""The numerically stable functions, in one place: sigmoid, softplus, log-sum-exp, softmax.

Every other module (the activations of chapter 1, the losses of chapter 3,
attention in chapter 8) calls these instead of writing its own copy, so each
stability trick is written, explained and tested once.

Contract. Each function takes a float32 or float64 array of any shape
(Python floats and NumPy scalars become arrays) and returns the input's
dtype: float32 stays float32. Every output is finite, and no overflow,
underflow or invalid-value floating-point error is raised, for finite inputs
up to ``|x| = 1e4`` and beyond (checked under ``np.errstate(all="raise")``).
The tricks:

- **sigmoid**: ``1 / (1 + e^{-x})`` directly. For very negative ``x``,
  ``e^{-x}`` overflows to ``inf`` and ``1 / (1 + inf) = 0``, the correctly
  rounded limit; that one overflow is expected and silenced (a select on the
  sign would be slower, and the formula is accurate in relative terms on both
  tails).
- **softplus**: ``max(x, 0) + log1p(e^{-|x|})``: the exponent is never
  positive, so nothing overflows, and ``log1p`` keeps the left tail accurate.
- **log-sum-exp, log-softmax, softmax**: subtract the maximum ``m`` first, so
  every exponent is ``<= 0`` and the largest term is exactly ``e^0 = 1``.
- Exponentials of very negative numbers underflow to 0, which is the right
  answer; the underflow flag is silenced.

Masking (chapter 8)
-------------------
:func:`masked_softmax` takes a boolean ``mask``, ``True`` = attend, that
broadcasts to the scores (e.g. ``(N, 1, 1, T_k)`` for padding or ``(T_q,
T_k)`` for a causal mask, over scores ``(N, heads, T_q, T_k)``). Masked scores
are replaced by :data:`MASKED_SCORE` ``= -inf`` *before* the maximum is
taken, so they contribute ``e^{-inf} = 0`` exactly. A large finite
constant such as ``-1e9`` (a common choice) is worse twice over: it leaks
probability when every attended score is below it, and a fully masked row
becomes uniform over the positions it was meant to hide. Here a row whose
positions are *all* masked (e.g. a padded query) has sum 0 and is returned
as all zeros, not NaN (PyTorch's ``masked_fill(-inf)`` then ``softmax``
gives NaN there), and its gradient is zero.

Kernels. The underscored functions (``_sigmoid_kernel``, ``_softplus_parts``,
``_sigmoid_from_parts``) skip the input checks and write into buffers given
by a ``buf(key, like, dtype=None)`` callable, so the activation layers can
reuse memory between calls; the public functions are thin checked wrappers
around them.

References
----------
- Goodfellow, Bengio & Courville (2016). *Deep Learning*, section 4.1
  (overflow and underflow; the stable softmax).
- Mächler (2012). Accurately Computing ``log(1 - exp(-|a|))``, Rmpfr vignette
  (the ``log1p`` form of softplus).
- Vaswani et al. (2017). Attention Is All You Need (masked attention).
"""

from __future__ import annotations

import math

import numpy as np

from .core import check_float_array

__all__ = [
    "MASKED_SCORE",
    "sigmoid",
    "softplus",
    "logsumexp",
    "log_softmax",
    "softmax",
    "masked_softmax",
    "masked_softmax_backward",
]

MASKED_SCORE = -math.inf
"""What :func:`masked_softmax` puts in place of a masked score: ``-inf``, so ``e^{score} = 0`` exactly."""


def _as_float(x, name: str = "x") -> np.ndarray:
    """``check_float_array`` that also accepts NumPy scalars such as ``np.float32(1)``."""
    if isinstance(x, np.generic):
        x = np.asarray(x)
    return check_float_array(x, name)


def _new(key: str, like: np.ndarray, dtype=None) -> np.ndarray:
    """The default ``buf`` of the kernels: a new uninitialised array shaped like ``like``."""
    return np.empty_like(like, dtype=dtype)


# ---------------------------------------------------------------------------
# Kernels: no checks, arrays of any shape (0-d too), temporaries from ``buf``
# ---------------------------------------------------------------------------
def _sigmoid_kernel(x: np.ndarray, scale: float = 1.0, out: np.ndarray | None = None) -> np.ndarray:
    """``sigma(scale * x)``, into ``out`` if given (else a new array, also for 0-d ``x``)."""
    s = np.multiply(x, -scale, out=np.empty_like(x) if out is None else out)
    with np.errstate(over="ignore", under="ignore"):
        np.exp(s, out=s)  # inf where scale * x < about -88 (float32) or -709 (float64)
    s += 1.0
    np.reciprocal(s, out=s)  # 1 / inf = 0: the correctly rounded limit
    return s


def _softplus_parts(z: np.ndarray, buf=_new) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``(softplus(z), e, r)`` with ``e = exp(-|z|)`` in ``buf("t0")`` and, in float32, ``r = 1/(1 + e)``.

    ``softplus(z) = max(z, 0) + log1p(e)`` is a new array; ``buf("d")`` is used
    as a temporary. ``e`` and ``r`` are returned for :func:`_sigmoid_from_parts`
    (``r`` is ``None`` in float64, where it is not needed for the value).

    float64 uses ``np.log1p``. float32 computes ``log1p(e)`` with ``log``
    only, twice as fast: ``u = 1 + e`` rounds, its rounding error ``e - (u -
    1)`` is exact (Fast2Sum, ``e <= 1``), so ``log(1 + e) = log(u) + (e - (u -
    1)) / u`` to first order, which is ``e`` itself when ``u == 1``.
    """
    with np.errstate(under="ignore"):
        e = np.abs(z, out=buf("t0", z))
        np.negative(e, out=e)
        np.exp(e, out=e)  # e = exp(-|z|) in (0, 1]
        tmp = buf("d", z)
        r = None
        if z.dtype == np.float64:
            lp = np.log1p(e, out=np.empty_like(e))
        else:
            lp = np.add(e, 1.0, out=np.empty_like(e))  # u
            r = np.reciprocal(lp, out=buf("t2", z))  # 1/u, reused for sigma(z)
            np.subtract(lp, 1.0, out=tmp)
            np.subtract(e, tmp, out=tmp)
            tmp *= r
            np.log(lp, out=lp)
            lp += tmp
        np.add(lp, z, out=tmp)
        y = np.maximum(lp, tmp, out=lp)  # max(z, 0) + lp = max(lp, lp + z)
    return y, e, r


def _sigmoid_from_parts(z: np.ndarray, e: np.ndarray, r: np.ndarray | None, buf=_new) -> np.ndarray:
    """``sigma(z) = softplus'(z)`` from :func:`_softplus_parts`'s ``e`` and ``r``, into ``buf("d")``.

    ``sigma(z) = r = 1/(1 + e)`` for ``z >= 0`` and ``q = e r = 1 - r`` for
    ``z < 0``, so ``sigma = q + [z >= 0] (r - q)``: no second exponential and
    accurate in relative terms on both tails. ``e`` is overwritten.
    """
    with np.errstate(under="ignore"):
        if r is None:
            r = np.add(e, 1.0, out=buf("t2", z))
            np.reciprocal(r, out=r)
        q = np.multiply(e, r, out=e)
        d = np.subtract(r, q, out=buf("d", z))
        d *= np.greater_equal(z, 0.0, out=buf("m'", z, np.bool_))
        d += q
    return d


# ---------------------------------------------------------------------------
# Elementwise functions (chapter 1)
# ---------------------------------------------------------------------------
def sigmoid(x) -> np.ndarray:
    """The logistic sigmoid, stable for every input.

    .. math:: \\sigma(x) = \\frac{1}{1 + e^{-x}}

    Computed as written: for ``x`` below about -88 (float32) or -709 (float64)
    ``e^{-x}`` overflows to ``inf`` and ``1 / (1 + inf) = 0``, the correctly
    rounded limit (the overflow is expected and silenced). Accurate in
    relative terms on both tails. Shapes: any -> same shape and dtype.
    Chapter 1 (the sigmoid activation, logistic regression).
    """
    return _sigmoid_kernel(_as_float(x))


def softplus(x) -> np.ndarray:
    """The softplus function, without overflow for any input.

    .. math:: \\operatorname{softplus}(x) = \\log(1 + e^{x})
              = \\max(x, 0) + \\log(1 + e^{-|x|}), \\qquad
              \\operatorname{softplus}'(x) = \\sigma(x)

    The second form's exponent is never positive. Unlike the activation
    ``Activation("softplus")`` (PyTorch's ``beta`` and ``threshold``), this is
    the exact function everywhere. Shapes: any -> same shape and dtype.
    Chapter 1 (a smooth ReLU; the logistic loss is ``softplus(z) - t z``).
    """
    return _softplus_parts(_as_float(x))[0]


# ---------------------------------------------------------------------------
# Reductions along an axis (chapter 3)
# ---------------------------------------------------------------------------
def _max_shift(z: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """``(z - m, m)`` with ``m = max(z)`` along ``axis`` (kept), set to 0 where it is not finite.

    A row of ``-inf`` (or one holding ``+inf``) would otherwise give
    ``-inf - (-inf) = nan``; with ``m = 0`` such a row gives ``-inf`` (or
    ``+inf``) downstream instead, as SciPy's ``logsumexp`` does.
    """
    m = z.max(axis=axis, keepdims=True)
    if not np.all(np.isfinite(m)):
        m = np.where(np.isfinite(m), m, 0.0).astype(z.dtype, copy=False)
    return z - m, m


def logsumexp(z, axis: int = -1, keepdims: bool = False) -> np.ndarray:
    """The log of a sum of exponentials along ``axis``, without overflow.

    .. math:: \\operatorname{LSE}(z) = \\log \\textstyle\\sum_j e^{z_j}
              = m + \\log \\sum_j e^{z_j - m}, \\quad m = \\max_j z_j

    Every exponent is ``<= 0`` and one term is exactly 1, so the sum lies in
    ``[1, K]``. Shapes: ``z (..., K, ...)`` -> ``axis`` removed (kept with
    size 1 if ``keepdims``); same dtype. Chapter 3 (the normaliser of the
    softmax, the cross-entropy).
    """
    z = _as_float(z, "z")
    shifted, m = _max_shift(z, axis)
    with np.errstate(under="ignore", divide="ignore"):
        out = np.log(np.exp(shifted, out=shifted).sum(axis=axis, keepdims=True))
    out += m
    return out if keepdims else np.squeeze(out, axis=axis)


def log_softmax(z, axis: int = -1) -> np.ndarray:
    """The logarithm of the softmax along ``axis``, finite where ``log(softmax(z))`` is ``-inf``.

    .. math:: \\log\\operatorname{softmax}(z)_k = (z_k - m) - \\log\\textstyle\\sum_j e^{z_j - m},
              \\quad m = \\max_j z_j

    Shapes: any -> same shape and dtype. Chapter 3 (why a loss takes
    logits, not probabilities).
    """
    z = _as_float(z, "z")
    shifted, _ = _max_shift(z, axis)
    with np.errstate(under="ignore"):
        return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def softmax(z, axis: int = -1) -> np.ndarray:
    """The softmax along ``axis``, with the maximum subtracted first so nothing overflows.

    .. math:: \\operatorname{softmax}(z)_k = \\frac{e^{z_k}}{\\sum_j e^{z_j}}
              = \\frac{e^{z_k - m}}{\\sum_j e^{z_j - m}}, \\quad m = \\max_j z_j

    Shapes: any -> same shape and dtype; the entries along ``axis`` sum to 1.
    Its backward pass is :func:`masked_softmax_backward` (the mask plays no
    part in it). Chapter 3 (classification), chapter 8 (attention).
    """
    z = _as_float(z, "z")
    e, _ = _max_shift(z, axis)
    with np.errstate(under="ignore"):
        np.exp(e, out=e)
    e /= e.sum(axis=axis, keepdims=True)
    return e


# ---------------------------------------------------------------------------
# Masked softmax (chapter 8)
# ---------------------------------------------------------------------------
def _check_mask(mask, shape: tuple) -> np.ndarray:
    if not isinstance(mask, (np.ndarray, list, tuple, bool, np.bool_)):
        raise TypeError(f"mask must be a boolean array (True = attend), got {type(mask).__name__}")
    mask = np.asarray(mask)
    if mask.dtype != np.bool_:
        raise TypeError(
            f"mask must be a boolean array (True = attend), got dtype {mask.dtype}; "
            "build it with a comparison, e.g. np.arange(T)[None, :] < lengths[:, None]"
        )
    try:
        fits = np.broadcast_shapes(mask.shape, shape) == tuple(shape)
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"mask of shape {mask.shape} does not broadcast to the scores' shape {tuple(shape)}")
    return mask


def masked_softmax(scores, mask, axis: int = -1) -> np.ndarray:
    """Softmax along ``axis`` over the positions where ``mask`` is True; masked positions get 0.

    .. math:: p_k = \\frac{\\mathbb{1}[\\text{mask}_k]\\, e^{s_k - m}}
              {\\sum_j \\mathbb{1}[\\text{mask}_j]\\, e^{s_j - m}}, \\quad
              m = \\max_{j:\\ \\text{mask}_j} s_j

    and ``p = 0`` on a row with no True position. Masked scores are replaced
    by :data:`MASKED_SCORE` (``-inf``) before the maximum, so they weigh
    exactly 0 whatever their value (even ``nan``); see "Masking" in the module
    docstring. With an all-True mask this is :func:`softmax`.

    Shapes: ``scores`` any float array, e.g. ``(N, heads, T_q, T_k)``;
    ``mask`` boolean, broadcastable to it without growing it, e.g. ``(N, 1,
    1, T_k)`` (padding) or ``(T_q, T_k)`` (causal); returns the scores' shape
    and dtype. A non-boolean mask raises ``TypeError``, one that does not
    broadcast ``ValueError``. Backward: :func:`masked_softmax_backward`.
    Chapter 8 (attention with padding and causal masks).
    """
    scores = check_float_array(scores, "scores", min_ndim=1)
    mask = _check_mask(mask, scores.shape)
    p = np.where(mask, scores, MASKED_SCORE)  # a new array of the scores' dtype
    m = p.max(axis=axis, keepdims=True)
    m[m == MASKED_SCORE] = 0.0  # fully masked rows: -inf - 0 = -inf, not nan
    p -= m
    with np.errstate(under="ignore"):
        np.exp(p, out=p)  # exactly 0 where masked
    total = p.sum(axis=axis, keepdims=True)
    total[total == 0.0] = 1.0  # a fully masked row: 0 / 1 = 0
    p /= total
    return p


def masked_softmax_backward(probs, dprobs, axis: int = -1) -> np.ndarray:
    """Gradient with respect to the scores of :func:`masked_softmax` (or :func:`softmax`).

    .. math:: \\frac{\\partial L}{\\partial s_k}
              = p_k \\Bigl(\\delta_k - \\textstyle\\sum_j p_j \\delta_j\\Bigr),
              \\qquad \\delta = \\frac{\\partial L}{\\partial p}

    Needs only the forward's output ``probs``: a masked position has
    ``p_k = 0``, so its gradient is 0, and a fully masked row gets all zeros.
    Shapes: ``probs`` and ``dprobs`` the same shape (e.g. ``(N, heads, T_q,
    T_k)``) -> that shape; float32 inputs give float32. Chapter 8.
    """
    probs = _as_float(probs, "probs")
    dprobs = _as_float(dprobs, "dprobs")
    if probs.shape != dprobs.shape:
        raise ValueError(f"dprobs must have the shape of probs {probs.shape}, got {dprobs.shape}")
    inner = np.sum(probs * dprobs, axis=axis, keepdims=True)  # (..., 1, ...)
    return probs * (dprobs - inner)
