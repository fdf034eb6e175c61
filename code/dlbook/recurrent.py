"""Recurrent layers of chapter 6: a one-step cell and a sequence wrapper for RNN, LSTM and GRU.

Every cell computes one step, ``state_t = cell(x_t, state_{t-1})``; every
sequence layer applies its cell at each of ``T`` steps, batch first:

.. code-block:: text

    hs, h_T             = RNN(D, H)(xs, h0)             xs (N, T, D), hs (N, T, H)
    hs, (h_T, c_T)      = LSTM(D, H)(xs, (h0, c0))
    hs, h_T             = GRU(D, H)(xs, h0)
    dxs, dh0            = rnn.backward(dhs, dh_T)
    dxs, (dh0, dc0)     = lstm.backward(dhs, (dh_T, dc_T))

``hs`` holds the output of every step (what a tagger reads), ``h_T`` the
final state (what a classifier of the whole sequence reads); ``hs[:, -1]``
equals ``h_T``. An initial state of ``None`` means zeros. In ``backward``
either upstream gradient may be ``None`` (zero), since a model often uses
only one of the two outputs.

**Weights and gate packing**, equal to PyTorch's so weights copy across:
``W_x (D, G*H)``, ``W_h (H, G*H)`` hold the gates side by side along the
last axis, in PyTorch's order: ``i, f, g, o`` for the LSTM (``G = 4``),
``r, z, n`` for the GRU (``G = 3``). From ``torch.nn.LSTM``:
``W_x = weight_ih_l0.T``, ``W_h = weight_hh_l0.T``, ``b = bias_ih_l0 +
bias_hh_l0`` (RNN and LSTM add the two biases, which always appear as a
sum). The GRU keeps them apart, ``b_x = bias_ih_l0`` and ``b_h =
bias_hh_l0``, because its reset gate multiplies ``h W_hn + b_hn`` only.
Initial weights are PyTorch's: every entry of ``W_x`` and ``W_h`` uniform on
``[-1/sqrt(H), 1/sqrt(H)]``; biases start at zero, except the LSTM's forget
gate, which starts at ``forget_bias`` (1 by default, as Gers et al. and
Jozefowicz et al. recommend; PyTorch draws it uniformly like the weights).

**Speed.** The sequence layers project all time steps' inputs in one matrix
product before the time loop, run one ``tanh`` over all gates per step (a
sigmoid is ``(1 + tanh(a / 2)) / 2``, stable for every input), and form the
weight gradients after the backward loop as single large products.

**The tape.** Each step pushes its own entry on the cell's tape and the
sequence layer pops them in reverse order: backpropagation through time is
the module protocol of :mod:`dlbook.core` applied ``T`` times.

References
----------
- Elman (1990). Finding Structure in Time. Cognitive Science.
- Hochreiter & Schmidhuber (1997). Long Short-Term Memory. Neural Computation.
- Gers, Schmidhuber & Cummins (2000). Learning to Forget: Continual Prediction
  with LSTM. Neural Computation.
- Cho et al. (2014). Learning Phrase Representations using RNN Encoder-Decoder
  for Statistical Machine Translation. EMNLP.
- Jozefowicz, Zaremba & Sutskever (2015). An Empirical Exploration of
  Recurrent Network Architectures. ICML.
- Werbos (1990). Backpropagation Through Time: What It Does and How to Do It.
"""

from __future__ import annotations

import math

import numpy as np

from .core import (
    Module,
    as_generator,
    check_dtype,
    check_float_array,
    check_optional_dout,
    check_positive_int,
)

__all__ = ["RNNCell", "LSTMCell", "GRUCell", "RNN", "LSTM", "GRU", "recurrent_layer", "KINDS"]


def _uniform(gen: np.random.Generator, shape: tuple, bound: float, dtype) -> np.ndarray:
    return gen.uniform(-bound, bound, size=shape).astype(dtype)


def _check_state(h, n: int, hidden: int, dtype, name: str) -> np.ndarray:
    """The state ``h (N, H)``, zeros when ``None``; a wrong shape is a ``ValueError``."""
    if h is None:
        return np.zeros((n, hidden), dtype=dtype)
    h = check_float_array(h, name)
    if h.shape != (n, hidden):
        raise ValueError(f"{name} must have shape (N, H) = ({n}, {hidden}), got {h.shape}")
    return h.astype(dtype, copy=False)



