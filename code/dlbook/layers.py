"""Layers of chapter 3: affine map, dropout, batch and layer normalisation, reshaping.

Each layer is a :class:`~dlbook.core.Module` (protocol version 2): ``forward``
pushes what ``backward`` needs on the layer's tape, ``backward(dout) -> dx``
pops it and accumulates the parameter gradients into ``grads``, so one layer
may be applied several times in one forward pass. All of them accept float32
and float64 input and return the input's dtype (for a layer created with the
same ``dtype``); parameter gradients accumulate in the parameters' dtype.
Random layers (:class:`Linear`'s initial weights, :class:`Dropout`'s masks)
take an explicit seed or Generator, ``rng``, with no default.

Chapter 1 uses :class:`Linear`; chapter 3 derives every backward pass here
and trains with Dropout, BatchNorm1d and LayerNorm; chapter 4 needs
:class:`Flatten`.

References
----------
- Srivastava, Hinton, Krizhevsky, Sutskever & Salakhutdinov (2014). Dropout: A
  Simple Way to Prevent Neural Networks from Overfitting. JMLR.
- Ioffe & Szegedy (2015). Batch Normalization: Accelerating Deep Network
  Training by Reducing Internal Covariate Shift. ICML.
- Ba, Kiros & Hinton (2016). Layer Normalization. arXiv:1607.06450.
- Initialisers: see :mod:`dlbook.init`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from . import init as _init
from .core import Module, as_generator, check_dout, check_dtype, check_float_array, check_positive_int

__all__ = [
    "Linear",
    "Dropout",
    "BatchNorm1d",
    "BatchNorm2d",
    "LayerNorm",
    "Identity",
    "Flatten",
    "Embedding",
    "as_generator",
    "init_weight",
    "INIT_METHODS",
]


INIT_METHODS = {
    # the names chapters 1 and 3 use (kept: the same seed gives the same weights as before)
    "uniform": _init.torch_default,
    "lecun": _init.lecun_normal,
    "xavier": _init.xavier_normal,
    "he": _init.he_normal,
    # uniform variants
    "xavier_uniform": _init.xavier_uniform,
    "he_uniform": _init.he_uniform,
    "lecun_uniform": _init.lecun_uniform,
    # the full names of dlbook.init, accepted too
    "torch_default": _init.torch_default,
    "lecun_normal": _init.lecun_normal,
    "xavier_normal": _init.xavier_normal,
    "he_normal": _init.he_normal,
}
"""The ``init=`` names of :func:`init_weight` and :class:`Linear`, and their :mod:`dlbook.init` functions."""


def init_weight(
    fan_in: int,
    fan_out: int,
    rng: np.random.Generator | int,
    method: str = "uniform",
    dtype=np.float64,
) -> np.ndarray:
    """Draw a ``(fan_in, fan_out)`` weight matrix by the initialiser called ``method``.

    - ``"uniform"``: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), PyTorch's ``nn.Linear`` default
      (:func:`dlbook.init.torch_default`);
    - ``"lecun"``: N(0, 1/fan_in) (LeCun et al. 1998, *Efficient BackProp*; the SELU init);
    - ``"xavier"``: N(0, 2/(fan_in+fan_out)) (Glorot & Bengio 2010);
    - ``"he"``: N(0, 2/fan_in) (He et al. 2015, *Delving Deep into Rectifiers*);
    - ``"lecun_uniform"``, ``"xavier_uniform"``, ``"he_uniform"``: uniform with the same variances;
    - the names of :data:`dlbook.init.INITIALIZERS` (``"he_normal"``, ...) as synonyms.

    .. math:: \\operatorname{Var}(W_{ij}) = \\tfrac{1}{3 n_\\text{in}},\\ \\tfrac{1}{n_\\text{in}},\\
              \\tfrac{2}{n_\\text{in} + n_\\text{out}},\\ \\tfrac{2}{n_\\text{in}}

    Each delegates to :mod:`dlbook.init` with ``gain=1``. Chapter 3 derives
    each from the variance of the activation.
    """
    fn = INIT_METHODS.get(method) if isinstance(method, str) else None
    if fn is None:
        raise ValueError(f"unknown init {method!r}; expected one of {tuple(INIT_METHODS)}")
    return fn(fan_in, fan_out, rng, dtype=dtype)


def _positive_float(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)):
        raise TypeError(f"{what} must be a number, got {type(value).__name__}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{what} must be positive and finite, got {value!r}")
    return float(value)


def _feature_sums(a: np.ndarray, axes: tuple) -> np.ndarray:
    """Per-feature sums of ``a (N, D)`` or ``(N, D, L)`` over ``axes``, shape ``(D,)``."""
    if a.ndim == 2:
        return np.ones(a.shape[0], dtype=a.dtype) @ a  # a BLAS product: faster than a.sum(axis=0)
    return a.sum(axis=axes)


# ---------------------------------------------------------------------------
# Linear
# ---------------------------------------------------------------------------
class Linear(Module):
    """Affine map ``y = x W + b`` over the last axis.

    .. math:: y = xW + b, \\quad \\frac{\\partial L}{\\partial W} = x^\\top \\delta,
              \\quad \\frac{\\partial L}{\\partial b} = \\textstyle\\sum_n \\delta_n,
              \\quad \\frac{\\partial L}{\\partial x} = \\delta W^\\top

    Shapes: ``x (N, D) -> y (N, H)``, or with leading axes ``x (N, T, D) ->
    y (N, T, H)`` (any number of them: they are flattened into one batch axis,
    so the sums over ``n`` run over every leading position); ``W (D, H)``,
    ``b (H,)``. ``rng`` (a seed or a Generator, required: no hidden default)
    draws ``W`` by the initialiser ``init`` (see :func:`init_weight`); the
    bias starts at zero. :meth:`from_weights` builds a layer from given arrays
    instead. As in :class:`~dlbook.conv.Conv2d`, the parameters are used in
    the input's dtype (a float32 batch through a float64 layer gives float32;
    float64 results are unchanged). Chapter 3 derives the backward pass.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        bias: bool = True,
        rng: np.random.Generator | int,
        init: str = "uniform",
        dtype=np.float64,
    ) -> None:
        super().__init__()
        self.in_features = check_positive_int(in_features, "in_features")
        self.out_features = check_positive_int(out_features, "out_features")
        dt = check_dtype(dtype)
        params = {"W": init_weight(self.in_features, self.out_features, as_generator(rng), init, dt)}
        if bias:
            params["b"] = np.zeros(self.out_features, dtype=dt)
        self.params = params

    @classmethod
    def from_weights(cls, W, b=None) -> Linear:
        """A layer with the weight ``W (D, H)`` and the bias ``b (H,)`` (no bias if ``None``), copied.

        The parameters take ``W``'s dtype (nested lists become float64); no
        random draw, so no ``rng``. Chapter 2 builds networks by hand with it,
        e.g. ``Linear.from_weights([[1, -1]], [0, 0])`` for ``x -> (x, -x)``.
        """
        W = check_float_array(W, "W", ndim=2)
        layer = cls.__new__(cls)
        Module.__init__(layer)
        layer.in_features = check_positive_int(W.shape[0], "W.shape[0] (in_features)")
        layer.out_features = check_positive_int(W.shape[1], "W.shape[1] (out_features)")
        params = {"W": np.array(W, copy=True)}
        if b is not None:
            b = check_float_array(b, "b", ndim=1)
            if b.shape != (layer.out_features,):
                raise ValueError(f"b must have shape ({layer.out_features},) to match W, got {b.shape}")
            params["b"] = b.astype(W.dtype)  # a copy
        layer.params = params
        return layer

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = check_float_array(x, "x")
        if x.ndim < 2:
            raise ValueError(f"Linear expects x 2-D (N, D) or more (N, ..., D), got shape {x.shape}")
        if x.shape[-1] != self.in_features:
            raise ValueError(f"Linear expected {self.in_features} input features, got x of shape {x.shape}")
        self._save(x)
        x2 = x if x.ndim == 2 else x.reshape(-1, self.in_features)  # (N*T*..., D)
        y = x2 @ self._params["W"].astype(x.dtype, copy=False)  # (M, H)
        if "b" in self._params:
            y += self._params["b"].astype(x.dtype, copy=False)
        return y if x.ndim == 2 else y.reshape(x.shape[:-1] + (self.out_features,))  # (N, ..., H)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        (x,) = self._saved()
        dout = check_dout(dout, x.shape[:-1] + (self.out_features,), "Linear")
        x2 = x.reshape(-1, self.in_features)  # (M, D)
        d2 = dout.reshape(-1, self.out_features)  # (M, H)
        self._accumulate("W", x2.T @ d2)  # (D, M) @ (M, H) -> (D, H)
        if "b" in self._params:
            self._accumulate("b", d2.sum(axis=0))
        dx = d2 @ self._params["W"].astype(d2.dtype, copy=False).T  # (M, H) @ (H, D) -> (M, D)
        return dx.reshape(x.shape)  # (N, ..., D)

    def __repr__(self) -> str:
        return f"Linear({self.in_features}, {self.out_features}, bias={'b' in self._params})"


