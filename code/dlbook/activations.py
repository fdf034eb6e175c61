"""Activation functions of Chapter 1: values, derivatives, properties and layers.

Every elementwise activation has one entry in :data:`REGISTRY`, an
:class:`ActivationSpec` holding its English and Chinese names, its formula and
derivative in LaTeX, its default parameters, the properties Chapter 1 discusses
(range, monotonic, smooth, zero-centred, saturating, identity near 0) and the
paper that introduced it. ``spec(x)`` evaluates it, ``spec.derivative(x)``
differentiates it, and :class:`Activation` turns any entry into a layer.
Activations with learnable or random parameters (PReLU, RReLU, Maxout, CReLU,
GLU, SwiGLU) are :class:`~dlbook.core.Module` layers, registered with
``kind="layer"``.

Numerics. Every function accepts float32 and float64 arrays of any shape and
returns the same shape and dtype; outputs and derivatives stay finite without
warnings for finite inputs up to ``|x| = 1e4``. Constants are Python floats,
so float32 stays float32. Two paths differ by dtype:

- float64 is the *exact* path: ``expm1``, ``log1p`` and ``scipy.special.ndtr``
  where they matter (agrees with PyTorch to about 1e-15);
- float32 is the *fast* path: the same functions rewritten with ``exp`` and
  arithmetic only, and for the exact GELU the erf approximation 7.1.26 of
  Abramowitz & Stegun (absolute error at most 1.5e-7 in erf; with float32
  rounding the error is below 3e-7 in Phi and 5e-7 in GELU on [-12, 12]).

The stable sigmoid and softplus kernels (and softplus's float32 fast path)
come from :mod:`dlbook.numerics`; the cores here build on them.

At a kink the derivative takes the value PyTorch's autograd uses (e.g.
ReLU'(0) = 0), so gradients agree with PyTorch everywhere.

Layers follow the module protocol of :mod:`dlbook.core`: what a forward pass
needs for its backward goes on the layer's tape, so one instance may be
applied several times before backpropagating (an activation used twice in a
``Sequential``); Maxout, GLU and SwiGLU take ``(N, D)`` or ``(N, ..., D)``
(e.g. ``(N, T, D)`` in a Transformer's feed-forward block). The random
layers (RReLU, and the initialisation of Maxout, GLU, SwiGLU) need an
explicit ``rng=`` seed or Generator.

Chapter 1 explains each function; Chapter 3 uses the layers' ``backward``.

References
----------
- Nair & Hinton (2010). Rectified Linear Units Improve Restricted Boltzmann Machines.
- Hendrycks & Gimpel (2016). Gaussian Error Linear Units (GELUs).
- Klambauer, Unterthiner, Mayr & Hochreiter (2017). Self-Normalizing Neural Networks.
- Abramowitz & Stegun (1964). Handbook of Mathematical Functions, formula 7.1.26.
- (each entry's ``reference`` names the paper of that function)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .core import (
    Module,
    as_generator,
    check_dout,
    check_dtype,
    check_float_array,
    check_positive_int,
    is_inference,
)
from .numerics import _sigmoid_from_parts, _sigmoid_kernel, _softplus_parts

__all__ = [
    "Properties",
    "ActivationSpec",
    "REGISTRY",
    "get",
    "names",
    "properties_table",
    "gaussian_mean",
    "ZERO_CENTRED_TOL",
    "Activation",
    "PReLU",
    "RReLU",
    "Maxout",
    "maxout",
    "CReLU",
    "glu",
    "glu_backward",
    "GLU",
    "SwiGLU",
    "SELU_ALPHA",
    "SELU_SCALE",
]

# Klambauer et al. (2017), the fixed point (mean 0, variance 1) of the SELU map.
#: SELU's :math:`\alpha` (Klambauer et al. 2017): with :data:`SELU_SCALE`, the
#: fixed point (mean 0, variance 1) of the SELU map.
SELU_ALPHA = 1.6732632423543772848170429916717
#: SELU's scale :math:`\lambda` (Klambauer et al. 2017), paired with :data:`SELU_ALPHA`.
SELU_SCALE = 1.0507009873554804934193349852946

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_GELU_TANH_C = 0.044715
_GELU_SIGMOID_C = 1.702

# Minima of the non-monotonic activations (x* and f(x*)), computed to 20
# digits with mpmath by solving f'(x) = 0; tests re-check them.
GELU_MIN = (-0.75179152469356445746, -0.16997120747990366169)
GELU_TANH_MIN = (-0.75246142207101625849, -0.17004075057125405064)
GELU_SIGMOID_MIN = (-0.75115425544128895130, -0.16361018963635358115)
SILU_MIN = (-1.2784645427610737951, -0.27846454276107379511)
MISH_MIN = (-1.1924312145154952121, -0.30884341301725040663)


# ---------------------------------------------------------------------------
# Specification objects
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Properties:
    """The properties of an activation that Chapter 1 compares (default parameters).

    - ``range``: the image of f over the real line, ``(lo, hi)`` with ``±np.inf``;
      ``closed`` says whether each end is attained (``[0, 1]`` vs ``(0, 1)``).
    - ``monotonic``: non-decreasing on R.
    - ``smooth``: continuously differentiable everywhere (C^1).
    - ``zero_centred``: f(0) = 0 and f takes both signs (the weak, "sign"
      sense; :func:`properties_table` by default uses the stronger test
      ``|E f(z)| < ZERO_CENTRED_TOL`` for z ~ N(0, 1)).
    - ``saturating``: ``"none" | "left" | "right" | "both"``, where f'(x) -> 0
      as x -> -inf / +inf.
    - ``identity_near_0``: f(0) = 0 and f'(0) = 1 (f is differentiable at 0).
    - ``continuous``: False only for the step function (history sidebar).
    """

    range: tuple[float, float]
    monotonic: bool
    smooth: bool
    zero_centred: bool
    saturating: str
    identity_near_0: bool
    closed: tuple[bool, bool] = (False, False)
    continuous: bool = True

    def __post_init__(self) -> None:
        if self.saturating not in ("none", "left", "right", "both"):
            raise ValueError(
                f"saturating must be 'none', 'left', 'right' or 'both', got {self.saturating!r}"
            )
        lo, hi = self.range
        if not lo < hi:
            raise ValueError(f"range must have lo < hi, got {self.range}")
        for end, closed in zip(self.range, self.closed, strict=True):
            if closed and not math.isfinite(end):
                raise ValueError(f"an infinite end of the range cannot be attained: {self.range}")

    @property
    def bounded(self) -> bool:
        """True when both ends of the range are finite."""
        return math.isfinite(self.range[0]) and math.isfinite(self.range[1])

    def range_tex(self) -> str:
        """The range as interval notation in LaTeX, e.g. ``[0, \\infty)``."""
        lo, hi = self.range
        left = "[" if self.closed[0] else "("
        right = "]" if self.closed[1] else ")"
        return f"{left}{_fmt_bound(lo)}, {_fmt_bound(hi)}{right}"


def _fmt_bound(v: float) -> str:
    if v == math.inf:
        return r"\infty"
    if v == -math.inf:
        return r"-\infty"
    if v == int(v):
        return str(int(v))
    if abs(v + math.exp(-1.0)) < 1e-15:
        return "-1/e"
    return f"{v:.4g}"


@dataclass(frozen=True, eq=False)
class ActivationSpec:
    """One registry entry: an activation's names, formula, properties and code.

    ``fn(x, **params)`` and ``grad(x, **params)`` take an array of any shape
    and return the same shape and dtype; missing parameters take their
    defaults, unknown ones raise ``ValueError``. ``value_and_grad`` computes
    both in one pass, sharing intermediates (what :class:`Activation` uses).
    Entries of ``kind="layer"`` name their :class:`~dlbook.core.Module` class in
    ``layer``; their ``fn``/``grad`` are ``None`` unless the layer also has a
    meaning as an elementwise function (PReLU with a fixed slope, RReLU in
    evaluation mode).
    """

    name: str
    title: str
    name_zh: str
    latex: str
    dlatex: str
    params: dict
    param_ranges: dict
    properties: Properties | None
    reference: str
    fn: Callable | None
    grad: Callable | None
    kind: str = "elementwise"
    layer: type | None = None
    kinks: tuple[float, ...] = ()
    kinks_at: Callable[..., tuple[float, ...]] | None = field(default=None, repr=False)
    _core: Callable | None = field(default=None, repr=False)

    def __call__(self, x, **params) -> np.ndarray:
        """``fn(x)`` with the default parameters filled in."""
        if self.fn is None:
            raise TypeError(f"{self.name!r} is a layer; build it with {self.layer.__name__}(...)")
        return self.fn(x, **params)

    def derivative(self, x, **params) -> np.ndarray:
        """``f'(x)`` elementwise, same shape and dtype as ``x``."""
        if self.grad is None:
            raise TypeError(f"{self.name!r} is a layer; use {self.layer.__name__}(...).backward")
        return self.grad(x, **params)

    def value_and_grad(self, x, **params) -> tuple[np.ndarray, np.ndarray]:
        """``(f(x), f'(x))`` computed together, reusing intermediates."""
        if self._core is None:
            raise TypeError(f"{self.name!r} is a layer; use {self.layer.__name__}(...)")
        x = _as_float_array(x)
        p = self.resolve(params)
        y, d = _run_core(self._core, x, True, p)
        return y, d.astype(x.dtype, copy=False)

    def resolve(self, params: dict) -> dict:
        """Defaults overridden by ``params``, as Python floats; unknown names -> ValueError."""
        unknown = set(params) - set(self.params)
        if unknown:
            allowed = ", ".join(sorted(self.params)) or "none"
            raise ValueError(
                f"{self.name} has no parameter {', '.join(sorted(unknown))}; allowed: {allowed}"
            )
        out = dict(self.params)
        for k, v in params.items():
            if not isinstance(v, (int, float, np.integer, np.floating)) or isinstance(v, bool):
                raise TypeError(f"{self.name}: parameter {k} must be a real number, got {v!r}")
            out[k] = float(v)
        return out

    def kink_points(self, **params) -> tuple[float, ...]:
        """Points where the pieces of a piecewise definition join, for ``params``."""
        if self.kinks_at is None:
            return self.kinks
        return tuple(self.kinks_at(**self.resolve(params)))


