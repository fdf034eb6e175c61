"""The layer protocol every part of the book builds on.

A layer is a :class:`Module` with a ``forward`` that caches what its
``backward`` needs, and a ``backward(dout) -> dx`` that *accumulates* the
parameter gradients into ``self.grads`` (same keys as ``self.params``), the
way PyTorch's ``.grad`` accumulates. Call :meth:`Module.zero_grad` between
steps. Optimisers update ``params`` in place, so references stay valid.

``gradcheck`` compares a layer's analytic gradients with central differences
in float64; the tests run it on every layer. Chapter 3 explains both.

References
----------
- Karpathy, micrograd (2020): backward beside forward, gradients that accumulate.
- Saito, *Deep Learning from Scratch* (2016): layer classes with forward/backward.
- CS231n (Stanford), ``gradient_check.py``: centred differences with an upstream gradient.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

__all__ = [
    "Module",
    "Sequential",
    "gradcheck",
    "numerical_gradient",
    "rel_error",
    "check_float_array",
    "check_positive_int",
    "as_generator",
]


def check_float_array(x, name: str = "x", ndim: int | None = None, min_ndim: int = 0) -> np.ndarray:
    """Return ``x`` as a floating-point ndarray, or raise a clear error.

    Integer, boolean, complex and object arrays are refused with ``TypeError``
    (an integer ``ReLU`` silently truncating a gradient is a bug waiting to
    happen); a wrong number of dimensions raises ``ValueError``.
    """
    if not isinstance(x, np.ndarray):
        if isinstance(x, (list, tuple, float, int)) and not isinstance(x, bool):
            x = np.asarray(x, dtype=np.float64)
        else:
            raise TypeError(f"{name} must be a NumPy array of floats, got {type(x).__name__}")
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(
            f"{name} must have dtype float32 or float64, got {x.dtype}; "
            f"convert with {name}.astype(np.float64)"
        )
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {x.shape}")
    if x.ndim < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dimension(s), got shape {x.shape}")
    return x


def check_positive_int(value, name: str, minimum: int = 1) -> int:
    """Return ``value`` as an ``int`` if it is an integer ``>= minimum``, else raise ``ValueError``.

    Booleans are refused (``True`` is an ``int`` in Python but never a size).
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        expected = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    return int(value)


def as_generator(rng: np.random.Generator | int | None) -> np.random.Generator:
    """Return ``rng`` itself if it is a Generator, else ``np.random.default_rng(rng)``.

    ``None`` is refused: the book's numbers must be reproducible, so every
    random draw names its seed or Generator (no hidden global RNG).
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        raise ValueError("pass a seed (int) or a np.random.Generator: dlbook has no hidden global RNG")
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise TypeError(f"rng must be an int seed or a np.random.Generator, got {type(rng).__name__}")


class Module:
    """Base class of every layer: ``forward``, ``backward``, ``params``, ``grads``.

    Subclasses set ``self.params`` (name -> array) in ``__init__`` and call
    ``super().__init__()`` first; ``self.grads`` is created to match by
    :meth:`zero_grad`. ``training`` switches layers whose behaviour differs
    between training and evaluation (Dropout, BatchNorm, RReLU).
    """

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.training = True

    # -- the protocol -------------------------------------------------------
    def forward(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, dout: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    # -- helpers ------------------------------------------------------------
    def zero_grad(self) -> Module:
        """Set every gradient to zero, creating ``grads`` to match ``params``."""
        for k, p in self.params.items():
            g = self.grads.get(k)
            if g is None or g.shape != p.shape or g.dtype != p.dtype:
                self.grads[k] = np.zeros_like(p)
            else:
                g.fill(0.0)
        return self

    def _accumulate(self, key: str, value: np.ndarray) -> None:
        """Add ``value`` to ``grads[key]`` in place (creating it on first use)."""
        g = self.grads.get(key)
        if g is None or g.shape != self.params[key].shape:
            self.grads[key] = np.array(value, dtype=self.params[key].dtype, copy=True)
        else:
            g += value

    def train(self) -> Module:
        self.training = True
        return self

    def eval(self) -> Module:
        self.training = False
        return self

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, np.ndarray]]:
        for k, p in self.params.items():
            yield prefix + k, p

    def num_parameters(self) -> int:
        return sum(p.size for _, p in self.named_parameters())

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}={tuple(v.shape)}" for k, v in self.params.items())
        return f"{type(self).__name__}({shapes})"


class Sequential(Module):
    """Layers applied one after another; ``backward`` runs them in reverse.

    ``params`` and ``grads`` expose every layer's arrays under ``"i.name"``
    keys. They are the layers' own arrays (no copies), so an optimiser that
    updates ``seq.params`` in place updates the layers.
    """

    def __init__(self, *layers: Module) -> None:
        super().__init__()
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise TypeError(f"layer {i} must be a dlbook Module, got {type(layer).__name__}")
        self.layers = list(layers)
        self.params = {f"{i}.{k}": p for i, l in enumerate(self.layers) for k, p in l.params.items()}
        self.zero_grad()

    def forward(self, x: np.ndarray) -> np.ndarray:
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dout: np.ndarray) -> np.ndarray:
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout

    def zero_grad(self) -> Sequential:
        for layer in self.layers:
            layer.zero_grad()
        self.grads = {f"{i}.{k}": g for i, l in enumerate(self.layers) for k, g in l.grads.items()}
        return self

    def train(self) -> Sequential:
        self.training = True
        for layer in self.layers:
            layer.train()
        return self

    def eval(self) -> Sequential:
        self.training = False
        for layer in self.layers:
            layer.eval()
        return self

    def __getitem__(self, i: int) -> Module:
        return self.layers[i]

    def __len__(self) -> int:
        return len(self.layers)

    def __repr__(self) -> str:
        inner = "\n".join(f"  ({i}) {l!r}" for i, l in enumerate(self.layers))
        return f"Sequential(\n{inner}\n)"


def rel_error(a: np.ndarray, b: np.ndarray, floor: float = 1e-8) -> float:
    """Largest elementwise relative error ``|a-b| / max(|a|+|b|, floor)``."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), floor)))


