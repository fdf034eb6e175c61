"""Weight initialisers: draw a weight matrix whose scale keeps signals alive through depth.

Every initialiser here draws a zero-mean weight array whose *variance* is
chosen from the layer's fan-in and/or fan-out, so that the variance of the
activations (forward) or of the gradients (backward) neither grows nor shrinks
from layer to layer. Chapter 3 derives each rule from
``Var(sum_i w_i x_i) = fan_in * Var(w) * E[x^2]``.

Conventions
-----------
- Fans are given explicitly: ``fan_in`` is the number of inputs that feed one
  output unit, ``fan_out`` the number of outputs one input feeds. For
  :class:`~dlbook.layers.Linear`, whose weight is ``W (D_in, D_out)``, they are
  ``D_in`` and ``D_out`` and the default ``shape`` is ``(fan_in, fan_out)``.
  For other layouts pass ``shape`` and compute the fans yourself, e.g. a
  convolution kernel ``(C_out, C_in, k, k)`` has ``fan_in = C_in k^2`` and
  ``fan_out = C_out k^2`` (what :func:`torch.nn.init._calculate_fan_in_and_fan_out`
  computes for PyTorch's layouts).
- ``gain`` multiplies the standard deviation (and the bound of the uniform
  ones); see :func:`calculate_gain` for the values that compensate common
  nonlinearities.
- Randomness comes only from ``rng`` (an ``int`` seed or a
  ``np.random.Generator``). Values are drawn in float64 and then cast to
  ``dtype``, so one seed gives the same weights (up to rounding) in float32
  and float64.

Summary (``n_in = fan_in``, ``n_out = fan_out``, ``g = gain``)

- ``xavier_uniform``: U(-b, b), b = g sqrt(6/(n_in+n_out)); variance 2 g^2/(n_in+n_out);
- ``xavier_normal``: N(0, 2 g^2/(n_in+n_out));
- ``he_uniform``: U(-b, b), b = g sqrt(6/((1+a^2) n)); variance 2 g^2/((1+a^2) n);
- ``he_normal``: N(0, 2 g^2/((1+a^2) n));
- ``lecun_uniform``: U(-b, b), b = g sqrt(3/n_in); variance g^2/n_in;
- ``lecun_normal``: N(0, g^2/n_in);
- ``torch_default``: U(-b, b), b = g/sqrt(n_in); variance g^2/(3 n_in).

(``n`` is ``fan_in`` or ``fan_out`` by ``mode``; ``a`` is the negative slope
of a leaky ReLU, 0 for ReLU.)

References
----------
- LeCun, Bottou, Orr & Müller (1998). Efficient BackProp. In *Neural Networks:
  Tricks of the Trade* (variance 1/fan_in).
- Glorot & Bengio (2010). Understanding the difficulty of training deep
  feedforward neural networks. AISTATS (variance 2/(fan_in + fan_out)).
- He, Zhang, Ren & Sun (2015). Delving Deep into Rectifiers: Surpassing
  Human-Level Performance on ImageNet Classification. ICCV (variance
  2/((1 + a^2) fan_in)).
- Klambauer, Unterthiner, Mayr & Hochreiter (2017). Self-Normalizing Neural
  Networks (LeCun normal for SELU).
- PyTorch documentation, ``torch.nn.init`` (``calculate_gain``,
  ``kaiming_normal_``, and the ``nn.Linear`` default).
"""

from __future__ import annotations

import math

import numpy as np

from .core import as_generator, check_positive_int

__all__ = [
    "calculate_gain",
    "xavier_uniform",
    "xavier_normal",
    "he_uniform",
    "he_normal",
    "lecun_uniform",
    "lecun_normal",
    "torch_default",
    "INITIALIZERS",
]