def _as_float_array(x, name: str = "x") -> np.ndarray:
    """``check_float_array`` that also accepts NumPy scalars such as ``np.float32(1)``."""
    if isinstance(x, np.generic):
        x = np.asarray(x)
    return check_float_array(x, name)


def _run_core(core, x: np.ndarray, need_grad: bool, p: dict, buf=None):
    # Cores work on arrays with at least one dimension (ufuncs turn 0-d arrays
    # into scalars, which ``out=`` cannot write into).
    buf = _fresh if buf is None else buf
    if x.ndim == 0:
        y, d = core(x.reshape(1), need_grad, buf, **p)
        return y.reshape(()), (None if d is None else d.reshape(()))
    return core(x, need_grad, buf, **p)


def _make_fn(name: str, core: Callable, spec_ref: list) -> tuple[Callable, Callable]:
    """Build the public ``fn`` and ``grad`` of an elementwise entry from its core."""

    def fn(x, **params):
        x = _as_float_array(x)
        y, _ = _run_core(core, x, False, spec_ref[0].resolve(params))
        return y

    def grad(x, **params):
        x = _as_float_array(x)
        _, d = _run_core(core, x, True, spec_ref[0].resolve(params))
        return d.astype(x.dtype, copy=False)

    fn.__name__ = fn.__qualname__ = name
    grad.__name__ = grad.__qualname__ = name + "_grad"
    return fn, grad


#: Every activation of the book by name: ``{name: ActivationSpec}`` (see :func:`get`
#: and :func:`names`).
REGISTRY: dict[str, ActivationSpec] = {}


def _register(
    name: str,
    title: str,
    name_zh: str,
    latex: str,
    dlatex: str,
    properties: Properties | None,
    reference: str,
    core: Callable | None = None,
    params: dict | None = None,
    param_ranges: dict | None = None,
    kinks_at: Callable[..., tuple[float, ...]] | None = None,
    kind: str = "elementwise",
    layer: type | None = None,
) -> ActivationSpec:
    params = {k: float(v) for k, v in (params or {}).items()}
    spec_ref: list = []
    fn = grad = None
    if core is not None:
        fn, grad = _make_fn(name, core, spec_ref)
        fn.__doc__ = (
            f"{title}: elementwise activation (Chapter 1).\n\n"
            f".. math:: f(x) = {latex}\n\n"
            f"Parameters (defaults): {params or 'none'}. "
            f"Shape: any; returns the same shape and dtype.\n\n"
            f"Reference: {reference}\n"
        )
        grad.__doc__ = (
            f"Derivative of {title} (Chapter 1).\n\n"
            f".. math:: f'(x) = {dlatex}\n\n"
            f"Shape: any; returns the same shape and dtype.\n"
        )
    kinks = tuple(kinks_at(**params)) if kinks_at is not None else ()
    spec = ActivationSpec(
        name=name,
        title=title,
        name_zh=name_zh,
        latex=latex,
        dlatex=dlatex,
        params=params,
        param_ranges=dict(param_ranges or {}),
        properties=properties,
        reference=reference,
        fn=fn,
        grad=grad,
        kind=kind,
        layer=layer,
        kinks=kinks,
        kinks_at=kinks_at,
        _core=core,
    )
    spec_ref.append(spec)
    REGISTRY[name] = spec
    return spec


def get(name: str) -> ActivationSpec:
    """The registry entry called ``name``; an unknown name raises ``ValueError`` listing all."""
    try:
        return REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown activation {name!r}; known: {', '.join(REGISTRY)}") from None


def names(kind: str = "elementwise") -> list[str]:
    """Registry keys in chapter order: ``"elementwise"``, ``"layer"`` or ``"all"``."""
    if kind == "all":
        return list(REGISTRY)
    if kind not in ("elementwise", "layer"):
        raise ValueError(f"kind must be 'elementwise', 'layer' or 'all', got {kind!r}")
    return [k for k, s in REGISTRY.items() if s.kind == kind]


#: ``|E f(z)|`` below this, for ``z ~ N(0, 1)``, counts as zero-centred in the
#: "mean" sense of :func:`properties_table` (ReLU's mean is ``1/sqrt(2 pi) = 0.399``).
ZERO_CENTRED_TOL = 0.05


def gaussian_mean(activation, **params) -> float:
    """``E f(z)`` for ``z ~ N(0, 1)``, by quadrature (float64).

    ``activation`` is a registry name or an :class:`ActivationSpec`. The
    integral is the trapezoidal rule on ``[-12, 12]`` with step ``1e-4`` (the
    Gaussian tail beyond is below 1e-30); for a continuous f with kinks the
    error is ``O(h^2)``, far below 1e-6. Chapter 1 uses it for the "zero-centred" column.
    """
    s = get(activation) if isinstance(activation, str) else activation
    z = np.linspace(-12.0, 12.0, 240_001)
    density = np.exp(-0.5 * z * z) * _INV_SQRT_2PI
    y = s(z, **params) * density
    h = z[1] - z[0]
    return float(h * (y.sum() - 0.5 * (y[0] + y[-1])))


def properties_table(names: list[str] | None = None, centred: str = "mean") -> list[dict]:
    """One row per activation for the properties table of Chapter 1.

    ``names=None`` gives every entry that has properties (the elementwise
    functions, PReLU and RReLU). Each row: name, title, name_zh, latex, range
    (interval notation in LaTeX), bounded, monotonic, smooth, zero_centred,
    saturating, identity_near_0, reference, and ``gaussian_mean`` (``E f(z)``
    for ``z ~ N(0, 1)``, see :func:`gaussian_mean`; ``None`` for layers).

    ``centred`` chooses what ``zero_centred`` means: ``"mean"`` (the
    default: ``|E f(z)| < ZERO_CENTRED_TOL``, the sense in which LeCun et
    al. ask for centred activations; what Chapter 1's table and explorer
    show) or ``"sign"`` (the registry's weaker flag: f(0) = 0 and f takes
    both signs).
    """
    if centred not in ("sign", "mean"):
        raise ValueError(f"centred must be 'sign' or 'mean', got {centred!r}")
    if names is None:
        names = [k for k, s in REGISTRY.items() if s.properties is not None]
    rows = []
    for n in names:
        s = get(n)
        p = s.properties
        if p is None:
            raise ValueError(f"{n!r} has no scalar properties (it is not elementwise)")
        mean = gaussian_mean(s) if s.fn is not None else None
        if centred == "mean":
            if mean is None:
                raise ValueError(f"{n!r} has no elementwise function to average")
            zero_centred = abs(mean) < ZERO_CENTRED_TOL
        else:
            zero_centred = p.zero_centred
        rows.append(
            {
                "name": s.name,
                "title": s.title,
                "name_zh": s.name_zh,
                "latex": s.latex,
                "range": p.range_tex(),
                "bounded": p.bounded,
                "monotonic": p.monotonic,
                "smooth": p.smooth,
                "zero_centred": zero_centred,
                "saturating": p.saturating,
                "identity_near_0": p.identity_near_0,
                "reference": s.reference,
                "gaussian_mean": mean,
            }
        )
    return rows


# ---------------------------------------------------------------------------
# Numerical building blocks. The stable sigmoid and softplus kernels live in
# dlbook.numerics (the one place where stability is handled); what follows
# is the memory management of the layers.
# ---------------------------------------------------------------------------
def _fresh(key: str, like: np.ndarray, dtype=None) -> np.ndarray:
    """A new uninitialised array shaped like ``like`` (the cores' default ``buf``)."""
    return np.empty_like(like, dtype=dtype)


