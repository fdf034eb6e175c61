"""Layers of chapter 3: affine map, dropout, batch and layer normalisation, reshaping.

Each layer is a :class:`~dlbook.core.Module`: ``forward`` caches what
``backward`` needs, ``backward(dout) -> dx`` accumulates the parameter
gradients into ``grads``. All of them accept float32 and float64 input and
return the input's dtype (for a layer created with the same ``dtype``);
parameter gradients accumulate in the parameters' dtype.

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

import numpy as np

from . import init as _init
from .core import Module, as_generator, check_float_array, check_positive_int

__all__ = [
    "Linear",
    "Dropout",
    "BatchNorm1d",
    "BatchNorm2d",
    "LayerNorm",
    "Identity",
    "Flatten",
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


def _check_dout(dout, shape: tuple, layer: str) -> np.ndarray:
    dout = check_float_array(dout, "dout")
    if dout.shape != shape:
        raise ValueError(f"{layer}.backward: dout must have the output's shape {shape}, got {dout.shape}")
    return dout


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


def _float_dtype(dtype) -> np.dtype:
    dt = np.dtype(dtype)
    if dt not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dt}")
    return dt


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
    ``b (H,)``. ``init`` names the weight initialiser (see :func:`init_weight`);
    the bias starts at zero. Chapter 3 derives the backward pass.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        rng: np.random.Generator | int = 0,
        init: str = "uniform",
        dtype=np.float64,
    ) -> None:
        super().__init__()
        self.in_features = check_positive_int(in_features, "in_features")
        self.out_features = check_positive_int(out_features, "out_features")
        gen = as_generator(rng)
        self.params["W"] = init_weight(self.in_features, self.out_features, gen, init, dtype)
        if bias:
            self.params["b"] = np.zeros(out_features, dtype=dtype)
        self.zero_grad()
        self._x: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = check_float_array(x, "x")
        if x.ndim < 2:
            raise ValueError(f"Linear expects x 2-D (N, D) or more (N, ..., D), got shape {x.shape}")
        if x.shape[-1] != self.in_features:
            raise ValueError(
                f"Linear expected {self.in_features} input features, got x of shape {x.shape}"
            )
        self._x = x
        x2 = x if x.ndim == 2 else x.reshape(-1, self.in_features)  # (N*T*..., D)
        y = x2 @ self.params["W"]  # (M, H)
        if "b" in self.params:
            y += self.params["b"]
        return y if x.ndim == 2 else y.reshape(x.shape[:-1] + (self.out_features,))  # (N, ..., H)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        if self._x is None:
            raise RuntimeError("Linear.backward called before forward")
        x = self._x
        dout = _check_dout(dout, x.shape[:-1] + (self.out_features,), "Linear")
        x2 = x.reshape(-1, self.in_features)  # (M, D)
        d2 = dout.reshape(-1, self.out_features)  # (M, H)
        self._accumulate("W", x2.T @ d2)  # (D, M) @ (M, H) -> (D, H)
        if "b" in self.params:
            self._accumulate("b", d2.sum(axis=0))
        dx = d2 @ self.params["W"].T  # (M, H) @ (H, D) -> (M, D)
        return dx.reshape(x.shape)  # (N, ..., D)

    def __repr__(self) -> str:
        return f"Linear({self.in_features}, {self.out_features}, bias={'b' in self.params})"


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
    (``rng``) at every training forward, in ``x``'s dtype (so one seed gives
    different masks for float32 and float64 input), and cached for ``backward``.
    Shapes: ``x`` any shape -> same shape and dtype. No parameters. Give
    each Dropout layer its own seed or Generator (two layers left at the
    default ``rng=0`` draw identical masks); :func:`dlbook.models.mlp` does.

    Srivastava et al. (2014), *Dropout: A Simple Way to Prevent Neural
    Networks from Overfitting* (the paper scales the weights by ``1 - p`` at
    test time instead; the inverted form is equivalent). Chapter 3.
    """

    def __init__(self, p: float = 0.5, rng: np.random.Generator | int = 0) -> None:
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, (int, float, np.floating)):
            raise TypeError(f"p must be a number in [0, 1), got {type(p).__name__}")
        if not 0.0 <= p < 1.0:
            raise ValueError(f"Dropout probability p must lie in [0, 1), got {p!r}")
        self.p = float(p)
        self.rng = as_generator(rng)
        self._mask: np.ndarray | None = None  # m / (1 - p), or None for the identity
        self._shape: tuple | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = check_float_array(x, "x")
        self._shape = x.shape
        if not self.training or self.p == 0.0:
            self._mask = None
            return x
        mask = np.greater_equal(self.rng.random(x.shape, dtype=x.dtype), self.p).astype(x.dtype)
        mask *= 1.0 / (1.0 - self.p)  # Python float: float32 stays float32
        self._mask = mask
        return x * mask

    def backward(self, dout: np.ndarray) -> np.ndarray:
        if self._shape is None:
            raise RuntimeError("Dropout.backward called before forward")
        dout = _check_dout(dout, self._shape, "Dropout")
        return dout if self._mask is None else dout * self._mask

    def __repr__(self) -> str:
        return f"Dropout(p={self.p:g})"


