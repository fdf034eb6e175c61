"""Losses, each computed stably and returning ``(loss, dlogits)``.

Every loss here takes the network's raw outputs (logits) rather than
probabilities: the log of a softmax or a sigmoid is computed with the
log-sum-exp and softplus identities, so it stays finite where
``log(softmax(z))`` would give ``-inf`` (chapter 3 shows the failure).
"""

from __future__ import annotations

import numpy as np

from .core import check_float_array

__all__ = ["mse", "softmax", "log_softmax", "softmax_cross_entropy", "binary_cross_entropy"]


def _check_labels(y: np.ndarray, n: int, n_classes: int) -> np.ndarray:
    y = np.asarray(y)
    if not np.issubdtype(y.dtype, np.integer):
        raise TypeError(f"labels must be integers, got dtype {y.dtype}")
    if y.shape != (n,):
        raise ValueError(f"labels must have shape ({n},) to match the logits, got {y.shape}")
    if n and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(
            f"labels must lie in [0, {n_classes - 1}], got values in [{y.min()}, {y.max()}]"
        )
    return y


def mse(pred: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean squared error over all elements and its gradient.

    .. math:: L = \\frac{1}{M}\\sum_i (p_i - t_i)^2, \\quad \\partial L/\\partial p = 2(p - t)/M
    """
    pred = check_float_array(pred, "pred")
    target = np.asarray(target, dtype=pred.dtype)
    if pred.shape != target.shape:
        raise ValueError(f"pred and target shapes differ: {pred.shape} vs {target.shape}")
    diff = pred - target
    return float(np.mean(diff * diff)), (2.0 / diff.size) * diff


def log_softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    """``z - logsumexp(z)``, with the maximum subtracted first so nothing overflows."""
    z = check_float_array(z, "z")
    shifted = z - z.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    """``exp(z) / sum(exp(z))`` along ``axis``, computed stably."""
    return np.exp(log_softmax(z, axis))


def softmax_cross_entropy(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of integer labels under ``softmax(logits)``.

    .. math:: L = -\\frac{1}{N}\\sum_n \\log \\operatorname{softmax}(z_n)_{y_n},
              \\quad \\partial L / \\partial z_n = (\\operatorname{softmax}(z_n) - e_{y_n}) / N

    Shapes: ``logits (N, K)``, ``y (N,)`` integers in ``[0, K)``.
    """
    logits = check_float_array(logits, "logits", ndim=2)
    n, k = logits.shape
    y = _check_labels(y, n, k)
    logp = log_softmax(logits)
    loss = -float(logp[np.arange(n), y].mean())
    dlogits = np.exp(logp)
    dlogits[np.arange(n), y] -= 1.0
    dlogits /= n
    return loss, dlogits


def binary_cross_entropy(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean binary cross-entropy of 0/1 targets under ``sigmoid(logits)``.

    .. math:: L = \\frac{1}{M}\\sum_i \\operatorname{softplus}(z_i) - t_i z_i,
              \\quad \\partial L/\\partial z_i = (\\sigma(z_i) - t_i)/M

    ``softplus(z) = max(z, 0) + log(1 + e^{-|z|})`` never overflows.
    """
    logits = check_float_array(logits, "logits")
    t = np.asarray(y, dtype=logits.dtype)
    if t.shape != logits.shape:
        raise ValueError(f"targets must have the logits' shape {logits.shape}, got {t.shape}")
    e = np.exp(-np.abs(logits))
    loss = np.maximum(logits, 0.0) + np.log1p(e) - t * logits
    sig = np.where(logits >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    return float(loss.mean()), (sig - t) / logits.size