class _Workspace:
    """Arrays a layer keeps between calls, so its temporaries are not reallocated.

    ``ws(key, like, dtype)`` returns the array stored under ``key``, making a
    new one when the shape or dtype changes. Why it matters: a core that
    allocates and frees several 4 MB temporaries per call makes glibc's malloc
    return that memory to the OS, and the next call pays a page fault per 4 kB
    (this tripled the time of Mish and the GELU tanh form on 10^6 floats).
    """

    def __init__(self) -> None:
        self._arrays: dict[str, np.ndarray] = {}

    def __call__(self, key: str, like: np.ndarray, dtype=None) -> np.ndarray:
        dtype = like.dtype if dtype is None else np.dtype(dtype)
        a = self._arrays.get(key)
        if a is None or a.shape != like.shape or a.dtype != dtype:
            a = self._arrays[key] = np.empty(like.shape, dtype)
        return a

    def detach(self, a: np.ndarray) -> np.ndarray:
        """Hand ``a`` over to the caller: forget every kept array that shares its memory.

        A layer's forward saves f' on its tape; the next forward must not
        overwrite it (the same layer may be applied twice before backward).
        """
        for key in [k for k, v in self._arrays.items() if np.may_share_memory(v, a)]:
            del self._arrays[key]
        return a

    def recycle(self, key: str, a: np.ndarray) -> None:
        """Keep ``a`` (no longer needed by its owner) under ``key`` for the next call to reuse."""
        if key not in self._arrays and a.base is None:
            self._arrays[key] = a


def _step_mask(x: np.ndarray, lo: float, hi: float, buf=_fresh, key: str = "m") -> np.ndarray:
    """Boolean mask of lo < x < hi (strict: PyTorch's derivative at a kink is 0)."""
    m = np.greater(x, lo, out=buf(key, x, np.bool_))
    m &= np.less(x, hi, out=buf(key + "'", x, np.bool_))
    return m


# ---------------------------------------------------------------------------
# The elementwise activations. Each core is
#     core(x, need_grad, buf, **params) -> (y, dy/dx or None)
# and computes the derivative from the forward's intermediates. ``y`` is
# always a new array; ``d`` and the temporaries come from ``buf(key, like,
# dtype)`` (new arrays, or a layer's _Workspace), so the cores compute in
# place. ``d`` may be a boolean mask where the derivative is 0/1; the public
# ``grad`` casts it. A ``buf`` key holds one array at a time: "d" is the
# derivative, "t0", "t1" and "m..." are temporaries.
# ---------------------------------------------------------------------------
def _identity(x, need_grad, buf):
    # f(x) = x: the "activation" of a linear network.
    if not need_grad:
        return x.copy(), None
    d = buf("d", x)
    d.fill(1.0)
    return x.copy(), d


def _step(x, need_grad, buf):
    # Heaviside step H(x) = 1 for x > 0 else 0: no useful gradient (0 a.e.),
    # which is why the perceptron rule, not backprop, trained it.
    y = np.greater(x, 0.0, out=buf("m", x, np.bool_)).astype(x.dtype)
    if not need_grad:
        return y, None
    d = buf("d", x)
    d.fill(0.0)
    return y, d


def _sigmoid(x, need_grad, buf):
    # sigma(x) = 1/(1+e^{-x});  sigma' = sigma (1 - sigma)
    s = _sigmoid_kernel(x)
    if not need_grad:
        return s, None
    d = np.subtract(1.0, s, out=buf("d", x))
    d *= s
    return s, d


def _tanh(x, need_grad, buf):
    # tanh' = 1 - tanh^2
    t = np.tanh(x)
    if not need_grad:
        return t, None
    d = np.multiply(t, t, out=buf("d", x))
    np.subtract(1.0, d, out=d)
    return t, d


def _softsign(x, need_grad, buf):
    # x / (1 + |x|);  derivative 1 / (1 + |x|)^2
    a = np.abs(x, out=buf("d", x))
    a += 1.0
    y = np.divide(x, a)  # one rounding: x * (1/a) can break monotonicity by an ulp
    if not need_grad:
        return y, None
    np.reciprocal(a, out=a)
    a *= a
    return y, a


def _clip_core(x, need_grad, buf, lo, hi):
    if not lo < hi:
        raise ValueError(f"need min_val < max_val, got {lo} and {hi}")
    y = np.clip(x, lo, hi)
    return y, (_step_mask(x, lo, hi, buf, "d") if need_grad else None)


def _hardtanh(x, need_grad, buf, min_val=-1.0, max_val=1.0):
    # clip(x, min_val, max_val); derivative 1 strictly inside, 0 outside
    return _clip_core(x, need_grad, buf, min_val, max_val)


def _hard_sigmoid(x, need_grad, buf, slope=0.2):
    # clip(slope x + 1/2, 0, 1): continuous, kinks at x = +-1/(2 slope)
    if not slope > 0:
        raise ValueError(f"hard_sigmoid needs slope > 0, got {slope}")
    c = 0.5 / slope
    y = np.clip(x, -c, c)
    y *= slope
    y += 0.5
    if not need_grad:
        return y, None
    m = _step_mask(x, -c, c, buf)
    return y, np.multiply(m, x.dtype.type(slope), out=buf("d", x))


def _relu(x, need_grad, buf):
    # max(0, x); derivative 1 for x > 0, 0 for x <= 0 (PyTorch's choice at 0)
    y = np.clip(x, 0.0, math.inf)  # clip with two bounds has a fast SIMD loop
    return y, (np.greater(x, 0.0, out=buf("d", x, np.bool_)) if need_grad else None)


def _relu6(x, need_grad, buf):
    # min(max(0, x), 6) (Krizhevsky 2010): ReLU capped at 6
    return _clip_core(x, need_grad, buf, 0.0, 6.0)


def _leaky_core(x, need_grad, buf, slope):
    # x for x > 0, slope * x otherwise. The derivative doubles as the factor
    # of the forward: y = x * d with d = slope + (1 - slope) [x > 0].
    if not need_grad and 0.0 <= slope <= 1.0:
        y = np.multiply(x, slope)
        np.maximum(y, x, out=y)
        return y, None
    m = np.greater(x, 0.0, out=buf("m", x, np.bool_))
    d = np.multiply(m, x.dtype.type(1.0 - slope), out=buf("d", x))
    d += slope
    return np.multiply(x, d), d


def _leaky_relu(x, need_grad, buf, negative_slope=0.01):
    return _leaky_core(x, need_grad, buf, negative_slope)


def _prelu_fn(x, need_grad, buf, a=0.25):
    return _leaky_core(x, need_grad, buf, a)


def _rrelu_eval(x, need_grad, buf, lower=1.0 / 8.0, upper=1.0 / 3.0):
    if not 0.0 <= lower <= upper:
        raise ValueError(f"rrelu needs 0 <= lower <= upper, got lower={lower}, upper={upper}")
    return _leaky_core(x, need_grad, buf, 0.5 * (lower + upper))


def _exp_linear(x, need_grad, buf, alpha, inner, scale):
    """scale * (max(x, 0) + alpha (exp(min(x, 0) / inner) - 1)): ELU, SELU, CELU.

    exp(min(x, 0)) never overflows and equals 1 for x > 0, so the negative
    piece vanishes there without a select. float64 uses expm1 (exact near 0);
    float32 uses exp - 1 (absolute error below one float32 ulp of 1). The
    derivative uses exp itself, so it stays accurate in relative terms on
    the left tail (where exp - 1 + 1 would round to 0).
    """
    e = np.clip(x, -math.inf, 0.0, out=buf("d", x))  # min(x, 0)
    if inner != 1.0:
        e *= 1.0 / inner
    y = np.clip(x, 0.0, math.inf)
    if scale != 1.0:
        y *= scale
    k = scale * alpha
    # y += k (e - 1), which is 0 for x > 0
    if x.dtype == np.float64:
        em1 = np.expm1(e, out=buf("t0", x))
        if k != 1.0:
            em1 *= k
        y += em1
        if not need_grad:
            return y, None
        np.exp(e, out=e)
    else:
        np.exp(e, out=e)
        em1 = np.multiply(e, k, out=buf("t0", x))
        em1 -= k
        y += em1
        if not need_grad:
            return y, None
    # derivative: scale for x > 0, (k / inner) e^{x/inner} for x <= 0; e = 1
    # for x > 0, so d = (k / inner) e + (scale - k / inner) [x > 0].
    if k != inner:
        e *= k / inner
    rest = scale - k / inner
    if rest != 0.0:
        m = np.greater(x, 0.0, out=buf("m", x, np.bool_))
        e += np.multiply(m, x.dtype.type(rest), out=buf("t0", x))
    return y, e


def _elu(x, need_grad, buf, alpha=1.0):
    # x for x > 0, alpha (e^x - 1) otherwise (Clevert et al. 2016)
    return _exp_linear(x, need_grad, buf, alpha, 1.0, 1.0)


def _selu(x, need_grad, buf, alpha=SELU_ALPHA, scale=SELU_SCALE):
    # scale * elu(x, alpha) with the constants of Klambauer et al. (2017)
    return _exp_linear(x, need_grad, buf, alpha, 1.0, scale)


def _celu(x, need_grad, buf, alpha=1.0):
    # max(0, x) + min(0, alpha (e^{x/alpha} - 1)) (Barron 2017): C^1 for every alpha
    if not alpha > 0:
        raise ValueError(f"celu needs alpha > 0, got {alpha}")
    return _exp_linear(x, need_grad, buf, alpha, alpha, 1.0)