# ---------------------------------------------------------------------------
# Normalisation
# ---------------------------------------------------------------------------
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

    Shapes: ``x (N, D)`` (statistics over ``N``, ``M = N``) or ``x (N, D, L)``
    (over ``N`` and ``L``, ``M = N L``, as PyTorch's ``BatchNorm1d``) -> same
    shape and dtype. ``params``: ``"gamma"``, ``"beta"`` of shape ``(D,)``
    (none when ``affine=False``). The running statistics are *buffers*, not
    parameters (optimisers must not touch them): ``buffers["running_mean"]``
    and ``buffers["running_var"]`` (also ``running_mean``/``running_var``),
    updated in place. Training needs ``M > 1``.

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
        dt = _float_dtype(dtype)
        if self.affine:
            self.params = {"gamma": np.ones(num_features, dtype=dt), "beta": np.zeros(num_features, dtype=dt)}
        self.buffers = {
            "running_mean": np.zeros(num_features, dtype=dt),
            "running_var": np.ones(num_features, dtype=dt),
        }
        self.zero_grad()
        self._cache: tuple | None = None

    @property
    def running_mean(self) -> np.ndarray:
        return self.buffers["running_mean"]

    @property
    def running_var(self) -> np.ndarray:
        return self.buffers["running_var"]

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
        return self._normalise(self._check(x))

    def _normalise(self, x: np.ndarray) -> np.ndarray:
        """The forward pass on a checked ``(N, D)`` or ``(N, D, L)`` array."""
        axes = (0,) if x.ndim == 2 else (0, 2)
        bshape = (1, self.num_features) + (1,) * (x.ndim - 2)  # (1, D) or (1, D, 1)
        count = x.size // self.num_features  # M: values per feature
        dt = x.dtype
        if self.affine:
            gamma = self.params["gamma"].astype(dt, copy=False).reshape(bshape)
            beta = self.params["beta"].astype(dt, copy=False).reshape(bshape)
        if self.training:
            if count < 2:
                raise ValueError(
                    f"{type(self).__name__} needs more than one value per feature in training, "
                    f"got x of shape {x.shape}; use a larger batch or call .eval()"
                )
            inv_count = 1.0 / count
            mu = (_feature_sums(x, axes) * inv_count).reshape(bshape)  # (1, D[, 1])
            xc = x - mu
            xhat = np.multiply(xc, xc)
            var = (_feature_sums(xhat, axes) * inv_count).reshape(bshape)  # biased batch variance
            inv_std = 1.0 / np.sqrt(var + self.eps)
            np.multiply(xc, inv_std, out=xhat)  # x_hat, cached for backward
            m = self.momentum
            rm, rv = self.buffers["running_mean"], self.buffers["running_var"]
            rm *= 1.0 - m
            rm += m * mu.reshape(-1)
            rv *= 1.0 - m
            rv += (m * count / (count - 1)) * var.reshape(-1)  # unbiased variance
            self._cache = ("train", xhat, inv_std, count, axes, bshape)
            if not self.affine:
                return xhat.copy()
            y = np.multiply(xhat, gamma, out=xc)  # reuse the centred buffer for y
            y += beta
            return y
        # evaluation: a fixed per-feature affine map y = x * scale + shift
        rm = self.buffers["running_mean"].astype(dt).reshape(bshape)
        inv_std = 1.0 / np.sqrt(self.buffers["running_var"].astype(dt).reshape(bshape) + self.eps)
        scale = gamma * inv_std if self.affine else inv_std
        shift = -rm * scale
        if self.affine:
            shift += beta
        self._cache = ("eval", x, rm, inv_std, scale, axes)
        y = x * scale
        y += shift
        return y

    def backward(self, dout: np.ndarray) -> np.ndarray:
        if self._cache is None:
            raise RuntimeError("BatchNorm1d.backward called before forward")
        if self._cache[0] == "train":
            _, xhat, inv_std, count, axes, bshape = self._cache
            dout = _check_dout(dout, xhat.shape, "BatchNorm1d")
            prod = np.multiply(dout, xhat)
            dgamma = _feature_sums(prod, axes)  # (D,)
            dbeta = _feature_sums(dout, axes)  # (D,)
            if self.affine:
                self._accumulate("gamma", dgamma)
                self._accumulate("beta", dbeta)
                scale = self.params["gamma"].astype(xhat.dtype, copy=False).reshape(bshape) * inv_std
            else:
                scale = inv_std
            # dx = gamma / std * (dout - mean(dout) - x_hat * mean(dout * x_hat)); prod becomes dx
            inv_count = 1.0 / count
            np.multiply(xhat, (dgamma * inv_count).reshape(bshape), out=prod)
            np.subtract(dout, prod, out=prod)
            prod -= (dbeta * inv_count).reshape(bshape)
            prod *= scale
            return prod
        _, x, rm, inv_std, scale, axes = self._cache
        dout = _check_dout(dout, x.shape, "BatchNorm1d")
        if self.affine:
            xhat = x - rm
            xhat *= inv_std
            xhat *= dout
            self._accumulate("gamma", _feature_sums(xhat, axes))
            self._accumulate("beta", _feature_sums(dout, axes))
        return dout * scale

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
        self._shape4 = x.shape
        n, c, h, w = x.shape
        return self._normalise(x.reshape(n, c, h * w)).reshape(x.shape)  # via (N, C, H W)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        if self._cache is None:
            raise RuntimeError("BatchNorm2d.backward called before forward")
        dout = _check_dout(dout, self._shape4, "BatchNorm2d")
        n, c, h, w = self._shape4
        return super().backward(dout.reshape(n, c, h * w)).reshape(self._shape4)  # via (N, C, H W)

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
        dt = _float_dtype(dtype)
        d = self.normalized_shape
        if self.elementwise_affine:
            self.params = {"gamma": np.ones(d, dtype=dt), "beta": np.zeros(d, dtype=dt)}
        self.zero_grad()
        self._cache: tuple | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = check_float_array(x, "x")
        d = self.normalized_shape
        if x.ndim < 1 or x.shape[-1] != d:
            raise ValueError(f"LayerNorm expected x of shape (..., {d}), got shape {x.shape}")
        x2 = x.reshape(-1, d)  # (M, D): every leading position is a row
        # row means as matrix-vector products (BLAS), several times faster than .mean(axis=1)
        avg = np.full(d, 1.0 / d, dtype=x.dtype)
        mu = x2 @ avg  # (M,)
        xc = x2 - mu[:, None]
        xhat = np.multiply(xc, xc)
        var = xhat @ avg  # (M,), biased
        inv_std = (1.0 / np.sqrt(var + self.eps))[:, None]  # (M, 1)
        np.multiply(xc, inv_std, out=xhat)
        self._cache = (x.shape, xhat, inv_std)
        if not self.elementwise_affine:
            return xhat.reshape(x.shape).copy()
        y = np.multiply(xhat, self.params["gamma"].astype(x.dtype, copy=False), out=xc)
        y += self.params["beta"].astype(x.dtype, copy=False)
        return y.reshape(x.shape)  # (..., D)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        if self._cache is None:
            raise RuntimeError("LayerNorm.backward called before forward")
        shape, xhat, inv_std = self._cache
        d = self.normalized_shape
        d2 = _check_dout(dout, shape, "LayerNorm").reshape(-1, d)  # (M, D)
        prod = np.multiply(d2, xhat)  # delta * x_hat
        if self.elementwise_affine:
            gamma = self.params["gamma"].astype(xhat.dtype, copy=False)
            ones = np.ones(len(d2), dtype=xhat.dtype)
            self._accumulate("gamma", ones @ prod)  # column sums over the M rows
            self._accumulate("beta", ones @ d2)
            gamma_avg = gamma * (1.0 / d)
            mean_g = (d2 @ gamma_avg)[:, None]  # (M, 1): mean of g = delta * gamma
            mean_gx = (prod @ gamma_avg)[:, None]  # (M, 1): mean of g * x_hat
            dx = np.multiply(d2, gamma)
        else:
            avg = np.full(d, 1.0 / d, dtype=xhat.dtype)
            mean_g = (d2 @ avg)[:, None]
            mean_gx = (prod @ avg)[:, None]
            dx = d2.copy()
        dx -= mean_g
        np.multiply(xhat, mean_gx, out=prod)
        dx -= prod
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

    def __init__(self) -> None:
        super().__init__()
        self._shape: tuple | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = check_float_array(x, "x")
        self._shape = x.shape
        return x

    def backward(self, dout: np.ndarray) -> np.ndarray:
        if self._shape is None:
            raise RuntimeError("Identity.backward called before forward")
        return _check_dout(dout, self._shape, "Identity")


class Flatten(Module):
    """Flatten every axis after the batch axis: ``(N, d_1, ..., d_k) -> (N, d_1 ... d_k)``.

    .. math:: y_{n, \\text{idx}(i_1, \\dots, i_k)} = x_{n, i_1, \\dots, i_k}, \\qquad
              \\frac{\\partial L}{\\partial x} = \\operatorname{reshape}(\\delta, \\text{shape of } x)

    C (row-major) order, as ``torch.nn.Flatten``; returns a view when ``x``
    is contiguous. Needs ``x`` with at least 2 axes. Chapter 4 (images to a
    classifier head).
    """

    def __init__(self) -> None:
        super().__init__()
        self._shape: tuple | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = check_float_array(x, "x")
        if x.ndim < 2:
            raise ValueError(f"Flatten expects x of shape (N, ...) with at least 2-D, got shape {x.shape}")
        self._shape = x.shape
        return x.reshape(x.shape[0], math.prod(x.shape[1:]))  # (N, d_1 * ... * d_k)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        if self._shape is None:
            raise RuntimeError("Flatten.backward called before forward")
        n = self._shape[0]
        dout = _check_dout(dout, (n, math.prod(self._shape[1:])), "Flatten")
        return dout.reshape(self._shape)  # (N, d_1, ..., d_k)
