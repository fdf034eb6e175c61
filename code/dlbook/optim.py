"""Optimisers, learning-rate schedules and gradient clipping.

An optimiser walks the model's tree once, when it is made: every parameter
array once, by identity, even where modules share it (a tied embedding, an
RNN cell used at every step), so a shared array moves once per step. At every
:meth:`Optimizer.step` it updates the parameters *in place*, so the layers
see the new values without any copying. Per-parameter state (momentum
buffers, Adam's moments) is kept under the parameters' dotted names.
``decay_filter(name, array) -> bool`` limits weight decay to some parameters,
e.g. ``lambda name, p: p.ndim >= 2`` (matrices and kernels, not biases or
normalisation gains), as Transformer recipes do.

Every update follows PyTorch's formulation exactly (``torch.optim.SGD``,
``Adam``, ``AdamW``, ``Adagrad``, ``RMSprop``; the tests compare against them
in float64), so a reader can move between this code and PyTorch without surprises. The updates are
written with ``out=`` and preallocated scratch arrays: one Adam step is a
dozen vector operations per parameter array and allocates nothing. Constants
are Python floats, so float32 parameters stay float32.

A schedule (:class:`StepLR`, :class:`CosineLR`, :class:`LinearLR`,
:class:`LinearWarmup`) sets ``optimizer.lr``; its ``step()`` is called once
per *optimiser step* (that is what :func:`dlbook.train.fit` does), and
``lr_at(t)`` gives the rate at step ``t`` as a pure function for plots.

Chapter 3 derives each update; chapter 1 uses plain SGD.

References
----------
- Robbins & Monro (1951). A Stochastic Approximation Method.
- Polyak (1964). Some methods of speeding up the convergence of iteration methods.
- Sutskever, Martens, Dahl & Hinton (2013). On the importance of initialization and
  momentum in deep learning.
- Kingma & Ba (2015). Adam: A Method for Stochastic Optimization.
- Duchi, Hazan & Singer (2011). Adaptive Subgradient Methods for Online Learning and
  Stochastic Optimization.
- Tieleman & Hinton (2012). Lecture 6.5, rmsprop. Neural Networks for Machine Learning.
- Loshchilov & Hutter (2019). Decoupled Weight Decay Regularization.
- Loshchilov & Hutter (2017). SGDR: Stochastic Gradient Descent with Warm Restarts.
- Goyal et al. (2017). Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour.
- Pascanu, Mikolov & Bengio (2013). On the difficulty of training recurrent neural networks.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np

from .core import Module, check_positive_int

__all__ = [
    "Optimizer",
    "SGD",
    "Adam",
    "AdamW",
    "Adagrad",
    "RMSprop",
    "clip_grad_norm",
    "grad_norm",
    "LRScheduler",
    "StepLR",
    "CosineLR",
    "LinearLR",
    "LinearWarmup",
    "InverseSqrtLR",
    "warmup_cosine",
    "matrices_only",
]


def matrices_only(name: str, p: np.ndarray) -> bool:
    """A ``decay_filter`` that decays weight matrices and kernels (``ndim >= 2``) only."""
    return p.ndim >= 2


def _real(value, name: str) -> float:
    """``value`` as a finite Python float, or a clear error."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


# -- the base class -------------------------------------------------------------