# ---------------------------------------------------------------------------
# Dropout
# ---------------------------------------------------------------------------
class Dropout(Module):
    """Inverted dropout: zero each unit with probability ``p`` in training, rescale the rest.

    .. math:: y = x \\odot \\frac{m}{1 - p}, \\quad m_i \\sim \\operatorname{Bernoulli}(1 - p),
              \\qquad \\frac{\\partial L}{\\partial x} = \\delta \\odot \\frac{m}{1 - p}

    Dividing by ``1 - p`` during training keeps ``E[y] = x``, so evaluation
    is the identity (it returns ``x`` itself, no copy, as PyTorch does).
    ``p`` lies in ``[0, 1)``. The mask is drawn from this layer's Generator
    (``rng``, a seed or a Generator, required) at every training forward, in
    ``x``'s dtype (so one seed gives different masks for float32 and float64
    input), and saved for the matching ``backward``. Shapes: ``x`` any shape
    -> same shape and dtype. No parameters. Give each Dropout layer its own
    seed or Generator (two layers with the same seed draw identical masks);
    :func:`dlbook.models.mlp` does.

    Srivastava et al. (2014), *Dropout: A Simple Way to Prevent Neural
    Networks from Overfitting* (the paper scales the weights by ``1 - p`` at
    test time instead; the inverted form is equivalent). Chapter 3.
    """

    def __init__(self, p: float = 0.5, *, rng: np.random.Generator | int) -> None:
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, (int, float, np.floating)):
            raise TypeError(f"p must be a number in [0, 1), got {type(p).__name__}")
        if not 0.0 <= p < 1.0:
            raise ValueError(f"Dropout probability p must lie in [0, 1), got {p!r}")
        self.p = float(p)
        self.rng = as_generator(rng)

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = check_float_array(x, "x")
        if not self.training or self.p == 0.0:
            self._save(x.shape, None)  # no mask: the identity
            return x
        mask = np.greater_equal(self.rng.random(x.shape, dtype=x.dtype), self.p).astype(x.dtype)
        mask *= 1.0 / (1.0 - self.p)  # m / (1 - p); a Python float: float32 stays float32
        self._save(x.shape, mask)
        return x * mask

    def backward(self, dout: np.ndarray) -> np.ndarray:
        shape, mask = self._saved()
        dout = check_dout(dout, shape, "Dropout")
        return dout if mask is None else dout * mask

    def __repr__(self) -> str:
        return f"Dropout(p={self.p:g})"


