"""Attention of chapter 8: scaled dot-product (Vaswani et al.) and additive (Bahdanau et al.).

An attention layer scores every query against every key, turns each query's
scores into weights with a (masked) softmax over the keys, and returns the
weighted average of the values:

.. math:: \\alpha_{ij} = \\frac{\\exp s(q_i, k_j)}{\\sum_{j'} \\exp s(q_i, k_{j'})}, \\qquad
          c_i = \\sum_j \\alpha_{ij} v_j

The two classes differ only in the score ``s``:

.. code-block:: text

    context, weights = DotProductAttention()(q, k, v, mask=None)
    context, weights = AdditiveAttention(Dq, Dk, H, rng=0)(q, k, v, mask=None)
    dq, dk, dv       = attention.backward(dcontext, dweights=None)

    q (N, Tq, Dq)   k (N, Tk, Dk)   v (N, Tk, Dv)
    context (N, Tq, Dv)   weights (N, Tq, Tk)   (each row of weights sums to 1)

``weights`` is returned so a chapter can plot it as an alignment heat map;
the layer keeps the same array for its backward pass, so treat it as
read-only. ``backward`` takes the gradient of both outputs, ``dweights`` may
be ``None`` (the usual case: only the context feeds the rest of the model),
and ``dcontext`` may be ``None`` too (zero). The mask gets no gradient.

**Extra leading axes.** Every input may carry more axes between the batch
axis and the last two, e.g. heads: ``q (N, h, Tq, d)``, ``k (N, h, Tk, d)``,
``v (N, h, Tk, Dv)`` give ``context (N, h, Tq, Dv)`` and ``weights (N, h,
Tq, Tk)``. The leading axes of ``q``, ``k`` and ``v`` must be equal.

Masks
-----
``mask`` is boolean, **True = attend** (False hides a key from a query), the
convention of :func:`dlbook.numerics.masked_softmax` and of PyTorch's
``scaled_dot_product_attention``. Masked positions get weight exactly 0; a
query whose keys are *all* masked (a padded query) gets all-zero weights,
hence a zero context and zero gradients, not NaN. The mask's axes are read
by name, not by NumPy's right-aligned broadcasting, so that the batch axis
of a mask always meets the batch axis of the scores ``(N, ..., Tq, Tk)``:

- ``(N, Tk)``: key padding, one row per sequence, the same for every query
  (and every head): read as ``(N, 1, ..., 1, Tk)``;
- ``(Tq, Tk)``: the same for every sequence, e.g. a causal mask
  ``np.tril(np.ones((T, T), bool))``: read as ``(1, ..., 1, Tq, Tk)``;
- ``(N, Tq, Tk)``: one matrix per sequence, shared by the heads: read as
  ``(N, 1, ..., 1, Tq, Tk)``; any of its axes may be 1, so ``(N, 1, Tk)``
  is key padding and ``(1, Tq, Tk)`` a shared mask, with no ambiguity;
- a mask with as many axes as the scores broadcasts as NumPy would, e.g.
  ``(N, h, Tq, Tk)`` or ``(N, 1, 1, Tk)``.

A 2-D mask is ambiguous when ``N == Tq`` (is ``(4, Tk)`` four sequences'
padding or four queries' rows?); it is then refused with a ``ValueError``
that names the 3-D forms, which mean the same whatever the sizes. Code that
must work for every batch size (a last, smaller batch) should pass those.

References
----------
- Bahdanau, Cho & Bengio (2015). Neural Machine Translation by Jointly
  Learning to Align and Translate. ICLR (additive attention).
- Luong, Pham & Manning (2015). Effective Approaches to Attention-based Neural
  Machine Translation. EMNLP (the "dot" and "general" scores).
- Vaswani et al. (2017). Attention Is All You Need. NeurIPS (scaled
  dot-product attention, masks).
- Zhang, Lipton, Li & Smola, *Dive into Deep Learning*, chapter 11
  (attention scoring functions).
"""

from __future__ import annotations

import math

import numpy as np

from . import init as _init
from .core import (
    Module,
    as_generator,
    check_dtype,
    check_float_array,
    check_optional_dout,
    check_positive_int,
)
from .numerics import masked_softmax, softmax

__all__ = ["DotProductAttention", "AdditiveAttention", "attention_mask"]


def _swap(x: np.ndarray) -> np.ndarray:
    """The transpose of the last two axes, a view: ``(..., A, B) -> (..., B, A)``."""
    return x.swapaxes(-1, -2)