def _softplus(x, need_grad, buf, beta=1.0, threshold=20.0):
    # (1/beta) log(1 + e^{beta x}), linear (= x) where beta x > threshold, as
    # in PyTorch. The stable kernel, max(z, 0) + log1p(e^{-|z|}) with
    # z = beta x (and its float32 fast path), comes from dlbook.numerics, and
    # so does the derivative sigma(z), computed from the same exponential.
    if not beta > 0:
        raise ValueError(f"softplus needs beta > 0, got {beta}")
    z = x if beta == 1.0 else np.multiply(x, beta, out=buf("t1", x))
    y, e, r = _softplus_parts(z, buf)
    if beta != 1.0:
        y *= 1.0 / beta
    linear = None
    # In float32, z + log1p(e^{-z}) already rounds to z for z >= 16, so with
    # beta = 1 the linear piece needs no select there.
    if x.dtype == np.float64 or threshold < 16.0 or beta != 1.0:
        linear = np.greater(z, threshold, out=buf("m", x, np.bool_))
        np.copyto(y, x, where=linear)
    if not need_grad:
        return y, None
    d = _sigmoid_from_parts(z, e, r, buf)
    if linear is not None:
        d[linear] = 1.0
    return y, d


# Abramowitz & Stegun 7.1.26 (after Hastings 1955): erfc(z) ~ t P(t) e^{-z^2}
# with t = 1/(1 + p z), |error| <= 1.5e-7 for z >= 0.
_AS_P = 0.3275911
_AS_COEF = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)


def _phi_cdf_f32(x: np.ndarray, buf=_fresh) -> tuple[np.ndarray, np.ndarray]:
    """(Phi(x), exp(-x^2/2)) with exp and arithmetic only (the float32 GELU).

    The tail Q(|x|) = erfc(|x|/sqrt 2)/2 comes from Abramowitz & Stegun
    7.1.26, and Phi(x) = 1 - Q(|x|) for x >= 0, Q(|x|) for x < 0. The
    Gaussian exp(-x^2/2) is returned too (in ``buf("d")``): phi(x) =
    exp(-x^2/2)/sqrt(2 pi) is the derivative's other term.
    """
    c1, c2, c3, c4, c5 = (0.5 * c for c in _AS_COEF)
    t = np.abs(x, out=buf("d", x))
    t *= _AS_P * _INV_SQRT_2
    t += 1.0
    np.reciprocal(t, out=t)
    tail = np.multiply(t, c5, out=buf("t0", x))  # Horner: t (c1 + t (c2 + ... t c5))
    for c in (c4, c3, c2, c1):
        tail += c
        tail *= t
    gauss = np.multiply(x, x, out=t)
    gauss *= -0.5
    np.exp(gauss, out=gauss)
    tail *= gauss  # Q(|x|)
    # Phi = [x >= 0] - sign(x) Q
    np.copysign(tail, x, out=tail)
    np.subtract(np.greater_equal(x, 0.0, out=buf("m", x, np.bool_)), tail, out=tail)
    return tail, gauss


def _gelu(x, need_grad, buf):
    # x Phi(x) (Hendrycks & Gimpel 2016); derivative Phi(x) + x phi(x)
    if x.dtype == np.float64:
        from scipy.special import ndtr

        cdf = ndtr(x, out=buf("t0", x))
        y = np.multiply(x, cdf)
        if not need_grad:
            return y, None
        d = np.multiply(x, x, out=buf("d", x))
        d *= -0.5
        np.exp(d, out=d)
    else:
        cdf, d = _phi_cdf_f32(x, buf)
        y = np.multiply(x, cdf)
        if not need_grad:
            return y, None
    d *= x
    d *= _INV_SQRT_2PI
    d += cdf
    return y, d


def _gelu_tanh(x, need_grad, buf):
    # (x/2)(1 + tanh(u)) = x sigma(2u), u = sqrt(2/pi) (x + 0.044715 x^3):
    # the identity 1 + tanh(u) = 2 sigma(2u) needs one exp instead of a tanh.
    x2 = np.multiply(x, x, out=buf("d", x))
    s = np.multiply(x2, _GELU_TANH_C, out=buf("t0", x))
    s += 1.0
    s *= x  # u / sqrt(2/pi)
    _sigmoid_kernel(s, 2.0 * _SQRT_2_OVER_PI, out=s)
    y = np.multiply(x, s)
    if not need_grad:
        return y, None
    # d = s + h s (1 - s), h = 2 sqrt(2/pi) x (1 + 3 * 0.044715 x^2)
    x2 *= 3.0 * _GELU_TANH_C
    x2 += 1.0
    x2 *= x
    x2 *= 2.0 * _SQRT_2_OVER_PI
    x2 *= s
    x2 -= np.multiply(x2, s, out=buf("t1", x))  # h s (1 - s) = h s - h s s
    x2 += s
    return y, x2


def _swish_core(x, need_grad, buf, beta):
    # x sigma(beta x); derivative s + beta x s (1 - s) = s (1 + beta x (1 - s))
    s = _sigmoid_kernel(x, beta, out=buf("t0", x))
    y = np.multiply(x, s)
    if not need_grad:
        return y, None
    # 1 + beta x (1 - s) = 1 + beta x - beta y
    d = np.multiply(x, beta, out=buf("d", x))
    d += 1.0
    d -= y if beta == 1.0 else np.multiply(y, beta, out=buf("t1", x))
    d *= s
    return y, d


def _gelu_sigmoid(x, need_grad, buf):
    # x sigma(1.702 x): the sigmoid approximation of GELU
    return _swish_core(x, need_grad, buf, _GELU_SIGMOID_C)


def _silu(x, need_grad, buf):
    # x sigma(x) (Elfwing et al. 2018; named SiLU by Hendrycks & Gimpel 2016)
    return _swish_core(x, need_grad, buf, 1.0)


def _swish(x, need_grad, buf, beta=1.0):
    # x sigma(beta x) (Ramachandran et al. 2017); beta = 1 is SiLU
    return _swish_core(x, need_grad, buf, beta)


def _hardswish(x, need_grad, buf):
    # x relu6(x + 3)/6 = x g(x), g = h + 1/2, h = clip(x/6, -1/2, 1/2) (Howard et al. 2019)
    h = np.multiply(x, 1.0 / 6.0, out=buf("t0", x))
    np.clip(h, -0.5, 0.5, out=h)
    g = np.add(h, 0.5, out=buf("d", x) if need_grad else None)
    y = np.multiply(x, g)
    if not need_grad:
        return y, None
    # product rule: d = g + x g' = g + (x/6) [-3 < x < 3] = g + h [-3 < x < 3]
    # (0 at -3 and 1 at 3, PyTorch's choice at the kinks)
    h *= _step_mask(x, -3.0, 3.0, buf)
    g += h
    return y, g


def _mish(x, need_grad, buf):
    # x tanh(softplus(x)) (Misra 2019) without tanh or log: with e = e^x and
    # n = e (e + 2), tanh(log(1 + e)) = n / (n + 2). e^x is capped at e^20,
    # where n/(n+2) = 1 to double precision, so nothing overflows in float32.
    e = np.clip(x, -math.inf, 20.0, out=buf("t0", x))
    np.exp(e, out=e)
    n = np.add(e, 2.0, out=buf("d", x))
    n *= e
    t = np.add(n, 2.0, out=buf("t1", x))
    np.divide(n, t, out=t)  # tanh(softplus(x)) = n / (n + 2)
    y = np.multiply(x, t)
    if not need_grad:
        return y, None
    # d = t + x (1 - t^2) sigma(x) = t + 4 x (n - e) / (n + 2)^2
    #   = t + x (n - e) (1 - t)^2, since 1 - t = 2 / (n + 2)
    n -= e
    n *= x
    np.subtract(1.0, t, out=e)
    e *= e
    n *= e
    n += t
    return y, n


def _xexp(x, need_grad, buf):
    # max(x, x e^{-|x|}) = x for x >= 0, x e^x for x < 0 (Su Jianlin).
    # As x e^{min(x, 0)} no piece needs a select.
    e = np.clip(x, -math.inf, 0.0, out=buf("t0", x))
    np.exp(e, out=e)
    y = np.multiply(x, e)
    if not need_grad:
        return y, None
    # d = e^x (1 + x) for x < 0 and 1 for x >= 0: e + min(y, 0)
    d = np.clip(y, -math.inf, 0.0, out=buf("d", x))
    d += e
    return y, d


# ---------------------------------------------------------------------------
# Layers
# ---------------------------------------------------------------------------
def _flatten_features(name: str, x, in_features: int) -> tuple[np.ndarray, np.ndarray]:
    """``(x, x2)``: the checked input ``(N, ..., D)`` and its rows ``(M, D)``, ``M = N * ...``.

    Leading axes are flattened into one batch axis (as in ``layers.Linear``),
    so a Transformer's ``(N, T, D)`` needs no reshaping by the caller.
    """
    x = check_float_array(x, "x")
    if x.ndim < 2 or x.shape[-1] != in_features:
        got = "add a batch axis: x[None]"
        if x.ndim >= 2:
            got = f"{x.shape[-1]} features instead of {in_features}"
        raise ValueError(
            f"{name} expects x of shape (N, {in_features}) or (N, ..., {in_features}), "
            f"got {x.shape} ({got})"
        )
    return x, (x if x.ndim == 2 else x.reshape(-1, in_features))