# ---------------------------------------------------------------------------
# Normalisation
# ---------------------------------------------------------------------------
class _BatchStats(NamedTuple):
    """What a training forward of BatchNorm keeps for its backward."""

    xhat: np.ndarray  # (N, D) or (N, D, L): the input standardised by the batch statistics
    inv_std: np.ndarray  # (1, D) or (1, D, 1): 1 / sqrt(batch variance + eps)
    count: int  # M, the values per feature
    axes: tuple  # the axes the statistics run over: (0,) or (0, 2)


class _RunningStats(NamedTuple):
    """What an evaluation forward of BatchNorm keeps for its backward."""

    x: np.ndarray  # (N, D) or (N, D, L): the input
    mean: np.ndarray  # (1, D) or (1, D, 1): the running mean (a copy, in x's dtype)
    inv_std: np.ndarray  # (1, D) or (1, D, 1): 1 / sqrt(running variance + eps)
    scale: np.ndarray  # (1, D) or (1, D, 1): dy/dx = gamma * inv_std (inv_std without affine)
    axes: tuple  # (0,) or (0, 2)


class BatchNorm1d(Module):
    """Batch normalisation: standardise each feature over the batch, then scale and shift.

    .. math::
        \\mu = \\frac{1}{M}\\sum_n x_n, \\quad \\sigma^2 = \\frac{1}{M}\\sum_n (x_n - \\mu)^2,
        \\quad \\hat x_n = \\frac{x_n - \\mu}{\\sqrt{\\sigma^2 + \\epsilon}}, \\quad
        y_n = \\gamma \\hat x_n + \\beta

    Training uses the batch statistics (biased variance) and updates the
    running estimates with the *unbiased* variance, as PyTorch does:

    .. math::
        \\hat\\mu \\leftarrow (1 - m)\\hat\\mu + m\\mu, \\quad
        \\hat\\sigma^2 \\leftarrow (1 - m)\\hat\\sigma^2 + m \\tfrac{M}{M - 1}\\sigma^2

    Evaluation normalises with the running estimates (a fixed affine map).
    The training backward, with :math:`\\delta` the upstream gradient,

    .. math::
        \\frac{\\partial L}{\\partial x_n} = \\frac{\\gamma}{\\sqrt{\\sigma^2 + \\epsilon}}
        \\Big(\\delta_n - \\frac{1}{M}\\sum_k \\delta_k
        - \\hat x_n \\frac{1}{M}\\sum_k \\delta_k \\hat x_k\\Big),
        \\quad \\frac{\\partial L}{\\partial \\gamma} = \\sum_n \\delta_n \\hat x_n,
        \\quad \\frac{\\partial L}{\\partial \\beta} = \\sum_n \\delta_n

    where the two means are ``dbeta / M`` and ``dgamma / M``, so they cost
    nothing extra; in evaluation ``dx = delta * gamma / sqrt(running_var + eps)``.
    The backward pass follows the mode of its own forward pass (each forward
    saves the statistics it used), even if ``train``/``eval`` was switched in
    between.

    Shapes: ``x (N, D)`` (statistics over ``N``, ``M = N``) or ``x (N, D, L)``
    (over ``N`` and ``L``, ``M = N L``, as PyTorch's ``BatchNorm1d``) -> same
    shape and dtype. ``params``: ``"gamma"``, ``"beta"`` of shape ``(D,)``
    (none when ``affine=False``). The running statistics are *buffers*, not
    parameters (optimisers must not touch them, ``state_dict`` saves them):
    ``buffers["running_mean"]`` and ``buffers["running_var"]`` (also the
    attributes ``running_mean``/``running_var``), updated in place. Training
    needs ``M > 1``.

    Ioffe & Szegedy (2015), *Batch Normalization: Accelerating Deep Network
    Training by Reducing Internal Covariate Shift*. Chapter 3.
    """

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float = 0.1,
        affine: bool = True,
        dtype=np.float64,
    ) -> None:
        super().__init__()
        self.num_features = check_positive_int(num_features, "num_features")
        self.eps = _positive_float(eps, "eps")
        if isinstance(momentum, bool) or not isinstance(momentum, (int, float, np.floating)):
            raise TypeError(f"momentum must be a number in [0, 1], got {type(momentum).__name__}")
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum must lie in [0, 1], got {momentum!r}")
        self.momentum = float(momentum)
        self.affine = bool(affine)
        dt = check_dtype(dtype)
        if self.affine:
            self.params = {"gamma": np.ones(num_features, dtype=dt), "beta": np.zeros(num_features, dtype=dt)}
        self.buffers = {
            "running_mean": np.zeros(num_features, dtype=dt),
            "running_var": np.ones(num_features, dtype=dt),
        }

    @property
    def running_mean(self) -> np.ndarray:
        return self._buffers["running_mean"]

    @property
    def running_var(self) -> np.ndarray:
        return self._buffers["running_var"]

    def _check(self, x) -> np.ndarray:
        x = check_float_array(x, "x")
        if x.ndim not in (2, 3):
            raise ValueError(f"BatchNorm1d expects x of shape (N, D) or (N, D, L), got shape {x.shape}")
        if x.shape[1] != self.num_features:
            raise ValueError(
                f"BatchNorm1d expected {self.num_features} features on axis 1, got x of shape {x.shape}"
            )
        return x

    def forward(self, x: np.ndarray) -> np.ndarray:
        y, cache = self._normalise(self._check(x))
        self._save(cache)
        return y

    def backward(self, dout: np.ndarray) -> np.ndarray:
        (cache,) = self._saved()
        return self._backward(cache, check_dout(dout, cache[0].shape, "BatchNorm1d"))

    # -- the two modes, on checked (N, D) or (N, D, L) arrays ------------------
    def _normalise(self, x: np.ndarray) -> tuple[np.ndarray, _BatchStats | _RunningStats]:
        """``(y, what backward needs)`` in the current mode."""
        return self._forward_train(x) if self.training else self._forward_eval(x)

    def _backward(self, cache: _BatchStats | _RunningStats, dout: np.ndarray) -> np.ndarray:
        """``dx`` for a checked ``dout``, in the mode of the forward pass that saved ``cache``."""
        if isinstance(cache, _BatchStats):
            return self._backward_train(cache, dout)
        return self._backward_eval(cache, dout)

    def _layout(self, x: np.ndarray) -> tuple[tuple, tuple]:
        """The axes the statistics run over, and the broadcast shape ``(1, D)`` or ``(1, D, 1)``."""
        axes = (0,) if x.ndim == 2 else (0, 2)
        return axes, (1, self.num_features) + (1,) * (x.ndim - 2)

    def _gamma_beta(self, dtype, bshape: tuple) -> tuple[np.ndarray, np.ndarray]:
        gamma = self._params["gamma"].astype(dtype, copy=False).reshape(bshape)
        beta = self._params["beta"].astype(dtype, copy=False).reshape(bshape)
        return gamma, beta

    def _forward_train(self, x: np.ndarray) -> tuple[np.ndarray, _BatchStats]:
        axes, bshape = self._layout(x)
        count = x.size // self.num_features  # M: values per feature
        if count < 2:
            raise ValueError(
                f"{type(self).__name__} needs more than one value per feature in training, "
                f"got x of shape {x.shape}; use a larger batch or call .eval()"
            )
        inv_count = 1.0 / count
        mu = (_feature_sums(x, axes) * inv_count).reshape(bshape)  # (1, D[, 1]): batch mean
        xc = x - mu  # centred input
        sq = np.multiply(xc, xc)  # squared deviations
        var = (_feature_sums(sq, axes) * inv_count).reshape(bshape)  # biased batch variance
        inv_std = 1.0 / np.sqrt(var + self.eps)
        xhat = np.multiply(xc, inv_std, out=sq)  # the standardised input, in sq's memory (sq is done)
        self._update_running(mu, var, count)
        cache = _BatchStats(xhat, inv_std, count, axes)
        if not self.affine:
            return xhat.copy(), cache  # a copy: the caller may modify y, backward needs xhat
        gamma, beta = self._gamma_beta(x.dtype, bshape)
        y = np.multiply(xhat, gamma, out=xc)  # y in xc's memory (xc is done)
        y += beta
        return y, cache

    def _update_running(self, mu: np.ndarray, var: np.ndarray, count: int) -> None:
        """Move the running statistics towards the batch's, with the unbiased variance."""
        m = self.momentum
        running_mean, running_var = self._buffers["running_mean"], self._buffers["running_var"]
        running_mean *= 1.0 - m
        running_mean += m * mu.reshape(-1)
        running_var *= 1.0 - m
        running_var += (m * count / (count - 1)) * var.reshape(-1)  # M / (M - 1): unbiased

    def _forward_eval(self, x: np.ndarray) -> tuple[np.ndarray, _RunningStats]:
        """A fixed per-feature affine map ``y = x * scale + shift``."""
        axes, bshape = self._layout(x)
        dt = x.dtype
        mean = self._buffers["running_mean"].astype(dt).reshape(bshape)  # a copy
        inv_std = 1.0 / np.sqrt(self._buffers["running_var"].astype(dt).reshape(bshape) + self.eps)
        if self.affine:
            gamma, beta = self._gamma_beta(dt, bshape)
            scale = gamma * inv_std
        else:
            scale = inv_std
        shift = -mean * scale
        if self.affine:
            shift += beta
        y = x * scale
        y += shift
        return y, _RunningStats(x, mean, inv_std, scale, axes)

    def _backward_train(self, c: _BatchStats, dout: np.ndarray) -> np.ndarray:
        bshape = c.inv_std.shape
        dout_xhat = np.multiply(dout, c.xhat)  # delta * x_hat
        dgamma = _feature_sums(dout_xhat, c.axes)  # (D,)
        dbeta = _feature_sums(dout, c.axes)  # (D,)
        if self.affine:
            self._accumulate("gamma", dgamma)
            self._accumulate("beta", dbeta)
            scale = self._params["gamma"].astype(c.xhat.dtype, copy=False).reshape(bshape) * c.inv_std
        else:
            scale = c.inv_std
        # dx = gamma / std * (delta - mean(delta) - x_hat * mean(delta * x_hat)),
        # with mean(delta) = dbeta / M and mean(delta * x_hat) = dgamma / M
        inv_count = 1.0 / c.count
        dx = np.multiply(c.xhat, (dgamma * inv_count).reshape(bshape), out=dout_xhat)  # dout_xhat is summed
        np.subtract(dout, dx, out=dx)
        dx -= (dbeta * inv_count).reshape(bshape)
        dx *= scale
        return dx

    def _backward_eval(self, c: _RunningStats, dout: np.ndarray) -> np.ndarray:
        if self.affine:
            xhat = c.x - c.mean
            xhat *= c.inv_std  # x standardised by the running statistics
            dout_xhat = np.multiply(xhat, dout, out=xhat)  # delta * x_hat, in xhat's memory
            self._accumulate("gamma", _feature_sums(dout_xhat, c.axes))
            self._accumulate("beta", _feature_sums(dout, c.axes))
        return dout * c.scale

    def __repr__(self) -> str:
        return (
            f"BatchNorm1d({self.num_features}, eps={self.eps:g}, momentum={self.momentum:g}, "
            f"affine={self.affine})"
        )


