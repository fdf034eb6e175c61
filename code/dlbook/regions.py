"""Linear regions of piecewise-linear networks, and the constructions of chapter 2.

A network built from :class:`~dlbook.layers.Linear` layers and piecewise-linear
activations (ReLU, leaky ReLU, identity, hard tanh, ReLU6, hard sigmoid) computes
a continuous piecewise-linear (PL) function. This module

- builds PL functions by hand: the one-hidden-layer net equal to the PL
  interpolant of a target on given knots (:func:`interpolant_net`) and the
  deep sawtooth of the tent map composed with itself (:func:`sawtooth_net`);
- counts, *exactly*, the linear pieces of a network along a segment
  (:func:`breakpoints`, :func:`count_pieces`) by carrying the piecewise-affine
  map ``t -> pre-activation`` through the layers, and estimates the same count
  by sampling (:func:`count_pieces_sampled`);
- labels the activation regions of a 2-D input plane (:func:`region_map`) and
  draws random ReLU networks at initialisation (:func:`random_relu_net`).

Two notions of "piece" appear. An *activation region* (``kind="pattern"``) is
a maximal set on which every unit stays on the same linear piece of its
activation (for ReLU: the same units are on); Hanin & Rolnick count these.
A *linear piece of the function* (``kind="function"``) merges neighbouring
activation regions on which the network's output is the same affine map, so it
sees only where the output's slope changes. There are never fewer activation
regions than function pieces.

Numerics. The analysis runs in float64 on the parameters as stored (float32
parameters convert exactly), so it describes the PL function those parameters
define. Breakpoints are solved for, not sampled; two kinds of rounding are
guarded: a pre-activation within ``1e-12`` (relative to the size of the terms
that produced it) of a kink at a breakpoint counts as *at* the kink, so a unit
that touches zero at another unit's breakpoint does not create two spurious
slivers; and a pre-activation that is identically at its kink on an interval
(e.g. a unit with zero weights and bias) has no crossing.

Chapter 2 ("Why ReLU networks can approximate any function") uses every function
here.

References
----------
- Montúfar, Pascanu, Cho & Bengio (2014). On the Number of Linear Regions of Deep
  Neural Networks. NeurIPS.
- Telgarsky (2016). Benefits of Depth in Neural Networks. COLT.
- Arora, Basu, Mianjy & Mukherjee (2018). Understanding Deep Neural Networks with
  Rectified Linear Units. ICLR.
- Yarotsky (2017). Error bounds for approximations with deep ReLU networks.
  Neural Networks 94 (the square from sawtooth functions).
- Freudenthal (1942). Simplizialzerlegungen von beschränkter Flachheit. Annals
  of Mathematics 43 (the triangulation of a grid used by grid_interpolant).
- Hanin & Rolnick (2019). Complexity of Linear Regions in Deep Networks. ICML.
- Hanin & Rolnick (2019). Deep ReLU Networks Have Surprisingly Few Activation
  Patterns. NeurIPS.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .activations import Activation
from .core import Module, Sequential, as_generator, check_float_array, check_positive_int
from .layers import Linear
from .models import mlp

__all__ = [
    "PIECEWISE_LINEAR",
    "interpolant_net",
    "sawtooth_net",
    "square_net",
    "grid_interpolant",
    "zigzag_net",
    "fold_layers",
    "first_layer_kinks",
    "random_relu_net",
    "activation_pattern",
    "breakpoints",
    "count_pieces",
    "count_pieces_sampled",
    "region_map",
    "max_pieces_line",
]

PIECEWISE_LINEAR = ("relu", "leaky_relu", "identity", "hardtanh", "relu6", "hard_sigmoid")
"""Activation names (``Activation(name)``) whose networks this module can analyse."""

# A pre-activation closer than this (relative to sum |h_i W_ij| + |b_j|, the
# size of the terms it was summed from) to a kink, at a breakpoint, is taken
# to be at the kink: float64 rounding of such sums is far below 1e-12.
_SNAP_RTOL = 1e-12

# Default bias scale of random_relu_net (see its docstring).
_DEFAULT_BIAS_STD = 0.1


# ---------------------------------------------------------------------------
# The network as a list of affine maps and PL activations
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class _Affine:
    W: np.ndarray  # (D_in, D_out) float64
    b: np.ndarray  # (D_out,) float64


@dataclass(frozen=True)
class _PL:
    layer: Activation
    kinks: np.ndarray  # (K,) sorted kink positions of the activation
    slopes: np.ndarray  # (K + 1,) slope of each piece, left to right

    def __call__(self, z: np.ndarray) -> np.ndarray:
        return self.layer.spec.fn(z, **self.layer.config)


def _flatten(net: Module, prefix: str = "") -> list[tuple[str, Module]]:
    if isinstance(net, Sequential):
        out = []
        for i, layer in enumerate(net.layers):
            out += _flatten(layer, f"{prefix}{i}.")
        return out
    return [(prefix.rstrip(".") or "0", net)]


def _ops(net: Module) -> list[_Affine | _PL]:
    """The network as affine maps and PL activations, or a clear error."""
    if not isinstance(net, Module):
        raise TypeError(f"net must be a dlbook Sequential (or a single layer), got {type(net).__name__}")
    ops: list[_Affine | _PL] = []
    for where, layer in _flatten(net):
        if isinstance(layer, Linear):
            W = np.asarray(layer.params["W"], dtype=np.float64)
            b = layer.params.get("b")
            b = np.zeros(W.shape[1]) if b is None else np.asarray(b, dtype=np.float64)
            ops.append(_Affine(W, b))
        elif isinstance(layer, Activation) and layer.spec.name in PIECEWISE_LINEAR:
            spec, cfg = layer.spec, layer.config
            kinks = np.array(sorted(spec.kink_points(**cfg)), dtype=np.float64)
            # one point inside each piece; the derivative there is the piece's slope
            inside = np.concatenate([kinks[:1] - 1.0, 0.5 * (kinks[:-1] + kinks[1:]), kinks[-1:] + 1.0])
            if kinks.size == 0:
                inside = np.zeros(1)
            ops.append(_PL(layer, kinks, spec.derivative(inside, **cfg)))
        else:
            raise TypeError(
                f"layer {where} is {layer!r}: only piecewise-linear layers can be analysed "
                f"(Linear and Activation of {', '.join(PIECEWISE_LINEAR)})"
            )
    return ops


def _input_dim(ops: list[_Affine | _PL]) -> int | None:
    for op in ops:
        if isinstance(op, _Affine):
            return op.W.shape[0]
    return None


def _check_points(ops, a, b) -> tuple[np.ndarray, np.ndarray]:
    """The segment's end points as float64 arrays of shape (D,)."""
    ends = []
    for name, p in (("a", a), ("b", b)):
        arr = np.asarray(p)
        if arr.dtype == bool or arr.dtype.kind not in "iuf":
            raise TypeError(f"{name} must be a real number or a 1-D array of real numbers, got {p!r}")
        arr = arr.astype(np.float64).reshape(-1) if arr.ndim == 0 else arr.astype(np.float64)
        if arr.ndim != 1 or arr.size == 0:
            raise ValueError(f"{name} must be a scalar or have shape (D,), got shape {np.shape(p)}")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} must be finite, got {arr}")
        ends.append(arr)
    a, b = ends
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {a.shape} and {b.shape}")
    d = _input_dim(ops)
    if d is not None and a.size != d:
        raise ValueError(f"the network takes {d} input features, but the segment's points have {a.size}")
    return a, b