def attention_mask(mask, scores_shape: tuple, who: str = "attention") -> np.ndarray:
    """``mask`` reshaped (a view) so that it broadcasts to ``scores_shape = (N, ..., Tq, Tk)``.

    Applies the rules of the module docstring ("Masks"): ``(N, Tk)`` is key
    padding, ``(Tq, Tk)`` is shared by the batch, ``(N, Tq, Tk)`` is shared
    by any middle axes (heads), and a mask with the scores' number of axes
    broadcasts as is. Every axis must equal the scores' axis or be 1.
    A non-boolean mask raises ``TypeError``; a shape that fits none of the
    forms, or a 2-D mask when ``N == Tq``, raises ``ValueError``. Chapter 8.
    """
    if isinstance(mask, (list, tuple)):
        mask = np.asarray(mask)
    if not isinstance(mask, np.ndarray):
        raise TypeError(f"{who}: mask must be a boolean array (True = attend), got {type(mask).__name__}")
    if mask.dtype != np.bool_:
        raise TypeError(
            f"{who}: mask must be a boolean array (True = attend), got dtype {mask.dtype}; "
            "build it with a comparison, e.g. np.arange(Tk)[None, :] < lengths[:, None]"
        )
    scores_shape = tuple(scores_shape)
    lead = len(scores_shape) - 2  # the axes before (Tq, Tk): N and any heads
    N, Tq, Tk = scores_shape[0], scores_shape[-2], scores_shape[-1]
    expected = (
        f"(N, Tk) = {(N, Tk)} (key padding), (Tq, Tk) = {(Tq, Tk)} (shared by the batch), "
        f"(N, Tq, Tk) = {(N, Tq, Tk)} (any axis may be 1), or {len(scores_shape)} axes that "
        f"broadcast to the scores {scores_shape}"
    )
    shape = mask.shape
    if mask.ndim == len(scores_shape):
        view = mask
    elif mask.ndim == 3:  # (N, Tq, Tk): one mask per sequence, the same for every head
        view = mask.reshape(shape[:1] + (1,) * (lead - 1) + shape[1:])
    elif mask.ndim == 2:
        rows = shape[0]
        if rows == N and rows == Tq and rows != 1:
            raise ValueError(
                f"{who}: a 2-D mask of shape {shape} is ambiguous when N == Tq == {N}: pass key "
                f"padding as (N, 1, Tk) = {(N, 1, Tk)} (mask[:, None, :]) or a mask shared by the "
                f"batch as (1, Tq, Tk) = {(1, Tq, Tk)} (mask[None])"
            )
        if rows == N and rows != 1:  # (N, Tk): key padding
            view = mask.reshape((N,) + (1,) * lead + shape[1:])
        else:  # (Tq, Tk) or (1, Tk): the same for every sequence
            view = mask.reshape((1,) * lead + shape)
    else:
        ndims = "2-D or 3-D" if lead == 1 else f"2-D, 3-D or {len(scores_shape)}-D"
        raise ValueError(f"{who}: mask must be {ndims}: {expected}; got shape {shape}")
    if any(m not in (1, s) for m, s in zip(view.shape, scores_shape, strict=True)):
        raise ValueError(f"{who}: mask of shape {shape} does not fit; expected {expected}")
    return view


