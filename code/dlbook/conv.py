"""Convolution and pooling over images ``(N, C, H, W)``: the layers of chapter 4.

A convolutional layer slides ``C_out`` kernels of shape ``(C_in, kh, kw)``
over the (zero-padded) image and takes an inner product at every position;
pooling summarises each window by its maximum or mean. As in every
deep-learning library, "convolution" here is cross-correlation: the kernel is
not flipped.

The fast path is *im2col*: the patches the kernel visits become the columns
of one matrix, so the layer is one matrix product and its backward pass two
more plus *col2im*, which folds the columns back onto the image and adds the
overlapping copies. Both are built from ``kh * kw`` strided slab copies (one
per kernel offset), not from one copy per window; the loop over the kernel
offsets is the only Python loop. :func:`conv2d_naive` is the loop version,
for teaching and timing only.

References
----------
- LeCun, Bottou, Bengio & Haffner (1998). Gradient-Based Learning Applied to
  Document Recognition. Proceedings of the IEEE.
- Chellapilla, Puri & Simard (2006). High Performance Convolutional Neural
  Networks for Document Processing (convolution as im2col + matrix product).
- Yu & Koltun (2016). Multi-Scale Context Aggregation by Dilated Convolutions. ICLR.
- Chollet (2017). Xception: Deep Learning with Depthwise Separable Convolutions. CVPR.
- Howard et al. (2017). MobileNets: Efficient Convolutional Neural Networks for Mobile
  Vision Applications. arXiv:1704.04861.
- Dumoulin & Visin (2016). A guide to convolution arithmetic for deep
  learning. arXiv:1603.07285 (output sizes, padding, stride).
"""

from __future__ import annotations

import numpy as np

from .core import Module, as_generator, check_dout, check_dtype, check_float_array, check_positive_int

__all__ = [
    "conv_output_size",
    "im2col",
    "col2im",
    "conv2d_naive",
    "Conv2d",
    "MaxPool2d",
    "AvgPool2d",
    "GlobalAvgPool2d",
]