def _check_kind(kind: str) -> None:
    if kind not in ("pattern", "function"):
        raise ValueError(f"kind must be 'pattern' or 'function', got {kind!r}")


def _check_tol(tol: float) -> float:
    if not isinstance(tol, (int, float)) or isinstance(tol, bool) or not 0.0 <= tol < 1.0:
        raise ValueError(f"tol must be a number in [0, 1), got {tol!r}")
    return float(tol)


# ---------------------------------------------------------------------------
# Exact pieces along a segment
# ---------------------------------------------------------------------------
def _split(t, Z, S, M, kinks):
    """Cut every interval where a pre-activation crosses a kink.

    ``t (P+1,)`` breakpoints, ``Z (P+1, H)`` pre-activations there, ``S (P, H)``
    their slope dZ/dt on each interval, ``M (P+1, H)`` the size of the terms
    each entry of ``Z`` was summed from. Z is affine on each interval, so a
    crossing is where its end values lie strictly on both sides of a kink.
    """
    Z = Z.copy()
    for c in kinks:
        at_kink = np.abs(Z - c) <= _SNAP_RTOL * M
        Z[at_kink] = c
    new_t, new_p, new_j, new_c = [], [], [], []
    for c in kinks:
        lo, hi = Z[:-1] - c, Z[1:] - c  # (P, H) each
        p, j = np.nonzero(((lo < 0.0) & (hi > 0.0)) | ((lo > 0.0) & (hi < 0.0)))
        if p.size == 0:
            continue
        dlo, dhi = lo[p, j], hi[p, j]
        tc = t[p] + dlo / (dlo - dhi) * (t[p + 1] - t[p])
        ok = (tc > t[p]) & (tc < t[p + 1])  # a crossing rounded onto an end is no new point
        new_t.append(tc[ok])
        new_p.append(p[ok])
        new_j.append(j[ok])
        new_c.append(np.full(int(ok.sum()), c))
    if not new_t or sum(x.size for x in new_t) == 0:
        return t, Z, S
    tc, p, j, c = (np.concatenate(x) for x in (new_t, new_p, new_j, new_c))
    t_new, first, inverse = np.unique(tc, return_index=True, return_inverse=True)
    owner = p[first]  # the interval each new point falls in
    lam = (t_new - t[owner]) / (t[owner + 1] - t[owner])
    Z_new = Z[owner] + lam[:, None] * (Z[owner + 1] - Z[owner])  # (Q, H): Z is affine there
    Z_new[inverse, j] = c  # the crossing unit sits exactly on its kink
    order = np.argsort(np.concatenate([t, t_new]), kind="stable")
    t_all = np.concatenate([t, t_new])[order]
    Z_all = np.concatenate([Z, Z_new])[order]
    parent = np.searchsorted(t, t_all[:-1], side="right") - 1  # old interval of each new one
    return t_all, Z_all, S[parent]


