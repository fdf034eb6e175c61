"""Layers with parameters: the affine (fully connected) layer, for now.

Chapter 1 uses :class:`Linear` to build the small networks of its experiments;
chapter 3 derives its backward pass and adds the rest (Dropout, BatchNorm,
LayerNorm, ...).
"""

from __future__ import annotations

import numpy as np

from .core import Module, as_generator, check_float_array

__all__ = ["Linear", "as_generator", "init_weight"]


_INITS = ("uniform", "lecun", "xavier", "he")


def init_weight(
    fan_in: int,
    fan_out: int,
    rng: np.random.Generator,
    method: str = "uniform",
    dtype=np.float64,
) -> np.ndarray:
    """Draw a ``(fan_in, fan_out)`` weight matrix.

    - ``"uniform"``: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (PyTorch's ``nn.Linear`` default);
    - ``"lecun"``: N(0, 1/fan_in) (LeCun et al. 1998, *Efficient BackProp*; the SELU init);
    - ``"xavier"``: N(0, 2/(fan_in+fan_out)) (Glorot & Bengio 2010);
    - ``"he"``: N(0, 2/fan_in) (He et al. 2015, *Delving Deep into Rectifiers*).

    Chapter 3 derives each from the variance of the activation.
    """
    if method == "uniform":
        bound = 1.0 / np.sqrt(fan_in)
        w = rng.uniform(-bound, bound, size=(fan_in, fan_out))
    elif method == "lecun":
        w = rng.standard_normal((fan_in, fan_out)) * np.sqrt(1.0 / fan_in)
    elif method == "xavier":
        w = rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / (fan_in + fan_out))
    elif method == "he":
        w = rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)
    else:
        raise ValueError(f"unknown init {method!r}; expected one of {_INITS}")
    return w.astype(dtype)


class Linear(Module):
    """Affine map ``y = x W + b``.

    .. math:: y = xW + b, \\quad \\frac{\\partial L}{\\partial W} = x^\\top \\delta,
              \\quad \\frac{\\partial L}{\\partial b} = \\textstyle\\sum_n \\delta_n,
              \\quad \\frac{\\partial L}{\\partial x} = \\delta W^\\top

    Shapes: ``x (N, D) -> y (N, H)``; ``W (D, H)``, ``b (H,)``.
    Chapter 3 derives the backward pass.
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
        for name, v in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        gen = as_generator(rng)
        self.params["W"] = init_weight(in_features, out_features, gen, init, dtype)
        if bias:
            self.params["b"] = np.zeros(out_features, dtype=dtype)
        self.zero_grad()
        self._x: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = check_float_array(x, "x", ndim=2)
        if x.shape[1] != self.in_features:
            raise ValueError(
                f"Linear expected {self.in_features} input features, got x of shape {x.shape}"
            )
        self._x = x
        y = x @ self.params["W"]  # (N, H)
        if "b" in self.params:
            y += self.params["b"]
        return y

    def backward(self, dout: np.ndarray) -> np.ndarray:
        if self._x is None:
            raise RuntimeError("Linear.backward called before forward")
        self._accumulate("W", self._x.T @ dout)  # (D, N) @ (N, H) -> (D, H)
        if "b" in self.params:
            self._accumulate("b", dout.sum(axis=0))
        return dout @ self.params["W"].T  # (N, H) @ (H, D) -> (N, D)

    def __repr__(self) -> str:
        return f"Linear({self.in_features}, {self.out_features}, bias={'b' in self.params})"
