"""Losses, each computed stably and returning ``(loss, dlogits)``; and classification accuracy.

Every loss here takes the network's raw outputs (logits) rather than
probabilities: the log of a softmax or a sigmoid is computed with the
log-sum-exp and softplus identities, so it stays finite where
``log(softmax(z))`` would give ``-inf`` (chapter 3 shows the failure). The loss
is a Python ``float`` (accumulated in float64); the gradient has the logits'
shape and dtype and is that of the *mean* loss, ready for ``model.backward``.

``softmax`` and ``log_softmax`` live in :mod:`dlbook.numerics` (the one home
of the stable functions) and are re-exported here, where chapter 3 calls
them; ``binary_cross_entropy`` uses its softplus and sigmoid.

References
----------
- Szegedy, Vanhoucke, Ioffe, Shlens & Wojna (2016). Rethinking the Inception
  Architecture for Computer Vision (label smoothing).
- PyTorch documentation, ``torch.nn.functional.cross_entropy`` and
  ``binary_cross_entropy_with_logits`` (the semantics matched here).
"""

from __future__ import annotations

import numpy as np

from .core import check_float_array
from .numerics import _sigmoid_from_parts, _softplus_parts, log_softmax, softmax

__all__ = [
    "mse",
    "softmax",
    "log_softmax",
    "softmax_cross_entropy",
    "binary_cross_entropy",
    "accuracy",
]


def mse(pred: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean squared error over all elements and its gradient.

    .. math:: L = \\frac{1}{M}\\sum_i (p_i - t_i)^2, \\quad \\partial L/\\partial p = 2(p - t)/M

    Shapes: ``pred`` and ``target`` any same shape (``M`` elements). Chapter 1.
    """
    pred = check_float_array(pred, "pred")
    target = np.asarray(target, dtype=pred.dtype)
    if pred.shape != target.shape:
        raise ValueError(f"pred and target shapes differ: {pred.shape} vs {target.shape}")
    diff = pred - target
    return float(np.mean(diff * diff)), (2.0 / diff.size) * diff


def _check_logits(logits) -> np.ndarray:
    logits = check_float_array(logits, "logits")
    if logits.ndim < 2 or logits.shape[-1] < 1:
        raise ValueError(f"logits must have shape (N, K) or (N, ..., K) with K >= 1, got {logits.shape}")
    return logits


def _check_labels(y, logits_shape: tuple, ignore_index) -> tuple[np.ndarray, np.ndarray | None]:
    """Check integer labels against logits ``(..., K)``; return ``y`` flat and the kept-positions mask."""
    if ignore_index is not None and (
        isinstance(ignore_index, bool) or not isinstance(ignore_index, (int, np.integer))
    ):
        raise TypeError(f"ignore_index must be an int or None, got {type(ignore_index).__name__}")
    y = np.asarray(y)
    if not np.issubdtype(y.dtype, np.integer):
        raise TypeError(f"labels y must be integers, got dtype {y.dtype}")
    lead, k = logits_shape[:-1], logits_shape[-1]
    if y.shape != lead:
        raise ValueError(
            f"labels y must have shape {lead} to match logits of shape {logits_shape}, "
            f"got y of shape {y.shape}"
        )
    y = y.reshape(-1)
    keep = None if ignore_index is None else y != ignore_index
    checked = y if keep is None else y[keep]
    if checked.size and (checked.min() < 0 or checked.max() >= k):
        also = "" if ignore_index is None else f" (or equal ignore_index={ignore_index})"
        raise ValueError(
            f"labels must lie in [0, {k - 1}]{also}, got values in [{checked.min()}, {checked.max()}]"
        )
    return y, keep


def softmax_cross_entropy(
    logits: np.ndarray,
    y: np.ndarray,
    label_smoothing: float = 0.0,
    ignore_index: int | None = None,
) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of integer labels under ``softmax(logits)``, with optional label smoothing.

    With ``p = softmax(z_n)`` over the ``K`` classes and the smoothed target
    ``q_n = (1 - eps) e_{y_n} + eps / K`` (``eps = label_smoothing``):

    .. math:: L = \\frac{1}{|S|}\\sum_{n \\in S} -\\sum_k q_{nk} \\log p_{nk}, \\qquad
              \\frac{\\partial L}{\\partial z_n} = \\frac{p_n - q_n}{|S|}\\ (n \\in S),\\ 0\\ (n \\notin S)

    where ``S`` is the set of positions whose label is not ``ignore_index``
    (all positions when it is ``None``). Computed from ``log p = z - m -
    log sum exp(z - m)`` (:func:`dlbook.numerics.log_softmax`, fused here with
    the loss so each exponential is computed once), so logits of any size
    stay finite.

    Shapes: ``logits (N, K)`` or ``(N, ..., K)`` (e.g. ``(N, T, K)`` for
    sequences), ``y`` integers of shape ``(N, ...)`` with values in
    ``[0, K)`` or equal to ``ignore_index``; returns ``(loss, dlogits)`` with
    ``dlogits`` of the logits' shape and dtype.

    Equals ``torch.nn.functional.cross_entropy(logits, y,
    label_smoothing=eps, ignore_index=i)`` (with the class axis moved to 1
    for 3-D logits). One deliberate difference: when every position is
    ignored, PyTorch returns ``nan`` (0/0); this returns loss ``0.0`` and a
    zero gradient, so a fully padded batch does not poison training.
    Label smoothing: Szegedy et al. (2016), *Rethinking the Inception
    Architecture for Computer Vision*. Chapter 3.
    """
    logits = _check_logits(logits)
    if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, (int, float, np.floating)):
        raise TypeError(f"label_smoothing must be a number in [0, 1], got {type(label_smoothing).__name__}")
    eps = float(label_smoothing)
    if not 0.0 <= eps <= 1.0:
        raise ValueError(f"label_smoothing must lie in [0, 1], got {label_smoothing!r}")
    y, keep = _check_labels(y, logits.shape, ignore_index)
    k = logits.shape[-1]
    z = logits.reshape(-1, k)  # (M, K): every leading position is a row
    if keep is not None:
        n_kept = int(np.count_nonzero(keep))
        if n_kept == 0:
            return 0.0, np.zeros_like(logits)
        if n_kept < len(y):
            z, y = z[keep], y[keep]  # only the scored rows
        else:
            keep = None
    n = len(y)
    if n == 0:
        return 0.0, np.zeros_like(logits)
    rows = np.arange(n)
    y = y.astype(np.intp, copy=False)

    shifted = z - z.max(axis=1, keepdims=True)  # z - m, every entry <= 0
    picked = shifted[rows, y]  # (M,)
    row_sum = shifted.sum(axis=1) if eps > 0.0 else None
    # e^{-2e4} = 0 and a gradient of 1e-310 are the right answers: underflow is no error here
    with np.errstate(under="ignore"):
        probs = np.exp(shifted, out=shifted)  # reuse the buffer
        total = probs.sum(axis=1)  # (M,), in [1, K]
        log_total = np.log(total)
        nll = log_total - picked  # -log p_y
        if eps > 0.0:
            # -sum_k (eps/K) log p_k = eps * (log_total - row_sum / K)
            per_row = (1.0 - eps) * nll + eps * (log_total - row_sum * (1.0 / k))
        else:
            per_row = nll
        loss = float(per_row.sum(dtype=np.float64)) / n

        probs /= total[:, None]  # softmax
        probs[rows, y] -= 1.0 - eps
        if eps > 0.0:
            probs -= eps / k
        probs *= 1.0 / n
    if keep is None:
        return loss, probs.reshape(logits.shape)
    dlogits = np.zeros((keep.size, k), dtype=logits.dtype)
    dlogits[keep] = probs
    return loss, dlogits.reshape(logits.shape)


