"""Small model builders shared by the chapters.

``mlp`` stacks :class:`~dlbook.layers.Linear` layers with an activation
between them; chapter 1 uses it to compare activations at equal size, chapter
3 adds normalisation and dropout to it. ``small_cnn`` is chapter 4's
convolutional network for 8x8 digits (and the image reader of chapter 6's
CNN-LSTM).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .activations import Activation
from .conv import Conv2d, MaxPool2d
from .core import Module, Sequential, as_generator, check_positive_int
from .layers import BatchNorm1d, BatchNorm2d, Dropout, Flatten, LayerNorm, Linear

__all__ = ["mlp", "conv_bn_relu", "small_cnn"]

_NORMS = {"batch": BatchNorm1d, "layer": LayerNorm}


def mlp(
    sizes: Sequence[int],
    activation: str = "relu",
    init: str = "uniform",
    *,
    rng: np.random.Generator | int,
    dtype=np.float64,
    dropout: float = 0.0,
    norm: str | None = None,
    **act_params,
) -> Sequential:
    """A multilayer perceptron ``Linear -> [norm] -> act -> [dropout] -> ... -> Linear``.

    .. math:: h_0 = x, \\quad
              h_\\ell = \\operatorname{drop}(f(\\operatorname{norm}(h_{\\ell-1} W_\\ell + b_\\ell))),
              \\quad \\text{logits} = h_{L-1} W_L + b_L

    ``sizes = (D, H1, ..., K)`` gives ``len(sizes) - 1`` Linear layers and no
    activation after the last. Shapes: ``x (N, D) -> (N, K)``.

    - ``activation`` (with ``act_params``, e.g. ``negative_slope=0.2``) is any
      elementwise entry of :mod:`dlbook.activations`;
    - ``init`` names the weight initialiser (see :func:`dlbook.layers.init_weight`);
    - ``norm``: ``None``, ``"batch"`` (:class:`~dlbook.layers.BatchNorm1d`) or
      ``"layer"`` (:class:`~dlbook.layers.LayerNorm`) between each hidden
      Linear and its activation (Ioffe & Szegedy 2015; Ba et al. 2016). The
      Linear keeps its bias (BatchNorm makes it redundant: its gradient is 0
      in training) so that the weights stay those of the plain network;
    - ``dropout``: probability ``p`` of a :class:`~dlbook.layers.Dropout` after
      each hidden activation (0 adds none; Srivastava et al. 2014).

    All weights are drawn from one Generator in layer order, so the same seed
    gives the same weights for every activation, norm and dropout setting
    (and the same network as before these options existed). The Dropout
    layers get their own streams, spawned from that Generator afterwards
    (``Generator.spawn``), so they never shift the weights. Chapters 1 and 3.
    """
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2:
        raise ValueError(f"sizes needs at least an input and an output size, got {sizes}")
    if norm is not None and norm not in _NORMS:
        raise ValueError(f"norm must be None, 'batch' or 'layer', got {norm!r}")
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float, np.floating)):
        raise TypeError(f"dropout must be a probability in [0, 1), got {type(dropout).__name__}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must lie in [0, 1), got {dropout!r}")
    gen = as_generator(rng)
    n_hidden = len(sizes) - 2
    linears = [
        Linear(d_in, d_out, rng=gen, init=init, dtype=dtype)
        for d_in, d_out in zip(sizes[:-1], sizes[1:], strict=True)
    ]
    drop_gens = gen.spawn(n_hidden) if dropout > 0.0 and n_hidden else []
    layers = []
    for i, linear in enumerate(linears):
        layers.append(linear)
        if i < n_hidden:
            if norm is not None:
                layers.append(_NORMS[norm](sizes[i + 1], dtype=dtype))
            layers.append(Activation(activation, **act_params))
            if dropout > 0.0:
                layers.append(Dropout(dropout, rng=drop_gens[i]))
    return Sequential(layers)


def conv_bn_relu(
    in_channels: int, out_channels: int, *, rng: np.random.Generator | int, dtype=np.float64
) -> list[Module]:
    """``[Conv2d 3x3 (padding 1, no bias, He init), BatchNorm2d, ReLU]``: a size-keeping stage.

    .. math:: y = \\operatorname{ReLU}(\\operatorname{BN}(W * x))

    No bias: the BatchNorm that follows subtracts the mean, which would
    cancel it. Shapes: ``(N, C_in, H, W) -> (N, C_out, H, W)``. Chapter 4.
    """
    return [
        Conv2d(in_channels, out_channels, 3, padding=1, bias=False, init="he", rng=rng, dtype=dtype),
        BatchNorm2d(out_channels, dtype=dtype),
        Activation("relu"),
    ]


def small_cnn(
    in_channels: int = 1,
    num_classes: int = 10,
    widths: Sequence[int] = (16, 16, 32),
    *,
    rng: np.random.Generator | int,
    dtype=np.float64,
) -> Sequential:
    """Chapter 4's CNN for 8x8 images: three conv-BN-ReLU stages, two 2x2 max-pools, a dense head.

    .. code-block:: text

        (N, C, 8, 8) -conv-bn-relu-> (N, w0, 8, 8) -conv-bn-relu-> (N, w1, 8, 8)
        -maxpool-> (N, w1, 4, 4) -conv-bn-relu-> (N, w2, 4, 4) -maxpool-> (N, w2, 2, 2)
        -flatten-> (N, 4 w2) -linear-> (N, num_classes)

    With the default widths it has 8,474 parameters. The weights are drawn
    from one Generator in layer order. Inputs must be 8x8 (or any size
    divisible by 4, with the head sized for 8x8). Chapter 4; chapter 6 reads
    one digit per time step with its trunk.
    """
    w0, w1, w2 = (check_positive_int(w, "width") for w in widths)
    gen = as_generator(rng)
    return Sequential(
        *conv_bn_relu(check_positive_int(in_channels, "in_channels"), w0, rng=gen, dtype=dtype),
        *conv_bn_relu(w0, w1, rng=gen, dtype=dtype),  # (N, w1, 8, 8)
        MaxPool2d(2),  # (N, w1, 4, 4)
        *conv_bn_relu(w1, w2, rng=gen, dtype=dtype),
        MaxPool2d(2),  # (N, w2, 2, 2)
        Flatten(),  # (N, 4 w2)
        Linear(4 * w2, check_positive_int(num_classes, "num_classes"), rng=gen, dtype=dtype),
    )