def _uniform_init(rng: np.random.Generator, fan_in: int, shape, dtype) -> np.ndarray:
    bound = 1.0 / math.sqrt(fan_in)
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


class Activation(Module):
    """Any elementwise registry entry as a layer: ``y = f(x)``, ``dx = dout * f'(x)``.

    .. math:: y = f(x), \\qquad \\frac{\\partial L}{\\partial x} = \\delta \\odot f'(x)

    Shapes: ``x`` any shape -> ``y`` same shape and dtype. In training mode the
    forward computes f' together with f (sharing intermediates) and saves it
    on the tape, so ``backward`` is one multiplication; in evaluation mode the
    forward computes f only, saves ``x`` and ``backward`` computes f'(x) from
    it; under :func:`~dlbook.core.inference_mode` it computes f only and saves
    nothing. One instance may be applied several times before the backward
    passes (each call saves its own f'). Neither pass mutates its input. No
    parameters. The temporaries live in arrays the layer keeps and reuses
    between calls of the same shape; a saved f' goes back there after its
    backward (``y`` and ``dx`` are always new arrays).

    Example: ``Activation("leaky_relu", negative_slope=0.2)``. Chapter 1.
    """

    def __init__(self, name: str, **params) -> None:
        super().__init__()
        spec = get(name)
        if spec.kind != "elementwise":
            raise ValueError(
                f"{name!r} is not elementwise; use the layer {spec.layer.__name__} instead"
            )
        self.spec = spec
        self.config = spec.resolve(params)
        self._core = spec._core
        self._ws = _Workspace()  # temporaries, and f' between a backward and the next forward

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = _as_float_array(x)
        if self.training and not is_inference():
            y, d = _run_core(self._core, x, True, self.config, self._ws)
            self._save(None, self._ws.detach(d))  # d now belongs to the tape
        else:
            y, _ = _run_core(self._core, x, False, self.config, self._ws)
            self._save(x, None)
        return y

    def backward(self, dout: np.ndarray) -> np.ndarray:
        x, d = self._saved()
        dout = check_dout(dout, (d if x is None else x).shape, "Activation")
        if d is None:  # evaluation mode: f' from the saved input
            _, d = _run_core(self._core, x, True, self.config, self._ws)
            return np.multiply(dout, d)
        dx = np.multiply(dout, d)
        self._ws.recycle("d", d)
        return dx

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v:g}" for k, v in self.config.items())
        return f"Activation({self.spec.name!r}{', ' if args else ''}{args})"


class PReLU(Module):
    """Parametric ReLU: a leaky ReLU whose negative slope ``a`` is learned.

    .. math:: y = \\max(0, x) + a \\min(0, x), \\qquad
              \\frac{\\partial L}{\\partial a} = \\sum \\delta \\min(0, x)

    Shapes: ``x`` any shape; with ``num_parameters = C > 1`` one slope per
    channel on axis 1, so ``x`` is ``(N, C, ...)`` (as in PyTorch);
    ``params["a"]`` is ``(C,)``, and ``C`` is kept as ``channels``. The
    forward runs in ``x``'s dtype; ``grads["a"]`` accumulates in the
    parameter's dtype.

    He, Zhang, Ren & Sun (2015). Delving Deep into Rectifiers: Surpassing
    Human-Level Performance on ImageNet Classification (init a = 0.25).
    Chapter 1.
    """

    def __init__(self, num_parameters: int = 1, init: float = 0.25, dtype=np.float64) -> None:
        super().__init__()
        # PyTorch's keyword; stored as ``channels``, since ``num_parameters()`` is a Module method
        self.channels = check_positive_int(num_parameters, "num_parameters")
        self.params = {"a": np.full(self.channels, float(init), dtype=check_dtype(dtype))}
        self.zero_grad()
        self._ws = _Workspace()  # the saved arrays go back here after backward, for the next forward

    def _slope(self, x: np.ndarray) -> np.ndarray:
        a = self._params["a"].astype(x.dtype, copy=False)
        if self.channels == 1:
            return a.reshape((1,) * x.ndim) if x.ndim else a.reshape(())
        if x.ndim < 2 or x.shape[1] != self.channels:
            raise ValueError(
                f"PReLU with {self.channels} parameters expects x of shape "
                f"(N, {self.channels}, ...), got {x.shape}"
            )
        return a.reshape((1, -1) + (1,) * (x.ndim - 2))  # (1, C, 1, ...)

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = check_float_array(x)
        a = self._slope(x)  # (1, C, 1, ...) or broadcastable scalar
        ws = self._ws
        # dy/dx = 1 for x > 0 and a for x <= 0 (PyTorch's choice at 0); y = x * dy/dx
        slope = np.multiply(np.greater(x, 0.0, out=ws("m", x, np.bool_)), 1.0 - a, out=ws("slope", x))
        slope += a
        y = np.multiply(x, slope)
        neg = np.clip(x, -math.inf, 0.0, out=ws("neg", x))  # min(0, x) = dy/da
        self._save(ws.detach(slope), ws.detach(neg))
        return y

    def backward(self, dout: np.ndarray) -> np.ndarray:
        slope, neg = self._saved()
        dout = check_dout(dout, slope.shape, "PReLU")
        dx = np.multiply(dout, slope)
        ga = np.multiply(dout, neg, out=neg if dout.dtype == neg.dtype else None)
        if self.channels == 1:
            da = np.array([ga.sum()])
        else:
            da = ga.sum(axis=(0,) + tuple(range(2, ga.ndim)))  # sum over N and spatial axes
        self._accumulate("a", da)
        self._ws.recycle("slope", slope)
        self._ws.recycle("neg", neg)
        return dx


class RReLU(Module):
    """Randomized leaky ReLU: a random negative slope in training, its mean in evaluation.

    .. math:: y = \\begin{cases} x & x > 0 \\\\ a x & x \\le 0 \\end{cases}, \\quad
              a \\sim U(l, u) \\text{ per element (training)}, \\quad
              a = \\tfrac{l + u}{2} \\text{ (evaluation)}

    Like dropout, the noise exists only in training. The slopes are drawn from
    a *uniform* distribution (not a Gaussian, as some write) with this layer's
    Generator, ``rng`` (a seed or a ``np.random.Generator``, required), so
    runs are reproducible. Shapes: ``x`` any shape -> same shape and dtype;
    no parameters.

    Xu, Wang, Chen & Li (2015). Empirical Evaluation of Rectified Activations
    in Convolutional Network. The paper divides, ``y = x / a`` with
    ``a ~ U(3, 8)`` in its Kaggle NDSB setting; here (as in PyTorch) the slope
    itself is uniform, and the defaults ``[1/8, 1/3]`` span the same slopes
    ``[1/8, 1/3]``. (``1/U(3, 8)`` is not uniform, and its test-time value
    ``2/(3 + 8)`` differs from the mean slope ``(1/8 + 1/3)/2`` used here.)
    Chapter 1.
    """

    def __init__(
        self,
        lower: float = 1.0 / 8.0,
        upper: float = 1.0 / 3.0,
        *,
        rng: np.random.Generator | int | None = None,
    ) -> None:
        super().__init__()
        if not 0.0 <= lower <= upper:
            raise ValueError(f"RReLU needs 0 <= lower <= upper, got lower={lower}, upper={upper}")
        self.lower, self.upper = float(lower), float(upper)
        self.rng = as_generator(rng)

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = check_float_array(x)
        if self.training:
            slope = self.rng.random(x.shape, dtype=x.dtype)
            slope *= self.upper - self.lower
            slope += self.lower - 1.0
            slope *= np.less_equal(x, 0.0)  # 0 where x > 0 ...
            slope += 1.0  # ... so the slope there is 1
        else:
            _, slope = _run_core(_leaky_core, x, True, {"slope": 0.5 * (self.lower + self.upper)})
        self._save(slope)
        return np.multiply(x, slope)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        (slope,) = self._saved()
        return np.multiply(check_dout(dout, slope.shape, "RReLU"), slope)

    def __repr__(self) -> str:
        return f"RReLU(lower={self.lower:g}, upper={self.upper:g})"