class _Attention(Module):
    """What both attention layers share: input checks, the softmax, the context and their backward.

    A subclass defines ``_check_features(q, k)``, ``_scores(q, k) -> (scores,
    cache)`` and ``_scores_backward(dscores, cache) -> (dq, dk)`` (it may
    overwrite ``dscores``, a new array); one tape entry per forward holds
    ``v``, the weights and the subclass's cache.
    """

    def _check_features(self, q: np.ndarray, k: np.ndarray) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _check_inputs(self, q, k, v) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        who = type(self).__name__
        q, k, v = (check_float_array(a, name) for a, name in ((q, "q"), (k, "k"), (v, "v")))
        for a, name in ((q, "q"), (k, "k"), (v, "v")):
            if a.ndim < 3:
                raise ValueError(
                    f"{who} expects {name} of shape (N, T, D) or (N, ..., T, D), got shape {a.shape}"
                )
        if not q.shape[:-2] == k.shape[:-2] == v.shape[:-2]:
            raise ValueError(
                f"{who}: q, k and v must have the same leading axes (N, ...), got q {q.shape}, "
                f"k {k.shape}, v {v.shape}"
            )
        if k.shape[-2] != v.shape[-2]:
            raise ValueError(
                f"{who}: k and v must have the same number of keys Tk (axis -2), got k {k.shape} "
                f"and v {v.shape}"
            )
        if k.shape[-2] == 0:
            raise ValueError(f"{who} needs at least one key, got k of shape {k.shape}")
        if not q.dtype == k.dtype == v.dtype:
            raise TypeError(
                f"{who}: q, k and v must have the same dtype, got {q.dtype}, {k.dtype} and {v.dtype}"
            )
        self._check_features(q, k)
        return q, k, v

    def forward(self, q: np.ndarray, k: np.ndarray, v: np.ndarray, mask=None):
        """``q (N, Tq, Dq), k (N, Tk, Dk), v (N, Tk, Dv)`` -> ``(context (N, Tq, Dv), weights (N, Tq, Tk))``.

        ``mask`` (bool, True = attend): ``(N, Tk)``, ``(Tq, Tk)``, ``(N, Tq,
        Tk)`` or the scores' full shape; see the module docstring.
        """
        q, k, v = self._check_inputs(q, k, v)
        scores, cache = self._scores(q, k)  # (N, ..., Tq, Tk)
        if mask is None:
            weights = softmax(scores, axis=-1)
        else:
            weights = masked_softmax(scores, attention_mask(mask, scores.shape, type(self).__name__))
        context = weights @ v  # (N, ..., Tq, Tk) @ (N, ..., Tk, Dv) -> (N, ..., Tq, Dv)
        self._save(v, weights, cache)
        return context, weights

    def backward(self, dcontext, dweights=None):
        """``(dcontext (N, Tq, Dv), dweights (N, Tq, Tk) or None)`` -> ``(dq, dk, dv)``.

        Either upstream gradient may be ``None`` (zero); the parameter
        gradients, if any, are accumulated.
        """
        v, weights, cache = self._saved()
        who = type(self).__name__
        context_shape = weights.shape[:-1] + v.shape[-1:]
        dcontext = check_optional_dout(dcontext, context_shape, weights.dtype, who, "dcontext")
        dweights = check_optional_dout(dweights, weights.shape, weights.dtype, who, "dweights")
        if dcontext is None:
            dv = np.zeros_like(v)
            dw = np.zeros_like(weights) if dweights is None else dweights.copy()
        else:
            # c = alpha v:  d alpha = dc v^T,  dv = alpha^T dc
            dw = dcontext @ _swap(v)  # (N, ..., Tq, Dv) @ (N, ..., Dv, Tk) -> (N, ..., Tq, Tk)
            if dweights is not None:
                dw += dweights
            dv = _swap(weights) @ dcontext  # (N, ..., Tk, Tq) @ (N, ..., Tq, Dv) -> (N, ..., Tk, Dv)
        # the softmax's backward, ds = alpha (d alpha - sum_j alpha_j d alpha_j), is
        # numerics.masked_softmax_backward written in place into dw: its three temporaries made
        # a dot-product call twice as slow (5.9 -> 3.0 ms at N=32, T=64, d=128, float32: fresh
        # memory is page-faulted in on every call). 0 wherever a weight is 0 (masked keys).
        inner = np.einsum("...k,...k->...", weights, dw)  # (N, ..., Tq)
        dw -= inner[..., None]
        dscores = np.multiply(dw, weights, out=dw)
        dq, dk = self._scores_backward(dscores, cache)
        return dq, dk, dv