def numerical_gradient(f: Callable[[], float], x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central-difference gradient of the scalar ``f()`` with respect to ``x``.

    ``x`` is perturbed in place, one entry at a time, and restored.

    .. math:: \\partial f / \\partial x_i \\approx (f(x + h e_i) - f(x - h e_i)) / 2h
    """
    grad = np.zeros_like(x, dtype=np.float64)
    it = np.nditer(x, flags=["multi_index"], op_flags=[["readwrite"]])
    for _ in it:
        i = it.multi_index
        old = x[i].item()
        x[i] = old + eps
        f_plus = f()
        x[i] = old - eps
        f_minus = f()
        x[i] = old
        grad[i] = (f_plus - f_minus) / (2 * eps)
    return grad


def gradcheck(
    module: Module,
    x: np.ndarray,
    dout: np.ndarray | None = None,
    eps: float = 1e-6,
    rng: np.random.Generator | int | None = 0,
    rtol: float = 1e-6,
    atol: float = 1e-8,
    forward: Callable[[np.ndarray], np.ndarray] | None = None,
) -> dict[str, float]:
    """Check ``module.backward`` (input and every parameter) by central differences.

    The scalar tested is ``sum(forward(x) * dout)`` with a random upstream
    gradient ``dout`` (seeded), so every output element is weighted
    differently. Runs in float64; ``x`` and the parameters must be float64.
    ``forward`` replaces ``module.forward`` when the forward pass needs a fixed
    random state (e.g. RReLU in training re-seeded on every call).

    Returns the relative errors ``{"x": ..., "W": ..., ...}``; raises
    ``AssertionError`` naming the first gradient that fails
    ``|analytic - numeric| <= atol + rtol * |numeric|``.
    """
    x = check_float_array(x)
    if x.dtype != np.float64:
        raise TypeError("gradcheck needs float64 input (finite differences lose float32 precision)")
    for k, p in module.params.items():
        if p.dtype != np.float64:
            raise TypeError(f"gradcheck needs float64 parameters; {k} is {p.dtype}")
    fwd = forward or module.forward
    x = x.copy()
    out = fwd(x)
    if dout is None:
        gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        dout = gen.standard_normal(out.shape)
    module.zero_grad()
    fwd(x)
    analytic = {"x": module.backward(dout.copy())}
    analytic.update({k: g.copy() for k, g in module.grads.items()})

    def loss() -> float:
        return float(np.sum(fwd(x) * dout))

    numeric = {"x": numerical_gradient(loss, x, eps)}
    for k, p in module.params.items():
        numeric[k] = numerical_gradient(loss, p, eps)

    errors = {}
    for k, num in numeric.items():
        ana = analytic[k]
        if ana.shape != num.shape:
            raise AssertionError(f"gradient of {k}: shape {ana.shape}, expected {num.shape}")
        errors[k] = rel_error(ana, num)
        bad = np.abs(ana - num) > atol + rtol * np.abs(num)
        if np.any(bad):
            i = tuple(int(j) for j in np.argwhere(bad)[0])
            raise AssertionError(
                f"{type(module).__name__}: gradient of {k} wrong at {i}: "
                f"analytic {ana[i]:.10g}, numeric {num[i]:.10g} (rel. error {errors[k]:.2e})"
            )
    return errors
