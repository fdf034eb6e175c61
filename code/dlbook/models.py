"""Small model builders shared by the chapters.

``mlp`` stacks :class:`~dlbook.layers.Linear` layers with an activation
between them; chapter 1 uses it to compare activations at equal size.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .activations import Activation
from .core import Sequential, as_generator
from .layers import Linear

__all__ = ["mlp"]


def mlp(
    sizes: Sequence[int],
    activation: str = "relu",
    init: str = "uniform",
    rng: np.random.Generator | int = 0,
    dtype=np.float64,
    **act_params,
) -> Sequential:
    """A multilayer perceptron ``Linear -> act -> ... -> Linear`` (no activation at the end).

    ``sizes = (D, H1, ..., K)`` gives ``len(sizes) - 1`` Linear layers; weights
    are drawn by ``init`` (see :func:`dlbook.layers.init_weight`) from one
    Generator, so the same seed gives the same network for every activation.
    """
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2:
        raise ValueError(f"sizes needs at least an input and an output size, got {sizes}")
    gen = as_generator(rng)
    layers = []
    for i, (d_in, d_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(Linear(d_in, d_out, rng=gen, init=init, dtype=dtype))
        if i < len(sizes) - 2:
            layers.append(Activation(activation, **act_params))
    return Sequential(layers)