_GAINLESS = ("linear", "identity", "sigmoid", "conv1d", "conv2d", "conv3d")


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The factor by which to scale a weight's standard deviation for ``nonlinearity``.

    .. math::
        g_\\text{linear} = g_\\text{sigmoid} = 1, \\quad g_\\tanh = 5/3, \\quad
        g_\\text{relu} = \\sqrt{2}, \\quad g_\\text{leaky\\_relu}(a) = \\sqrt{2 / (1 + a^2)},
        \\quad g_\\text{selu} = 3/4

    The values (and ``param``, the leaky ReLU's negative slope, default 0.01)
    are PyTorch's ``torch.nn.init.calculate_gain``. ReLU's and leaky ReLU's
    come from He et al. (2015), *Delving Deep into Rectifiers*: half of the
    inputs are zeroed (or scaled by ``a``), so ``E[relu(x)^2] = Var(x)/2``.
    ``tanh``'s 5/3 and SELU's 3/4 are PyTorch's empirical choices (SELU's
    intended init is LeCun normal, i.e. gain 1 with :func:`lecun_normal`).
    Names: ``"linear"``, ``"identity"``, ``"conv1d"``, ``"conv2d"``, ``"conv3d"``,
    ``"sigmoid"``, ``"tanh"``, ``"relu"``, ``"leaky_relu"``, ``"selu"``.
    Chapter 3.
    """
    if not isinstance(nonlinearity, str):
        raise TypeError(f"nonlinearity must be a string, got {type(nonlinearity).__name__}")
    name = nonlinearity.lower()
    if param is not None and name != "leaky_relu":
        raise ValueError(f"param is the leaky ReLU's slope; {nonlinearity!r} takes none, got {param!r}")
    if name in _GAINLESS:
        return 1.0
    if name == "tanh":
        return 5.0 / 3.0
    if name == "relu":
        return math.sqrt(2.0)
    if name == "selu":
        return 3.0 / 4.0
    if name == "leaky_relu":
        a = 0.01 if param is None else param
        if isinstance(a, bool) or not isinstance(a, (int, float)) or not math.isfinite(a):
            raise ValueError(f"leaky_relu's param must be a finite number (the negative slope), got {a!r}")
        return math.sqrt(2.0 / (1.0 + a * a))
    known = _GAINLESS + ("tanh", "relu", "leaky_relu", "selu")
    raise ValueError(f"unknown nonlinearity {nonlinearity!r}; expected one of {known}")


def _setup(fan_in, fan_out, rng, gain, dtype, shape):
    """Check the common arguments; return (fan_in, fan_out, Generator, gain, dtype, shape)."""
    fan_in, fan_out = check_positive_int(fan_in, "fan_in"), check_positive_int(fan_out, "fan_out")
    gen = as_generator(rng)
    if isinstance(gain, bool) or not isinstance(gain, (int, float, np.floating, np.integer)):
        raise TypeError(f"gain must be a number, got {type(gain).__name__}")
    gain = float(gain)
    if not (math.isfinite(gain) and gain > 0.0):
        raise ValueError(f"gain must be positive and finite, got {gain}")
    dt = np.dtype(dtype)
    if dt not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dt}")
    if shape is None:
        shape = (fan_in, fan_out)
    else:
        try:
            shape = tuple(check_positive_int(s, "every entry of shape") for s in shape)
        except TypeError:
            raise TypeError(f"shape must be a tuple of positive integers, got {shape!r}") from None
    return fan_in, fan_out, gen, gain, dt, shape


def _mode_fan(fan_in: int, fan_out: int, mode: str) -> int:
    if mode == "fan_in":
        return fan_in
    if mode == "fan_out":
        return fan_out
    raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")


def _slope_factor(negative_slope) -> float:
    if isinstance(negative_slope, bool) or not isinstance(negative_slope, (int, float, np.floating)):
        raise TypeError(f"negative_slope must be a number, got {type(negative_slope).__name__}")
    a = float(negative_slope)
    if not math.isfinite(a):
        raise ValueError(f"negative_slope must be finite, got {a}")
    return 1.0 + a * a


def _uniform(gen: np.random.Generator, bound: float, shape, dtype) -> np.ndarray:
    return gen.uniform(-bound, bound, size=shape).astype(dtype, copy=False)


def _normal(gen: np.random.Generator, std: float, shape, dtype) -> np.ndarray:
    w = gen.standard_normal(shape)
    w *= std
    return w.astype(dtype, copy=False)


def xavier_uniform(fan_in, fan_out, rng, gain=1.0, dtype=np.float64, shape=None) -> np.ndarray:
    """Glorot/Xavier uniform: U(-b, b) with variance ``gain^2 * 2 / (fan_in + fan_out)``.

    .. math:: W_{ij} \\sim U(-b, b), \\quad b = g\\sqrt{\\frac{6}{n_\\text{in} + n_\\text{out}}},
              \\quad \\operatorname{Var}(W_{ij}) = \\frac{b^2}{3} = \\frac{2g^2}{n_\\text{in} + n_\\text{out}}

    Shape: ``shape`` (default ``(fan_in, fan_out)``). Matches
    ``torch.nn.init.xavier_uniform_``. Glorot & Bengio (2010), *Understanding
    the difficulty of training deep feedforward neural networks*: the harmonic
    compromise between keeping forward (1/fan_in) and backward (1/fan_out)
    variances. Chapter 3.
    """
    fan_in, fan_out, gen, gain, dt, shape = _setup(fan_in, fan_out, rng, gain, dtype, shape)
    return _uniform(gen, gain * math.sqrt(6.0 / (fan_in + fan_out)), shape, dt)


def xavier_normal(fan_in, fan_out, rng, gain=1.0, dtype=np.float64, shape=None) -> np.ndarray:
    """Glorot/Xavier normal: N(0, s^2) with ``s = gain * sqrt(2 / (fan_in + fan_out))``.

    .. math:: W_{ij} \\sim \\mathcal{N}\\!\\left(0, \\frac{2g^2}{n_\\text{in} + n_\\text{out}}\\right)

    Shape: ``shape`` (default ``(fan_in, fan_out)``). Matches
    ``torch.nn.init.xavier_normal_``. Glorot & Bengio (2010), *Understanding the
    difficulty of training deep feedforward neural networks*. Chapter 3.
    """
    fan_in, fan_out, gen, gain, dt, shape = _setup(fan_in, fan_out, rng, gain, dtype, shape)
    return _normal(gen, gain * math.sqrt(2.0 / (fan_in + fan_out)), shape, dt)


def he_uniform(
    fan_in, fan_out, rng, gain=1.0, dtype=np.float64, shape=None, negative_slope=0.0, mode="fan_in"
) -> np.ndarray:
    """He/Kaiming uniform for (leaky) ReLU: U(-b, b) with variance ``gain^2 * 2 / ((1 + a^2) n)``.

    .. math:: W_{ij} \\sim U(-b, b), \\quad b = g\\sqrt{\\frac{6}{(1 + a^2)\\, n}}

    ``n`` is ``fan_in`` (``mode="fan_in"``, keeps the forward variance) or
    ``fan_out`` (``mode="fan_out"``, keeps the backward variance); ``a`` is
    ``negative_slope`` (0 for ReLU). The ReLU factor 2 is *built in*: with the
    default ``gain=1`` this equals ``torch.nn.init.kaiming_uniform_(w,
    a=negative_slope, mode=mode, nonlinearity="leaky_relu")`` (for ``a = 0``
    also ``nonlinearity="relu"``); ``gain`` is an extra factor on top.
    Shape: ``shape`` (default ``(fan_in, fan_out)``). He et al. (2015),
    *Delving Deep into Rectifiers*. Chapter 3.
    """
    fan_in, fan_out, gen, gain, dt, shape = _setup(fan_in, fan_out, rng, gain, dtype, shape)
    n = _mode_fan(fan_in, fan_out, mode)
    return _uniform(gen, gain * math.sqrt(6.0 / (_slope_factor(negative_slope) * n)), shape, dt)


def he_normal(
    fan_in, fan_out, rng, gain=1.0, dtype=np.float64, shape=None, negative_slope=0.0, mode="fan_in"
) -> np.ndarray:
    """He/Kaiming normal for (leaky) ReLU: N(0, s^2) with ``s = gain * sqrt(2 / ((1 + a^2) n))``.

    .. math:: W_{ij} \\sim \\mathcal{N}\\!\\left(0, \\frac{2 g^2}{(1 + a^2)\\, n}\\right)

    ``n`` is ``fan_in`` (default) or ``fan_out`` by ``mode``; ``a`` is
    ``negative_slope`` (0 for ReLU). The ReLU factor 2 is *built in*: with
    ``gain=1, negative_slope=0, mode="fan_in"`` the variance is ``2 / fan_in``,
    that of ``torch.nn.init.kaiming_normal_(w, mode="fan_in",
    nonlinearity="relu")`` (PyTorch writes it as ``calculate_gain("relu")^2 /
    fan_in``); ``gain`` is an extra factor on top. Shape: ``shape`` (default
    ``(fan_in, fan_out)``). He et al. (2015), *Delving Deep into Rectifiers*.
    Chapter 3.
    """
    fan_in, fan_out, gen, gain, dt, shape = _setup(fan_in, fan_out, rng, gain, dtype, shape)
    n = _mode_fan(fan_in, fan_out, mode)
    return _normal(gen, gain * math.sqrt(2.0 / (_slope_factor(negative_slope) * n)), shape, dt)


def lecun_uniform(fan_in, fan_out, rng, gain=1.0, dtype=np.float64, shape=None) -> np.ndarray:
    """LeCun uniform: U(-b, b) with ``b = gain * sqrt(3 / fan_in)``, variance ``gain^2 / fan_in``.

    .. math:: W_{ij} \\sim U(-b, b), \\quad b = g\\sqrt{3 / n_\\text{in}}, \\quad
              \\operatorname{Var}(W_{ij}) = g^2 / n_\\text{in}

    Shape: ``shape`` (default ``(fan_in, fan_out)``). LeCun et al. (1998),
    *Efficient BackProp*. Chapter 3.
    """
    fan_in, fan_out, gen, gain, dt, shape = _setup(fan_in, fan_out, rng, gain, dtype, shape)
    return _uniform(gen, gain * math.sqrt(3.0 / fan_in), shape, dt)


def lecun_normal(fan_in, fan_out, rng, gain=1.0, dtype=np.float64, shape=None) -> np.ndarray:
    """LeCun normal: N(0, gain^2 / fan_in), the initialisation SELU networks need.

    .. math:: W_{ij} \\sim \\mathcal{N}(0, g^2 / n_\\text{in})

    Shape: ``shape`` (default ``(fan_in, fan_out)``). LeCun et al. (1998),
    *Efficient BackProp*; Klambauer et al. (2017), *Self-Normalizing Neural
    Networks*. Chapter 3.
    """
    fan_in, fan_out, gen, gain, dt, shape = _setup(fan_in, fan_out, rng, gain, dtype, shape)
    return _normal(gen, gain * math.sqrt(1.0 / fan_in), shape, dt)


def torch_default(fan_in, fan_out, rng, gain=1.0, dtype=np.float64, shape=None) -> np.ndarray:
    """PyTorch's ``nn.Linear`` weight default: U(-b, b) with ``b = gain / sqrt(fan_in)``.

    .. math:: W_{ij} \\sim U(-b, b), \\quad b = \\frac{g}{\\sqrt{n_\\text{in}}},
              \\quad \\operatorname{Var}(W_{ij}) = \\frac{g^2}{3 n_\\text{in}}

    PyTorch reaches this bound as ``kaiming_uniform_(w, a=sqrt(5))``; its
    variance is a third of LeCun's, so deep plain stacks shrink their signal
    (chapter 3 measures it). Shape: ``shape`` (default ``(fan_in, fan_out)``).
    PyTorch documentation, ``torch.nn.Linear``. Chapter 3.
    """
    fan_in, fan_out, gen, gain, dt, shape = _setup(fan_in, fan_out, rng, gain, dtype, shape)
    return _uniform(gen, gain / math.sqrt(fan_in), shape, dt)


INITIALIZERS = {
    "xavier_uniform": xavier_uniform,
    "xavier_normal": xavier_normal,
    "he_uniform": he_uniform,
    "he_normal": he_normal,
    "lecun_uniform": lecun_uniform,
    "lecun_normal": lecun_normal,
    "torch_default": torch_default,
}
"""Every initialiser by name, each called as ``fn(fan_in, fan_out, rng, gain=, dtype=, shape=)``."""