def maxout(x: np.ndarray, group_size: int, axis: int = -1) -> np.ndarray:
    """Max over consecutive groups of ``group_size`` features along ``axis``.

    .. math:: y_j = \\max_{0 \\le p < k} x_{jk + p}

    Shape: ``x (..., L, ...)`` -> ``(..., L / k, ...)`` with ``k = group_size``,
    which must be a positive integer dividing ``L``. Goodfellow et al. (2013),
    Maxout Networks. Chapter 1.
    """
    x = check_float_array(x, min_ndim=1)
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"axis {axis} is out of range for x of shape {x.shape}")
    axis %= x.ndim
    length = x.shape[axis]
    if isinstance(group_size, bool) or not isinstance(group_size, (int, np.integer)):
        raise ValueError(f"group_size must be a positive integer, got {group_size!r}")
    if group_size < 1 or length % group_size:
        raise ValueError(
            f"group_size must be a positive integer dividing the axis length {length}, "
            f"got group_size={group_size}"
        )
    shape = x.shape[:axis] + (length // group_size, group_size) + x.shape[axis + 1 :]
    return x.reshape(shape).max(axis=axis + 1)  # (..., L/k, k, ...) -> (..., L/k, ...)


class Maxout(Module):
    """Maxout unit: the max of ``k`` affine maps of the input.

    .. math:: y_j = \\max_{0 \\le p < k} (x W_{:, jk+p} + b_{jk+p})

    Shapes: ``x (N, D) -> y (N, H)``, or with leading axes ``(N, ..., D) ->
    (N, ..., H)`` (flattened into one batch axis, as in ``layers.Linear``);
    ``W (D, H k)`` and ``b (H k,)``, where column ``j k + p`` is piece ``p``
    of unit ``j`` (so ``y = maxout(x W + b, k)``). The gradient flows to the
    piece that attained the max. With ``k = 2`` and one piece fixed at 0 this
    is ReLU; Maxout can learn any convex piecewise-linear function of its
    input. Weights ~ U(+-1/sqrt(D)), ``W`` drawn before ``b`` from ``rng`` (a
    seed or a ``np.random.Generator``, required).

    Goodfellow, Warde-Farley, Mirza, Courville & Bengio (2013). Maxout
    Networks. Chapter 1.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        pieces: int = 2,
        *,
        rng: np.random.Generator | int | None = None,
        dtype=np.float64,
    ) -> None:
        super().__init__()
        self.in_features = check_positive_int(in_features, "in_features")
        self.out_features = check_positive_int(out_features, "out_features")
        self.pieces = check_positive_int(pieces, "pieces")
        dtype = check_dtype(dtype)
        gen = as_generator(rng)
        width = self.out_features * self.pieces
        self.params = {
            "W": _uniform_init(gen, self.in_features, (self.in_features, width), dtype),
            "b": _uniform_init(gen, self.in_features, (width,), dtype),
        }
        self.zero_grad()

    def forward(self, x: np.ndarray) -> np.ndarray:
        x, x2 = _flatten_features("Maxout", x, self.in_features)  # x2 (M, D)
        H, k = self.out_features, self.pieces
        W = self._params["W"].astype(x.dtype, copy=False)
        b = self._params["b"].astype(x.dtype, copy=False)
        z = (x2 @ W + b).reshape(x2.shape[0], H, k)  # (M, H, k)
        idx = z.argmax(axis=2)[:, :, None]  # (M, H, 1)
        self._save(x2, W, idx, x.shape)
        y = np.take_along_axis(z, idx, axis=2)[:, :, 0]  # (M, H)
        return y if x.ndim == 2 else y.reshape(x.shape[:-1] + (H,))  # (N, ..., H)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        x2, W, idx, shape = self._saved()
        M, H, k = x2.shape[0], self.out_features, self.pieces
        dout = check_dout(dout, shape[:-1] + (H,), "Maxout").reshape(M, H)
        dz = np.zeros((M, H, k), dtype=dout.dtype)
        np.put_along_axis(dz, idx, dout[:, :, None], axis=2)  # to the winning piece
        dz = dz.reshape(M, H * k)  # (M, H k)
        self._accumulate("W", x2.T @ dz)
        self._accumulate("b", dz.sum(axis=0))
        return (dz @ W.T).reshape(shape)  # (N, ..., D)


class CReLU(Module):
    """Concatenated ReLU: the positive and the negative part side by side.

    .. math:: y = [\\max(0, x), \\max(0, -x)]

    Shape: ``x`` with ``L`` entries on ``axis`` -> ``y`` with ``2L`` there (the
    first half is ReLU(x)). Keeps the information ReLU throws away, at twice
    the width. Shang, Sohn, Almeida & Lee (2016). Understanding and Improving
    Convolutional Neural Networks via Concatenated Rectified Linear Units.
    Chapter 1.
    """

    def __init__(self, axis: int = -1) -> None:
        super().__init__()
        self.axis = int(axis)

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = check_float_array(x, min_ndim=1)
        if not -x.ndim <= self.axis < x.ndim:
            raise ValueError(f"axis {self.axis} is out of range for x of shape {x.shape}")
        pos = np.clip(x, 0.0, math.inf)
        neg = np.clip(x, -math.inf, 0.0)
        np.negative(neg, out=neg)
        self._save(x)
        return np.concatenate([pos, neg], axis=self.axis)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        (x,) = self._saved()
        shape = list(x.shape)
        shape[self.axis] *= 2
        dout = check_dout(dout, tuple(shape), "CReLU")
        d_pos, d_neg = np.split(dout, 2, axis=self.axis)
        return d_pos * np.greater(x, 0.0) - d_neg * np.less(x, 0.0)


def _halves(x: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"axis {axis} is out of range for x of shape {x.shape}")
    if x.shape[axis] % 2:
        raise ValueError(f"glu halves axis {axis}, which must have even size, got {x.shape[axis]}")
    a, b = np.split(x, 2, axis=axis)
    return a, b


def glu(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Gated linear unit of an input split in two halves ``a, b`` along ``axis``.

    .. math:: \\operatorname{GLU}(a, b) = a \\odot \\sigma(b)

    Shape: ``(..., 2H, ...) -> (..., H, ...)``; the first half is the value,
    the second the gate (as ``torch.nn.functional.glu``). An odd size raises
    ``ValueError``. Dauphin, Fan, Auli & Grangier (2017). Language Modeling
    with Gated Convolutional Networks. Chapter 1.
    """
    x = check_float_array(x, min_ndim=1)
    a, b = _halves(x, axis)
    return a * _sigmoid_kernel(b)


def glu_backward(x: np.ndarray, dout: np.ndarray, axis: int = -1) -> np.ndarray:
    """Gradient of :func:`glu` with respect to ``x``, given ``dout = dL/dglu(x)``.

    .. math:: \\frac{\\partial L}{\\partial a} = \\delta \\odot \\sigma(b), \\quad
              \\frac{\\partial L}{\\partial b} = \\delta \\odot a \\odot \\sigma(b)(1 - \\sigma(b))

    Shape: ``x (..., 2H, ...)``, ``dout (..., H, ...)`` -> ``(..., 2H, ...)``.
    """
    x = check_float_array(x, min_ndim=1)
    a, b = _halves(x, axis)
    dout = check_dout(dout, a.shape, "glu")
    s = _sigmoid_kernel(b)
    da = dout * s
    db = da * a
    db *= 1.0 - s
    return np.concatenate([da, db], axis=axis)


class _GatedAffine(Module):
    """Shared part of GLU and SwiGLU: one affine map ``x W + b`` to ``2H`` columns.

    ``x (N, ..., D)`` is flattened to rows ``(M, D)`` as in ``layers.Linear``;
    ``W`` is drawn before ``b``, both U(+-1/sqrt(D)), from ``rng``.
    """

    def __init__(self, in_features: int, out_features: int, rng, dtype) -> None:
        super().__init__()
        self.in_features = check_positive_int(in_features, "in_features")
        self.out_features = check_positive_int(out_features, "out_features")
        dtype = check_dtype(dtype)
        gen = as_generator(rng)
        D, H = self.in_features, self.out_features
        self.params = {
            "W": _uniform_init(gen, D, (D, 2 * H), dtype),
            "b": _uniform_init(gen, D, (2 * H,), dtype),
        }
        self.zero_grad()

    def _affine(self, x):
        """``(shape, x2, W, first, second)``: ``x2 W + b (M, 2H)`` split in its two halves."""
        x, x2 = _flatten_features(type(self).__name__, x, self.in_features)
        W = self._params["W"].astype(x.dtype, copy=False)
        z = x2 @ W + self._params["b"].astype(x.dtype, copy=False)  # (M, 2H)
        H = self.out_features
        return x.shape, x2, W, z[:, :H], z[:, H:]

    def _out(self, y2: np.ndarray, shape: tuple) -> np.ndarray:
        """Rows ``(M, H)`` back to ``(N, ..., H)``."""
        return y2 if len(shape) == 2 else y2.reshape(shape[:-1] + (self.out_features,))

    def _dout(self, dout, shape: tuple) -> np.ndarray:
        """The upstream gradient checked against the output's shape, as rows ``(M, H)``."""
        H = self.out_features
        return check_dout(dout, shape[:-1] + (H,), type(self).__name__).reshape(-1, H)

    def _backward_affine(self, x2, W, shape, dz_first, dz_second):
        dz = np.concatenate([dz_first, dz_second], axis=1)  # (M, 2H)
        self._accumulate("W", x2.T @ dz)
        self._accumulate("b", dz.sum(axis=0))
        return (dz @ W.T).reshape(shape)  # (N, ..., D)


class GLU(_GatedAffine):
    """Gated linear unit layer: a linear map gated by a sigmoid of another.

    .. math:: y = (x W_1 + b_1) \\odot \\sigma(x W_2 + b_2)

    Shapes: ``x (N, D) -> y (N, H)``, or with leading axes ``(N, ..., D) ->
    (N, ..., H)`` (e.g. ``(N, T, D)`` in a Transformer's feed-forward block;
    flattened into one batch axis, as in ``layers.Linear``). The two maps are
    packed in one matrix, ``W (D, 2H)`` and ``b (2H,)``: columns ``[:H]`` are
    ``W_1`` (the value), ``[H:]`` are ``W_2`` (the gate), so ``y = glu(x W +
    b)``. Weights ~ U(+-1/sqrt(D)) from ``rng`` (a seed or a
    ``np.random.Generator``, required).

    Dauphin, Fan, Auli & Grangier (2017). Language Modeling with Gated
    Convolutional Networks. Chapter 1.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        rng: np.random.Generator | int | None = None,
        dtype=np.float64,
    ) -> None:
        super().__init__(in_features, out_features, rng, dtype)

    def forward(self, x: np.ndarray) -> np.ndarray:
        shape, x2, W, value, gate = self._affine(x)
        s = _sigmoid_kernel(gate)
        self._save(x2, W, value, s, shape)
        return self._out(value * s, shape)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        x2, W, value, s, shape = self._saved()
        dout = self._dout(dout, shape)
        d_value = dout * s
        d_gate = d_value * value
        d_gate *= 1.0 - s
        return self._backward_affine(x2, W, shape, d_value, d_gate)


class SwiGLU(_GatedAffine):
    """SwiGLU: a Swish of one linear map times a second, *linear* map.

    .. math:: y = \\operatorname{Swish}_\\beta(x W + b) \\odot (x V + c),
              \\quad \\operatorname{Swish}_\\beta(z) = z\\,\\sigma(\\beta z)

    The second factor has no sigmoid: Shazeer's SwiGLU replaces GLU's
    sigmoid *gate* by a Swish and keeps the other branch linear. (Writing
    ``Swish(xW + b) ⊙ σ(xV + c)`` is a common mistake.) Shapes:
    ``x (N, D) -> y (N, H)``, or ``(N, ..., D) -> (N, ..., H)`` (e.g. ``(N,
    T, D)`` in a Transformer's feed-forward block; flattened into one batch
    axis, as in ``layers.Linear``); packed ``W (D, 2H)`` and ``b (2H,)``:
    columns ``[:H]`` are ``W`` (through the Swish), ``[H:]`` are ``V``
    (linear). ``beta`` is fixed (Shazeer uses 1). The paper's feed-forward
    layers omit the biases; they are kept here as in the formula above.
    Weights ~ U(+-1/sqrt(D)) from ``rng`` (a seed or a
    ``np.random.Generator``, required).

    Shazeer (2020). GLU Variants Improve Transformer. Chapter 1.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        beta: float = 1.0,
        *,
        rng: np.random.Generator | int | None = None,
        dtype=np.float64,
    ) -> None:
        super().__init__(in_features, out_features, rng, dtype)
        self.beta = float(beta)

    def forward(self, x: np.ndarray) -> np.ndarray:
        shape, x2, W, pre, linear = self._affine(x)
        swish, d_swish = _swish_core(pre, True, _fresh, self.beta)
        self._save(x2, W, swish, d_swish, linear, shape)
        return self._out(swish * linear, shape)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        x2, W, swish, d_swish, linear, shape = self._saved()
        dout = self._dout(dout, shape)
        d_pre = dout * linear
        d_pre *= d_swish
        return self._backward_affine(x2, W, shape, d_pre, dout * swish)