# ---------------------------------------------------------------------------
# The cells: one time step each
# ---------------------------------------------------------------------------
class _Cell(Module):
    """What the three cells share: weights, input checks and the one-step public protocol.

    A subclass defines ``GATES``, ``_step(xw, state) -> state`` (``xw = x W_x
    + b_x``, already computed; pushes one tape entry) and
    ``_step_back(dstate) -> (da, dstate_prev)`` (pops it; ``da`` is the
    gradient of the gate pre-activations, ``(N, G*H)``). The sequence layers
    call these two directly; ``forward``/``backward`` wrap them for one step.
    """

    GATES = 1
    STATE_PARTS = 1  # 1: state is h; 2: state is (h, c)

    def __init__(self, input_size: int, hidden_size: int, *, rng, dtype=np.float64) -> None:
        super().__init__()
        self.input_size = check_positive_int(input_size, "input_size")
        self.hidden_size = H = check_positive_int(hidden_size, "hidden_size")
        dt = check_dtype(dtype)
        gen = as_generator(rng)
        bound = 1.0 / math.sqrt(H)
        G = self.GATES
        self.params = {
            "W_x": _uniform(gen, (self.input_size, G * H), bound, dt),
            "W_h": _uniform(gen, (H, G * H), bound, dt),
            **self._biases(dt),
        }

    def _biases(self, dt) -> dict[str, np.ndarray]:
        return {"b": np.zeros(self.GATES * self.hidden_size, dtype=dt)}

    def _input_bias(self, dtype) -> np.ndarray:
        return self._params["b"].astype(dtype, copy=False)

    def _bias_grads(self, da_sum: np.ndarray, extra: np.ndarray | None) -> None:
        self._accumulate("b", da_sum)

    # -- checks ---------------------------------------------------------------
    def _check_x(self, x, ndim: int) -> np.ndarray:
        x = check_float_array(x, "x" if ndim == 2 else "xs")
        shape = "(N, D)" if ndim == 2 else "(N, T, D)"
        if x.ndim != ndim:
            raise ValueError(
                f"{type(self).__name__} expects {'x' if ndim == 2 else 'xs'} of shape {shape}, "
                f"got shape {x.shape}"
            )
        if x.shape[-1] != self.input_size:
            raise ValueError(
                f"{type(self).__name__} expects {self.input_size} input features, got shape {x.shape}"
            )
        return x

    def _check_state(self, state, n: int, dtype):
        H = self.hidden_size
        if self.STATE_PARTS == 1:
            return _check_state(state, n, H, dtype, "h0")
        if state is None:
            return (_check_state(None, n, H, dtype, "h0"), _check_state(None, n, H, dtype, "c0"))
        if not (isinstance(state, tuple) and len(state) == 2):
            raise TypeError("the LSTM state must be a tuple (h, c) of two (N, H) arrays, or None")
        return (_check_state(state[0], n, H, dtype, "h0"), _check_state(state[1], n, H, dtype, "c0"))

    # -- one step, public ------------------------------------------------------
    def forward(self, x: np.ndarray, state=None):
        """One step: ``x (N, D)`` and the previous state -> the next state."""
        x = self._check_x(x, 2)
        state = self._check_state(state, x.shape[0], x.dtype)
        xw = x @ self._params["W_x"].astype(x.dtype, copy=False) + self._input_bias(x.dtype)  # (N, G*H)
        state_next = self._step(xw, state)  # pushes the step's entry
        self._save(x, state)  # pushed after it, so backward pops it first
        return state_next

    def backward(self, dstate):
        """Gradient of the next state -> ``(dx, dstate_prev)``; accumulates every weight gradient."""
        x, state = self._saved()
        h_prev = state if self.STATE_PARTS == 1 else state[0]
        da, dstate_prev, extra = self._step_back(dstate)
        self._accumulate("W_x", x.T @ da)  # (D, N) @ (N, G*H)
        self._accumulate_h(h_prev, da, extra)
        self._bias_grads(da.sum(axis=0), None if extra is None else extra.sum(axis=0))
        dx = da @ self._params["W_x"].astype(da.dtype, copy=False).T  # (N, G*H) @ (G*H, D)
        return dx, dstate_prev

    def _accumulate_h(self, h_prev: np.ndarray, da: np.ndarray, extra: np.ndarray | None) -> None:
        self._accumulate("W_h", h_prev.T @ da)  # (H, N) @ (N, G*H)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.input_size}, {self.hidden_size})"