class BatchNorm2d(BatchNorm1d):
    """Batch normalisation of images: statistics per channel over the batch and all positions.

    .. math::
        \\mu_c = \\frac{1}{NHW}\\sum_{n,i,j} x_{n,c,i,j}, \\quad
        \\sigma_c^2 = \\frac{1}{NHW}\\sum_{n,i,j} (x_{n,c,i,j} - \\mu_c)^2, \\quad
        y_{n,c,i,j} = \\gamma_c \\frac{x_{n,c,i,j} - \\mu_c}{\\sqrt{\\sigma_c^2 + \\epsilon}} + \\beta_c

    Exactly :class:`BatchNorm1d` on the view ``(N, C, H W)`` (``M = N H W``
    values per channel), with the same running statistics (unbiased variance),
    buffers and backward pass; PyTorch's ``BatchNorm2d``. Shapes:
    ``x (N, C, H, W)`` -> same shape and dtype; ``params`` ``"gamma"``,
    ``"beta"`` of shape ``(C,)``. Training needs ``N H W > 1``.

    Ioffe & Szegedy (2015). Chapters 4 and 5.
    """

    def _check(self, x) -> np.ndarray:
        x = check_float_array(x, "x")
        if x.ndim != 4:
            raise ValueError(f"BatchNorm2d expects x of shape (N, C, H, W), got shape {x.shape}")
        if x.shape[1] != self.num_features:
            raise ValueError(
                f"BatchNorm2d expected {self.num_features} channels on axis 1, got x of shape {x.shape}"
            )
        return x

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = self._check(x)
        n, c, h, w = x.shape
        y, cache = self._normalise(x.reshape(n, c, h * w))  # via (N, C, H W)
        self._save(cache, x.shape)
        return y.reshape(x.shape)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        cache, shape = self._saved()
        dout = check_dout(dout, shape, "BatchNorm2d")
        n, c, h, w = shape
        return self._backward(cache, dout.reshape(n, c, h * w)).reshape(shape)  # via (N, C, H W)

    def __repr__(self) -> str:
        return super().__repr__().replace("BatchNorm1d", "BatchNorm2d", 1)