class Optimizer:
    """Base class: holds the model, the learning rate ``lr`` and per-parameter state.

    Subclasses implement ``_update(key, p, g, lr)``, which changes ``p`` in
    place from its gradient ``g`` (never changing ``g``). ``lr`` may be set at
    any time (schedules do); it must stay finite and ``>= 0``. ``steps``
    counts the calls of :meth:`step`. The parameters are those of the model's
    tree when the optimiser is made, each array once.
    """

    def __init__(self, model: Module, lr: float, decay_filter: Callable | None = None) -> None:
        if not isinstance(model, Module):
            raise TypeError(f"model must be a dlbook Module, got {type(model).__name__}")
        lr = _real(lr, "lr")
        if not lr > 0:
            raise ValueError(f"lr must be positive, got {lr}")
        if decay_filter is not None and not callable(decay_filter):
            raise TypeError(f"decay_filter must be a function (name, array) -> bool, got {decay_filter!r}")
        self.model = model
        self._slots = list(model.parameter_slots())  # (name, owner, key), each array once
        self._decays = {
            name: decay_filter is None or bool(decay_filter(name, owner._params[key]))
            for name, owner, key in self._slots
        }
        self._lr = lr
        self.steps = 0
        self.state: dict[str, dict[str, np.ndarray]] = {}
        self._scratch: dict[tuple[str, int], np.ndarray] = {}

    @property
    def lr(self) -> float:
        """The learning rate used by the next :meth:`step`."""
        return self._lr

    @lr.setter
    def lr(self, value: float) -> None:
        value = _real(value, "lr")
        if value < 0:
            raise ValueError(f"lr must be >= 0, got {value}")
        self._lr = value

    def zero_grad(self) -> None:
        """Set the gradient of every parameter this optimiser updates to zero (before the next backward)."""
        for _, owner, key in self._slots:
            owner._grad(key).fill(0.0)

    def named_parameters(self) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        """``(name, param, grad)`` for every parameter, checking that the gradient fits."""
        for name, owner, key in self._slots:
            p, g = owner._params[key], owner._grads.get(key)
            if g is None:
                g = owner._grad(key)  # never written: a zero gradient
            if g.shape != p.shape:
                raise ValueError(f"gradient of {name!r} has shape {g.shape}, the parameter {p.shape}")
            yield name, p, g

    def decays(self, name: str) -> bool:
        """Whether weight decay applies to parameter ``name`` (see ``decay_filter``)."""
        return self._decays[name]

    def step(self) -> None:
        """Update every parameter in place from its gradient (one optimisation step)."""
        checked = list(self.named_parameters())  # every gradient checked before any parameter moves
        self.steps += 1
        lr = self._lr
        for k, p, g in checked:
            self._update(k, p, g, lr)

    def _update(self, key: str, p: np.ndarray, g: np.ndarray, lr: float) -> None:  # pragma: no cover
        raise NotImplementedError

    # -- helpers for subclasses ---------------------------------------------------
    def _buffer(self, key: str, p: np.ndarray, i: int = 0) -> np.ndarray:
        """Scratch array ``i`` shaped like ``p`` (reused between steps; contents undefined)."""
        buf = self._scratch.get((key, i))
        if buf is None or buf.shape != p.shape or buf.dtype != p.dtype:
            buf = self._scratch[(key, i)] = np.empty_like(p)
        return buf

    def _state(self, key: str, p: np.ndarray) -> dict[str, np.ndarray]:
        """The state of parameter ``key``; reset when the parameter's shape or dtype changed."""
        st = self.state.get(key)
        if st is not None:
            ref = next((v for v in st.values() if isinstance(v, np.ndarray)), None)
            if ref is not None and (ref.shape != p.shape or ref.dtype != p.dtype):
                st = None
        if st is None:
            st = self.state[key] = {}
        return st

    def state_dict(self) -> dict:
        """A deep copy of ``lr``, ``steps`` and the per-parameter state."""
        return {
            "lr": self._lr,
            "steps": self.steps,
            "state": {
                k: {n: (v.copy() if isinstance(v, np.ndarray) else v) for n, v in st.items()}
                for k, st in self.state.items()
            },
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned (arrays are copied)."""
        missing = {"lr", "steps", "state"} - set(state)
        if missing:
            raise ValueError(f"state dict lacks {sorted(missing)}")
        unknown = set(state["state"]) - set(self._decays)
        if unknown:
            raise ValueError(f"state dict has parameters the model lacks: {sorted(unknown)}")
        self.lr = state["lr"]
        self.steps = int(state["steps"])
        self.state = {
            k: {n: (v.copy() if isinstance(v, np.ndarray) else v) for n, v in st.items()}
            for k, st in state["state"].items()
        }

    def _hyper(self) -> str:
        return f"lr={self._lr:g}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._hyper()})"


# -- SGD ----------------------------------------------------------------------------


class SGD(Optimizer):
    """Stochastic gradient descent, with optional momentum, Nesterov momentum and weight decay.

    With gradient :math:`g_t`, weight decay :math:`\\lambda`, momentum :math:`\\mu` and
    dampening :math:`\\tau` (PyTorch's ``torch.optim.SGD``, exactly):

    .. math::
        d_t = g_t + \\lambda \\theta_{t-1}, \\qquad
        b_t = \\mu b_{t-1} + (1 - \\tau) d_t \\;\\; (b_1 = d_1),

        \\theta_t = \\theta_{t-1} - \\eta \\,
        \\begin{cases} d_t & \\mu = 0 \\\\ b_t & \\text{momentum} \\\\
        d_t + \\mu b_t & \\text{Nesterov} \\end{cases}

    With the defaults this is plain SGD, :math:`\\theta \\leftarrow \\theta - \\eta g`.
    The buffer :math:`b` is Polyak's heavy ball (1964); the Nesterov form is
    Sutskever et al.'s rewriting (2013, *On the importance of initialization and
    momentum in deep learning*) of Nesterov's accelerated gradient. Weight
    decay here is L2 regularisation added to the gradient. Shapes: every
    parameter any shape; its gradient the same. Chapter 3.
    """

    def __init__(
        self,
        model: Module,
        lr: float,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        dampening: float = 0.0,
        decay_filter: Callable | None = None,
    ) -> None:
        super().__init__(model, lr, decay_filter)
        self.momentum = _real(momentum, "momentum")
        self.weight_decay = _real(weight_decay, "weight_decay")
        self.dampening = _real(dampening, "dampening")
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"momentum must lie in [0, 1), got {momentum}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
        if not 0.0 <= self.dampening <= 1.0:
            raise ValueError(f"dampening must lie in [0, 1], got {dampening}")
        if not isinstance(nesterov, bool):
            raise TypeError(f"nesterov must be True or False, got {nesterov!r}")
        if nesterov and (self.momentum == 0 or self.dampening != 0):
            raise ValueError(
                f"nesterov=True needs momentum > 0 and dampening = 0, "
                f"got momentum={momentum}, dampening={dampening}"
            )
        self.nesterov = nesterov

    def _update(self, key: str, p: np.ndarray, g: np.ndarray, lr: float) -> None:
        wd, mu = (self.weight_decay if self._decays[key] else 0.0), self.momentum
        tmp = self._buffer(key, p)
        if wd == 0.0 and mu == 0.0:
            np.multiply(g, lr, out=tmp)  # theta -= lr * g, without a temporary array
            p -= tmp
            return
        d = g
        if wd != 0.0:
            d = np.multiply(p, wd, out=self._buffer(key, p, 1))  # d = g + wd * theta
            d += g
        if mu != 0.0:
            st = self._state(key, p)
            buf = st.get("momentum_buffer")
            if buf is None:
                buf = st["momentum_buffer"] = np.array(d, copy=True)  # b_1 = d_1
            else:
                buf *= mu
                if self.dampening != 0.0:
                    np.multiply(d, 1.0 - self.dampening, out=tmp)
                    buf += tmp
                else:
                    buf += d
            if self.nesterov:
                np.multiply(buf, mu, out=tmp)  # d + mu * b
                tmp += d
                d = tmp
            else:
                d = buf
        np.multiply(d, lr, out=tmp)
        p -= tmp

    def _hyper(self) -> str:
        out = f"lr={self.lr:g}"
        if self.momentum:
            out += f", momentum={self.momentum:g}" + (", nesterov=True" if self.nesterov else "")
        if self.dampening:
            out += f", dampening={self.dampening:g}"
        if self.weight_decay:
            out += f", weight_decay={self.weight_decay:g}"
        return out


# -- Adam and AdamW -------------------------------------------------------------------


class Adam(Optimizer):
    """Adam: momentum on the gradient, scaled per coordinate by a running RMS of the gradient.

    With :math:`d_t = g_t + \\lambda\\theta_{t-1}` (L2 weight decay, as in
    ``torch.optim.Adam``):

    .. math::
        m_t = \\beta_1 m_{t-1} + (1-\\beta_1) d_t, \\qquad
        v_t = \\beta_2 v_{t-1} + (1-\\beta_2) d_t^2,

        \\theta_t = \\theta_{t-1} - \\frac{\\eta}{1-\\beta_1^t}\\,
        \\frac{m_t}{\\sqrt{v_t / (1-\\beta_2^t)} + \\epsilon}

    :math:`m_0 = v_0 = 0`; the factors :math:`1-\\beta^t` remove the bias toward
    zero of the early averages. ``eps`` is added after the square root of the
    bias-corrected :math:`v`, as PyTorch does. Kingma & Ba (2015), *Adam: A
    Method for Stochastic Optimization*. Shapes: any; state ``exp_avg``,
    ``exp_avg_sq`` (like the parameter) and ``step`` per key. Chapter 3.
    """

    _decoupled = False

    def __init__(
        self,
        model: Module,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        decay_filter: Callable | None = None,
    ) -> None:
        super().__init__(model, lr, decay_filter)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        b1, b2 = _real(betas[0], "betas[0]"), _real(betas[1], "betas[1]")
        for i, b in enumerate((b1, b2)):
            if not 0.0 <= b < 1.0:
                raise ValueError(f"betas[{i}] must lie in [0, 1), got {b}")
        self.betas = (b1, b2)
        self.eps = _real(eps, "eps")
        if self.eps < 0:
            raise ValueError(f"eps must be >= 0, got {eps}")
        self.weight_decay = _real(weight_decay, "weight_decay")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")

    def _update(self, key: str, p: np.ndarray, g: np.ndarray, lr: float) -> None:
        b1, b2 = self.betas
        wd = self.weight_decay if self._decays[key] else 0.0
        st = self._state(key, p)
        if "exp_avg" not in st:
            st["exp_avg"], st["exp_avg_sq"], st["step"] = np.zeros_like(p), np.zeros_like(p), 0
        st["step"] += 1
        t = st["step"]
        m, v = st["exp_avg"], st["exp_avg_sq"]
        s1, s2 = self._buffer(key, p), self._buffer(key, p, 1)
        d = g
        if wd != 0.0:
            if self._decoupled:
                p *= 1.0 - lr * wd  # AdamW: shrink theta before the Adam step
            else:
                d = np.multiply(p, wd, out=s1)  # Adam: d = g + wd * theta
                d += g
        # v <- b2 v + (1 - b2) d^2
        v *= b2
        np.multiply(d, d, out=s2)
        s2 *= 1.0 - b2
        v += s2
        # m <- m + (1 - b1)(d - m), i.e. b1 m + (1 - b1) d
        np.subtract(d, m, out=s2)
        s2 *= 1.0 - b1
        m += s2
        # theta <- theta - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps), written as
        # theta - (lr sqrt(1 - b2^t) / (1 - b1^t)) * m / (sqrt(v) + eps sqrt(1 - b2^t)): one pass less
        bias1 = 1.0 - b1**t
        bias2_sqrt = math.sqrt(1.0 - b2**t)
        np.sqrt(v, out=s2)
        s2 += self.eps * bias2_sqrt
        np.divide(m, s2, out=s2)
        s2 *= lr * bias2_sqrt / bias1
        p -= s2

    def _hyper(self) -> str:
        out = f"lr={self.lr:g}, betas=({self.betas[0]:g}, {self.betas[1]:g}), eps={self.eps:g}"
        return out + (f", weight_decay={self.weight_decay:g}" if self.weight_decay else "")


class AdamW(Adam):
    """Adam with decoupled weight decay: the parameters shrink by ``lr * weight_decay`` directly.

    .. math::
        \\theta \\leftarrow (1 - \\eta\\lambda)\\,\\theta, \\quad\\text{then the Adam step of }
        :class:`Adam` \\text{ with } d_t = g_t

    Unlike L2 regularisation inside Adam, the decay is not divided by
    :math:`\\sqrt{v}`, so every weight decays at the same rate. Loshchilov &
    Hutter (2019), *Decoupled Weight Decay Regularization*; PyTorch's
    ``torch.optim.AdamW`` (default ``weight_decay=1e-2``). Chapter 3.
    """

    _decoupled = True

    def __init__(
        self,
        model: Module,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        decay_filter: Callable | None = None,
    ) -> None:
        super().__init__(model, lr, betas, eps, weight_decay, decay_filter)


# -- Adagrad and RMSprop --------------------------------------------------------------


class Adagrad(Optimizer):
    """Adagrad: each coordinate's step divided by the root of its summed squared gradients.

    With :math:`d_t = g_t + \\lambda\\theta_{t-1}` (L2 weight decay), as
    ``torch.optim.Adagrad`` computes it:

    .. math::
        s_t = s_{t-1} + d_t^2, \\qquad
        \\theta_t = \\theta_{t-1} - \\frac{\\eta_t\\, d_t}{\\sqrt{s_t} + \\epsilon},
        \\qquad \\eta_t = \\frac{\\eta}{1 + (t-1)\\,\\text{lr\\_decay}}

    :math:`s_0` is ``initial_accumulator_value``. The sum never shrinks, so the
    steps of a coordinate with large past gradients stay small for good: good
    for sparse features, too cautious for long non-convex runs (which is what
    RMSprop and Adam change). Duchi, Hazan & Singer (2011), *Adaptive
    Subgradient Methods for Online Learning and Stochastic Optimization*.
    Shapes: any; state ``sum`` (like the parameter) and ``step``. Chapter 3.
    """

    def __init__(
        self,
        model: Module,
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
        decay_filter: Callable | None = None,
    ) -> None:
        super().__init__(model, lr, decay_filter)
        self.lr_decay = _real(lr_decay, "lr_decay")
        self.weight_decay = _real(weight_decay, "weight_decay")
        self.initial_accumulator_value = _real(initial_accumulator_value, "initial_accumulator_value")
        self.eps = _real(eps, "eps")
        for name in ("lr_decay", "weight_decay", "initial_accumulator_value", "eps"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")

    def _update(self, key: str, p: np.ndarray, g: np.ndarray, lr: float) -> None:
        wd = self.weight_decay if self._decays[key] else 0.0
        st = self._state(key, p)
        if "sum" not in st:
            st["sum"], st["step"] = np.full_like(p, self.initial_accumulator_value), 0
        st["step"] += 1
        s1, s2 = self._buffer(key, p), self._buffer(key, p, 1)
        d = g
        if wd != 0.0:
            d = np.multiply(p, wd, out=s1)
            d += g
        np.multiply(d, d, out=s2)
        st["sum"] += s2
        np.sqrt(st["sum"], out=s2)
        s2 += self.eps
        np.divide(d, s2, out=s2)
        s2 *= lr / (1.0 + (st["step"] - 1) * self.lr_decay)
        p -= s2

    def _hyper(self) -> str:
        out = f"lr={self.lr:g}, eps={self.eps:g}"
        if self.lr_decay:
            out += f", lr_decay={self.lr_decay:g}"
        return out + (f", weight_decay={self.weight_decay:g}" if self.weight_decay else "")


class RMSprop(Optimizer):
    """RMSprop: each coordinate's step divided by a running RMS of its recent gradients.

    With :math:`d_t = g_t + \\lambda\\theta_{t-1}` (L2 weight decay), as
    ``torch.optim.RMSprop`` computes it:

    .. math::
        v_t = \\alpha v_{t-1} + (1-\\alpha) d_t^2, \\qquad
        u_t = \\frac{d_t}{\\sqrt{v_t} + \\epsilon}, \\qquad
        \\theta_t = \\theta_{t-1} - \\eta\\, u_t

    (with ``momentum`` :math:`\\mu > 0`: :math:`b_t = \\mu b_{t-1} + u_t`,
    :math:`\\theta_t = \\theta_{t-1} - \\eta b_t`; with ``centered=True`` the
    running mean :math:`m_t` of :math:`d_t` is tracked too and
    :math:`\\sqrt{v_t - m_t^2}` replaces :math:`\\sqrt{v_t}`). :math:`v_0 = 0`
    and, unlike Adam, no bias correction: the first steps are larger than
    :math:`\\eta` by up to :math:`1/\\sqrt{1-\\alpha}`. Adam is RMSprop with
    momentum on the gradient and that correction. Tieleman & Hinton (2012),
    lecture 6.5 of *Neural Networks for Machine Learning*; the centred form is
    Graves (2013). Shapes: any; state ``square_avg`` (``grad_avg``,
    ``momentum_buffer``) like the parameter. Chapter 3.
    """

    def __init__(
        self,
        model: Module,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
        decay_filter: Callable | None = None,
    ) -> None:
        super().__init__(model, lr, decay_filter)
        self.alpha = _real(alpha, "alpha")
        if not 0.0 <= self.alpha < 1.0:
            raise ValueError(f"alpha must lie in [0, 1), got {alpha}")
        self.eps = _real(eps, "eps")
        self.weight_decay = _real(weight_decay, "weight_decay")
        for name in ("eps", "weight_decay"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        self.momentum = _real(momentum, "momentum")
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"momentum must lie in [0, 1), got {momentum}")
        if not isinstance(centered, bool):
            raise TypeError(f"centered must be True or False, got {centered!r}")
        self.centered = centered

    def _update(self, key: str, p: np.ndarray, g: np.ndarray, lr: float) -> None:
        wd = self.weight_decay if self._decays[key] else 0.0
        a = self.alpha
        st = self._state(key, p)
        if "square_avg" not in st:
            st["square_avg"] = np.zeros_like(p)
            if self.centered:
                st["grad_avg"] = np.zeros_like(p)
            if self.momentum:
                st["momentum_buffer"] = np.zeros_like(p)
        s1, s2 = self._buffer(key, p), self._buffer(key, p, 1)
        d = g
        if wd != 0.0:
            d = np.multiply(p, wd, out=s1)
            d += g
        v = st["square_avg"]
        v *= a
        np.multiply(d, d, out=s2)
        s2 *= 1.0 - a
        v += s2
        if self.centered:
            m = st["grad_avg"]
            np.subtract(d, m, out=s2)  # m <- a m + (1 - a) d
            s2 *= 1.0 - a
            m += s2
            np.multiply(m, m, out=s2)
            np.subtract(v, s2, out=s2)
            np.sqrt(s2, out=s2)
        else:
            np.sqrt(v, out=s2)
        s2 += self.eps
        np.divide(d, s2, out=s2)  # u = d / (rms + eps)
        if self.momentum:
            b = st["momentum_buffer"]
            b *= self.momentum
            b += s2
            np.multiply(b, lr, out=s2)
        else:
            s2 *= lr
        p -= s2

    def _hyper(self) -> str:
        out = f"lr={self.lr:g}, alpha={self.alpha:g}, eps={self.eps:g}"
        if self.momentum:
            out += f", momentum={self.momentum:g}"
        if self.centered:
            out += ", centered=True"
        return out + (f", weight_decay={self.weight_decay:g}" if self.weight_decay else "")


# -- gradient clipping -------------------------------------------------------------


def grad_norm(model: Module) -> float:
    """The L2 norm of all of ``model``'s gradients taken together, as a Python float.

    .. math:: \\lVert g \\rVert = \\Big(\\sum_k \\lVert g_k \\rVert_2^2\\Big)^{1/2}

    Each array's sum of squares is computed in its own dtype (one BLAS dot
    product); if a float32 sum overflows while its values are finite, that array
    is summed again in float64. Non-finite gradients give ``inf`` or ``nan``
    (without a warning). Chapter 3.
    """
    if not isinstance(model, Module):
        raise TypeError(f"model must be a dlbook Module, got {type(model).__name__}")
    total = 0.0
    for g in model.grads.values():
        flat = g.reshape(-1)  # (size,)
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow shows as inf, handled here
            sq = float(np.dot(flat, flat))
        if not math.isfinite(sq) and flat.dtype != np.float64 and np.isfinite(flat).all():
            flat = flat.astype(np.float64)
            sq = float(np.dot(flat, flat))
        total += sq
    return math.sqrt(total) if total >= 0 else float("nan")


def clip_grad_norm(model: Module, max_norm: float, error_if_nonfinite: bool = False) -> float:
    """Scale all gradients in place so their joint L2 norm is at most ``max_norm``; return the norm.

    .. math:: g_k \\leftarrow g_k \\cdot \\min\\Big(1, \\frac{c}{\\lVert g \\rVert + 10^{-6}}\\Big)

    ``torch.nn.utils.clip_grad_norm_`` semantics: the norm runs over every
    gradient of the model together (so the update keeps its direction), the
    value returned is the norm *before* clipping, and gradients are scaled only
    when the factor is below 1. With ``error_if_nonfinite=True`` a non-finite
    norm raises ``FloatingPointError`` instead of scaling. Pascanu, Mikolov &
    Bengio (2013), *On the difficulty of training recurrent neural networks*.
    Chapter 3.
    """
    max_norm = _real(max_norm, "max_norm")
    if not max_norm > 0:
        raise ValueError(f"max_norm must be positive, got {max_norm}")
    total = grad_norm(model)
    if not math.isfinite(total):
        if error_if_nonfinite:
            raise FloatingPointError(f"the total gradient norm is {total}; cannot clip it")
        return total
    coef = max_norm / (total + 1e-6)
    if coef < 1.0:
        for g in model.grads.values():
            g *= coef
    return total


# -- learning-rate schedules ------------------------------------------------------------


class LRScheduler:
    """Base class of the schedules: sets ``optimizer.lr`` to ``lr_at(t)`` after ``t`` calls of ``step``.

    ``base_lr`` is the optimiser's rate when the schedule is made; making the
    schedule sets ``optimizer.lr = lr_at(0)``. Call :meth:`step` once after
    every ``optimizer.step()`` (``fit`` does), so ``t`` counts optimiser
    steps; to schedule by epoch instead, call it once per epoch and count
    ``t`` in epochs. ``lr_at`` is pure: ``[s.lr_at(t) for t in range(T)]``
    draws the schedule without touching the optimiser.
    """

    def __init__(self, optimizer: Optimizer) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer must be a dlbook Optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        if not hasattr(self, "base_lr"):
            self.base_lr = optimizer.lr
        self.t = 0
        optimizer.lr = self.lr_at(0)

    def lr_at(self, t: int) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def _check_t(self, t) -> int:
        if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or t < 0:
            raise ValueError(f"t must be a non-negative integer step, got {t!r}")
        return int(t)

    @property
    def lr(self) -> float:
        """The rate at the current step ``t``."""
        return self.lr_at(self.t)

    def step(self) -> float:
        """Advance one step and set the optimiser's rate; returns the new rate."""
        self.t += 1
        self.optimizer.lr = lr = self.lr_at(self.t)
        return lr

    def lrs(self, steps: int) -> np.ndarray:
        """``lr_at(t)`` for ``t = 0 .. steps-1`` (float64), for plots."""
        return np.array([self.lr_at(t) for t in range(check_positive_int(steps, "steps"))])

    def state_dict(self) -> dict:
        return {"t": self.t, "base_lr": self.base_lr}

    def load_state_dict(self, state: dict) -> None:
        self.t, self.base_lr = int(state["t"]), float(state["base_lr"])
        self.optimizer.lr = self.lr_at(self.t)