# ---------------------------------------------------------------------------
# The registry, in the order of Chapter 1
# ---------------------------------------------------------------------------
# fmt: off
_INF = math.inf
_CASES_LEAKY = r"\begin{cases} 1 & x > 0 \\ %s & x \le 0 \end{cases}"

_register(
    "identity", "Identity", "恒等函数", "x", "1",
    Properties((-_INF, _INF), True, True, True, "none", True),
    "(none: the activation of a linear network, Chapter 1)",
    _identity,
)
_register(
    "step", "Heaviside step", "阶跃函数",
    r"\begin{cases} 1 & x > 0 \\ 0 & x \le 0 \end{cases}",
    r"0 \quad (x \ne 0)",
    Properties((0.0, 1.0), True, False, False, "both", False, (True, True), continuous=False),
    "McCulloch & Pitts (1943). A Logical Calculus of the Ideas Immanent in Nervous Activity.",
    _step, kinks_at=lambda: (0.0,),
)
_register(
    "sigmoid", "Sigmoid", "sigmoid 函数",
    r"\sigma(x) = \frac{1}{1 + e^{-x}}", r"\sigma(x)\,(1 - \sigma(x))",
    Properties((0.0, 1.0), True, True, False, "both", False),
    "Rumelhart, Hinton & Williams (1986). Learning Representations by Back-Propagating Errors.",
    _sigmoid,
)
_register(
    "tanh", "Tanh", "tanh 函数",
    r"\tanh x = \frac{e^{x} - e^{-x}}{e^{x} + e^{-x}}", r"1 - \tanh^2 x",
    Properties((-1.0, 1.0), True, True, True, "both", True),
    "LeCun, Bottou, Orr & Müller (1998). Efficient BackProp.",
    _tanh,
)
_register(
    "softsign", "Softsign", "softsign",
    r"\frac{x}{1 + |x|}", r"\frac{1}{(1 + |x|)^2}",
    Properties((-1.0, 1.0), True, True, True, "both", True),
    "Glorot & Bengio (2010). Understanding the Difficulty of Training Deep Feedforward "
    "Neural Networks (softsign from Bergstra et al. 2009).",
    _softsign, kinks_at=lambda: (0.0,),
)
_register(
    "hardtanh", "Hard tanh", "hard tanh",
    r"\min(\max(x, x_{\min}), x_{\max})", r"\mathbb{1}[x_{\min} < x < x_{\max}]",
    Properties((-1.0, 1.0), True, False, True, "both", True, (True, True)),
    "Collobert, Weston, Bottou, Karlen, Kavukcuoglu & Kuksa (2011). Natural Language "
    "Processing (Almost) from Scratch.",
    _hardtanh, {"min_val": -1.0, "max_val": 1.0}, {"min_val": (-3.0, -0.1), "max_val": (0.1, 3.0)},
    kinks_at=lambda min_val, max_val: (min_val, max_val),
)
_register(
    "hard_sigmoid", "Hard sigmoid", "hard sigmoid",
    r"\min(\max(s x + \tfrac12, 0), 1)", r"s\,\mathbb{1}[|x| < \tfrac{1}{2s}]",
    Properties((0.0, 1.0), True, False, False, "both", False, (True, True)),
    "Courbariaux, Bengio & David (2015). BinaryConnect: Training Deep Neural Networks with "
    "Binary Weights during Propagations (slope 1/2; Theano/Keras use 0.2, MobileNetV3 1/6).",
    _hard_sigmoid, {"slope": 0.2}, {"slope": (0.05, 1.0)},
    kinks_at=lambda slope: (-0.5 / slope, 0.5 / slope),
)
_register(
    "relu", "ReLU", "ReLU", r"\max(0, x)", r"\mathbb{1}[x > 0]",
    Properties((0.0, _INF), True, False, False, "left", False, (True, False)),
    "Nair & Hinton (2010). Rectified Linear Units Improve Restricted Boltzmann Machines.",
    _relu, kinks_at=lambda: (0.0,),
)
_register(
    "relu6", "ReLU6", "ReLU6", r"\min(\max(0, x), 6)", r"\mathbb{1}[0 < x < 6]",
    Properties((0.0, 6.0), True, False, False, "both", False, (True, True)),
    "Krizhevsky (2010). Convolutional Deep Belief Networks on CIFAR-10.",
    _relu6, kinks_at=lambda: (0.0, 6.0),
)
_register(
    "leaky_relu", "Leaky ReLU", "Leaky ReLU",
    r"\max(0, x) + a \min(0, x)", _CASES_LEAKY % "a",
    Properties((-_INF, _INF), True, False, True, "none", False),
    "Maas, Hannun & Ng (2013). Rectifier Nonlinearities Improve Neural Network Acoustic Models.",
    _leaky_relu, {"negative_slope": 0.01}, {"negative_slope": (0.0, 0.5)},
    kinks_at=lambda negative_slope: (0.0,),
)
_register(
    "elu", "ELU", "ELU",
    r"\begin{cases} x & x > 0 \\ \alpha (e^{x} - 1) & x \le 0 \end{cases}",
    r"\begin{cases} 1 & x > 0 \\ \alpha e^{x} & x \le 0 \end{cases}",
    Properties((-1.0, _INF), True, True, True, "left", True),
    "Clevert, Unterthiner & Hochreiter (2016). Fast and Accurate Deep Network Learning by "
    "Exponential Linear Units (ELUs).",
    _elu, {"alpha": 1.0}, {"alpha": (0.1, 3.0)}, kinks_at=lambda alpha: (0.0,),
)
_register(
    "selu", "SELU", "SELU",
    r"\lambda \begin{cases} x & x > 0 \\ \alpha (e^{x} - 1) & x \le 0 \end{cases}",
    r"\lambda \begin{cases} 1 & x > 0 \\ \alpha e^{x} & x \le 0 \end{cases}",
    Properties((-SELU_SCALE * SELU_ALPHA, _INF), True, False, True, "left", False),
    "Klambauer, Unterthiner, Mayr & Hochreiter (2017). Self-Normalizing Neural Networks.",
    _selu, {"alpha": SELU_ALPHA, "scale": SELU_SCALE},
    {"alpha": (1.0, 2.0), "scale": (0.5, 1.5)}, kinks_at=lambda alpha, scale: (0.0,),
)
_register(
    "celu", "CELU", "CELU",
    r"\max(0, x) + \min(0, \alpha (e^{x/\alpha} - 1))",
    r"\begin{cases} 1 & x > 0 \\ e^{x/\alpha} & x \le 0 \end{cases}",
    Properties((-1.0, _INF), True, True, True, "left", True),
    "Barron (2017). Continuously Differentiable Exponential Linear Units.",
    _celu, {"alpha": 1.0}, {"alpha": (0.1, 3.0)}, kinks_at=lambda alpha: (0.0,),
)
_register(
    "softplus", "Softplus", "softplus",
    r"\frac{1}{\beta} \ln(1 + e^{\beta x})", r"\sigma(\beta x)",
    Properties((0.0, _INF), True, True, False, "left", False),
    "Dugas, Bengio, Bélisle, Nadeau & Garcia (2001). Incorporating Second-Order Functional "
    "Knowledge for Better Option Pricing.",
    _softplus, {"beta": 1.0, "threshold": 20.0}, {"beta": (0.25, 5.0), "threshold": (5.0, 40.0)},
    kinks_at=lambda beta, threshold: (threshold / beta,),
)
_register(
    "gelu", "GELU", "GELU",
    r"x\,\Phi(x) = \frac{x}{2}\left(1 + \operatorname{erf}\frac{x}{\sqrt{2}}\right)",
    r"\Phi(x) + x\,\varphi(x)",
    Properties((GELU_MIN[1], _INF), False, True, True, "left", False, (True, False)),
    "Hendrycks & Gimpel (2016). Gaussian Error Linear Units (GELUs).",
    _gelu,
)
_register(
    "gelu_tanh", "GELU (tanh approximation)", "GELU（tanh 近似）",
    r"\frac{x}{2}\left(1 + \tanh\left(\sqrt{2/\pi}\,(x + 0.044715\,x^3)\right)\right)",
    r"\tfrac12 (1 + \tanh u) + \tfrac12 x\,(1 - \tanh^2 u)\,\sqrt{2/\pi}\,(1 + 0.134145\,x^2),"
    r"\ u = \sqrt{2/\pi}\,(x + 0.044715\,x^3)",
    Properties((GELU_TANH_MIN[1], _INF), False, True, True, "left", False, (True, False)),
    "Hendrycks & Gimpel (2016). Gaussian Error Linear Units (GELUs).",
    _gelu_tanh,
)
_register(
    "gelu_sigmoid", "GELU (sigmoid approximation)", "GELU（sigmoid 近似）",
    r"x\,\sigma(1.702\,x)",
    r"\sigma(1.702\,x)\,\bigl(1 + 1.702\,x\,(1 - \sigma(1.702\,x))\bigr)",
    Properties((GELU_SIGMOID_MIN[1], _INF), False, True, True, "left", False, (True, False)),
    "Hendrycks & Gimpel (2016). Gaussian Error Linear Units (GELUs).",
    _gelu_sigmoid,
)
_register(
    "silu", "SiLU", "SiLU", r"x\,\sigma(x)", r"\sigma(x)\,\bigl(1 + x\,(1 - \sigma(x))\bigr)",
    Properties((SILU_MIN[1], _INF), False, True, True, "left", False, (True, False)),
    "Elfwing, Uchibe & Doya (2018). Sigmoid-Weighted Linear Units for Neural Network Function "
    "Approximation in Reinforcement Learning.",
    _silu,
)
_register(
    "swish", "Swish", "Swish", r"x\,\sigma(\beta x)",
    r"\sigma(\beta x)\,\bigl(1 + \beta x\,(1 - \sigma(\beta x))\bigr)",
    Properties((SILU_MIN[1], _INF), False, True, True, "left", False, (True, False)),
    "Ramachandran, Zoph & Le (2017). Searching for Activation Functions.",
    _swish, {"beta": 1.0}, {"beta": (0.0, 5.0)},
)
_register(
    "hardswish", "Hard swish", "hard swish", r"x\,\frac{\operatorname{ReLU6}(x + 3)}{6}",
    r"\begin{cases} 0 & x \le -3 \\ \frac{2x + 3}{6} & -3 < x < 3 \\ 1 & x \ge 3 \end{cases}",
    Properties((-0.375, _INF), False, False, True, "left", False, (True, False)),
    "Howard et al. (2019). Searching for MobileNetV3.",
    _hardswish, kinks_at=lambda: (-3.0, 3.0),
)
_register(
    "mish", "Mish", "Mish", r"x \tanh(\ln(1 + e^{x}))",
    r"\tanh(\operatorname{sp}(x)) + x\,\sigma(x)\,(1 - \tanh^2(\operatorname{sp}(x))),"
    r"\ \operatorname{sp}(x) = \ln(1 + e^{x})",
    Properties((MISH_MIN[1], _INF), False, True, True, "left", False, (True, False)),
    "Misra (2019). Mish: A Self Regularized Non-Monotonic Neural Activation Function.",
    _mish,
)
_register(
    "xexp", "max(x, x·e^{−|x|})", "max(x, x·e^{−|x|})（苏剑林）", r"\max(x, x e^{-|x|})",
    r"\begin{cases} 1 & x \ge 0 \\ e^{x}(1 + x) & x < 0 \end{cases}",
    Properties((-math.exp(-1.0), _INF), False, True, True, "left", True, (True, False)),
    "Su Jianlin, Scientific Spaces blog (kexue.fm).",
    _xexp, kinks_at=lambda: (0.0,),
)