class LayerNorm(Module):
    """Layer normalisation: standardise each sample over its last axis, then scale and shift.

    .. math::
        \\mu = \\frac{1}{D}\\sum_j x_j, \\quad \\sigma^2 = \\frac{1}{D}\\sum_j (x_j - \\mu)^2,
        \\quad \\hat x_j = \\frac{x_j - \\mu}{\\sqrt{\\sigma^2 + \\epsilon}}, \\quad
        y_j = \\gamma_j \\hat x_j + \\beta_j

    and, with :math:`g = \\delta \\odot \\gamma`,

    .. math::
        \\frac{\\partial L}{\\partial x_j} = \\frac{1}{\\sqrt{\\sigma^2 + \\epsilon}}
        \\Big(g_j - \\frac{1}{D}\\sum_k g_k - \\hat x_j \\frac{1}{D}\\sum_k g_k \\hat x_k\\Big),
        \\quad \\frac{\\partial L}{\\partial \\gamma} = \\sum_{n} \\delta_n \\odot \\hat x_n,
        \\quad \\frac{\\partial L}{\\partial \\beta} = \\sum_{n} \\delta_n

    (sums over every leading position ``n``). The same in training and
    evaluation: the statistics are each sample's own. Shapes: ``x (..., D)``,
    e.g. ``(N, D)`` or ``(N, T, D)`` -> same shape and dtype; ``params``
    ``"gamma"``, ``"beta"`` of shape ``(D,)`` (none when
    ``elementwise_affine=False``). ``normalized_shape`` is ``D`` or ``(D,)``.

    Ba, Kiros & Hinton (2016), *Layer Normalization*. Chapter 3 (and the
    Transformer chapter).
    """

    def __init__(
        self,
        normalized_shape: int | tuple[int],
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        dtype=np.float64,
    ) -> None:
        super().__init__()
        if isinstance(normalized_shape, (tuple, list)):
            if len(normalized_shape) != 1:
                raise ValueError(
                    f"LayerNorm normalises over the last axis only: normalized_shape must be D or (D,), "
                    f"got {tuple(normalized_shape)}"
                )
            normalized_shape = normalized_shape[0]
        self.normalized_shape = check_positive_int(normalized_shape, "normalized_shape")
        self.eps = _positive_float(eps, "eps")
        self.elementwise_affine = bool(elementwise_affine)
        dt = check_dtype(dtype)
        d = self.normalized_shape
        if self.elementwise_affine:
            self.params = {"gamma": np.ones(d, dtype=dt), "beta": np.zeros(d, dtype=dt)}

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = check_float_array(x, "x")
        d = self.normalized_shape
        if x.ndim < 1 or x.shape[-1] != d:
            raise ValueError(f"LayerNorm expected x of shape (..., {d}), got shape {x.shape}")
        x2 = x.reshape(-1, d)  # (M, D): every leading position is a row
        # row means as matrix-vector products (BLAS), several times faster than .mean(axis=1)
        avg = np.full(d, 1.0 / d, dtype=x.dtype)
        mu = x2 @ avg  # (M,): row means
        xc = x2 - mu[:, None]  # centred rows
        sq = np.multiply(xc, xc)  # squared deviations
        var = sq @ avg  # (M,): biased row variances
        inv_std = (1.0 / np.sqrt(var + self.eps))[:, None]  # (M, 1)
        xhat = np.multiply(xc, inv_std, out=sq)  # the standardised rows, in sq's memory (sq is done)
        self._save(x.shape, xhat, inv_std)
        if not self.elementwise_affine:
            return xhat.reshape(x.shape).copy()  # a copy: the caller may modify y, backward needs xhat
        y = np.multiply(xhat, self._params["gamma"].astype(x.dtype, copy=False), out=xc)  # in xc's memory
        y += self._params["beta"].astype(x.dtype, copy=False)
        return y.reshape(x.shape)  # (..., D)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        shape, xhat, inv_std = self._saved()
        d = self.normalized_shape
        d2 = check_dout(dout, shape, "LayerNorm").reshape(-1, d)  # (M, D): delta
        dout_xhat = np.multiply(d2, xhat)  # delta * x_hat
        if self.elementwise_affine:
            gamma = self._params["gamma"].astype(xhat.dtype, copy=False)
            ones = np.ones(len(d2), dtype=xhat.dtype)
            self._accumulate("gamma", ones @ dout_xhat)  # column sums over the M rows
            self._accumulate("beta", ones @ d2)
            gamma_avg = gamma * (1.0 / d)
            mean_g = (d2 @ gamma_avg)[:, None]  # (M, 1): mean of g = delta * gamma
            mean_gx = (dout_xhat @ gamma_avg)[:, None]  # (M, 1): mean of g * x_hat
            dx = np.multiply(d2, gamma)  # g
        else:
            avg = np.full(d, 1.0 / d, dtype=xhat.dtype)
            mean_g = (d2 @ avg)[:, None]
            mean_gx = (dout_xhat @ avg)[:, None]
            dx = d2.copy()  # g = delta
        # dx = (g - mean(g) - x_hat * mean(g * x_hat)) / std
        dx -= mean_g
        dx -= np.multiply(xhat, mean_gx, out=dout_xhat)  # x_hat * mean(g * x_hat), in dout_xhat's memory
        dx *= inv_std
        return dx.reshape(shape)  # (..., D)

    def __repr__(self) -> str:
        return (
            f"LayerNorm({self.normalized_shape}, eps={self.eps:g}, "
            f"elementwise_affine={self.elementwise_affine})"
        )