def _trace(ops, a, b) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Breakpoints ``t (P+1,)``, outputs there ``(P+1, K)`` and slopes ``dy/dt (P, K)``."""
    t = np.array([0.0, 1.0])
    Y = np.stack([a, b])  # (2, D): the input at the two ends
    S = (b - a)[None, :]  # (1, D): dx/dt on the one interval
    M = np.abs(Y)
    for op in ops:
        if isinstance(op, _Affine):
            M = np.abs(Y) @ np.abs(op.W) + np.abs(op.b)
            Y = Y @ op.W + op.b  # (P+1, H)
            S = S @ op.W  # (P, H)
            continue
        if op.kinks.size:
            t, Y, S = _split(t, Y, S, M, op.kinks)
            mid = 0.5 * (Y[:-1] + Y[1:])  # (P, H): strictly inside one piece per unit
            piece = np.zeros(mid.shape, dtype=np.intp)
            for c in op.kinks:
                piece += mid > c
            S = op.slopes[piece] * S
        else:
            S = op.slopes[0] * S
        Y = op(Y)
        M = np.abs(Y)
    return t, Y, S


def breakpoints(net: Module, a, b, kind: str = "pattern", tol: float = 1e-9) -> np.ndarray:
    """Exact parameters ``t`` in (0, 1) where ``net`` changes linear piece along a segment.

    The segment is :math:`x(t) = a + t\\,(b - a)`, :math:`0 \\le t \\le 1`.
    Starting from one interval, each layer is applied interval by interval:
    on an interval every pre-activation is affine in ``t``,

    .. math:: z_j(t) = z_j(t_p) + (t - t_p)\\, s_{pj}, \\qquad t_p \\le t \\le t_{p+1},

    so it crosses a kink ``c`` of its activation at most once, at
    :math:`t^* = t_p + (t_{p+1} - t_p)\\,(c - z_j(t_p)) / (z_j(t_{p+1}) - z_j(t_p))`
    when its end values lie on both sides of ``c``. The interval is split
    there, and after the activation every unit is affine again on each new
    interval. Nothing is sampled.

    - ``kind="pattern"``: every ``t`` where some unit's pre-activation crosses
      a kink, i.e. the activation pattern changes (Hanin & Rolnick's regions).
    - ``kind="function"``: only those where the output's slope
      :math:`dy/dt` changes: neighbouring pieces whose slopes differ by at most
      ``tol`` times the largest slope on the segment (max-norm over outputs)
      are merged. Since the network is continuous, equal slopes mean the same
      affine map.

    ``a``, ``b``: shape ``(D,)``, or scalars when ``D = 1``; ``D`` must match
    the first Linear layer. Returns a sorted float64 array, shape ``(P-1,)``
    for ``P`` pieces. Pre-activations identically at a kink on an interval
    (degenerate units) have no crossing there.

    Hanin & Rolnick (2019), Complexity of Linear Regions in Deep Networks.
    Chapter 2.
    """
    _check_kind(kind)
    tol = _check_tol(tol)
    ops = _ops(net)
    a, b = _check_points(ops, a, b)
    t, _, S = _trace(ops, a, b)
    inner = t[1:-1]
    if kind == "pattern" or inner.size == 0:
        return inner
    scale = np.max(np.abs(S))
    if scale == 0.0:
        return inner[:0]
    jump = np.max(np.abs(S[1:] - S[:-1]), axis=1)  # (P-1,): slope change at each breakpoint
    return inner[jump > tol * scale]


def count_pieces(net: Module, a, b, kind: str = "pattern", tol: float = 1e-9) -> int:
    """Number of linear pieces of ``net`` along the segment from ``a`` to ``b``, exactly.

    .. math:: \\#\\text{pieces} = \\#\\text{breakpoints}(a, b) + 1

    See :func:`breakpoints` for ``kind`` and ``tol``. Montúfar et al. (2014),
    On the Number of Linear Regions of Deep Neural Networks; Hanin & Rolnick
    (2019). Chapter 2.
    """
    return int(breakpoints(net, a, b, kind=kind, tol=tol).size) + 1


# ---------------------------------------------------------------------------
# Activation patterns and sampling
# ---------------------------------------------------------------------------
def _pre_activations(ops, x: np.ndarray) -> tuple[list[tuple[np.ndarray, np.ndarray]], np.ndarray]:
    """Forward pass in float64: ``[(z, kinks) per PL activation]`` and the output."""
    pre = []
    for op in ops:
        if isinstance(op, _Affine):
            x = x @ op.W + op.b  # (N, H)
        else:
            if op.kinks.size:
                pre.append((x, op.kinks))
            x = op(x)
    return pre, x


def _check_inputs(ops, x) -> np.ndarray:
    x = check_float_array(x, "x", ndim=2).astype(np.float64, copy=False)
    d = _input_dim(ops)
    if d is not None and x.shape[1] != d:
        raise ValueError(f"the network takes {d} input features, got x of shape {x.shape}")
    return x


def _bits(pre) -> np.ndarray:
    n = pre[0][0].shape[0] if pre else 0
    cols = [(z[:, :, None] > kinks).reshape(z.shape[0], -1) for z, kinks in pre]  # (N, H K) each
    return np.concatenate(cols, axis=1) if cols else np.zeros((n, 0), dtype=bool)


def activation_pattern(net: Module, x) -> np.ndarray:
    """Which linear piece every unit is on, for each row of ``x``, as booleans.

    .. math:: \\pi(x)_{j} = \\mathbb{1}[z_j(x) > 0] \\quad \\text{(ReLU)}

    For an activation with kinks :math:`c_1 < \\dots < c_K` unit ``j`` gives
    ``K`` columns :math:`\\mathbb{1}[z_j > c_k]` (one for ReLU and leaky ReLU,
    two for hard tanh, ReLU6 and hard sigmoid, none for the identity), layer by
    layer, unit by unit. Shapes: ``x (N, D) -> (N, C)`` bool, ``C`` the total
    number of such columns. Two inputs are in the same activation region when
    their rows are equal (and the region is connected).

    Hanin & Rolnick (2019), Deep ReLU Networks Have Surprisingly Few Activation
    Patterns. Chapter 2.
    """
    ops = _ops(net)
    pre, _ = _pre_activations(ops, _check_inputs(ops, x))
    if not pre:
        return np.zeros((np.shape(x)[0], 0), dtype=bool)
    return _bits(pre)


def count_pieces_sampled(
    net: Module, a, b, n: int = 100_000, kind: str = "pattern", tol: float = 1e-6
) -> int:
    """Estimate :func:`count_pieces` from ``n`` evenly spaced samples of the segment.

    - ``kind="pattern"``: 1 + the number of consecutive samples
      :math:`t_i = i/(n-1)` whose activation patterns differ. Samples lying
      exactly on a region boundary (some pre-activation exactly at its kink) are
      dropped, so each counted change has its own breakpoint strictly between
      two samples: the estimate can only *undercount* (a region the samples
      skip over is missed).
    - ``kind="function"``: the number of maximal runs of at least three
      consecutive samples on which the finite-difference slope
      :math:`(y_{i+1} - y_i)/(t_{i+1} - t_i)` stays the same (within ``tol``
      times the largest such slope). A piece must hold three samples to be
      seen, so this too undercounts, barring the coincidence that a chord
      across a kink has exactly the slope of its neighbours.

    Returns an int >= 1. Hanin & Rolnick (2019) count regions along lines;
    chapter 2 compares this estimate with the exact count.
    """
    _check_kind(kind)
    tol = _check_tol(tol)
    n = check_positive_int(n, "n", minimum=3)
    ops = _ops(net)
    a, b = _check_points(ops, a, b)
    t = np.linspace(0.0, 1.0, n)
    x = a + t[:, None] * (b - a)  # (n, D)
    pre, y = _pre_activations(ops, x)
    if kind == "pattern":
        if not pre:
            return 1
        on_boundary = np.zeros(n, dtype=bool)
        for z, kinks in pre:
            on_boundary |= np.any(z[:, :, None] == kinks, axis=(1, 2))
        codes = np.packbits(_bits(pre)[~on_boundary], axis=1)  # (n', C/8) uint8
        return 1 + int(np.count_nonzero(np.any(codes[1:] != codes[:-1], axis=1)))
    slope = np.diff(y, axis=0) * (n - 1.0)  # (n-1, K): chord slopes
    scale = np.max(np.abs(slope))
    same = np.max(np.abs(slope[1:] - slope[:-1]), axis=1) <= tol * scale  # (n-2,)
    runs = int(same[0]) + int(np.count_nonzero(same[1:] & ~same[:-1]))
    return max(runs, 1)


def region_map(
    net: Module,
    xlim: tuple[float, float] = (-1.0, 1.0),
    ylim: tuple[float, float] = (-1.0, 1.0),
    resolution: int = 200,
) -> tuple[np.ndarray, int]:
    """Label the activation regions of a 2-input network on a grid.

    The grid has ``resolution`` points per axis at the centres of
    ``resolution`` equal cells (so a boundary on a round coordinate such as
    ``x = 0`` is not sampled exactly and does not show up as a region of its
    own, and the pixels of ``imshow`` sit where they were sampled); point
    ``(row i, column j)`` is :math:`(x_j, y_i)`, rows running from ``ylim[0]``
    to ``ylim[1]``. Every
    distinct :func:`activation_pattern` gets an integer id, numbered in order of
    first appearance (row by row), so the labels show the regions with
    ``imshow(labels, origin="lower", extent=(*xlim, *ylim))``.

    Returns ``(labels, count)``: ``labels (resolution, resolution)`` int64 and
    the number of distinct patterns seen (regions smaller than the grid
    spacing can be missed; a pattern taken by two disconnected regions counts
    once). A single layer of ``w`` ReLUs in the plane has at most
    :math:`1 + w + \\binom{w}{2}` regions (Zaslavsky 1975, hyperplane
    arrangements).

    Montúfar et al. (2014); Hanin & Rolnick (2019). Chapter 2.
    """
    ops = _ops(net)
    if _input_dim(ops) not in (None, 2):
        raise ValueError(f"region_map needs a network with 2 inputs, this one takes {_input_dim(ops)}")
    lims = []
    for name, lim in (("xlim", xlim), ("ylim", ylim)):
        try:
            lo, hi = (float(v) for v in lim)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a pair (low, high) of numbers, got {lim!r}") from None
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ValueError(f"{name} must be finite with low < high, got {lim!r}")
        lims.append((lo, hi))
    res = check_positive_int(resolution, "resolution", minimum=2)
    centres = [lo + (hi - lo) * (np.arange(res) + 0.5) / res for lo, hi in lims]
    gx, gy = np.meshgrid(*centres)  # (res, res) each
    points = np.column_stack([gx.ravel(), gy.ravel()])  # (res*res, 2), row-major: y slow, x fast
    if not any(isinstance(op, _PL) and op.kinks.size for op in ops):
        return np.zeros((res, res), dtype=np.int64), 1
    chunk = 1 << 16  # bounded memory for fine grids
    codes = np.concatenate(
        [
            np.packbits(_bits(_pre_activations(ops, points[i : i + chunk])[0]), axis=1)
            for i in range(0, points.shape[0], chunk)
        ]
    )  # (res*res, C/8) uint8
    keys = np.ascontiguousarray(codes).view(np.dtype((np.void, codes.shape[1]))).ravel()
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    rank = np.empty(first.size, dtype=np.int64)
    rank[np.argsort(first)] = np.arange(first.size)  # renumber by first appearance
    return rank[inverse.ravel()].reshape(res, res), int(first.size)


# ---------------------------------------------------------------------------
# Constructions
# ---------------------------------------------------------------------------
def _check_dtype(dtype):
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    return dtype


def interpolant_net(knots, values, dtype=np.float64, clamp: bool = False) -> Sequential:
    """The one-hidden-layer ReLU network equal to the PL interpolant of ``values`` at ``knots``.

    With slopes :math:`s_i = (v_{i+1} - v_i)/(k_{i+1} - k_i)`, :math:`i < m = n - 1`,

    .. math:: f(x) = v_0 + s_0\\,\\mathrm{relu}(x - k_0)
              + \\sum_{i=1}^{m-1} (s_i - s_{i-1})\\,\\mathrm{relu}(x - k_i):

    hidden unit ``i`` has weight 1 and bias :math:`-k_i` (its kink sits on knot
    ``i``), the output weights are the slope changes and the output bias is
    :math:`v_0`. On :math:`[k_0, k_m]` the first unit equals :math:`x - k_0`
    and supplies the first piece. So
    ``net(x[:, None])[:, 0] == np.interp(x, knots, values)`` on
    ``[knots[0], knots[-1]]`` (to rounding), with ``m = n - 1`` hidden units
    (a unit whose slope change is 0 is kept, so the width is always
    ``n - 1``).

    Outside the knots: left of ``knots[0]`` every unit is off and the net is
    the constant ``values[0]``, as ``np.interp``; right of ``knots[-1]`` the net
    continues the last piece linearly, whereas ``np.interp`` clamps to
    ``values[-1]``. ``clamp=True`` adds one unit,
    :math:`-s_{m-1}\\,\\mathrm{relu}(x - k_m)`, that flattens the right end too,
    so the net equals ``np.interp`` on the whole line (``n`` hidden units).

    Shapes: ``knots``, ``values`` ``(n,)`` with ``n >= 2``, knots strictly
    increasing; the network maps ``(N, 1) -> (N, 1)``.

    Arora, Basu, Mianjy & Mukherjee (2018), Understanding Deep Neural Networks
    with Rectified Linear Units. Chapter 2.
    """
    dtype = _check_dtype(dtype)
    k = check_float_array(np.asarray(knots, dtype=np.float64), "knots", ndim=1)
    v = check_float_array(np.asarray(values, dtype=np.float64), "values", ndim=1)
    if k.size < 2:
        raise ValueError(f"need at least 2 knots, got {k.size}")
    if v.shape != k.shape:
        raise ValueError(f"knots and values must have the same length, got {k.size} and {v.size}")
    if not (np.all(np.isfinite(k)) and np.all(np.isfinite(v))):
        raise ValueError("knots and values must be finite")
    if not np.all(np.diff(k) > 0.0):
        raise ValueError(f"knots must be strictly increasing, got {k}")
    slope = np.diff(v) / np.diff(k)  # (m,)
    out_w = np.concatenate([slope[:1], np.diff(slope)])  # s_0, s_1 - s_0, ...
    hinges = k[:-1]
    if clamp:
        hinges, out_w = k, np.concatenate([out_w, -slope[-1:]])
    m = hinges.size
    hidden, out = Linear(1, m, rng=0, dtype=dtype), Linear(m, 1, rng=0, dtype=dtype)
    hidden.params["W"][...] = 1.0
    hidden.params["b"][...] = 0.0 - hinges  # not -hinges: a knot at 0 gives bias +0.0, not -0.0
    out.params["W"][:, 0] = out_w
    out.params["b"][...] = v[0]
    return Sequential(hidden, Activation("relu"), out)


def sawtooth_net(depth: int, dtype=np.float64) -> Sequential:
    """The tent map composed ``depth`` times, as a ReLU network of width 2.

    .. math:: T(x) = \\begin{cases} 2x & 0 \\le x \\le \\tfrac12 \\\\ 2 - 2x & \\tfrac12 < x \\le 1
              \\end{cases}

              T(x) = 2\\,\\mathrm{relu}(x) - 4\\,\\mathrm{relu}(x - \\tfrac12)
              \\quad (x \\in [0, 1]), \\qquad f_k = T^{\\circ k}

    Layers: ``Linear(1, 2)`` (pre-activations :math:`x, x - \\tfrac12`), ReLU,
    then ``depth - 1`` times ``Linear(2, 2)``, ReLU, and ``Linear(2, 1)``. The
    output combination :math:`2h_1 - 4h_2` of each ReLU layer is folded into
    the next Linear: weights :math:`\\begin{pmatrix}2 & 2\\\\ -4 & -4\\end{pmatrix}`,
    biases :math:`(0, -\\tfrac12)`. On [0, 1], :math:`f_k` has values in [0, 1]
    and exactly :math:`2^k` linear pieces from :math:`2k` hidden units, while a
    one-hidden-layer net needs at least :math:`2^k - 1` units for as many.
    All weights are exact in float32 and float64.

    Telgarsky (2016), Benefits of Depth in Neural Networks. Chapter 2.
    """
    depth = check_positive_int(depth, "depth")
    dtype = _check_dtype(dtype)
    layers: list[Module] = []
    for i in range(depth):
        lin = Linear(1 if i == 0 else 2, 2, rng=0, dtype=dtype)
        lin.params["W"][...] = [[1.0, 1.0]] if i == 0 else [[2.0, 2.0], [-4.0, -4.0]]
        lin.params["b"][...] = [0.0, -0.5]
        layers += [lin, Activation("relu")]
    out = Linear(2, 1, rng=0, dtype=dtype)
    out.params["W"][...] = [[2.0], [-4.0]]
    out.params["b"][...] = 0.0
    return Sequential(layers + [out])


def square_net(depth: int, dtype=np.float64) -> Sequential:
    """Yarotsky's ReLU network for :math:`x^2` on [0, 1], from the sawtooth of :func:`sawtooth_net`.

    .. math:: f_m(x) = x - \\sum_{s=1}^{m} \\frac{T^{\\circ s}(x)}{4^{s}}, \\qquad
              0 \\le f_m(x) - x^2 \\le 4^{-(m+1)} \\quad (x \\in [0, 1])

    :math:`f_m` is the PL interpolant of :math:`x^2` on the :math:`2^m + 1`
    knots :math:`j/2^m` (each term removes the error of the previous grid
    at the new midpoints), so its largest error, at the midpoints, is
    :math:`h^2/4` with :math:`h = 2^{-m}`. The network has ``depth = m``
    hidden layers of 3 ReLUs: two carry the tent map as in
    :func:`sawtooth_net` and the third the running sum
    :math:`y_s = x - \\sum_{i \\le s} T^{\\circ i}(x)/4^i`, which stays
    :math:`\\ge x^2 \\ge 0`, so a ReLU passes it unchanged. The error falls by
    4 per layer (3 units and 12 parameters), where a one-hidden-layer net
    needs twice the units for each halving of the error
    (:func:`interpolant_net`). From :math:`x^2`, products follow by
    :math:`xy = ((x+y)^2 - x^2 - y^2)/2`, hence polynomials and smooth
    functions. All weights are powers of 2, exact in float32 and float64.
    Layers: ``Linear(1, 3)``, ReLU, ``m - 1`` times ``Linear(3, 3)``, ReLU,
    ``Linear(3, 1)``; maps ``(N, 1) -> (N, 1)``.

    Yarotsky (2017), Error bounds for approximations with deep ReLU networks,
    Proposition 2. Chapter 2.
    """
    depth = check_positive_int(depth, "depth")
    dtype = _check_dtype(dtype)
    bias = np.array([0.0, -0.5, 0.0])
    layers: list[Module] = [Linear.from_weights(np.array([[1.0, 1.0, 1.0]], dtype=dtype), bias.astype(dtype))]
    layers.append(Activation("relu"))
    for s in range(1, depth):  # hidden (h1, h2, h3) -> g_s = 2 h1 - 4 h2, y_s = h3 - g_s / 4^s
        c = 4.0**-s
        W = np.array([[2.0, 2.0, -2.0 * c], [-4.0, -4.0, 4.0 * c], [0.0, 0.0, 1.0]], dtype=dtype)
        layers += [Linear.from_weights(W, bias.astype(dtype)), Activation("relu")]
    c = 4.0**-depth
    layers.append(Linear.from_weights(np.array([[-2.0 * c], [4.0 * c], [1.0]], dtype=dtype)))
    return Sequential(layers)


def grid_interpolant(values, x) -> np.ndarray:
    """The continuous PL interpolant of grid values on :math:`[0, 1]^d`, at points ``x``.

    ``values`` has shape ``(n + 1,) * d``: the target at the grid points
    :math:`j / n`. Each grid cell is cut into the :math:`d!` simplices of
    Freudenthal's (Kuhn's) triangulation, :math:`\\{y: y_{\\pi(1)} \\ge \\dots
    \\ge y_{\\pi(d)}\\}` in the cell's local coordinates, and the
    interpolant is affine on each: with the local coordinates sorted,
    :math:`y_{\\pi(1)} \\ge \\dots \\ge y_{\\pi(d)}`, it walks from the cell's
    corner along the unit steps :math:`e_{\\pi(1)}, e_{\\pi(2)}, \\dots`,

    .. math:: f(x) = v_0 + \\sum_{k=1}^{d} y_{\\pi(k)}\\,(v_k - v_{k-1}),

    :math:`v_k` the value at the corner plus the first :math:`k` steps.
    The result is a continuous PL function with :math:`(n + 1)^d` values
    (so a ReLU network can compute it exactly; Arora et al. 2018) whose
    error on a smooth target falls like :math:`h^2 = n^{-2}`: like
    :math:`N^{-2/d}` in the number :math:`N` of grid values, the curse of
    dimensionality. Equals ``np.interp`` for ``d = 1``. Shapes: ``x (M,
    d)`` in :math:`[0, 1]^d` -> ``(M,)``. Chapter 2.
    """
    v = check_float_array(np.asarray(values, dtype=np.float64), "values")
    d = v.ndim
    n = v.shape[0] - 1
    if d < 1 or n < 1 or any(k != n + 1 for k in v.shape):
        raise ValueError(f"values must have shape (n + 1,) * d with n >= 1, got {v.shape}")
    x = check_float_array(np.asarray(x, dtype=np.float64), "x", ndim=2)
    if x.shape[1] != d:
        raise ValueError(f"x must have shape (M, {d}) for {d}-D grid values, got {x.shape}")
    if np.any(x < 0.0) or np.any(x > 1.0):
        raise ValueError("x must lie in [0, 1]^d")
    t = x * n
    corner = np.minimum(np.floor(t), n - 1).astype(np.int64)  # (M, d); x = 1 falls in the last cell
    y = t - corner  # local coordinates in [0, 1]
    order = np.argsort(-y, axis=1, kind="stable")  # pi: largest local coordinate first
    rows = np.arange(len(x))
    idx = corner.copy()
    prev = v[tuple(idx.T)]
    out = prev.copy()
    for k in range(d):
        axis = order[:, k]
        idx[rows, axis] += 1
        cur = v[tuple(idx.T)]
        out += y[rows, axis] * (cur - prev)
        prev = cur
    return out


def zigzag_net(depth: int, dtype=np.float64) -> Sequential:
    """A width-3 ReLU network whose ``depth`` layers give :math:`3^k` pieces on [0, 1].

    .. math:: Z(x) = 3\\,\\mathrm{relu}(x) - 6\\,\\mathrm{relu}(x - \\tfrac13)
              + 6\\,\\mathrm{relu}(x - \\tfrac23), \\qquad f_k = Z^{\\circ k}

    ``Z`` maps each third of [0, 1] onto [0, 1] (up, down, up), so composing
    it ``k`` times makes :math:`3^k` pieces from :math:`3k` units, the base-3
    version of :func:`sawtooth_net`. As there, each layer's output weights
    ``(3, -6, 6)`` are folded into the next Linear. Chapter 2, exercise 3
    (Telgarsky 2016; Montúfar et al. 2014 count regions the same way).
    """
    depth = check_positive_int(depth, "depth")
    dtype = _check_dtype(dtype)
    out_w = np.array([[3.0], [-6.0], [6.0]], dtype=dtype)  # (3, 1): Z = 3 h1 - 6 h2 + 6 h3
    bias = np.array([0.0, -1.0 / 3.0, -2.0 / 3.0], dtype=dtype)
    layers: list[Module] = []
    for i in range(depth):
        W = np.ones((1, 3), dtype=dtype) if i == 0 else out_w @ np.ones((1, 3), dtype=dtype)  # (1 or 3, 3)
        layers += [Linear.from_weights(W, bias), Activation("relu")]
    return Sequential(layers + [Linear.from_weights(out_w)])


def fold_layers(shift: float, dtype=np.float64) -> list[Module]:
    """Three layers that fold the plane: ``(x, y) -> (|x - s|, |y - s|)`` with four ReLUs.

    .. math:: |x - s| = \\mathrm{relu}(x - s) + \\mathrm{relu}(s - x)

    ``[Linear(2, 4), ReLU, Linear(4, 2)]``: the first layer computes
    :math:`x - s, s - x, y - s, s - y`, the second adds the pairs. Stacking
    folds copies a picture onto every cell they create, the "space folding"
    view of depth (Montúfar et al. 2014). Chapter 2.
    """
    dtype = _check_dtype(dtype)
    s = float(shift)
    W1 = np.array([[1.0, -1.0, 0.0, 0.0], [0.0, 0.0, 1.0, -1.0]], dtype=dtype)  # (2, 4)
    b1 = np.array([-s, s, -s, s], dtype=dtype)
    W2 = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]], dtype=dtype)  # (4, 2)
    return [Linear.from_weights(W1, b1), Activation("relu"), Linear.from_weights(W2)]


def first_layer_kinks(net: Sequential) -> np.ndarray:
    """Where each first-layer unit of a one-input ReLU net has its kink: :math:`x = -b_j / w_j`.

    The first layer must be a ``Linear(1, H)``; a unit with :math:`w_j = 0`
    has no kink and gives ``inf`` or ``nan``. Returns ``(H,)`` in unit order.
    Chapter 2.
    """
    first = net[0] if isinstance(net, Sequential) else net
    if not isinstance(first, Linear) or first.in_features != 1:
        raise TypeError(f"the first layer must be a Linear with one input, got {first!r}")
    W = first.params["W"][0]
    b = first.params["b"] if "b" in first.params else np.zeros_like(W)
    with np.errstate(divide="ignore", invalid="ignore"):
        return -b / W


def random_relu_net(
    d_in: int,
    width: int,
    depth: int,
    d_out: int = 1,
    rng: np.random.Generator | int = 0,
    init: str = "he",
    bias_std: float | None = None,
    dtype=np.float64,
) -> Sequential:
    """A ReLU network at random initialisation: ``depth`` hidden layers of ``width`` units.

    .. math:: W^{(\\ell)}_{ij} \\sim \\mathcal N(0, 2/n_{\\text{in}}), \\qquad
              b^{(\\ell)}_j \\sim \\mathcal N(0, \\sigma_b^2)

    (the weights for the default ``init="he"``, He et al. 2015).

    Built by :func:`dlbook.models.mlp` (sizes ``(d_in, width, ..., width,
    d_out)``, weights by ``init``), whose biases start at zero; then every bias
    is drawn from :math:`\\mathcal N(0, \\sigma_b^2)` with the same Generator.
    With zero biases the network is positively homogeneous,
    :math:`f(\\lambda x) = \\lambda f(x)` for :math:`\\lambda > 0`, so every
    region is a cone with its apex at the origin.

    ``bias_std=None`` means :math:`\\sigma_b = 0.1`: small next to the
    pre-activations of inputs of norm about 1 (of order 1 under He init), yet
    large enough that the region boundaries visibly miss the origin in a plot
    of :math:`[-1, 1]^2`. Hanin & Rolnick (2019) used :math:`\\sigma_b^2 = 10^{-6}`
    (``bias_std=1e-3``), just enough to avoid the degenerate zero-bias case on
    MNIST-scale inputs; ``bias_std=0.0`` keeps mlp's zero biases.

    Shapes: the network maps ``(N, d_in) -> (N, d_out)``. Chapter 2.
    """
    d_in, width = check_positive_int(d_in, "d_in"), check_positive_int(width, "width")
    depth, d_out = check_positive_int(depth, "depth"), check_positive_int(d_out, "d_out")
    sigma = _DEFAULT_BIAS_STD if bias_std is None else bias_std
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not 0.0 <= sigma < math.inf:
        raise ValueError(f"bias_std must be a finite number >= 0 or None, got {bias_std!r}")
    gen = as_generator(rng)
    net = mlp([d_in] + [width] * depth + [d_out], "relu", init=init, rng=gen, dtype=_check_dtype(dtype))
    for layer in net.layers:
        if isinstance(layer, Linear) and sigma > 0.0:
            bias = layer.params["b"]
            bias[...] = gen.normal(0.0, float(sigma), size=bias.shape)
    return net


def max_pieces_line(widths: Sequence[int]) -> int:
    """Upper bound on the pieces of a ReLU network along any line: :math:`\\prod_\\ell (w_\\ell + 1)`.

    On each piece of the layer's input along the line, each of the
    :math:`w_\\ell` pre-activations of layer :math:`\\ell` is affine, so it
    changes sign at most once: the piece splits into at most
    :math:`w_\\ell + 1`. Hence, for hidden widths :math:`w_1, \\dots, w_L`,

    .. math:: \\#\\text{pieces} \\le \\prod_{\\ell=1}^{L} (w_\\ell + 1),

    for activation regions and so for the function's pieces too. It grows
    exponentially with depth (the sawtooth attains :math:`2^L` with
    :math:`w_\\ell = 2`); random networks stay far below it. Returns an exact
    Python int.

    Montúfar et al. (2014); Telgarsky (2016); Hanin & Rolnick (2019).
    Chapter 2.
    """
    if isinstance(widths, (str, bytes)) or not isinstance(widths, Sequence | np.ndarray):
        raise TypeError(f"widths must be a sequence of positive integers, got {widths!r}")
    return math.prod(check_positive_int(w, "every width") + 1 for w in widths)