# Layers. PReLU and RReLU also have a meaning as elementwise functions (a
# fixed slope; RReLU in evaluation mode), so they keep fn/grad and properties.
_register(
    "prelu", "PReLU", "参数化 ReLU", r"\max(0, x) + a \min(0, x)",
    _CASES_LEAKY % "a" + r", \quad \frac{\partial y}{\partial a} = \min(0, x)",
    Properties((-_INF, _INF), True, False, True, "none", False),
    "He, Zhang, Ren & Sun (2015). Delving Deep into Rectifiers: Surpassing Human-Level "
    "Performance on ImageNet Classification.",
    _prelu_fn, {"a": 0.25}, {"a": (0.0, 1.0)}, kinks_at=lambda a: (0.0,),
    kind="layer", layer=PReLU,
)
_register(
    "rrelu", "RReLU", "RReLU",
    r"\begin{cases} x & x > 0 \\ a x & x \le 0 \end{cases},"
    r"\ a \sim U(l, u) \text{ (training)},\ a = \tfrac{l + u}{2} \text{ (evaluation)}",
    _CASES_LEAKY % "a",
    Properties((-_INF, _INF), True, False, True, "none", False),
    "Xu, Wang, Chen & Li (2015). Empirical Evaluation of Rectified Activations in "
    "Convolutional Network.",
    _rrelu_eval, {"lower": 1.0 / 8.0, "upper": 1.0 / 3.0},
    {"lower": (0.0, 0.5), "upper": (0.0, 0.5)}, kinks_at=lambda lower, upper: (0.0,),
    kind="layer", layer=RReLU,
)
_register(
    "maxout", "Maxout", "Maxout", r"\max_{1 \le p \le k} (x W_p + b_p)",
    r"\frac{\partial y}{\partial (x W_p + b_p)} = \mathbb{1}[p = \arg\max_q (x W_q + b_q)]",
    None,
    "Goodfellow, Warde-Farley, Mirza, Courville & Bengio (2013). Maxout Networks.",
    kind="layer", layer=Maxout,
)
_register(
    "crelu", "CReLU", "CReLU", r"[\max(0, x),\ \max(0, -x)]",
    r"\bigl[\mathbb{1}[x > 0],\ -\mathbb{1}[x < 0]\bigr]",
    None,
    "Shang, Sohn, Almeida & Lee (2016). Understanding and Improving Convolutional Neural "
    "Networks via Concatenated Rectified Linear Units.",
    kind="layer", layer=CReLU,
)
_register(
    "glu", "GLU", "GLU", r"(x W_1 + b_1) \odot \sigma(x W_2 + b_2)",
    r"\frac{\partial y}{\partial a} = \sigma(b),\ "
    r"\frac{\partial y}{\partial b} = a\,\sigma(b)(1 - \sigma(b))",
    None,
    "Dauphin, Fan, Auli & Grangier (2017). Language Modeling with Gated Convolutional Networks.",
    kind="layer", layer=GLU,
)
_register(
    "swiglu", "SwiGLU", "SwiGLU",
    r"\operatorname{Swish}_\beta(x W + b) \odot (x V + c)",
    r"\frac{\partial y}{\partial u} = \operatorname{Swish}_\beta'(u)\,(x V + c),\ "
    r"\frac{\partial y}{\partial (x V + c)} = \operatorname{Swish}_\beta(u),\ u = x W + b",
    None,
    "Shazeer (2020). GLU Variants Improve Transformer.",
    kind="layer", layer=SwiGLU,
)
# fmt: on