class RNNCell(_Cell):
    """Elman's recurrent cell: ``h_t = tanh(x_t W_x + h_{t-1} W_h + b)``.

    .. math:: h_t = \\tanh(a_t), \\quad a_t = x_t W_x + h_{t-1} W_h + b, \\qquad
              \\delta a_t = (\\delta h_t) \\odot (1 - h_t^2), \\quad
              \\delta h_{t-1} = \\delta a_t W_h^\\top

    Shapes: ``x (N, D)``, ``h (N, H)``; ``W_x (D, H)``, ``W_h (H, H)``, ``b
    (H,)``. ``forward(x, h_prev) -> h_next``; ``backward(dh_next) -> (dx,
    dh_prev)``. Elman (1990); chapter 6 writes out its backward pass through
    time.
    """

    def _step(self, xw: np.ndarray, h_prev: np.ndarray) -> np.ndarray:
        a = xw + h_prev @ self._params["W_h"].astype(xw.dtype, copy=False)  # (N, H)
        h = np.tanh(a, out=a)
        self._save(h_prev, h)
        return h

    def _step_back(self, dh: np.ndarray):
        h_prev, h = self._saved()
        da = dh * (1.0 - h * h)  # tanh' = 1 - tanh^2
        dh_prev = da @ self._params["W_h"].astype(da.dtype, copy=False).T
        return da, dh_prev, None

    def backward(self, dh_next):
        """``dh_next (N, H)`` -> ``(dx (N, D), dh_prev (N, H))``."""
        return super().backward(check_float_array(dh_next, "dh_next"))