# ---------------------------------------------------------------------------
# Shape-only layers
# ---------------------------------------------------------------------------
class Identity(Module):
    """The identity layer: ``y = x``, ``dx = dout``.

    .. math:: y = x, \\qquad \\frac{\\partial L}{\\partial x} = \\delta

    Returns ``x`` itself (no copy). Useful as a placeholder (no normalisation,
    a skip connection's shortcut). Shapes: any -> same. Chapter 3.
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = check_float_array(x, "x")
        self._save(x.shape)
        return x

    def backward(self, dout: np.ndarray) -> np.ndarray:
        (shape,) = self._saved()
        return check_dout(dout, shape, "Identity")


class Flatten(Module):
    """Flatten every axis after the batch axis: ``(N, d_1, …, d_k) -> (N, d_1 ⋯ d_k)``.

    .. math:: y_{n, \\text{idx}(i_1, \\dots, i_k)} = x_{n, i_1, \\dots, i_k}, \\qquad
              \\frac{\\partial L}{\\partial x} = \\operatorname{reshape}(\\delta, \\text{shape of } x)

    C (row-major) order, as ``torch.nn.Flatten``; returns a view when ``x``
    is contiguous. Needs ``x`` with at least 2 axes. Chapter 4 (images to a
    classifier head).
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = check_float_array(x, "x")
        if x.ndim < 2:
            raise ValueError(f"Flatten expects x of shape (N, ...) with at least 2-D, got shape {x.shape}")
        self._save(x.shape)
        return x.reshape(x.shape[0], math.prod(x.shape[1:]))  # (N, d_1 * ... * d_k)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        (shape,) = self._saved()
        dout = check_dout(dout, (shape[0], math.prod(shape[1:])), "Flatten")
        return dout.reshape(shape)  # (N, d_1, ..., d_k)