class StepLR(LRScheduler):
    """Multiply the rate by ``gamma`` every ``step_size`` steps.

    .. math:: \\eta_t = \\eta_0 \\, \\gamma^{\\lfloor t / s \\rfloor}

    The same sequence as ``torch.optim.lr_scheduler.StepLR``. Chapter 3.
    """

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1) -> None:
        self.step_size = check_positive_int(step_size, "step_size")
        self.gamma = _real(gamma, "gamma")
        if not self.gamma > 0:
            raise ValueError(f"gamma must be positive, got {gamma}")
        super().__init__(optimizer)

    def lr_at(self, t: int) -> float:
        return self.base_lr * self.gamma ** (self._check_t(t) // self.step_size)


class CosineLR(LRScheduler):
    """Half a cosine from the base rate down to ``min_lr`` over ``total_steps`` steps.

    .. math:: \\eta_t = \\eta_{\\min} + \\tfrac12(\\eta_0 - \\eta_{\\min})
              \\big(1 + \\cos(\\pi \\min(t, T) / T)\\big)

    The closed form of ``torch.optim.lr_scheduler.CosineAnnealingLR`` with
    ``T_max = T`` and ``eta_min = min_lr`` for ``t <= T``; after ``T`` the rate
    stays at ``min_lr`` (PyTorch's would climb back up). Loshchilov & Hutter
    (2017), *SGDR: Stochastic Gradient Descent with Warm Restarts* (one cycle,
    no restart). Chapter 3.
    """

    def __init__(self, optimizer: Optimizer, total_steps: int, min_lr: float = 0.0) -> None:
        self.total_steps = check_positive_int(total_steps, "total_steps")
        self.min_lr = _real(min_lr, "min_lr")
        if self.min_lr < 0:
            raise ValueError(f"min_lr must be >= 0, got {min_lr}")
        super().__init__(optimizer)

    def lr_at(self, t: int) -> float:
        t = min(self._check_t(t), self.total_steps)
        cos = math.cos(math.pi * t / self.total_steps)
        return self.min_lr + (self.base_lr - self.min_lr) * (1.0 + cos) / 2.0


class LinearLR(LRScheduler):
    """Scale the base rate by a factor moving linearly from ``start_factor`` to ``end_factor``.

    .. math:: \\eta_t = \\eta_0 \\big(f_0 + (f_1 - f_0)\\min(t, T)/T\\big)

    The sequence of ``torch.optim.lr_scheduler.LinearLR`` (``total_iters = T``).
    With ``end_factor=0`` it is a linear decay to zero. Chapter 3.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        start_factor: float = 1.0 / 3.0,
        end_factor: float = 1.0,
        total_steps: int = 5,
    ) -> None:
        self.start_factor = _real(start_factor, "start_factor")
        self.end_factor = _real(end_factor, "end_factor")
        if not 0 < self.start_factor <= 1 or not 0 <= self.end_factor <= 1:
            raise ValueError(
                f"start_factor must lie in (0, 1] and end_factor in [0, 1], "
                f"got {start_factor} and {end_factor}"
            )
        self.total_steps = check_positive_int(total_steps, "total_steps")
        super().__init__(optimizer)

    def lr_at(self, t: int) -> float:
        frac = min(self._check_t(t), self.total_steps) / self.total_steps
        return self.base_lr * (self.start_factor + (self.end_factor - self.start_factor) * frac)


class LinearWarmup(LRScheduler):
    """Ramp the rate up linearly over ``warmup_steps`` steps, then hand over to ``after``.

    .. math:: \\eta_t = \\begin{cases} \\eta_0 \\,(t + 1) / W & t < W \\\\
              \\text{after.lr\\_at}(t - W) & t \\ge W \\ (\\eta_0 \\text{ if no after})
              \\end{cases}

    The first step uses :math:`\\eta_0/W` and step :math:`W-1` the full rate,
    the sequence of ``torch.optim.lr_scheduler.LinearLR(start_factor=1/W,
    total_iters=W-1)``. ``after`` is another schedule built on the *same*
    optimiser beforehand, e.g.
    ``LinearWarmup(opt, 100, after=CosineLR(opt, total_steps=900))``; its
    ``base_lr`` is the warm-up's target and only the warm-up's ``step()`` is
    called (it drives ``after``). Goyal et al. (2017), *Accurate, Large
    Minibatch SGD: Training ImageNet in 1 Hour* (gradual warm-up). Chapter 3;
    chapter 9 trains a Transformer with it.
    """

    def __init__(self, optimizer: Optimizer, warmup_steps: int, after: LRScheduler | None = None) -> None:
        self.warmup_steps = check_positive_int(warmup_steps, "warmup_steps")
        if after is not None:
            if not isinstance(after, LRScheduler):
                raise TypeError(f"after must be a schedule (LRScheduler), got {type(after).__name__}")
            if after.optimizer is not optimizer:
                raise ValueError("after must be a schedule of the same optimizer")
            self.base_lr = after.base_lr
        self.after = after
        super().__init__(optimizer)

    def lr_at(self, t: int) -> float:
        t = self._check_t(t)
        if t < self.warmup_steps:
            return self.base_lr * (t + 1) / self.warmup_steps
        if self.after is None:
            return self.base_lr
        return self.after.lr_at(t - self.warmup_steps)

    def step(self) -> float:
        lr = super().step()
        if self.after is not None:
            self.after.t = max(0, self.t - self.warmup_steps)
        return lr


class InverseSqrtLR(LRScheduler):
    """Linear warm-up to ``base_lr`` over ``warmup_steps``, then decay as the inverse square root.

    .. math:: \\eta_t = \\eta_0 \\min\\Bigl(\\frac{t + 1}{W}, \\sqrt{\\frac{W}{t + 1}}\\Bigr)

    The rate peaks at :math:`\\eta_0` on step :math:`t = W - 1` and halves
    by :math:`t + 1 = 4W`. This is the schedule of Vaswani et al. (2017),
    :math:`d^{-1/2} \\min(s^{-1/2}, s W^{-3/2})` with :math:`s = t + 1`,
    whose peak is :math:`\\eta_0 = (d W)^{-1/2}` (d = 512, W = 4000 gives
    7.0e-4); here the peak is the optimiser's rate, so the schedule does not
    tie the learning rate to the model width. Chapter 9.
    """

    def __init__(self, optimizer: Optimizer, warmup_steps: int) -> None:
        self.warmup_steps = check_positive_int(warmup_steps, "warmup_steps")
        super().__init__(optimizer)

    def lr_at(self, t: int) -> float:
        s = self._check_t(t) + 1
        w = self.warmup_steps
        return self.base_lr * min(s / w, math.sqrt(w / s))


def warmup_cosine(
    optimizer: Optimizer, warmup_steps: int, total_steps: int, min_lr: float = 0.0
) -> LinearWarmup:
    """Linear warm-up over ``warmup_steps``, then cosine decay to ``min_lr`` at ``total_steps``.

    .. math:: \\eta_t = \\begin{cases} \\eta_0 (t + 1) / W & t < W \\\\
              \\eta_\\min + \\tfrac12 (\\eta_0 - \\eta_\\min)
              \\big(1 + \\cos \\tfrac{\\pi (t - W)}{T - W}\\big) & W \\le t \\le T \\end{cases}

    The recipe chapters 3 and 4 train with: ``LinearWarmup(optimizer,
    warmup_steps, after=CosineLR(optimizer, total_steps - warmup_steps,
    min_lr))``; call its ``step()`` once per optimiser step (``fit`` does).
    ``total_steps`` counts every step, warm-up included (e.g. ``epochs *
    dlbook.data.num_batches(n, batch_size)``). Goyal et al. (2017); Loshchilov &
    Hutter (2017).
    """
    warmup_steps = check_positive_int(warmup_steps, "warmup_steps")
    total_steps = check_positive_int(total_steps, "total_steps")
    if total_steps <= warmup_steps:
        raise ValueError(f"total_steps ({total_steps}) must exceed warmup_steps ({warmup_steps})")
    cosine = CosineLR(optimizer, total_steps=total_steps - warmup_steps, min_lr=min_lr)
    return LinearWarmup(optimizer, warmup_steps, after=cosine)