class LSTMCell(_Cell):
    """The LSTM cell with a forget gate (Hochreiter & Schmidhuber 1997; Gers et al. 2000).

    .. math::
        [a^i, a^f, a^g, a^o] &= x_t W_x + h_{t-1} W_h + b \\\\
        i = \\sigma(a^i),\\ f = \\sigma(a^f),\\ g &= \\tanh(a^g),\\ o = \\sigma(a^o) \\\\
        c_t = f \\odot c_{t-1} + i \\odot g, &\\qquad h_t = o \\odot \\tanh(c_t)

    Gates packed ``i, f, g, o`` (PyTorch's order): ``W_x (D, 4H)``, ``W_h (H,
    4H)``, ``b (4H,)``. ``forward(x, (h, c)) -> (h_next, c_next)``;
    ``backward(dh_next, dc_next) -> (dx, (dh_prev, dc_prev))`` (either
    upstream gradient may be ``None``). The forget gate's bias starts at ``forget_bias``. The
    cell state ``c`` is updated by a gated *sum*, so its gradient flows back
    as ``dc_{t-1} = f \\odot dc_t``: no weight matrix, no squashing.
    Chapter 6.
    """

    GATES = 4
    STATE_PARTS = 2

    def __init__(self, input_size: int, hidden_size: int, *, rng, forget_bias: float = 1.0, dtype=np.float64):
        self.forget_bias = float(forget_bias)
        super().__init__(input_size, hidden_size, rng=rng, dtype=dtype)
        H = self.hidden_size
        # one tanh for all gates: sigma(a) = 0.5 + 0.5 tanh(a / 2) (i, f, o); tanh(a) for g
        half = np.full(4 * H, 0.5)
        half[2 * H : 3 * H] = 1.0
        shift = np.where(half == 0.5, 0.5, 0.0)
        # the scale multiplies a before the tanh and the tanh after it; the shift is added after
        self._consts = {np.dtype(t): (half.astype(t), shift.astype(t)) for t in (np.float32, np.float64)}

    def _biases(self, dt) -> dict[str, np.ndarray]:
        b = np.zeros(4 * self.hidden_size, dtype=dt)
        b[self.hidden_size : 2 * self.hidden_size] = self.forget_bias
        return {"b": b}

    def _gates(self, xw: np.ndarray, h_prev: np.ndarray) -> np.ndarray:
        """``[i, f, g, o] (N, 4H)`` from the input projection ``xw`` and ``h_prev``."""
        dt = xw.dtype
        a = h_prev @ self._params["W_h"].astype(dt, copy=False)  # (N, 4H)
        a += xw
        scale, shift = self._consts[dt]
        a *= scale
        gates = np.tanh(a, out=a)
        gates *= scale
        gates += shift  # i, f, o in (0, 1); g in (-1, 1)
        return gates

    def _step(self, xw: np.ndarray, state):
        h_prev, c_prev = state
        H = self.hidden_size
        gates = self._gates(xw, h_prev)
        i, f, g, o = gates[:, :H], gates[:, H : 2 * H], gates[:, 2 * H : 3 * H], gates[:, 3 * H :]
        c = f * c_prev
        c += i * g
        tc = np.tanh(c)
        h = o * tc
        self._save(c_prev, gates, tc)
        return h, c

    def _step_back(self, dstate):
        c_prev, gates, tc = self._saved()
        dh, dc_next = dstate
        H = self.hidden_size
        i, f, g, o = gates[:, :H], gates[:, H : 2 * H], gates[:, 2 * H : 3 * H], gates[:, 3 * H :]
        if dh is None:
            dc = np.zeros_like(tc) if dc_next is None else dc_next.copy()
            dh = np.zeros_like(tc)
        else:
            dc = dh * o * (1.0 - tc * tc)
            if dc_next is not None:
                dc += dc_next
        da = np.empty_like(gates)  # (N, 4H)
        da[:, :H] = dc * g  # d i
        da[:, H : 2 * H] = dc * c_prev  # d f
        da[:, 2 * H : 3 * H] = dc * i  # d g
        da[:, 3 * H :] = dh * tc  # d o
        # sigma' = s (1 - s) for i, f, o; tanh' = 1 - g^2 for g
        deriv = gates * (1.0 - gates)
        deriv[:, 2 * H : 3 * H] = 1.0 - g * g
        da *= deriv
        dh_prev = da @ self._params["W_h"].astype(da.dtype, copy=False).T  # (N, 4H) @ (4H, H)
        dc_prev = dc * f
        return da, (dh_prev, dc_prev), None

    def backward(self, dh_next, dc_next=None):
        """``(dh_next, dc_next)`` (either may be ``None``) -> ``(dx, (dh_prev, dc_prev))``."""
        dh_next = None if dh_next is None else check_float_array(dh_next, "dh_next")
        dc_next = None if dc_next is None else check_float_array(dc_next, "dc_next")
        return super().backward((dh_next, dc_next))

    def __repr__(self) -> str:
        return f"LSTMCell({self.input_size}, {self.hidden_size}, forget_bias={self.forget_bias:g})"


