"""Look inside a network: statistics of every layer's output and gradient.

Chapter 1 uses these to watch activations vanish, explode or stay
normalised through a deep stack; chapter 3 reuses them for initialisation
and chapter 5 for plain versus residual networks.
"""

from __future__ import annotations

import numpy as np

from .core import Sequential, as_generator, check_float_array

__all__ = ["layer_outputs", "forward_stats", "input_grad_norms", "dead_fraction"]


def _check_seq(model) -> Sequential:
    if not isinstance(model, Sequential):
        raise TypeError(f"expected a dlbook Sequential, got {type(model).__name__}")
    return model


def layer_outputs(model: Sequential, x: np.ndarray) -> list[np.ndarray]:
    """The output of every layer of ``model`` for input ``x`` (a list, one per layer)."""
    model = _check_seq(model)
    x = check_float_array(x, "x")
    outs = []
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
        o for o, layer in zip(layer_outputs(model, x), model.layers, strict=True)
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