def accuracy(logits: np.ndarray, y: np.ndarray, ignore_index: int | None = None) -> float:
    """Fraction of positions whose largest logit is the label's.

    .. math:: \\operatorname{acc} = \\frac{1}{|S|}\\sum_{n \\in S} [\\operatorname{argmax}_k z_{nk} = y_n]

    Ties go to the lowest class index (``np.argmax``). Shapes: ``logits (N,
    K)`` or ``(N, ..., K)``, ``y`` integers ``(N, ...)``; positions labelled
    ``ignore_index`` are left out of ``S``; if none is left, ``ValueError``.
    Chapter 3.
    """
    logits = _check_logits(logits)
    y, keep = _check_labels(y, logits.shape, ignore_index)
    pred = logits.reshape(-1, logits.shape[-1]).argmax(axis=1)  # (M,)
    correct = pred == y
    if keep is not None:
        correct = correct[keep]
    if correct.size == 0:
        raise ValueError("accuracy of no positions: every label is ignore_index (or the batch is empty)")
    return float(np.count_nonzero(correct)) / correct.size


def binary_cross_entropy(
    logits: np.ndarray, y: np.ndarray, pos_weight: float | np.ndarray | None = None
) -> tuple[float, np.ndarray]:
    """Mean binary cross-entropy of targets in [0, 1] under ``sigmoid(logits)``.

    With ``w = pos_weight`` (1 when ``None``), ``s = softplus``:

    .. math:: L = \\frac{1}{M}\\sum_i w\\, t_i\\, s(-z_i) + (1 - t_i)\\, s(z_i), \\quad
              \\frac{\\partial L}{\\partial z_i} = \\frac{\\sigma(z_i)(1 - t_i + w t_i) - w t_i}{M}

    ``softplus(z) = max(z, 0) + log(1 + e^{-|z|})`` never overflows
    (:mod:`dlbook.numerics`; sigma comes from the same exponential). Shapes:
    ``logits`` and targets ``y`` the same shape (``M`` elements);
    ``pos_weight`` a number or an array broadcastable to it (e.g. one weight
    per class on the last axis). Equals PyTorch's
    ``binary_cross_entropy_with_logits(z, t, pos_weight=w)``. Chapter 3.
    """
    logits = check_float_array(logits, "logits")
    t = np.asarray(y, dtype=logits.dtype)
    if t.shape != logits.shape:
        raise ValueError(f"targets must have the logits' shape {logits.shape}, got {t.shape}")
    w = None
    if pos_weight is not None:
        w = np.asarray(pos_weight)
        if not (np.issubdtype(w.dtype, np.floating) or np.issubdtype(w.dtype, np.integer)):
            raise TypeError(f"pos_weight must be a number or a float array, got dtype {w.dtype}")
        w = w.astype(logits.dtype) if w.ndim else float(w)
        try:
            np.broadcast_shapes(np.shape(w), logits.shape)
        except ValueError:
            raise ValueError(
                f"pos_weight of shape {np.shape(w)} does not broadcast to the logits' shape {logits.shape}"
            ) from None
    with np.errstate(under="ignore"):  # tiny terms round to 0: no error (see softmax_cross_entropy)
        sp, e, r = _softplus_parts(logits)  # softplus(z), exp(-|z|), ...
        sig = _sigmoid_from_parts(logits, e, r)  # ... and sigma(z) from the same exponential
        if w is None:
            loss = sp - t * logits
            grad = sig - t
        else:
            wt = t * w
            loss = sp * (1.0 - t + wt) - wt * logits
            grad = sig * (1.0 - t + wt) - wt
        if logits.size == 0:
            return 0.0, grad
        return float(loss.sum(dtype=np.float64)) / logits.size, grad * (1.0 / logits.size)