# ---------------------------------------------------------------------------
# Dot-product attention
# ---------------------------------------------------------------------------
class DotProductAttention(_Attention):
    """(Scaled) dot-product attention: the score of a query and a key is their dot product.

    .. math:: \\operatorname{Attention}(Q, K, V) = \\operatorname{softmax}\\Bigl(\\frac{Q K^\\top}{\\sqrt{d}}
              \\Bigr) V, \\qquad S = \\frac{Q K^\\top}{\\sqrt d}, \\quad
              \\frac{\\partial L}{\\partial Q} = \\frac{\\delta S\\, K}{\\sqrt d}, \\quad
              \\frac{\\partial L}{\\partial K} = \\frac{\\delta S^\\top Q}{\\sqrt d}

    ``forward(q (N, Tq, d), k (N, Tk, d), v (N, Tk, Dv), mask=None) ->
    (context (N, Tq, Dv), weights (N, Tq, Tk))``; ``backward(dcontext,
    dweights=None) -> (dq, dk, dv)``. Queries and keys share the size ``d``;
    extra leading axes (heads) are allowed, ``(N, h, Tq, d)``. ``mask`` is
    boolean, True = attend, of shape ``(N, Tk)`` (key padding), ``(Tq, Tk)``
    (e.g. causal) or ``(N, Tq, Tk)``; see the module docstring for how each
    broadcasts over heads. No parameters.

    ``scaled=True`` divides the scores by ``sqrt(d)`` (Vaswani et al. 2017):
    for queries and keys with unit-variance entries the dot product has
    variance ``d``, and unscaled scores of that size saturate the softmax
    and its gradient vanishes (chapter 8 explains it). ``scaled=False`` is
    Luong et al.'s (2015) "dot" score. Equal to PyTorch's
    ``F.scaled_dot_product_attention`` with a boolean ``attn_mask``, fully
    masked queries included (zeros in both; ``masked_fill(-inf)`` followed
    by a softmax gives NaN there).
    Chapter 8.
    """

    def __init__(self, scaled: bool = True) -> None:
        super().__init__()
        if not isinstance(scaled, (bool, np.bool_)):
            raise TypeError(f"scaled must be True or False, got {scaled!r}")
        self.scaled = bool(scaled)

    def _check_features(self, q: np.ndarray, k: np.ndarray) -> None:
        if q.shape[-1] != k.shape[-1]:
            raise ValueError(
                f"DotProductAttention: q and k must have the same feature size d (last axis), "
                f"got q {q.shape} and k {k.shape}"
            )

    def _scores(self, q: np.ndarray, k: np.ndarray):
        scores = q @ _swap(k)  # (N, ..., Tq, d) @ (N, ..., d, Tk) -> (N, ..., Tq, Tk)
        if self.scaled:
            scores *= 1.0 / math.sqrt(q.shape[-1])  # a Python float: float32 stays float32
        return scores, (q, k)

    def _scores_backward(self, dscores: np.ndarray, cache):
        q, k = cache
        if self.scaled:
            dscores *= 1.0 / math.sqrt(q.shape[-1])  # the gradient of s / sqrt(d), for both products
        dq = dscores @ k  # (N, ..., Tq, Tk) @ (N, ..., Tk, d) -> (N, ..., Tq, d)
        dk = _swap(dscores) @ q  # (N, ..., Tk, Tq) @ (N, ..., Tq, d) -> (N, ..., Tk, d)
        return dq, dk

    def __repr__(self) -> str:
        return f"DotProductAttention(scaled={self.scaled})"