class GRUCell(_Cell):
    """The gated recurrent unit (Cho et al. 2014), in PyTorch's form.

    .. math::
        r = \\sigma(x W_x^r + b_x^r + h W_h^r + b_h^r), &\\quad
        z = \\sigma(x W_x^z + b_x^z + h W_h^z + b_h^z) \\\\
        n = \\tanh\\big(x W_x^n + b_x^n + r \\odot (h W_h^n + b_h^n)\\big), &\\quad
        h_t = (1 - z) \\odot n + z \\odot h_{t-1}

    Gates packed ``r, z, n``: ``W_x (D, 3H)``, ``W_h (H, 3H)``, ``b_x
    (3H,)``, ``b_h (3H,)`` (two biases: the reset gate multiplies ``h W_h^n +
    b_h^n`` only). ``forward(x, h) -> h_next``; ``backward(dh_next) -> (dx,
    dh_prev)``. ``z`` near 1 copies the state forward unchanged. Chapter 6.
    """

    GATES = 3

    def _biases(self, dt) -> dict[str, np.ndarray]:
        G = 3 * self.hidden_size
        return {"b_x": np.zeros(G, dtype=dt), "b_h": np.zeros(G, dtype=dt)}

    def _input_bias(self, dtype) -> np.ndarray:
        return self._params["b_x"].astype(dtype, copy=False)

    def _step(self, xw: np.ndarray, h_prev: np.ndarray) -> np.ndarray:
        H = self.hidden_size
        dt = xw.dtype
        hw = h_prev @ self._params["W_h"].astype(dt, copy=False)  # (N, 3H)
        hw += self._params["b_h"].astype(dt, copy=False)
        a = xw[:, : 2 * H] + hw[:, : 2 * H]  # r and z pre-activations
        np.tanh(a * 0.5, out=a)
        rz = a
        rz *= 0.5
        rz += 0.5  # sigma(a) = 0.5 + 0.5 tanh(a / 2)
        r, z = rz[:, :H], rz[:, H:]
        hn = hw[:, 2 * H :]  # h W_h^n + b_h^n
        n = np.tanh(xw[:, 2 * H :] + r * hn)
        h = n - z * (n - h_prev)  # (1 - z) n + z h_prev
        self._save(h_prev, rz, n, hn)
        return h

    def _step_back(self, dh: np.ndarray):
        h_prev, rz, n, hn = self._saved()
        H = self.hidden_size
        r, z = rz[:, :H], rz[:, H:]
        dn = dh * (1.0 - z)
        dz = dh * (h_prev - n)
        dan = dn * (1.0 - n * n)  # gradient of the n pre-activation
        da = np.empty((dh.shape[0], 3 * H), dtype=dh.dtype)  # input side: d(x W_x + b_x)
        da[:, :H] = dan * hn * r * (1.0 - r)  # d r pre-activation
        da[:, H : 2 * H] = dz * z * (1.0 - z)
        da[:, 2 * H :] = dan
        dhw = da.copy()  # hidden side: d(h W_h + b_h); the n block is scaled by r
        dhw[:, 2 * H :] *= r
        dh_prev = dhw @ self._params["W_h"].astype(dh.dtype, copy=False).T + dh * z
        return da, dh_prev, dhw

    def _accumulate_h(self, h_prev: np.ndarray, da: np.ndarray, extra: np.ndarray | None) -> None:
        self._accumulate("W_h", h_prev.T @ extra)

    def _bias_grads(self, da_sum: np.ndarray, extra: np.ndarray | None) -> None:
        self._accumulate("b_x", da_sum)
        self._accumulate("b_h", extra)

    def backward(self, dh_next):
        """``dh_next (N, H)`` -> ``(dx (N, D), dh_prev (N, H))``."""
        return super().backward(check_float_array(dh_next, "dh_next"))