def _pair(value, name: str, minimum: int = 1) -> tuple[int, int]:
    """An int or a pair of ints -> a pair, each checked to be >= ``minimum``."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair (h, w), got {value!r}")
        return (check_positive_int(value[0], name, minimum), check_positive_int(value[1], name, minimum))
    v = check_positive_int(value, name, minimum)
    return (v, v)


def conv_output_size(
    size: int, kernel_size: int, stride: int = 1, padding: int = 0, dilation: int = 1
) -> int:
    """Output length of a convolution or pooling along one axis.

    .. math:: n_\\text{out} = \\Big\\lfloor \\frac{n + 2p - d(k-1) - 1}{s} \\Big\\rfloor + 1

    (with dilation :math:`d = 1` this is :math:`\\lfloor (n + 2p - k)/s \\rfloor + 1`:
    a kernel dilated by ``d`` spans :math:`d(k-1)+1` pixels). Raises
    ``ValueError`` when the kernel is larger than the padded input (Dumoulin &
    Visin 2016). Chapter 4.
    """
    size = check_positive_int(size, "size")
    kernel_size = check_positive_int(kernel_size, "kernel_size")
    stride = check_positive_int(stride, "stride")
    padding = check_positive_int(padding, "padding", minimum=0)
    dilation = check_positive_int(dilation, "dilation")
    span = dilation * (kernel_size - 1) + 1
    if span > size + 2 * padding:
        raise ValueError(
            f"kernel of size {kernel_size}"
            + (f" (dilated by {dilation}: span {span})" if dilation > 1 else "")
            + f" is larger than the padded input ({size} + 2*{padding} = {size + 2 * padding})"
        )
    return (size + 2 * padding - span) // stride + 1


def _check_images(x, name: str = "x") -> np.ndarray:
    x = check_float_array(x, name)
    if x.ndim != 4:
        raise ValueError(f"{name} must be a 4-D batch of images (N, C, H, W), got shape {x.shape}")
    return x


def _geometry(shape, kernel, stride, padding, dilation=(1, 1)):
    """Output height and width for ``shape = (N, C, H, W)``, with a clear error."""
    _, _, h, w = shape
    (sh, sw), (ph, pw) = stride, padding
    kh, kw = (d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True))  # the span of a dilated kernel
    if kh > h + 2 * ph or kw > w + 2 * pw:
        raise ValueError(
            f"kernel {kh}x{kw} is larger than the padded input {h + 2 * ph}x{w + 2 * pw} "
            f"(input {h}x{w}, padding {ph}, {pw})"
        )
    return (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1


def _padded_cnhw(x: np.ndarray, padding, fill: float = 0.0) -> np.ndarray:
    """``x (N, C, H, W)`` -> a padded copy in ``(C, N, H + 2ph, W + 2pw)`` layout."""
    n, c, h, w = x.shape
    ph, pw = padding
    if fill == 0.0:
        xp = np.zeros((c, n, h + 2 * ph, w + 2 * pw), dtype=x.dtype)
    else:
        xp = np.full((c, n, h + 2 * ph, w + 2 * pw), fill, dtype=x.dtype)
    xp[:, :, ph : ph + h, pw : pw + w] = x.transpose(1, 0, 2, 3)  # (N, C, H, W) -> (C, N, H, W)
    return xp


def _slab(xp: np.ndarray, u: int, v: int, out_hw, stride) -> np.ndarray:
    """The view of ``xp (C, N, Hp, Wp)`` that kernel offset ``(u, v)`` multiplies: ``(C, N, Ho, Wo)``."""
    (ho, wo), (sh, sw) = out_hw, stride
    return xp[:, :, u : u + sh * (ho - 1) + 1 : sh, v : v + sw * (wo - 1) + 1 : sw]


def _im2col_cnhw(xp, kernel, stride, out_hw, dilation=(1, 1)) -> np.ndarray:
    """Columns ``(C, kh, kw, N, Ho, Wo)`` from a padded ``(C, N, Hp, Wp)`` image, one slab copy per offset."""
    c, n = xp.shape[:2]
    (kh, kw), (dh, dw) = kernel, dilation
    cols = np.empty((c, kh, kw, n) + tuple(out_hw), dtype=xp.dtype)
    for u in range(kh):
        for v in range(kw):
            cols[:, u, v] = _slab(xp, u * dh, v * dw, out_hw, stride)
    return cols


def _col2im_cnhw(cols, padded_shape, kernel, stride, out_hw, dilation=(1, 1)) -> np.ndarray:
    """Adjoint of :func:`_im2col_cnhw`: add the columns back onto a ``(C, N, Hp, Wp)`` image."""
    (kh, kw), (dh, dw) = kernel, dilation
    dxp = np.zeros(padded_shape, dtype=cols.dtype)
    for u in range(kh):
        for v in range(kw):
            _slab(dxp, u * dh, v * dw, out_hw, stride)[...] += cols[:, u, v]
    return dxp


def im2col(x: np.ndarray, kernel_size, stride=1, padding=0) -> np.ndarray:
    """Copy every patch a kernel visits into a column: ``(N, C, H, W) -> (C kh kw, N Ho Wo)``.

    .. math:: X_\\text{col}[(c, u, v), (n, i, j)] = x_\\text{pad}[n, c, s_h i + u, s_w j + v]

    Rows are indexed by ``(c, u, v)`` and columns by ``(n, i, j)``, both in C
    (row-major) order; zero padding. A convolution is then
    ``W.reshape(C_out, -1) @ cols``. Chapter 4 draws it for a tiny case.
    """
    x = _check_images(x)
    kernel, stride, padding = (
        _pair(kernel_size, "kernel_size"),
        _pair(stride, "stride"),
        _pair(padding, "padding", 0),
    )
    out_hw = _geometry(x.shape, kernel, stride, padding)
    cols = _im2col_cnhw(_padded_cnhw(x, padding), kernel, stride, out_hw)  # (C, kh, kw, N, Ho, Wo)
    return cols.reshape(x.shape[1] * kernel[0] * kernel[1], -1)  # (C kh kw, N Ho Wo)


def col2im(cols: np.ndarray, x_shape, kernel_size, stride=1, padding=0) -> np.ndarray:
    """The adjoint of :func:`im2col`: fold columns back onto ``x_shape``, adding overlaps.

    .. math:: \\langle \\operatorname{im2col}(x), c\\rangle = \\langle x, \\operatorname{col2im}(c)\\rangle

    ``cols (C kh kw, N Ho Wo) -> (N, C, H, W)``; the values that fall on the
    padding are dropped. Chapter 4 (the input gradient of a convolution).
    """
    cols = check_float_array(cols, "cols", ndim=2)
    if len(x_shape) != 4:
        raise ValueError(f"x_shape must be (N, C, H, W), got {tuple(x_shape)}")
    n, c, h, w = (int(d) for d in x_shape)
    kernel, stride, padding = (
        _pair(kernel_size, "kernel_size"),
        _pair(stride, "stride"),
        _pair(padding, "padding", 0),
    )
    ho, wo = _geometry((n, c, h, w), kernel, stride, padding)
    expected = (c * kernel[0] * kernel[1], n * ho * wo)
    if cols.shape != expected:
        raise ValueError(f"cols must have shape {expected} for x_shape {tuple(x_shape)}, got {cols.shape}")
    ph, pw = padding
    padded = (c, n, h + 2 * ph, w + 2 * pw)
    dxp = _col2im_cnhw(cols.reshape(c, kernel[0], kernel[1], n, ho, wo), padded, kernel, stride, (ho, wo))
    return dxp[:, :, ph : ph + h, pw : pw + w].transpose(1, 0, 2, 3).copy()  # (C, N, H, W) -> (N, C, H, W)


def conv2d_naive(
    x: np.ndarray, W: np.ndarray, b: np.ndarray | None = None, stride=1, padding=0
) -> np.ndarray:
    """Convolution by explicit loops over samples, output channels and positions (slow; for teaching).

    .. math:: y_{n,o,i,j} = b_o + \\sum_{c,u,v} W_{o,c,u,v}\\, x_\\text{pad}[n, c, s_h i + u, s_w j + v]

    ``x (N, C, H, W)``, ``W (C_out, C, kh, kw)``, ``b (C_out,)`` or None ->
    ``(N, C_out, Ho, Wo)``. Each output is one inner product of a kernel with a
    patch. Chapter 4 times it against :class:`Conv2d`.
    """
    x = _check_images(x)
    W = check_float_array(W, "W", ndim=4)
    if W.shape[1] != x.shape[1]:
        raise ValueError(f"W has {W.shape[1]} input channels but x has {x.shape[1]} (x shape {x.shape})")
    stride, padding = _pair(stride, "stride"), _pair(padding, "padding", 0)
    kh, kw = W.shape[2:]
    ho, wo = _geometry(x.shape, (kh, kw), stride, padding)
    (sh, sw), (ph, pw) = stride, padding
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    y = np.zeros((x.shape[0], W.shape[0], ho, wo), dtype=np.result_type(x, W))
    for n in range(x.shape[0]):
        for o in range(W.shape[0]):
            for i in range(ho):
                for j in range(wo):
                    patch = xp[n, :, i * sh : i * sh + kh, j * sw : j * sw + kw]
                    y[n, o, i, j] = np.sum(patch * W[o])
            if b is not None:
                y[n, o] += b[o]
    return y


class Conv2d(Module):
    """2-D convolution (cross-correlation) with ``C_out`` kernels, stride, zero padding, dilation and groups.

    .. math::
        y_{n,o,i,j} = b_o + \\sum_{c=1}^{C}\\sum_{u,v} W_{o,c,u,v}\\,
        x_\\text{pad}[n, c, s_h i + d_h u, s_w j + d_w v]

    Computed as ``Y = W_2 X_col + b`` with ``W_2 = W.reshape(C_out, C kh kw)``
    and ``X_col = im2col(x)``; the backward pass is

    .. math::
        \\frac{\\partial L}{\\partial W_2} = \\delta X_\\text{col}^\\top, \\quad
        \\frac{\\partial L}{\\partial b} = \\delta\\,\\mathbf 1, \\quad
        \\frac{\\partial L}{\\partial x} = \\operatorname{col2im}(W_2^\\top \\delta)

    with ``delta`` the upstream gradient as ``(C_out, N Ho Wo)``.

    ``dilation`` :math:`d` spaces the kernel's taps :math:`d` pixels apart (a
    3x3 kernel with :math:`d = 2` covers 5x5 with 9 weights; Yu & Koltun
    2016). ``groups`` :math:`g` splits the channels into :math:`g` groups
    convolved separately (output group :math:`j` sees only input group
    :math:`j`): the weights shrink to ``(C_out, C_in / g, kh, kw)`` and the
    products above become :math:`g` smaller ones. ``groups = C_in`` is a
    *depthwise* convolution (one kernel per channel); followed by a 1x1
    convolution (channel mixing only) it is the depthwise-separable
    convolution of Xception and MobileNet (Chollet 2017; Howard et al. 2017).

    Shapes: ``x (N, C_in, H, W) -> (N, C_out, Ho, Wo)`` with
    ``Ho = floor((H + 2 ph - dh (kh - 1) - 1) / sh) + 1`` (same for the
    width). ``params``: ``"W" (C_out, C_in / groups, kh, kw)`` (PyTorch's
    layout) and ``"b" (C_out,)`` when ``bias``. ``kernel_size``, ``stride``,
    ``padding`` and ``dilation`` are ints or pairs ``(h, w)``; ``groups``
    must divide both channel counts.

    ``rng`` (a seed or a Generator, required: no hidden default) draws the
    weights by the initialiser ``init``, named as for
    :class:`~dlbook.layers.Linear` (``"uniform"``: PyTorch's default
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)); ``"he"``, ``"xavier"``, ``"lecun"``
    and their ``_uniform`` variants), with ``fan_in = C_in kh kw`` and
    ``fan_out = C_out kh kw`` (``fan_in = (C_in / groups) kh kw`` with groups,
    as PyTorch counts it). The bias starts at zero. Every argument after
    ``kernel_size`` is a keyword. The parameters are used in the input's
    dtype. One layer may be applied several times before the backward passes
    (each forward saves its own columns).

    LeCun et al. (1998); im2col: Chellapilla et al. (2006). Chapter 4.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        *,
        stride=1,
        padding=0,
        dilation=1,
        groups: int = 1,
        bias: bool = True,
        init: str = "uniform",
        rng: np.random.Generator | int,
        dtype=np.float64,
    ) -> None:
        super().__init__()
        from .layers import INIT_METHODS  # layers imports nothing from here

        self.in_channels = check_positive_int(in_channels, "in_channels")
        self.out_channels = check_positive_int(out_channels, "out_channels")
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = _pair(stride, "stride")
        self.padding = _pair(padding, "padding", 0)
        self.dilation = _pair(dilation, "dilation")
        self.groups = check_positive_int(groups, "groups")
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise ValueError(
                f"groups={self.groups} must divide in_channels={self.in_channels} "
                f"and out_channels={self.out_channels}"
            )
        fn = INIT_METHODS.get(init) if isinstance(init, str) else None
        if fn is None:
            raise ValueError(f"unknown init {init!r}; expected one of {tuple(INIT_METHODS)}")
        dt = check_dtype(dtype)
        kh, kw = self.kernel_size
        area = kh * kw
        c_in = self.in_channels // self.groups
        shape = (self.out_channels, c_in, kh, kw)
        gen = as_generator(rng)
        params = {"W": fn(c_in * area, self.out_channels * area, gen, shape=shape, dtype=dt)}
        if bias:
            params["b"] = np.zeros(self.out_channels, dtype=dt)
        self.params = params

    def _check(self, x) -> np.ndarray:
        x = _check_images(x)
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f"Conv2d expected {self.in_channels} input channels, got x of shape {x.shape} "
                f"({x.shape[1]} channels)"
            )
        return x

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = self._check(x)
        n, g = x.shape[0], self.groups
        out_hw = _geometry(x.shape, self.kernel_size, self.stride, self.padding, self.dilation)
        xp = _padded_cnhw(x, self.padding)  # (C, N, Hp, Wp)
        # (C, kh, kw, N, Ho, Wo):
        cols = _im2col_cnhw(xp, self.kernel_size, self.stride, out_hw, self.dilation)
        if g == 1:
            cols = cols.reshape(-1, n * out_hw[0] * out_hw[1])  # (C kh kw, N Ho Wo)
            # (C_out, C kh kw):
            w2 = self._params["W"].reshape(self.out_channels, -1).astype(x.dtype, copy=False)
            y = w2 @ cols  # (C_out, N Ho Wo)
        else:  # one product per group: (g, C_out/g, C/g kh kw) @ (g, C/g kh kw, N Ho Wo)
            cols = cols.reshape(g, -1, n * out_hw[0] * out_hw[1])
            w2 = self._params["W"].reshape(g, self.out_channels // g, -1).astype(x.dtype, copy=False)
            y = np.matmul(w2, cols).reshape(self.out_channels, -1)  # (C_out, N Ho Wo)
        if "b" in self._params:
            y += self._params["b"].astype(x.dtype, copy=False)[:, None]
        self._save(x.shape, xp.shape, cols, out_hw)
        y = y.reshape(self.out_channels, n, *out_hw)  # (C_out, N, Ho, Wo)
        return y.transpose(1, 0, 2, 3)  # (N, C_out, Ho, Wo), a view

    def backward(self, dout: np.ndarray) -> np.ndarray:
        x_shape, padded_shape, cols, out_hw = self._saved()
        n = x_shape[0]
        dout = check_dout(dout, (n, self.out_channels, *out_hw), "Conv2d")
        d2 = dout.transpose(1, 0, 2, 3).reshape(self.out_channels, -1)  # -> (C_out, N Ho Wo)
        W, g = self._params["W"], self.groups
        if "b" in self._params:
            self._accumulate("b", d2.sum(axis=1))
        if g == 1:
            self._accumulate("W", (d2 @ cols.T).reshape(W.shape))  # (C_out, C kh kw) -> (C_out, C, kh, kw)
            w2 = W.reshape(self.out_channels, -1).astype(d2.dtype, copy=False)
            # (C kh kw, N Ho Wo), written over cols (used up by dW above; this tape entry is popped):
            # one large allocation less per step, and no large block freed and faulted in again
            dcols = np.matmul(w2.T, d2, out=cols) if cols.dtype == d2.dtype else w2.T @ d2
        else:  # per group: dW_j = delta_j cols_j^T, dcols_j = W_j^T delta_j
            d3 = d2.reshape(g, self.out_channels // g, -1)
            self._accumulate("W", np.matmul(d3, cols.transpose(0, 2, 1)).reshape(W.shape))
            w2 = W.reshape(g, self.out_channels // g, -1).astype(d2.dtype, copy=False)
            dcols = np.matmul(w2.transpose(0, 2, 1), d3)  # (g, C/g kh kw, N Ho Wo)
        kh, kw = self.kernel_size
        dcols = dcols.reshape(self.in_channels, kh, kw, n, *out_hw)  # (C, kh, kw, N, Ho, Wo)
        dxp = _col2im_cnhw(dcols, padded_shape, self.kernel_size, self.stride, out_hw, self.dilation)
        (ph, pw), h, w = self.padding, x_shape[2], x_shape[3]
        return dxp[:, :, ph : ph + h, pw : pw + w].transpose(1, 0, 2, 3)  # (N, C, H, W), a view

    def __repr__(self) -> str:
        extra = (f", dilation={self.dilation}" if self.dilation != (1, 1) else "") + (
            f", groups={self.groups}" if self.groups != 1 else "")
        return (
            f"Conv2d({self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}{extra}, bias={'b' in self._params})"
        )


class _Pool2d(Module):
    """Shared set-up of the pooling layers: window, stride (default: the window), padding."""

    def __init__(self, kernel_size, stride=None, padding=0) -> None:
        super().__init__()
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = self.kernel_size if stride is None else _pair(stride, "stride")
        self.padding = _pair(padding, "padding", 0)
        for p, k in zip(self.padding, self.kernel_size, strict=True):
            if p > k // 2:
                raise ValueError(
                    f"padding must be at most half the kernel size, got padding {self.padding} "
                    f"for kernel {self.kernel_size}"
                )

    def _offsets(self):
        kh, kw = self.kernel_size
        return [(u, v) for u in range(kh) for v in range(kw)]

    def _begin_backward(self, dout) -> tuple:
        """Pop what the matching forward saved; return the checked ``dout`` with it."""
        x_shape, padded_shape, out_hw, extra = self._saved()
        dout = check_dout(dout, (x_shape[0], x_shape[1], *out_hw), type(self).__name__)
        return dout, x_shape, padded_shape, out_hw, extra

    def _unpad(self, dxp, x_shape) -> np.ndarray:
        (ph, pw), h, w = self.padding, x_shape[2], x_shape[3]
        return dxp[:, :, ph : ph + h, pw : pw + w].transpose(1, 0, 2, 3)  # (C, N, H, W) -> (N, C, H, W)

    def __repr__(self) -> str:
        name = type(self).__name__
        return f"{name}(kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding})"


class MaxPool2d(_Pool2d):
    """Max pooling: the largest value of every window, per channel.

    .. math:: y_{n,c,i,j} = \\max_{u,v}\\, x_\\text{pad}[n, c, s_h i + u, s_w j + v], \\qquad
              \\frac{\\partial y_{n,c,i,j}}{\\partial x_\\text{pad}[n, c, s_h i + u, s_w j + v]}
              = \\mathbb 1[(u, v) = \\arg\\max]

    Padding is with ``-inf`` (a padded value is never the maximum) and may be
    at most half the window, as in PyTorch. The backward pass sends each
    window's gradient to its maximum (the first one in row-major order on
    ties); with overlapping windows (``stride < kernel_size``) an input that
    is the maximum of several windows receives the sum. A NaN anywhere in a
    window makes that output NaN and takes its gradient (the last NaN in
    row-major order), as PyTorch's ``max_pool2d`` does: a diverged
    activation is not hidden by the pooling. ``stride`` defaults to
    ``kernel_size``. Shapes: ``(N, C, H, W) -> (N, C, Ho, Wo)``. Chapter 4.
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = _check_images(x)
        out_hw = _geometry(x.shape, self.kernel_size, self.stride, self.padding)
        xp = _padded_cnhw(x, self.padding, fill=-np.inf)  # (C, N, Hp, Wp)
        # NaN never compares larger: only when x has one, let a NaN win too (PyTorch's rule
        # "val > max or isnan(val)"); the check costs one pass over x, the NaN test one per offset
        has_nan = bool(np.isnan(x).any())
        best = None
        arg = np.zeros((x.shape[1], x.shape[0]) + out_hw, dtype=np.int32)  # index of (u, v) of the max
        for q, (u, v) in enumerate(self._offsets()):
            slab = _slab(xp, u, v, out_hw, self.stride)  # (C, N, Ho, Wo)
            if best is None:
                best = slab.copy()
                continue
            larger = slab > best  # strict: ties keep the first offset
            if has_nan:
                larger |= np.isnan(slab)  # a later NaN replaces anything, a number never replaces NaN
            np.copyto(best, slab, where=larger)
            arg[larger] = q
        self._save(x.shape, xp.shape, out_hw, arg)
        return best.transpose(1, 0, 2, 3)  # (C, N, Ho, Wo) -> (N, C, Ho, Wo)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dout, x_shape, padded_shape, out_hw, arg = self._begin_backward(dout)
        d = dout.transpose(1, 0, 2, 3)  # (N, C, Ho, Wo) -> (C, N, Ho, Wo)
        dxp = np.zeros(padded_shape, dtype=dout.dtype)
        for q, (u, v) in enumerate(self._offsets()):
            _slab(dxp, u, v, out_hw, self.stride)[...] += np.where(arg == q, d, 0.0)
        return self._unpad(dxp, x_shape)


class AvgPool2d(_Pool2d):
    """Average pooling: the mean of every window, per channel.

    .. math:: y_{n,c,i,j} = \\frac{1}{k_h k_w}\\sum_{u,v} x_\\text{pad}[n, c, s_h i + u, s_w j + v],
              \\qquad \\frac{\\partial y}{\\partial x_\\text{pad}} = \\frac{1}{k_h k_w}

    Zero padding counts in the mean (PyTorch's default
    ``count_include_pad=True``). ``stride`` defaults to ``kernel_size``.
    Shapes: ``(N, C, H, W) -> (N, C, Ho, Wo)``. Chapter 4.
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = _check_images(x)
        out_hw = _geometry(x.shape, self.kernel_size, self.stride, self.padding)
        xp = _padded_cnhw(x, self.padding)  # (C, N, Hp, Wp)
        total = np.zeros((x.shape[1], x.shape[0]) + out_hw, dtype=x.dtype)
        for u, v in self._offsets():
            total += _slab(xp, u, v, out_hw, self.stride)
        total *= 1.0 / (self.kernel_size[0] * self.kernel_size[1])
        self._save(x.shape, xp.shape, out_hw, None)
        return total.transpose(1, 0, 2, 3)  # (C, N, Ho, Wo) -> (N, C, Ho, Wo)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dout, x_shape, padded_shape, out_hw, _ = self._begin_backward(dout)
        d = dout.transpose(1, 0, 2, 3) * (1.0 / (self.kernel_size[0] * self.kernel_size[1]))  # (C, N, Ho, Wo)
        dxp = np.zeros(padded_shape, dtype=dout.dtype)
        for u, v in self._offsets():
            _slab(dxp, u, v, out_hw, self.stride)[...] += d
        return self._unpad(dxp, x_shape)


class GlobalAvgPool2d(Module):
    """Global average pooling: the mean of each channel over all positions.

    .. math:: y_{n,c} = \\frac{1}{HW}\\sum_{i,j} x_{n,c,i,j}, \\qquad
              \\frac{\\partial L}{\\partial x_{n,c,i,j}} = \\frac{\\delta_{n,c}}{HW}

    Shapes: ``(N, C, H, W) -> (N, C)``. Lin, Chen & Yan (2014), *Network In
    Network*; the head of the ResNets in chapter 5. Chapter 4.
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = _check_images(x)
        self._save(x.shape)
        n, c, h, w = x.shape
        return x.reshape(n, c, h * w).mean(axis=2)  # (N, C, H W) -> (N, C)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        (shape,) = self._saved()
        n, c, h, w = shape
        dout = check_dout(dout, (n, c), "GlobalAvgPool2d")
        scaled = dout * (1.0 / (h * w))
        return np.broadcast_to(scaled[:, :, None, None], shape).copy()  # (N, C) -> (N, C, H, W)