# ---------------------------------------------------------------------------
# Additive attention
# ---------------------------------------------------------------------------
class AdditiveAttention(_Attention):
    """Additive (Bahdanau) attention: the score is a one-hidden-layer network of the query and the key.

    .. math:: s_{ij} = v^\\top \\tanh(q_i W_q + k_j W_k), \\qquad
              \\delta z_{ijh} = \\delta s_{ij}\\, v_h (1 - a_{ijh}^2), \\quad a = \\tanh(z)

    and the weights, context and masks as in :class:`DotProductAttention`.
    ``forward(q (N, Tq, Dq), k (N, Tk, Dk), v (N, Tk, Dv), mask=None) ->
    (context (N, Tq, Dv), weights (N, Tq, Tk))``; ``backward(dcontext,
    dweights=None) -> (dq, dk, dv)``, accumulating the parameter gradients.
    Queries and keys may have different sizes (a decoder state and encoder
    states); extra leading axes are allowed as for dot-product attention.

    Parameters: ``W_q (Dq, H)``, ``W_k (Dk, H)`` and ``v (H,)`` (the
    parameter ``v``, Bahdanau's :math:`v_a`, not the values), each drawn like
    :class:`~dlbook.layers.Linear`'s weights, uniform on ``[-1/sqrt(fan_in),
    1/sqrt(fan_in)]`` (PyTorch's default; d2l's ``AdditiveAttention`` too),
    from ``rng`` (a seed or a Generator, required). No biases, as in the
    paper: a bias inside the ``tanh`` would only shift ``q W_q``, and one
    outside it adds the same number to every score of a query, which the
    softmax cancels.

    **Memory.** The sum inside the ``tanh`` is formed for every query-key
    pair at once, an ``(N, Tq, Tk, H)`` array kept for the backward pass:
    ``N * Tq * Tk * H`` numbers, e.g. 32 * 64 * 64 * 128 float32 = 67 MB.
    Fine at the book's sizes; the reason dot-product attention, which needs
    only ``(N, Tq, Tk)``, is what long sequences use.

    Bahdanau, Cho & Bengio (2015), *Neural Machine Translation by Jointly
    Learning to Align and Translate*. Chapter 8.
    """

    def __init__(
        self, query_size: int, key_size: int, hidden: int, *, rng: np.random.Generator | int, dtype=np.float64
    ) -> None:
        super().__init__()
        self.query_size = check_positive_int(query_size, "query_size")
        self.key_size = check_positive_int(key_size, "key_size")
        self.hidden = check_positive_int(hidden, "hidden")
        dt = check_dtype(dtype)
        gen = as_generator(rng)
        self.params = {
            "W_q": _init.torch_default(self.query_size, self.hidden, gen, dtype=dt),
            "W_k": _init.torch_default(self.key_size, self.hidden, gen, dtype=dt),
            "v": _init.torch_default(self.hidden, 1, gen, dtype=dt, shape=(self.hidden,)),
        }

    def _check_features(self, q: np.ndarray, k: np.ndarray) -> None:
        for a, name, size, what in (
            (q, "q", self.query_size, "query_size"),
            (k, "k", self.key_size, "key_size"),
        ):
            if a.shape[-1] != size:
                raise ValueError(
                    f"AdditiveAttention expects {name} with {what} = {size} features (last axis), "
                    f"got shape {a.shape}"
                )

    def _scores(self, q: np.ndarray, k: np.ndarray):
        dt = q.dtype
        H = self.hidden
        W_q, W_k, w_v = (self._params[key].astype(dt, copy=False) for key in ("W_q", "W_k", "v"))
        q_proj = (q.reshape(-1, self.query_size) @ W_q).reshape(q.shape[:-1] + (H,))  # (N, ..., Tq, H)
        k_proj = (k.reshape(-1, self.key_size) @ W_k).reshape(k.shape[:-1] + (H,))  # (N, ..., Tk, H)
        # every query-key pair: (N, ..., Tq, 1, H) + (N, ..., 1, Tk, H) -> (N, ..., Tq, Tk, H)
        hidden = np.add(q_proj[..., :, None, :], k_proj[..., None, :, :])
        np.tanh(hidden, out=hidden)
        scores = np.einsum("...h,h->...", hidden, w_v)  # (N, ..., Tq, Tk); faster than matmul by a vector
        return scores, (q, k, hidden)

    def _scores_backward(self, dscores: np.ndarray, cache):
        q, k, hidden = cache
        dt = dscores.dtype
        W_q, W_k, w_v = (self._params[key].astype(dt, copy=False) for key in ("W_q", "W_k", "v"))
        # s = a v:  dv = sum over all pairs of ds * a
        self._accumulate("v", np.einsum("m,mh->h", dscores.reshape(-1), hidden.reshape(-1, self.hidden)))
        # dz_ijh = ds_ij v_h (1 - a_ijh^2); `hidden` is not needed after this backward, so
        # 1 - a^2 overwrites it (no second (N, ..., Tq, Tk, H) array)
        g = np.multiply(hidden, hidden, out=hidden)
        np.subtract(1.0, g, out=g)
        # q_proj_i enters every pair (i, j), k_proj_j every pair (., j): sum dz over keys / queries
        dq_proj = np.einsum("...qk,...qkh->...qh", dscores, g) * w_v  # (N, ..., Tq, H)
        dk_proj = np.einsum("...qk,...qkh->...kh", dscores, g) * w_v  # (N, ..., Tk, H)
        dq_proj2 = dq_proj.reshape(-1, self.hidden)  # (M, H), M = N * ... * Tq
        dk_proj2 = dk_proj.reshape(-1, self.hidden)  # (M_k, H), M_k = N * ... * Tk
        self._accumulate("W_q", q.reshape(-1, self.query_size).T @ dq_proj2)  # (Dq, M) @ (M, H)
        self._accumulate("W_k", k.reshape(-1, self.key_size).T @ dk_proj2)
        dq = (dq_proj2 @ W_q.T).reshape(q.shape)  # (M, H) @ (H, Dq) -> (N, ..., Tq, Dq)
        dk = (dk_proj2 @ W_k.T).reshape(k.shape)
        return dq, dk

    def __repr__(self) -> str:
        return f"AdditiveAttention({self.query_size}, {self.key_size}, hidden={self.hidden})"