# ---------------------------------------------------------------------------
# The sequence layers: one cell applied at every step
# ---------------------------------------------------------------------------
class _Recurrent(Module):
    """A cell applied over ``T`` steps, batch first; see the module docstring."""

    CELL: type[_Cell] = RNNCell

    def __init__(self, input_size: int, hidden_size: int, *, rng, dtype=np.float64, **cell_options) -> None:
        super().__init__()
        self.cell = self.CELL(input_size, hidden_size, rng=rng, dtype=dtype, **cell_options)
        self.input_size = self.cell.input_size
        self.hidden_size = self.cell.hidden_size

    def forward(self, xs: np.ndarray, state=None, mask=None):
        """``xs (N, T, D)`` and the initial state -> ``(hs (N, T, H), final state)``.

        ``mask (N, T)`` bool (True = a real step), for right-padded batches of
        sequences of different lengths: at a padded step the state is carried
        over unchanged, ``h_t = h_{t-1}`` (and ``c_t = c_{t-1}``), and so is
        its gradient, so the final state is each sequence's state after its
        last real step and the padding changes nothing (what PyTorch's
        ``pack_padded_sequence`` achieves). ``hs`` at a padded step repeats
        the last real output.
        """
        cell = self.cell
        xs = cell._check_x(xs, 3)
        N, T, _ = xs.shape
        if T == 0:
            raise ValueError(
                f"{type(self).__name__} needs at least one time step, got xs of shape {xs.shape}"
            )
        dt = xs.dtype
        state0 = cell._check_state(state, N, dt)
        mask = self._check_mask(mask, N, T)
        H = self.hidden_size
        # all steps' input projections in one product: (N*T, D) @ (D, G*H)
        xw = (xs.reshape(N * T, -1) @ cell._params["W_x"].astype(dt, copy=False)).reshape(N, T, -1)
        xw += cell._input_bias(dt)
        hs = np.empty((N, T, H), dtype=dt)
        st = state0
        for t in range(T):
            new = cell._step(xw[:, t], st)
            if mask is not None and not mask[:, t].all():
                m = mask[:, t, None]
                new = np.where(m, new, st) if cell.STATE_PARTS == 1 else tuple(
                    np.where(m, a, b) for a, b in zip(new, st, strict=True)
                )
            st = new
            hs[:, t] = st if cell.STATE_PARTS == 1 else st[0]
        self._save(xs, state0, hs, mask)
        return hs, st

    def _check_mask(self, mask, N: int, T: int) -> np.ndarray | None:
        if mask is None:
            return None
        mask = np.asarray(mask)
        if mask.dtype != np.bool_:
            name = type(self).__name__
            raise TypeError(f"{name}: mask must be a bool array (True = a real step), got {mask.dtype}")
        if mask.shape != (N, T):
            name = type(self).__name__
            raise ValueError(f"{name}: mask must have shape {(N, T)} like xs[..., 0], got {mask.shape}")
        return None if mask.all() else mask

    def backward(self, dhs, dstate=None):
        """``(dhs (N, T, H), d final state)`` -> ``(dxs (N, T, D), d initial state)``; either may be None."""
        xs, state0, hs, mask = self._saved()
        cell = self.cell
        N, T, _ = xs.shape
        H = self.hidden_size
        dt = xs.dtype
        name = type(self).__name__
        dhs = check_optional_dout(dhs, hs.shape, dt, name, "dhs")
        if cell.STATE_PARTS == 1:
            dh = check_optional_dout(dstate, (N, H), dt, name, "dh_T")
            dc = None
        else:
            if dstate is None:
                dstate = (None, None)
            if not (isinstance(dstate, tuple) and len(dstate) == 2):
                raise TypeError(f"{name}.backward expects dstate = (dh_T, dc_T); either may be None")
            dh = check_optional_dout(dstate[0], (N, H), dt, name, "dh_T")
            dc = check_optional_dout(dstate[1], (N, H), dt, name, "dc_T")
        if dh is None:
            dh = np.zeros((N, H), dtype=dt)
        if mask is not None and cell.STATE_PARTS == 2 and dc is None:
            dc = np.zeros((N, H), dtype=dt)
        G = cell.GATES * H
        das = np.empty((N, T, G), dtype=dt)  # gradients of the input-side pre-activations
        dhws = np.empty((N, T, G), dtype=dt) if isinstance(cell, GRUCell) else None
        for t in range(T - 1, -1, -1):
            if dhs is not None:
                dh = dh + dhs[:, t]
            m = None if mask is None or mask[:, t].all() else mask[:, t, None]
            if m is not None:  # a padded step passes its gradient straight to the previous state
                skip_h, dh = np.where(m, 0, dh), np.where(m, dh, 0)
                if dc is not None:
                    skip_c, dc = np.where(m, 0, dc), np.where(m, dc, 0)
            da, dprev, extra = cell._step_back(dh if cell.STATE_PARTS == 1 else (dh, dc))
            das[:, t] = da
            if dhws is not None:
                dhws[:, t] = extra
            if cell.STATE_PARTS == 1:
                dh = dprev
            else:
                dh, dc = dprev
            if m is not None:
                dh = dh + skip_h
                if dc is not None:
                    dc = dc + skip_c
        # the weight gradients as single large products over all steps
        h0 = state0 if cell.STATE_PARTS == 1 else state0[0]
        h_prevs = np.concatenate([h0[:, None], hs[:, :-1]], axis=1)  # (N, T, H): h_{t-1}
        da2 = das.reshape(N * T, G)
        cell._accumulate("W_x", xs.reshape(N * T, -1).T @ da2)  # (D, NT) @ (NT, G)
        hw2 = da2 if dhws is None else dhws.reshape(N * T, G)
        cell._accumulate("W_h", h_prevs.reshape(N * T, H).T @ hw2)  # (H, NT) @ (NT, G)
        cell._bias_grads(da2.sum(axis=0), None if dhws is None else hw2.sum(axis=0))
        dxs = (da2 @ cell._params["W_x"].astype(dt, copy=False).T).reshape(xs.shape)  # (N, T, D)
        return dxs, (dh if cell.STATE_PARTS == 1 else (dh, dc))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.input_size}, {self.hidden_size})"


