"""Residual networks: the residual block, ResNets and their plain twins, residual MLPs.

A residual block adds its input to the output of a small stack of layers,
the *residual branch*: ``y = x + F(x)``. Its Jacobian is ``I + dF/dx``, so
the gradient always has a path through the block; the networks built here
let chapter 5 compare the same layers with and without that path.

- :class:`Residual`: ``y = post(branch(x) + shortcut(x))`` for any modules.
- :func:`basic_block`: the two-convolution block of He et al., in the
  original (post-activation) and the pre-activation form, with a projection
  (option B) or zero-padding (option A) shortcut where the shape changes, or
  with no shortcut at all (``plain=True``).
- :func:`bottleneck_block`: the 1x1-3x3-1x1 block of ResNet-50/101/152,
  which works at a quarter of the block's width.
- :func:`resnet`: the CIFAR design of He et al. (2016), ``6n + 2`` weighted
  layers for three stages, and its plain twin with the same parameters.
- :func:`residual_mlp`: Transformer-style residual blocks of dense layers with
  LayerNorm after the addition (Post-Norm) or on the branch input (Pre-Norm).

References
----------
- He, Zhang, Ren & Sun (2016). Deep Residual Learning for Image Recognition.
  CVPR (arXiv:1512.03385, 2015).
- He, Zhang, Ren & Sun (2016). Identity Mappings in Deep Residual Networks.
  ECCV (the pre-activation block).
- Goyal et al. (2017). Accurate, Large Minibatch SGD: Training ImageNet in
  1 Hour (the last BatchNorm of each residual branch starts at gamma = 0).
- Vaswani et al. (2017). Attention Is All You Need (Post-Norm).
- Wang et al. (2019). Learning Deep Transformer Models for Machine
  Translation; Xiong et al. (2020). On Layer Normalization in the
  Transformer Architecture (Pre-Norm).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .activations import Activation
from .conv import Conv2d, GlobalAvgPool2d
from .core import Module, Sequential, as_generator, check_dout, check_float_array, check_positive_int
from .layers import BatchNorm2d, LayerNorm, Linear

__all__ = [
    "Residual",
    "PadShortcut",
    "basic_block",
    "bottleneck_block",
    "resnet",
    "resnet_depth",
    "residual_mlp",
]

_SHORTCUTS = ("projection", "pad")


class Residual(Module):
    """A residual connection around any module: ``y = post(branch(x) + shortcut(x))``.

    .. math:: y = g\\big(F(x) + S(x)\\big), \\qquad
              \\frac{\\partial L}{\\partial x} = \\Big(\\frac{\\partial F}{\\partial x}
              + \\frac{\\partial S}{\\partial x}\\Big)^{\\!\\top} g'(\\cdot)^\\top \\delta

    with ``S`` the identity when ``shortcut`` is None and ``g`` the identity
    when ``post`` is None. The children are its attributes ``branch``,
    ``shortcut`` and ``post``, so its parameters are named ``"branch.…"``,
    ``"shortcut.…"`` and ``"post.…"`` (walked, not copied). Shapes: the branch and the
    shortcut must map ``x`` to the same shape. He et al. (2016). Chapter 5.
    """

    def __init__(self, branch: Module, shortcut: Module | None = None, post: Module | None = None) -> None:
        super().__init__()
        for name, child in (("branch", branch), ("shortcut", shortcut), ("post", post)):
            if child is not None and not isinstance(child, Module):
                raise TypeError(f"{name} must be a dlbook Module or None, got {type(child).__name__}")
        self.branch, self.shortcut, self.post = branch, shortcut, post

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = check_float_array(x, "x")
        z = self.branch.forward(x)
        s = x if self.shortcut is None else self.shortcut.forward(x)
        if z.shape != s.shape:
            raise ValueError(
                f"Residual: the branch gives shape {z.shape} but the shortcut {s.shape}; "
                "use a projection or padding shortcut where the shape changes"
            )
        z = z + s
        return z if self.post is None else self.post.forward(z)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dz = dout if self.post is None else self.post.backward(dout)
        dx = self.branch.backward(dz)
        return dx + (dz if self.shortcut is None else self.shortcut.backward(dz))

    def __repr__(self) -> str:
        inner = "\n".join(f"  ({n}) " + repr(c).replace("\n", "\n  ") for n, c in self.named_children())
        return f"Residual(\n{inner}\n)"


class PadShortcut(Module):
    """He et al.'s parameter-free shortcut (option A): subsample by ``stride``, pad channels with zeros.

    .. math:: S(x)_{n,c,i,j} = x_{n,c,\\,s i,\\,s j} \\text{ for } c < C_\\text{in},
              \\quad 0 \\text{ otherwise}

    Shapes: ``(N, C_in, H, W) -> (N, C_out, ceil(H/s), ceil(W/s))`` (matching a
    3x3 convolution with padding 1 and stride ``s``). Chapter 5.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.in_channels = check_positive_int(in_channels, "in_channels")
        self.out_channels = check_positive_int(out_channels, "out_channels")
        if self.out_channels < self.in_channels:
            raise ValueError(f"out_channels ({out_channels}) must be at least in_channels ({in_channels})")
        self.stride = check_positive_int(stride, "stride")

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = check_float_array(x, "x", ndim=4)
        if x.shape[1] != self.in_channels:
            raise ValueError(f"PadShortcut expected {self.in_channels} channels, got x of shape {x.shape}")
        self._save(x.shape)
        s = self.stride
        sub = x[:, :, ::s, ::s]  # (N, C_in, H', W')
        y = np.zeros((x.shape[0], self.out_channels) + sub.shape[2:], dtype=x.dtype)
        y[:, : self.in_channels] = sub
        return y

    def backward(self, dout: np.ndarray) -> np.ndarray:
        (shape,) = self._saved()
        n, _, h, w = shape
        s = self.stride
        dout = check_dout(dout, (n, self.out_channels, -(-h // s), -(-w // s)), "PadShortcut")
        dx = np.zeros(shape, dtype=dout.dtype)
        dx[:, :, ::s, ::s] = dout[:, : self.in_channels]
        return dx

    def __repr__(self) -> str:
        return f"PadShortcut({self.in_channels}, {self.out_channels}, stride={self.stride})"


def _conv3(c_in, c_out, stride, gen, dtype) -> Conv2d:
    return Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False, init="he", rng=gen, dtype=dtype)


def basic_block(
    in_channels: int,
    out_channels: int,
    stride: int = 1,
    *,
    preact: bool = False,
    shortcut: str = "projection",
    plain: bool = False,
    zero_init: bool = False,
    rng: np.random.Generator | int,
    shortcut_rng: np.random.Generator | int | None = None,
    dtype=np.float64,
) -> Module:
    """The basic residual block of two 3x3 convolutions, or its plain twin.

    Original block (He et al. 2016a, "post-activation"), with ``F`` the branch:

    .. math:: x_{l+1} = \\operatorname{ReLU}\\big(S(x_l) + \\operatorname{BN}(W_2 *
              \\operatorname{ReLU}(\\operatorname{BN}(W_1 * x_l)))\\big)

    Pre-activation block (He et al. 2016b):

    .. math:: x_{l+1} = S(x_l) + W_2 * \\operatorname{ReLU}(\\operatorname{BN}(
              W_1 * \\operatorname{ReLU}(\\operatorname{BN}(x_l))))

    ``S`` is the identity when the shape is kept. Where it changes (``stride >
    1`` or more channels) it is ``shortcut="projection"`` (option B: a 1x1
    convolution with that stride and a BatchNorm) or ``"pad"`` (option A:
    :class:`PadShortcut`, no parameters). In the pre-activation block with a
    changing shape, both paths take the pre-activated input ``ReLU(BN(x))``,
    as in the authors' code; the block is then ``Sequential(BN, ReLU,
    Residual(...))``. ``plain=True`` returns the same layers without any
    shortcut, as one :class:`~dlbook.core.Sequential`.

    The convolutions use He initialisation and no bias (BatchNorm follows or
    the next block normalises). Their weights are drawn from ``rng`` in
    order; the projection's from ``shortcut_rng`` (default: a generator
    spawned from ``rng``), so a plain and a residual block built from the same
    ``rng`` share every branch weight. ``zero_init=True`` (original block
    only) starts the branch's last BatchNorm at :math:`\\gamma = 0`, so the
    block starts as ``ReLU(S(x))`` (Goyal et al. 2017; PyTorch's
    ``zero_init_residual``). Shapes: ``(N, C_in, H, W) -> (N, C_out,
    ceil(H/s), ceil(W/s))``. Chapter 5.
    """
    in_channels = check_positive_int(in_channels, "in_channels")
    out_channels = check_positive_int(out_channels, "out_channels")
    stride = check_positive_int(stride, "stride")
    if shortcut not in _SHORTCUTS:
        raise ValueError(f"shortcut must be one of {_SHORTCUTS}, got {shortcut!r}")
    _check_zero_init(zero_init, preact, plain)
    gen = as_generator(rng)
    if preact:
        head = [BatchNorm2d(in_channels, dtype=dtype), Activation("relu")]
        body = [
            _conv3(in_channels, out_channels, stride, gen, dtype),
            BatchNorm2d(out_channels, dtype=dtype),
            Activation("relu"),
            _conv3(out_channels, out_channels, 1, gen, dtype),
        ]
        tail = []
    else:
        head = []
        body = [
            _conv3(in_channels, out_channels, stride, gen, dtype),
            BatchNorm2d(out_channels, dtype=dtype),
            Activation("relu"),
            _conv3(out_channels, out_channels, 1, gen, dtype),
            BatchNorm2d(out_channels, dtype=dtype),
        ]
        tail = [Activation("relu")]
        if zero_init:
            body[-1].params["gamma"][...] = 0.0
    if plain:
        return Sequential(head + body + tail)
    changes = stride != 1 or in_channels != out_channels
    short = None
    if changes:
        if shortcut == "pad":
            short = PadShortcut(in_channels, out_channels, stride)
        else:
            sgen = gen.spawn(1)[0] if shortcut_rng is None else as_generator(shortcut_rng)
            short = _projection(in_channels, out_channels, stride, sgen, dtype)
    post = tail[0] if tail else None
    if preact and changes:
        return Sequential(*head, Residual(Sequential(body), short, post))
    return Residual(Sequential(head + body), short, post)


def _check_zero_init(zero_init, preact, plain) -> None:
    if not isinstance(zero_init, bool):
        raise TypeError(f"zero_init must be True or False, got {zero_init!r}")
    if zero_init and (preact or plain):
        raise ValueError(
            "zero_init sets the last BatchNorm of a residual branch to gamma = 0: it needs the "
            "original (post-activation) block with its shortcut (preact=False, plain=False)"
        )


def _projection(c_in, c_out, stride, gen, dtype) -> Sequential:
    """He et al.'s option B: a strided 1x1 convolution and a BatchNorm."""
    conv = Conv2d(c_in, c_out, 1, stride=stride, bias=False, init="he", rng=gen, dtype=dtype)
    return Sequential(conv, BatchNorm2d(c_out, dtype=dtype))


def bottleneck_block(
    in_channels: int,
    mid_channels: int,
    out_channels: int | None = None,
    stride: int = 1,
    *,
    zero_init: bool = False,
    rng: np.random.Generator | int,
    dtype=np.float64,
) -> Module:
    """The bottleneck block of ResNet-50/101/152: 1x1 down, 3x3 at the narrow width, 1x1 up.

    .. math:: x_{l+1} = \\operatorname{ReLU}\\big(S(x_l) + \\operatorname{BN}(W_3 *
              \\operatorname{ReLU}(\\operatorname{BN}(W_2 *
              \\operatorname{ReLU}(\\operatorname{BN}(W_1 * x_l)))))\\big)

    ``W_1`` is 1x1 from ``in_channels`` to ``mid_channels``, ``W_2`` 3x3 with
    ``stride`` (where torchvision's "ResNet v1.5" puts it; He et al. 2016a
    strided the first 1x1), ``W_3`` 1x1 to ``out_channels`` (default
    ``4 * mid_channels``, the paper's expansion). The 3x3 convolution, the
    costly one, works at a quarter of the block's width: with 256 channels a
    bottleneck has 69,632 convolution weights where two 3x3 convolutions at
    256 would have 1,179,648. ``S`` is the identity, or a projection (1x1
    with ``stride`` + BN) where the shape changes. ``zero_init=True`` starts
    the last BatchNorm at :math:`\\gamma = 0` (Goyal et al. 2017). He et al.
    (2016a), Section 4.1 and Table 1. Shapes: ``(N, C_in, H, W) -> (N, C_out,
    ceil(H/s), ceil(W/s))``. Chapter 5.
    """
    in_channels = check_positive_int(in_channels, "in_channels")
    mid_channels = check_positive_int(mid_channels, "mid_channels")
    if out_channels is None:
        out_channels = 4 * mid_channels  # the paper's expansion
    out_channels = check_positive_int(out_channels, "out_channels")
    stride = check_positive_int(stride, "stride")
    _check_zero_init(zero_init, False, False)
    gen = as_generator(rng)
    body = [
        Conv2d(in_channels, mid_channels, 1, bias=False, init="he", rng=gen, dtype=dtype),
        BatchNorm2d(mid_channels, dtype=dtype),
        Activation("relu"),
        _conv3(mid_channels, mid_channels, stride, gen, dtype),
        BatchNorm2d(mid_channels, dtype=dtype),
        Activation("relu"),
        Conv2d(mid_channels, out_channels, 1, bias=False, init="he", rng=gen, dtype=dtype),
        BatchNorm2d(out_channels, dtype=dtype),
    ]
    if zero_init:
        body[-1].params["gamma"][...] = 0.0
    short = None
    if stride != 1 or in_channels != out_channels:
        short = _projection(in_channels, out_channels, stride, gen, dtype)
    return Residual(Sequential(body), short, Activation("relu"))


def resnet_depth(blocks_per_stage: int, num_stages: int = 3) -> int:
    """Weighted layers of :func:`resnet`: ``2 * num_stages * blocks_per_stage + 2`` (6n + 2 for 3 stages)."""
    return (
        2
        * check_positive_int(num_stages, "num_stages")
        * check_positive_int(blocks_per_stage, "blocks_per_stage")
        + 2
    )


def resnet(
    blocks_per_stage: int = 1,
    widths: Sequence[int] = (16, 32, 64),
    in_channels: int = 3,
    num_classes: int = 10,
    *,
    preact: bool = False,
    shortcut: str = "projection",
    plain: bool = False,
    zero_init_residual: bool = False,
    rng: np.random.Generator | int,
    dtype=np.float64,
) -> Sequential:
    """He et al.'s CIFAR ResNet, scaled by ``widths``, or its plain twin.

    A 3x3 convolution to ``widths[0]`` channels (+ BN + ReLU in the original
    form), then one stage of ``blocks_per_stage`` :func:`basic_block` per
    width (the first block of every stage after the first has stride 2 and
    doubles the map count), then (pre-activation: a final BN + ReLU) global
    average pooling and a dense layer to ``num_classes``. With three stages
    that is ``6n + 2`` weighted layers (:func:`resnet_depth`): 8, 20, 44 for
    ``n = 1, 3, 7``; He et al. used widths (16, 32, 64) on 32x32 CIFAR-10.

    ``plain=True`` builds the same layers without shortcuts; with
    ``shortcut="pad"`` the residual net has exactly the plain net's
    parameters. The same ``rng`` gives the plain and the residual net the
    same weights: every branch weight is drawn in the same order, and the
    projections come from a separate generator spawned before any draw.
    Every block is one element of the returned Sequential, so
    :func:`dlbook.probes.layer_outputs` gives one output per block.
    ``zero_init_residual=True`` passes ``zero_init`` to every block (original
    form only), so each block starts as ``ReLU(S(x))``. Shapes:
    ``(N, in_channels, H, W) -> (N, num_classes)``. Chapter 5.
    """
    widths = [check_positive_int(w, "width") for w in widths]
    if not widths:
        raise ValueError("widths must name at least one stage")
    n = check_positive_int(blocks_per_stage, "blocks_per_stage")
    gen = as_generator(rng)
    proj_gen = gen.spawn(1)[0]  # spawned first, whether used or not: the branch draws stay the same
    layers: list[Module] = [
        Conv2d(
            check_positive_int(in_channels, "in_channels"),
            widths[0],
            3,
            padding=1,
            bias=False,
            init="he",
            rng=gen,
            dtype=dtype,
        )
    ]
    if not preact:
        layers += [BatchNorm2d(widths[0], dtype=dtype), Activation("relu")]
    c = widths[0]
    for stage, width in enumerate(widths):
        for b in range(n):
            stride = 2 if (stage > 0 and b == 0) else 1
            layers.append(
                basic_block(
                    c,
                    width,
                    stride,
                    preact=preact,
                    shortcut=shortcut,
                    plain=plain,
                    zero_init=zero_init_residual,
                    rng=gen,
                    shortcut_rng=proj_gen,
                    dtype=dtype,
                )
            )
            c = width
    if preact:
        layers += [BatchNorm2d(c, dtype=dtype), Activation("relu")]
    layers += [
        GlobalAvgPool2d(),
        Linear(c, check_positive_int(num_classes, "num_classes"), rng=gen, dtype=dtype),
    ]
    return Sequential(layers)


def residual_mlp(
    in_features: int,
    width: int,
    depth: int,
    num_classes: int,
    *,
    norm_position: str | None = "pre",
    hidden: int | None = None,
    rng: np.random.Generator | int,
    dtype=np.float64,
) -> Sequential:
    """Residual blocks of dense layers with LayerNorm placed Post-Norm or Pre-Norm.

    With ``F(x) = ReLU(x W_1 + b_1) W_2 + b_2`` (width -> hidden -> width):

    .. math:: \\text{post: } x_{l+1} = \\operatorname{LN}(x_l + F(x_l)), \\quad
              \\text{pre: } x_{l+1} = x_l + F(\\operatorname{LN}(x_l)), \\quad
              \\text{None: } x_{l+1} = x_l + F(x_l)

    The net is ``Linear(in_features, width)``, ``depth`` blocks, a final
    LayerNorm for Pre-Norm (as Pre-Norm Transformers have), and
    ``Linear(width, num_classes)``. ``hidden`` defaults to ``2 * width``.
    Dense layers use PyTorch's default initialisation. Post-Norm: Vaswani et
    al. (2017); Pre-Norm: Wang et al. (2019), Xiong et al. (2020). Shapes:
    ``(N, in_features) -> (N, num_classes)``. Chapter 5.
    """
    if norm_position not in ("pre", "post", None):
        raise ValueError(f"norm_position must be 'pre', 'post' or None, got {norm_position!r}")
    width = check_positive_int(width, "width")
    depth = check_positive_int(depth, "depth")
    hidden = 2 * width if hidden is None else check_positive_int(hidden, "hidden")
    gen = as_generator(rng)
    layers: list[Module] = [
        Linear(check_positive_int(in_features, "in_features"), width, rng=gen, dtype=dtype)
    ]
    for _ in range(depth):
        f = [
            Linear(width, hidden, rng=gen, dtype=dtype),
            Activation("relu"),
            Linear(hidden, width, rng=gen, dtype=dtype),
        ]
        if norm_position == "pre":
            layers.append(Residual(Sequential([LayerNorm(width, dtype=dtype)] + f)))
        elif norm_position == "post":
            layers.append(Residual(Sequential(f), post=LayerNorm(width, dtype=dtype)))
        else:
            layers.append(Residual(Sequential(f)))
    if norm_position == "pre":
        layers.append(LayerNorm(width, dtype=dtype))
    layers.append(Linear(width, check_positive_int(num_classes, "num_classes"), rng=gen, dtype=dtype))
    return Sequential(layers)
