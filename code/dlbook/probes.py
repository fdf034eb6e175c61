"""Look inside a network: statistics of every layer's output and gradient.

Chapter 1 uses these to watch activations vanish, explode or stay
normalised through a deep stack; chapter 3 reuses them for initialisation
and chapter 5 for plain versus residual networks.
"""

from __future__ import annotations

import numpy as np

from .core import Sequential, as_generator, check_float_array, inference_mode

__all__ = [
    "layer_outputs",
    "forward_stats",
    "input_grad_norms",
    "dead_fraction",
    "singular_values",
    "effective_rank",
    "weight_grad_norms",
]


def _check_seq(model) -> Sequential:
    if not isinstance(model, Sequential):
        raise TypeError(f"expected a dlbook Sequential, got {type(model).__name__}")
    return model


def layer_outputs(model: Sequential, x: np.ndarray) -> list[np.ndarray]:
    """The output of every layer of ``model`` for input ``x`` (a list, one per layer), in inference mode."""
    model = _check_seq(model)
    x = check_float_array(x, "x")
    outs = []
    with inference_mode():  # nothing is kept for a backward pass
        for layer in model.layers:
            x = layer.forward(x)
            outs.append(x)
    return outs


def forward_stats(model: Sequential, x: np.ndarray, every: type | None = None) -> dict:
    """Mean and variance of each layer's output (all entries pooled).

    ``every`` keeps only layers of that class (e.g. ``Activation``) so a stack
    ``Linear, act, Linear, act, ...`` reports one row per hidden layer.
    Returns ``{"mean": (L,), "var": (L,)}`` arrays.
    """
    outs = [
        o
        for o, layer in zip(layer_outputs(model, x), model.layers, strict=True)
        if every is None or isinstance(layer, every)
    ]
    return {
        "mean": np.array([o.mean() for o in outs]),
        "var": np.array([o.var() for o in outs]),
    }


def input_grad_norms(model: Sequential, x: np.ndarray, rng=0, every: type | None = None) -> np.ndarray:
    """RMS of dL/d(input of each layer) after one backward pass of a random upstream gradient.

    The upstream gradient at the output is standard normal (seeded), so the
    result shows how gradient magnitude changes as it flows back to the
    first layer: entry ``i`` belongs to layer ``i`` (input side). ``every``
    keeps only layers of that class. Parameter gradients are zeroed afterwards.
    """
    model = _check_seq(model)
    out = model.forward(check_float_array(x, "x"))
    dout = as_generator(rng).standard_normal(out.shape).astype(out.dtype)
    norms = []
    for layer in reversed(model.layers):
        dout = layer.backward(dout)
        if every is None or isinstance(layer, every):
            norms.append(float(np.sqrt(np.mean(dout * dout))))
    model.zero_grad()
    return np.array(norms[::-1])


def dead_fraction(pre_activations: np.ndarray, axis: int = 0) -> float:
    """Fraction of units whose pre-activation is <= 0 for *every* input.

    A ReLU unit in that state outputs 0 and passes back zero gradient for
    the whole data set, so gradient descent cannot revive it: it is dead.
    ``pre_activations`` has shape ``(N, H)``; the result is a number in [0, 1].
    """
    z = check_float_array(pre_activations, "pre_activations", ndim=2)
    return float(np.mean(np.all(z <= 0, axis=axis)))


def singular_values(h: np.ndarray, center: bool = True) -> np.ndarray:
    """Singular values, largest first, of a batch of representations ``h (N, ...)``.

    Each example is flattened to one row, giving ``(N, D)``; with ``center``
    the mean row is subtracted first, so a representation shared by every
    example (which carries no information about which example it is) does
    not count. Returns ``min(N, D)`` values. Chapter 5.
    """
    h = check_float_array(h, "h", min_ndim=2)
    h2 = h.reshape(h.shape[0], -1).astype(np.float64)  # (N, ...) -> (N, D)
    if center:
        h2 = h2 - h2.mean(axis=0)
    return np.linalg.svd(h2, compute_uv=False)


def effective_rank(h: np.ndarray, center: bool = True) -> float:
    """Effective rank of Roy & Vetterli (2007): the exponential of the entropy of the singular values.

    .. math:: \\operatorname{erank}(h) = \\exp\\Big(-\\sum_i p_i \\log p_i\\Big), \\qquad
              p_i = \\frac{s_i}{\\sum_j s_j}

    with ``s`` from :func:`singular_values` (terms with ``p_i = 0`` count 0).
    It is 1 when all variation lies along one direction, ``k`` when ``k``
    singular values are equal and the rest zero, and it does not change when
    ``h`` is scaled. An all-zero (or, centred, constant) ``h`` gives 0.
    Roy & Vetterli (2007), *The effective rank: a measure of effective
    dimensionality*. Chapter 5 tracks it through plain and residual networks.
    """
    s = singular_values(h, center=center)
    total = s.sum()
    if total <= 0:
        return 0.0
    p = s[s > 0] / total
    return float(np.exp(-np.sum(p * np.log(p))))


def weight_grad_norms(
    model: Sequential, x: np.ndarray, y: np.ndarray, loss_fn
) -> tuple[list[str], np.ndarray]:
    """Norm of the loss gradient of every weight matrix or kernel, in forward order, for one batch.

    ``loss_fn(output, y) -> (loss, dout)`` as in :mod:`dlbook.losses`. Keeps
    the parameters named ``W`` (dense weights and convolution kernels) and
    leaves out those inside a ``shortcut`` (projections), so the entries are
    the weighted layers of the main path. Runs in the model's current mode
    (in training mode BatchNorm uses, and updates, batch statistics); the
    gradients are zeroed afterwards. Returns ``(names, norms)``. Chapter 5.
    """
    model = _check_seq(model)
    model.zero_grad()
    _, dout = loss_fn(model.forward(check_float_array(x, "x")), y)
    model.backward(dout)
    grads = model.grads
    names = [k for k in grads if k.rsplit(".", 1)[-1] == "W" and ".shortcut." not in f".{k}"]
    norms = np.array([float(np.linalg.norm(grads[k])) for k in names])
    model.zero_grad()
    return names, norms