class RNN(_Recurrent):
    """A plain (Elman) recurrent layer over a sequence: :class:`RNNCell` at every step.

    .. math:: h_t = \\tanh(x_t W_x + h_{t-1} W_h + b), \\quad t = 1, \\dots, T

    ``forward(xs (N, T, D), h0=None) -> (hs (N, T, H), h_T (N, H))``;
    ``backward(dhs, dh_T) -> (dxs, dh0)`` is backpropagation through time.
    Equal to ``torch.nn.RNN(D, H, batch_first=True)`` with the weights copied
    as the module docstring says. Elman (1990); chapter 6.
    """

    CELL = RNNCell


class LSTM(_Recurrent):
    """An LSTM layer over a sequence: :class:`LSTMCell` at every step.

    ``forward(xs (N, T, D), (h0, c0)=None) -> (hs (N, T, H), (h_T, c_T))``;
    ``backward(dhs, (dh_T, dc_T)) -> (dxs, (dh0, dc0))``. Gates ``i, f, g,
    o``; ``forget_bias`` sets the forget gate's initial bias. Equal to
    ``torch.nn.LSTM(D, H, batch_first=True)`` (whose ``output`` is ``hs`` and
    ``(h_n, c_n)`` is ``(h_T, c_T)`` with a leading layer axis of size 1).
    Hochreiter & Schmidhuber (1997); Gers et al. (2000); chapter 6.
    """

    CELL = LSTMCell

    def __init__(self, input_size: int, hidden_size: int, *, rng, forget_bias: float = 1.0, dtype=np.float64):
        super().__init__(input_size, hidden_size, rng=rng, dtype=dtype, forget_bias=forget_bias)

    def trace(self, xs: np.ndarray, state=None) -> dict[str, np.ndarray]:
        """Every gate and state over time: ``{"i", "f", "g", "o", "c", "h"}``, each ``(N, T, H)``.

        The same computation as :meth:`forward`, for plotting; nothing is kept
        for a backward pass (the tape is untouched). Chapter 6 reads an LSTM's gates with it.
        """
        cell = self.cell
        xs = cell._check_x(xs, 3)
        N, T, _ = xs.shape
        H = self.hidden_size
        h, c = cell._check_state(state, N, xs.dtype)
        xw = xs @ cell._params["W_x"].astype(xs.dtype, copy=False) + cell._input_bias(xs.dtype)  # (N, T, 4H)
        out = {k: np.empty((N, T, H), dtype=xs.dtype) for k in "ifgoch"}
        for t in range(T):
            gates = cell._gates(xw[:, t], h)
            for k, name in enumerate("ifgo"):
                out[name][:, t] = gates[:, k * H : (k + 1) * H]
            c = out["f"][:, t] * c + out["i"][:, t] * out["g"][:, t]
            h = out["o"][:, t] * np.tanh(c)
            out["c"][:, t], out["h"][:, t] = c, h
        return out

    def __repr__(self) -> str:
        return f"LSTM({self.input_size}, {self.hidden_size}, forget_bias={self.cell.forget_bias:g})"


class GRU(_Recurrent):
    """A GRU layer over a sequence: :class:`GRUCell` at every step.

    ``forward(xs (N, T, D), h0=None) -> (hs (N, T, H), h_T (N, H))``;
    ``backward(dhs, dh_T) -> (dxs, dh0)``. Gates ``r, z, n``. Equal to
    ``torch.nn.GRU(D, H, batch_first=True)``. Cho et al. (2014); chapter 6.
    """

    CELL = GRUCell


KINDS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}
"""The sequence layers by name, as :func:`recurrent_layer` and the models take them."""


def recurrent_layer(
    kind: str, input_size: int, hidden_size: int, *, rng, dtype=np.float64, **options
) -> _Recurrent:
    """``RNN``, ``LSTM`` or ``GRU`` by name (``"rnn"``, ``"lstm"``, ``"gru"``)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {sorted(KINDS)}, got {kind!r}")
    return KINDS[kind](input_size, hidden_size, rng=rng, dtype=dtype, **options)