# ---------------------------------------------------------------------------
# Embedding
# ---------------------------------------------------------------------------
class Embedding(Module):
    """A lookup table: token id ``k`` -> row ``W[k]``.

    .. math:: y_{n t} = W_{x_{n t}}, \\qquad
              \\frac{\\partial L}{\\partial W_k} = \\sum_{(n, t):\\ x_{n t} = k} \\delta_{n t}

    Shapes: ids ``x`` integers of any shape ``(N, ...)`` with values in ``[0,
    V)`` -> ``(N, ..., E)``; ``W (V, E)``, drawn from a standard normal as in
    ``torch.nn.Embedding``. The backward pass returns ``None`` (ids get no
    gradient) and *adds* each position's gradient to its token's row, so a
    token that occurs many times collects the sum (``np.add.at``; a plain
    ``dW[x] += d`` would keep only one of the repeated rows). Equals
    ``torch.nn.Embedding`` with the same ``W``. Chapter 6.
    """

    def __init__(
        self, num_embeddings: int, embedding_dim: int, *, rng: np.random.Generator | int, dtype=np.float64
    ) -> None:
        super().__init__()
        self.num_embeddings = check_positive_int(num_embeddings, "num_embeddings")
        self.embedding_dim = check_positive_int(embedding_dim, "embedding_dim")
        dt = check_dtype(dtype)
        W = as_generator(rng).standard_normal((self.num_embeddings, self.embedding_dim)).astype(dt)
        self.params = {"W": W}

    @classmethod
    def from_weights(cls, W) -> Embedding:
        """An embedding with the table ``W (V, E)``, copied."""
        W = check_float_array(W, "W", ndim=2)
        layer = cls.__new__(cls)
        Module.__init__(layer)
        layer.num_embeddings, layer.embedding_dim = W.shape
        layer.params = {"W": np.array(W, copy=True)}
        return layer

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if not np.issubdtype(x.dtype, np.integer):
            raise TypeError(f"Embedding expects integer token ids, got dtype {x.dtype}")
        if x.size and (x.min() < 0 or x.max() >= self.num_embeddings):
            raise ValueError(
                f"token ids must lie in [0, {self.num_embeddings - 1}] for an Embedding of "
                f"{self.num_embeddings} rows, got values in [{x.min()}, {x.max()}]"
            )
        self._save(x)
        return self._params["W"][x]  # (N, ..., E)

    def backward(self, dout: np.ndarray) -> None:
        (x,) = self._saved()
        dout = check_dout(dout, x.shape + (self.embedding_dim,), "Embedding")
        dW = self._grad("W")
        np.add.at(dW, x.reshape(-1), dout.reshape(-1, self.embedding_dim))  # repeated ids add up
        return None

    def __repr__(self) -> str:
        return f"Embedding({self.num_embeddings}, {self.embedding_dim})"
