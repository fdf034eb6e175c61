"""Tests of dlbook.activations: values, derivatives, properties, layers, numerics.

Values are checked against formulas written out here independently and
against PyTorch (skipped when torch is absent); derivatives against central
differences and torch.autograd; the registry's property claims (range,
monotonic, smooth, zero-centred, saturating, identity near 0) against the
functions themselves, so a wrong claim fails.
"""

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.special import ndtr

import dlbook as dl
from dlbook import activations as act

ELEMENTWISE = act.names("elementwise")
WITH_PROPERTIES = [n for n in act.names("all") if act.get(n).properties is not None]
HYP = settings(max_examples=25, deadline=None)
LAM, ALPHA = act.SELU_SCALE, act.SELU_ALPHA


def _sig(z):
    return 1.0 / (1.0 + np.exp(-z))


# Each formula written out again, as directly as possible, for moderate x.
FORMULAS = {
    "identity": lambda x: x,
    "step": lambda x: np.where(x > 0, 1.0, 0.0),
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "tanh": lambda x: (np.exp(x) - np.exp(-x)) / (np.exp(x) + np.exp(-x)),
    "softsign": lambda x: x / (1 + np.abs(x)),
    "hardtanh": lambda x: np.where(x < -1, -1.0, np.where(x > 1, 1.0, x)),
    "hard_sigmoid": lambda x: np.where(x < -2.5, 0.0, np.where(x > 2.5, 1.0, 0.2 * x + 0.5)),
    "relu": lambda x: np.where(x > 0, x, 0.0),
    "relu6": lambda x: np.where(x < 0, 0.0, np.where(x > 6, 6.0, x)),
    "leaky_relu": lambda x: np.where(x > 0, x, 0.01 * x),
    "elu": lambda x: np.where(x > 0, x, np.exp(x) - 1),
    "selu": lambda x: LAM * np.where(x > 0, x, ALPHA * (np.exp(x) - 1)),
    "celu": lambda x: np.where(x > 0, x, np.exp(x) - 1),
    "softplus": lambda x: np.log(1 + np.exp(x)),
    "gelu": lambda x: x * 0.5 * (1 + np.vectorize(math.erf)(x / math.sqrt(2))),
    "gelu_tanh": lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3))),
    "gelu_sigmoid": lambda x: x * _sig(1.702 * x),
    "silu": lambda x: x * _sig(x),
    "swish": lambda x: x * _sig(x),
    "hardswish": lambda x: x * np.minimum(np.maximum(x + 3, 0), 6) / 6,
    "mish": lambda x: x * np.tanh(np.log(1 + np.exp(x))),
    "xexp": lambda x: np.maximum(x, x * np.exp(-np.abs(x))),
}

# (limit at -inf, limit at +inf); ("slope", s) means f(x)/x -> s.
LIMITS = {
    "identity": (("slope", 1.0), ("slope", 1.0)),
    "step": (0.0, 1.0),
    "sigmoid": (0.0, 1.0),
    "tanh": (-1.0, 1.0),
    "softsign": (-1.0, 1.0),
    "hardtanh": (-1.0, 1.0),
    "hard_sigmoid": (0.0, 1.0),
    "relu": (0.0, ("slope", 1.0)),
    "relu6": (0.0, 6.0),
    "leaky_relu": (("slope", 0.01), ("slope", 1.0)),
    "elu": (-1.0, ("slope", 1.0)),
    "selu": (-LAM * ALPHA, ("slope", LAM)),
    "celu": (-1.0, ("slope", 1.0)),
    "softplus": (0.0, ("slope", 1.0)),
    "gelu": (0.0, ("slope", 1.0)),
    "gelu_tanh": (0.0, ("slope", 1.0)),
    "gelu_sigmoid": (0.0, ("slope", 1.0)),
    "silu": (0.0, ("slope", 1.0)),
    "swish": (0.0, ("slope", 1.0)),
    "hardswish": (0.0, ("slope", 1.0)),
    "mish": (0.0, ("slope", 1.0)),
    "xexp": (0.0, ("slope", 1.0)),
    "prelu": (("slope", 0.25), ("slope", 1.0)),
    "rrelu": (("slope", (1 / 8 + 1 / 3) / 2), ("slope", 1.0)),
}

# Non-default parameters, so parameterised code paths are tested too.
VARIANTS = [(n, {}) for n in WITH_PROPERTIES] + [
    ("hardtanh", {"min_val": -2.0, "max_val": 3.0}),
    ("hard_sigmoid", {"slope": 1 / 6}),
    ("leaky_relu", {"negative_slope": 0.2}),
    ("elu", {"alpha": 0.5}),
    ("elu", {"alpha": 2.0}),
    ("selu", {"alpha": 1.2, "scale": 0.9}),
    ("celu", {"alpha": 0.5}),
    ("celu", {"alpha": 2.0}),
    ("softplus", {"beta": 2.0, "threshold": 5.0}),
    ("softplus", {"beta": 0.5}),
    ("swish", {"beta": 1.7}),
    ("swish", {"beta": 0.0}),
    ("prelu", {"a": 0.6}),
    ("rrelu", {"lower": 0.1, "upper": 0.3}),
]
VARIANT_IDS = [n + "".join(f"-{k}={v:g}" for k, v in p.items()) for n, p in VARIANTS]


def away_from_kinks(x, kinks, gap=1e-3):
    """Move every entry of x that lies within ``gap`` of a kink out of that band."""
    x = x.copy()
    for k in kinks:
        close = np.abs(x - k) < gap
        x[close] = k + np.where(x[close] >= k, 2 * gap, -2 * gap)
    return x


# ---------------------------------------------------------------------------
# The registry
# ---------------------------------------------------------------------------
def test_every_outline_function_is_registered():
    expected = {
        "identity", "sigmoid", "tanh", "softsign", "hardtanh", "hard_sigmoid", "relu", "relu6",
        "leaky_relu", "elu", "selu", "celu", "softplus", "gelu", "gelu_tanh", "gelu_sigmoid",
        "silu", "swish", "hardswish", "mish", "xexp",
    }  # fmt: skip
    assert expected <= set(ELEMENTWISE)
    assert set(act.names("layer")) == {"prelu", "rrelu", "maxout", "crelu", "glu", "swiglu"}
    assert act.names("all") == list(act.REGISTRY)
    assert set(ELEMENTWISE).isdisjoint(act.names("layer"))


@pytest.mark.parametrize("name", act.names("all"))
def test_spec_fields_are_filled(name):
    s = act.get(name)
    assert s.name == name and s.title and s.name_zh and s.latex and s.dlatex
    assert s.kind in ("elementwise", "layer")
    assert set(s.param_ranges) <= set(s.params)
    for k, (lo, hi) in s.param_ranges.items():
        assert lo < hi and lo <= s.params[k] <= hi, k
    if s.kind == "elementwise":
        assert s.fn is not None and s.grad is not None and s.properties is not None
        assert s.layer is None
        assert "(" in s.reference or name == "xexp"
    else:
        assert issubclass(s.layer, dl.Module)
        assert "(20" in s.reference  # a year of publication


def test_chinese_names_follow_the_glossary():
    # TERMS.tsv: 参数化 ReLU, sigmoid 函数, tanh 函数; proper names stay in Latin letters
    assert act.get("prelu").name_zh == "参数化 ReLU"
    assert act.get("sigmoid").name_zh == "sigmoid 函数"
    assert act.get("tanh").name_zh == "tanh 函数"
    for n in ("relu", "gelu", "elu", "selu", "silu", "glu", "swiglu", "crelu", "mish"):
        assert act.get(n).name_zh == act.get(n).title


def test_get_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown activation 'relu7'.*relu6.*gelu"):
        act.get("relu7")
    with pytest.raises(ValueError, match="kind"):
        act.names("smooth")


def test_unknown_and_bad_parameters():
    with pytest.raises(ValueError, match="no parameter alpha; allowed: negative_slope"):
        act.get("leaky_relu")(np.ones(3), alpha=0.1)
    with pytest.raises(ValueError, match="allowed: none"):
        act.get("relu")(np.ones(3), slope=1.0)
    with pytest.raises(ValueError, match="allowed"):
        act.Activation("elu", beta=1.0)
    with pytest.raises(TypeError, match="real number"):
        act.get("elu")(np.ones(3), alpha="1")
    with pytest.raises(ValueError, match="min_val < max_val"):
        act.get("hardtanh")(np.ones(3), min_val=1.0, max_val=-1.0)
    with pytest.raises(ValueError, match="beta > 0"):
        act.get("softplus")(np.ones(3), beta=0.0)
    with pytest.raises(ValueError, match="alpha > 0"):
        act.get("celu")(np.ones(3), alpha=0.0)
    with pytest.raises(ValueError, match="slope > 0"):
        act.get("hard_sigmoid")(np.ones(3), slope=-0.2)
    with pytest.raises(ValueError, match="lower <= upper"):
        act.RReLU(lower=0.5, upper=0.1)


def test_layers_are_not_callable_as_functions():
    with pytest.raises(TypeError, match="Maxout"):
        act.get("maxout")(np.ones(3))
    with pytest.raises(ValueError, match="not elementwise.*GLU"):
        act.Activation("glu")


def test_properties_table():
    rows = act.properties_table()
    assert [r["name"] for r in rows] == WITH_PROPERTIES
    by_name = {r["name"]: r for r in rows}
    assert by_name["relu"]["range"] == r"[0, \infty)"
    assert by_name["sigmoid"]["range"] == "(0, 1)"
    assert by_name["hardtanh"]["range"] == "[-1, 1]"
    assert by_name["xexp"]["range"] == r"[-1/e, \infty)"
    assert by_name["gelu"]["range"] == r"[-0.17, \infty)"
    assert by_name["tanh"]["bounded"] and not by_name["elu"]["bounded"]
    keys = {"name", "title", "name_zh", "latex", "range", "monotonic", "smooth", "zero_centred",
            "saturating", "identity_near_0", "reference", "bounded", "gaussian_mean"}  # fmt: skip
    assert all(set(r) == keys for r in rows)
    with pytest.raises(ValueError, match="maxout"):
        act.properties_table(["relu", "maxout"])


# ---------------------------------------------------------------------------
# Values: independent formulas and PyTorch
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_value_matches_the_formula(name):
    x = np.linspace(-7.3, 7.3, 1001)
    x = away_from_kinks(x, act.get(name).kinks, 1e-9)
    np.testing.assert_allclose(act.get(name)(x), FORMULAS[name](x), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", ELEMENTWISE)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fn_grad_and_value_and_grad_agree(name, dtype):
    s = act.get(name)
    x = np.random.default_rng(1).normal(0, 3, size=(4, 5)).astype(dtype)
    y, d = s.value_and_grad(x)
    assert y.dtype == d.dtype == dtype and y.shape == d.shape == x.shape
    np.testing.assert_array_equal(y, s(x))
    np.testing.assert_array_equal(d, s.derivative(x))
    assert s(dtype(0.5)).shape == ()  # NumPy scalars and 0-d arrays work
    assert s(0.5).dtype == np.float64  # Python floats become float64


def _torch_table(F, torch):
    """name -> (torch function of a tensor, params for dlbook)."""
    return {
        "sigmoid": (torch.sigmoid, {}),
        "tanh": (torch.tanh, {}),
        "softsign": (F.softsign, {}),
        "hardtanh": (F.hardtanh, {}),
        "hardtanh(-2,3)": (lambda t: F.hardtanh(t, -2.0, 3.0), {"min_val": -2.0, "max_val": 3.0}),
        "hard_sigmoid(1/6)": (F.hardsigmoid, {"slope": 1 / 6}),
        "relu": (F.relu, {}),
        "relu6": (F.relu6, {}),
        "leaky_relu": (F.leaky_relu, {}),
        "leaky_relu(0.2)": (lambda t: F.leaky_relu(t, 0.2), {"negative_slope": 0.2}),
        "elu": (F.elu, {}),
        "elu(2)": (lambda t: F.elu(t, 2.0), {"alpha": 2.0}),
        "selu": (F.selu, {}),
        "celu": (F.celu, {}),
        "celu(0.5)": (lambda t: F.celu(t, 0.5), {"alpha": 0.5}),
        "softplus": (F.softplus, {}),
        "softplus(2,5)": (lambda t: F.softplus(t, 2.0, 5.0), {"beta": 2.0, "threshold": 5.0}),
        "softplus(0.5,20)": (lambda t: F.softplus(t, 0.5), {"beta": 0.5}),
        "gelu": (F.gelu, {}),
        "gelu_tanh": (lambda t: F.gelu(t, approximate="tanh"), {}),
        "silu": (F.silu, {}),
        "swish": (F.silu, {}),
        "hardswish": (F.hardswish, {}),
        "mish": (F.mish, {}),
        "rrelu": (lambda t: F.rrelu(t, training=False), {}),
        "prelu": (lambda t: F.prelu(t, torch.tensor([0.25], dtype=t.dtype)), {}),
    }


TORCH_CASES = [
    "sigmoid", "tanh", "softsign", "hardtanh", "hardtanh(-2,3)", "hard_sigmoid(1/6)", "relu",
    "relu6", "leaky_relu", "leaky_relu(0.2)", "elu", "elu(2)", "selu", "celu", "celu(0.5)",
    "softplus", "softplus(2,5)", "softplus(0.5,20)", "gelu", "gelu_tanh", "silu", "swish",
    "hardswish", "mish", "rrelu", "prelu",
]  # fmt: skip


def _torch_value_and_grad(torch, fn, x):
    t = torch.tensor(x, requires_grad=True)
    y = fn(t)
    (g,) = torch.autograd.grad(y.sum(), t)
    return y.detach().numpy(), g.numpy()


@pytest.mark.parametrize("case", TORCH_CASES)
def test_matches_torch_float64(case):
    torch = pytest.importorskip("torch", reason="comparison with PyTorch needs torch")
    import torch.nn.functional as F

    fn, params = _torch_table(F, torch)[case]
    name = case.split("(")[0]
    # a grid that includes the kinks themselves: gradients there follow torch's choice
    x = np.concatenate([np.linspace(-12, 12, 2401), [-3.0, 0.0, 3.0, 6.0, 2.5, 20.0, 40.0]])
    y, d = act.get(name).value_and_grad(x, **params)
    y_t, d_t = _torch_value_and_grad(torch, fn, x)
    np.testing.assert_allclose(y, y_t, rtol=1e-12, atol=1e-13)
    # torch's hardsigmoid backward multiplies by 1/6 rounded to float32, even in float64
    rtol = 3e-8 if name == "hard_sigmoid" else 1e-12
    np.testing.assert_allclose(d, d_t, rtol=rtol, atol=1e-13)


@pytest.mark.parametrize("case", TORCH_CASES)
def test_float32_path_is_close_to_torch(case):
    torch = pytest.importorskip("torch", reason="comparison with PyTorch needs torch")
    import torch.nn.functional as F

    fn, params = _torch_table(F, torch)[case]
    name = case.split("(")[0]
    x = np.linspace(-12, 12, 4801)
    x = away_from_kinks(x, act.get(name).kink_points(**params), 1e-4).astype(np.float32)
    y, d = act.get(name).value_and_grad(x, **params)
    assert y.dtype == d.dtype == np.float32
    y_t, d_t = _torch_value_and_grad(torch, fn, x.astype(np.float64))
    # float32 rounding, and for GELU the erf approximation (see the module docstring)
    np.testing.assert_allclose(y, y_t, rtol=2e-6, atol=6e-7)
    np.testing.assert_allclose(d, d_t, rtol=2e-6, atol=5e-6)


@pytest.mark.parametrize(
    "name", ["sigmoid", "softplus", "silu", "swish", "gelu_sigmoid", "mish", "xexp", "elu",
             "selu", "celu"],
)  # fmt: skip
def test_float32_left_tail_is_accurate_in_relative_terms(name):
    # where f(x) and f'(x) are tiny, float32 must not round them to 0 (e.g. softplus
    # through log(1 + e^x), or ELU' through (e^x - 1) + 1)
    x32 = np.linspace(-40, -5, 3501).astype(np.float32)
    y32, d32 = act.get(name).value_and_grad(x32)
    y64, d64 = act.get(name).value_and_grad(x32.astype(np.float64))
    np.testing.assert_allclose(y32, y64, rtol=1e-5, atol=0)
    np.testing.assert_allclose(d32, d64, rtol=1e-5, atol=0)


def test_glu_function_matches_torch():
    torch = pytest.importorskip("torch", reason="comparison with PyTorch needs torch")
    import torch.nn.functional as F

    x = np.random.default_rng(2).normal(0, 3, size=(3, 6, 4))
    dout = np.random.default_rng(3).normal(size=(3, 3, 4))
    t = torch.tensor(x, requires_grad=True)
    y_t = F.glu(t, dim=1)
    (g,) = torch.autograd.grad(y_t, t, torch.tensor(dout))
    np.testing.assert_allclose(act.glu(x, axis=1), y_t.detach().numpy(), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(act.glu_backward(x, dout, axis=1), g.numpy(), rtol=1e-13, atol=1e-15)
    # default axis -1, float32 kept
    x32 = x.astype(np.float32)
    assert act.glu(x32).shape == (3, 6, 2) and act.glu(x32).dtype == np.float32


@pytest.mark.parametrize("shape", [(5, 4), (2, 3, 4, 4)])
def test_prelu_matches_torch_including_grad_of_a(shape):
    torch = pytest.importorskip("torch", reason="comparison with PyTorch needs torch")
    import torch.nn.functional as F

    rng = np.random.default_rng(4)
    x = rng.normal(size=shape)
    dout = rng.normal(size=shape)
    channels = shape[1] if len(shape) == 4 else 1
    layer = act.PReLU(channels, init=0.25)
    layer.params["a"][:] = rng.uniform(0.05, 0.5, size=channels)
    y = layer.forward(x)
    dx = layer.backward(dout)

    t = torch.tensor(x, requires_grad=True)
    a = torch.tensor(layer.params["a"].copy(), requires_grad=True)
    y_t = F.prelu(t, a)
    gx, ga = torch.autograd.grad(y_t, (t, a), torch.tensor(dout))
    np.testing.assert_allclose(y, y_t.detach().numpy(), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(dx, gx.numpy(), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(layer.grads["a"], ga.numpy(), rtol=1e-12, atol=1e-13)


def test_rrelu_eval_matches_torch():
    torch = pytest.importorskip("torch", reason="comparison with PyTorch needs torch")
    import torch.nn.functional as F

    x = np.random.default_rng(5).normal(size=(6, 7))
    layer = act.RReLU(0.1, 0.3, rng=0).eval()
    y = layer.forward(x)
    y_t = F.rrelu(torch.tensor(x), 0.1, 0.3, training=False).numpy()
    np.testing.assert_allclose(y, y_t, rtol=1e-14)


# ---------------------------------------------------------------------------
# Derivatives against central differences
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "params"), VARIANTS, ids=VARIANT_IDS)
def test_derivative_matches_central_differences(name, params):
    s = act.get(name)
    x = np.random.default_rng(6).uniform(-7, 7, size=400)
    x = away_from_kinks(x, s.kink_points(**params), 1e-4)
    h = 1e-6
    numeric = (s(x + h, **params) - s(x - h, **params)) / (2 * h)
    np.testing.assert_allclose(s.derivative(x, **params), numeric, rtol=1e-6, atol=1e-8)


ELEMENTWISE_VARIANTS = [
    (i, v) for i, v in zip(VARIANT_IDS, VARIANTS, strict=True) if v[0] in ELEMENTWISE
]


@pytest.mark.parametrize(
    ("name", "params"),
    [v for _, v in ELEMENTWISE_VARIANTS],
    ids=[i for i, _ in ELEMENTWISE_VARIANTS],
)
def test_gradcheck_activation_layer(name, params):
    layer = act.Activation(name, **params)
    x = np.random.default_rng(7).normal(0, 2.5, size=(3, 4))
    x = away_from_kinks(x, layer.spec.kink_points(**params), 1e-4)
    errors = dl.gradcheck(layer, x)
    assert set(errors) == {"x"}
    layer.eval()  # evaluation mode computes f' in backward instead
    dl.gradcheck(layer, x)


def _nonzero(x, gap=0.05):
    return np.where(np.abs(x) < gap, np.copysign(gap, x) + x, x)


@pytest.mark.parametrize("shape", [(4, 5), (2, 3, 4, 4)])
def test_gradcheck_prelu(shape):
    channels = 3 if len(shape) == 4 else 1
    layer = act.PReLU(channels)
    layer.params["a"][:] = np.linspace(0.1, 0.4, channels)
    errors = dl.gradcheck(layer, _nonzero(np.random.default_rng(8).normal(size=shape)))
    assert set(errors) == {"x", "a"}


def test_gradcheck_rrelu_training_and_eval():
    layer = act.RReLU(rng=0)
    x = _nonzero(np.random.default_rng(9).normal(size=(5, 6)))

    def fixed_draw(inp):
        layer.rng = np.random.default_rng(123)  # the same slopes on every call
        return layer.forward(inp)

    dl.gradcheck(layer, x, forward=fixed_draw)
    dl.gradcheck(layer.eval(), x)


def test_gradcheck_maxout_crelu_glu_swiglu():
    rng = np.random.default_rng(10)
    x = rng.normal(size=(4, 5))
    for layer in (
        act.Maxout(5, 3, pieces=3, rng=1),
        act.GLU(5, 3, rng=2),
        act.SwiGLU(5, 3, rng=3),
        act.SwiGLU(5, 3, beta=1.7, rng=4),
    ):
        errors = dl.gradcheck(layer, x)
        assert set(errors) == {"x", "W", "b"}
    xn = _nonzero(rng.normal(size=(2, 3, 4)))
    dl.gradcheck(act.CReLU(), xn)
    dl.gradcheck(act.CReLU(axis=1), xn)


# ---------------------------------------------------------------------------
# The property claims
# ---------------------------------------------------------------------------
moderate = st.floats(-15, 15, allow_nan=False)
GRID = np.linspace(-60, 60, 240001)


def non_decreasing(y):
    # up to rounding: a mathematically monotone formula may wiggle by an ulp
    return bool(np.all(np.diff(y) >= -4 * np.spacing(np.abs(y[1:]))))


@pytest.mark.parametrize("name", WITH_PROPERTIES)
def test_monotonic_claims_hold_on_a_grid(name):
    assert act.get(name).properties.monotonic == non_decreasing(act.get(name)(GRID))


@pytest.mark.parametrize("name", [n for n in WITH_PROPERTIES if act.get(n).properties.monotonic])
@HYP
@given(x=hnp.arrays(np.float64, st.integers(2, 50), elements=st.floats(-50, 50)))
def test_monotonic_claims_hold_on_random_inputs(name, x):
    assert non_decreasing(act.get(name)(np.sort(x)))


@pytest.mark.parametrize("name", WITH_PROPERTIES)
@HYP
@given(x=hnp.arrays(np.float64, 20, elements=moderate))
def test_values_lie_in_the_claimed_range(name, x):
    p = act.get(name).properties
    # beyond |x| ~ 15 open ends are reached by rounding (tanh(20) == 1.0 in float64)
    y = np.concatenate([act.get(name)(x), act.get(name)(np.linspace(-15, 15, 3001))])
    lo, hi = p.range
    tol = 4e-16  # a closed end may be met to rounding
    assert np.all(y >= lo - tol) if p.closed[0] else np.all(y > lo)
    assert np.all(y <= hi + tol) if p.closed[1] else np.all(y < hi)


@pytest.mark.parametrize("name", WITH_PROPERTIES)
def test_range_is_tight(name):
    # a closed end is attained (at a stored minimum, or on a flat piece); an open
    # finite end is approached; an infinite end is unbounded
    p = act.get(name).properties
    f = act.get(name)
    minima = [act.GELU_MIN, act.GELU_TANH_MIN, act.GELU_SIGMOID_MIN, act.SILU_MIN, act.MISH_MIN]
    special = [m[0] for m in minima] + [-1.5, -1.0]  # hardswish and xexp minima
    x = np.concatenate([GRID, special, [-1e7, 1e7]])
    y = f(x)
    lo, hi = p.range
    for end, closed, gap in ((lo, p.closed[0], y - lo), (hi, p.closed[1], hi - y)):
        if not math.isfinite(end):
            assert np.max(np.abs(y)) > 1000 and np.min(gap) > 0
        elif closed:
            assert np.min(np.abs(gap)) < 1e-15
        else:
            assert 0 < np.min(gap[np.abs(x) <= 15]) and np.min(gap) < 1e-6
    assert p.bounded == (math.isfinite(lo) and math.isfinite(hi))


@pytest.mark.parametrize(
    ("name", "argmin"),
    [("gelu", act.GELU_MIN), ("gelu_tanh", act.GELU_TANH_MIN),
     ("gelu_sigmoid", act.GELU_SIGMOID_MIN), ("silu", act.SILU_MIN), ("mish", act.MISH_MIN)],
)  # fmt: skip
def test_stored_minima(name, argmin):
    x_star, f_star = argmin
    s = act.get(name)
    assert s.properties.range[0] == f_star
    assert abs(s(np.array([x_star]))[0] - f_star) < 1e-15
    assert abs(s.derivative(np.array([x_star]))[0]) < 1e-13
    assert s(np.linspace(-5, 5, 100001)).min() >= f_star - 1e-15


PIECEWISE = [(i, v) for i, v in zip(VARIANT_IDS, VARIANTS, strict=True) if act.get(v[0]).kinks]


@pytest.mark.parametrize(
    ("name", "params"), [v for _, v in PIECEWISE], ids=[i for i, _ in PIECEWISE]
)
def test_continuity_at_the_joins(name, params):
    s = act.get(name)
    kinks = s.kink_points(**params)
    # softplus switches to x above threshold/beta, as PyTorch does; that leaves
    # a jump of log1p(exp(-threshold))/beta: 2e-9 with the default threshold 20
    jump = 0.0
    if name == "softplus":
        p = s.resolve(params)
        jump = math.log1p(math.exp(-p["threshold"])) / p["beta"]
    for k in kinks:
        left, mid, right = s(np.array([k - 1e-9, k, k + 1e-9]), **params)
        if s.properties.continuous:
            assert abs(left - mid) < 1e-8 and abs(right - mid) < 1e-8 + jump, k
        else:
            assert abs(right - left) > 0.5, k


def test_softplus_threshold_jump_is_tiny_at_the_default():
    sp = act.get("softplus")
    left, right = sp(np.array([20.0, np.nextafter(20.0, 21.0)]))
    assert 2.0e-9 < left - right < 2.1e-9  # log1p(e^-20)


@pytest.mark.parametrize("name", WITH_PROPERTIES)
def test_smoothness_claims_hold(name):
    s = act.get(name)
    p = s.properties
    jumps = []
    for k in s.kinks:
        d_left, d_right = s.derivative(np.array([k - 1e-7, k + 1e-7]))
        jumps.append(abs(d_right - d_left))
    if p.smooth:
        assert all(j < 1e-5 for j in jumps)
        # and no jump anywhere: neighbouring derivatives on a fine grid stay close
        d = s.derivative(np.linspace(-10, 10, 200001))
        assert np.max(np.abs(np.diff(d))) < 1e-3
    else:
        assert (not p.continuous) or any(j > 1e-3 for j in jumps)


@pytest.mark.parametrize("name", WITH_PROPERTIES)
def test_limits_at_infinity(name):
    f = act.get(name)
    for x, limit in zip((-1e4, 1e4), LIMITS[name], strict=True):
        y = f(np.array([x]))[0]
        if isinstance(limit, tuple):
            assert abs(y / x - limit[1]) < 1e-3
        else:
            assert abs(y - limit) < 1e-3


@pytest.mark.parametrize("name", WITH_PROPERTIES)
def test_saturation_claims_hold(name):
    s = act.get(name)
    sat = s.properties.saturating
    d_left, d_right = np.abs(s.derivative(np.array([-1e4, 1e4])))
    assert (d_left < 1e-6) == (sat in ("left", "both"))
    assert (d_right < 1e-6) == (sat in ("right", "both"))
    assert max(d_left, d_right) < 1e-6 or min(d_left, d_right) > 1e-3 or sat != "none"


@pytest.mark.parametrize("name", WITH_PROPERTIES)
def test_identity_near_zero_claims_hold(name):
    s = act.get(name)
    f0 = s(np.array([0.0]))[0]
    h = 1e-6
    slope = (s(np.array([h]))[0] - s(np.array([-h]))[0]) / (2 * h)
    if s.properties.identity_near_0:
        assert f0 == 0.0 and abs(slope - 1) < 1e-6 and s.derivative(np.array([0.0]))[0] == 1.0
    else:
        assert f0 != 0.0 or abs(slope - 1) > 1e-3


@pytest.mark.parametrize("name", WITH_PROPERTIES)
def test_zero_centred_claims_hold(name):
    s = act.get(name)
    y = s(np.linspace(-10, 10, 2001))
    takes_both_signs = y.min() < 0 < y.max()
    assert s.properties.zero_centred == (s(np.array([0.0]))[0] == 0.0 and takes_both_signs)


@pytest.mark.parametrize("name", [n for n in WITH_PROPERTIES if act.get(n).fn is not None])
def test_gaussian_mean_matches_scipy_quad(name):
    from scipy.integrate import quad

    s = act.get(name)

    def integrand(z):
        return float(s(np.array([z]))[0]) * math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)

    kinks = sorted(k for k in s.kink_points() if -12 < k < 12)
    edges = [-12.0, *kinks, 12.0]
    exact = sum(quad(integrand, a, b, limit=200)[0] for a, b in itertools.pairwise(edges))
    assert act.gaussian_mean(name) == pytest.approx(exact, abs=1e-6 if name != "step" else 1e-4)


def test_mean_centred_column():
    rows = {r["name"]: r for r in act.properties_table(centred="mean")}
    for name in ["tanh", "selu", "softsign", "hardtanh", "identity"]:
        assert rows[name]["zero_centred"], name
    for name in ["gelu", "leaky_relu", "elu", "silu", "mish", "hardswish", "relu", "sigmoid"]:
        assert not rows[name]["zero_centred"], name
    # the sampled means the chapter prints agree with the quadrature
    z = np.random.default_rng(1).standard_normal(1_000_000)
    for name, row in rows.items():
        assert row["zero_centred"] == (abs(row["gaussian_mean"]) < act.ZERO_CENTRED_TOL)
        if act.get(name).fn is not None and name != "step":
            assert abs(act.get(name)(z).mean() - row["gaussian_mean"]) < 0.005, name
    # the ones that pass the mean test also pass the weaker sign test
    for row in act.properties_table():
        if rows[row["name"]]["zero_centred"]:
            assert row["zero_centred"], row["name"]
    with pytest.raises(ValueError, match="centred"):
        act.properties_table(centred="median")


# ---------------------------------------------------------------------------
# Numerical stability
# ---------------------------------------------------------------------------
EXTREME = np.array([-1e4, -1e3, -710, -88.8, 0.0, 1e-30, -1e-30, 88.8, 710, 1e3, 1e4])


@pytest.mark.parametrize("name", ELEMENTWISE + ["prelu", "rrelu"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extreme_inputs_stay_finite_without_warnings(name, dtype):
    # pytest turns every warning into an error (pyproject.toml), so a single
    # overflow or invalid-value RuntimeWarning fails this test.
    s = act.get(name)
    x = EXTREME.astype(dtype)
    y, d = s.value_and_grad(x)
    assert y.dtype == d.dtype == dtype
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(d))
    if s.kind == "elementwise":
        layer = act.Activation(name)
        for mode in (layer.train, layer.eval):
            mode()
            y_layer = layer.forward(x)
            dx = layer.backward(np.ones_like(x))
            assert y_layer.dtype == dx.dtype == dtype
            assert np.all(np.isfinite(y_layer)) and np.all(np.isfinite(dx))


def test_float32_stays_float32_in_every_layer():
    x = np.random.default_rng(11).normal(size=(4, 6)).astype(np.float32)
    layers = [act.PReLU(), act.PReLU(6), act.RReLU(rng=0), act.RReLU(rng=0).eval(),
              act.Maxout(6, 2, rng=0), act.CReLU(), act.GLU(6, 3, rng=0), act.SwiGLU(6, 3, rng=0),
              act.Activation("gelu")]  # fmt: skip
    for layer in layers:
        y = layer.forward(x)
        dx = layer.backward(np.ones_like(y))
        assert y.dtype == dx.dtype == np.float32, type(layer).__name__
        for k, g in layer.grads.items():
            assert g.dtype == layer.params[k].dtype == np.float64


def test_nothing_mutates_its_inputs():
    rng = np.random.default_rng(12)
    x = rng.normal(size=(4, 6))
    x0 = x.copy()
    for layer in [act.Activation(n) for n in ELEMENTWISE] + [
        act.PReLU(),
        act.RReLU(rng=0),
        act.Maxout(6, 2, rng=0),
        act.CReLU(),
        act.GLU(6, 3, rng=0),
        act.SwiGLU(6, 3, rng=0),
    ]:
        y = layer.forward(x)
        dout = rng.normal(size=y.shape)
        dout0 = dout.copy()
        layer.backward(dout)
        np.testing.assert_array_equal(x, x0)
        np.testing.assert_array_equal(dout, dout0)


# ---------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------
def test_integer_and_boolean_input_is_refused():
    xi = np.arange(6).reshape(2, 3)
    with pytest.raises(TypeError, match="dtype"):
        act.get("relu")(xi)
    with pytest.raises(TypeError, match="dtype"):
        act.get("gelu").derivative(xi)
    with pytest.raises(TypeError, match="dtype"):
        act.Activation("tanh").forward(xi > 2)
    with pytest.raises(TypeError, match="dtype"):
        act.get("relu")(np.int64(3))
    for layer in (act.PReLU(), act.RReLU(rng=0), act.CReLU(), act.GLU(3, 2, rng=0), act.Maxout(3, 2, rng=0)):
        with pytest.raises(TypeError, match="dtype"):
            layer.forward(xi)
    with pytest.raises(TypeError, match="dtype"):
        act.maxout(xi, 3)
    with pytest.raises(TypeError, match="dtype"):
        act.glu(xi.T)


@pytest.mark.parametrize("group_size", [0, -2, 4, 2.0, True])
def test_maxout_group_size_must_divide_the_axis(group_size):
    with pytest.raises(ValueError, match="group_size"):
        act.maxout(np.ones((2, 6)), group_size)
    if isinstance(group_size, int) and not isinstance(group_size, bool) and group_size > 0:
        with pytest.raises(ValueError, match="length 6.*group_size=4"):
            act.maxout(np.ones((2, 6)), group_size)


def test_shape_errors():
    with pytest.raises(ValueError, match="even size"):
        act.glu(np.ones((2, 5)))
    with pytest.raises(ValueError, match="out of range"):
        act.glu(np.ones((2, 4)), axis=2)
    with pytest.raises(ValueError, match=r"\(N, 5\) or \(N, \.\.\., 5\).*3 features instead of 5"):
        act.GLU(5, 2, rng=0).forward(np.ones((4, 3)))
    with pytest.raises(ValueError, match="instead of 5"):
        act.SwiGLU(5, 2, rng=0).forward(np.ones((4, 6)))
    with pytest.raises(ValueError, match="instead of 5"):
        act.Maxout(5, 2, rng=0).forward(np.ones((4, 4)))
    with pytest.raises(ValueError, match="1 features instead of 5"):  # (N, T, D) needs D last
        act.GLU(5, 2, rng=0).forward(np.ones((4, 5, 1)))
    for layer in (act.GLU(5, 2, rng=0), act.SwiGLU(5, 2, rng=0), act.Maxout(5, 2, rng=0)):
        with pytest.raises(ValueError, match=r"\(N, 5\) or \(N, \.\.\., 5\), got \(5,\)"):
            layer.forward(np.ones(5))  # one sample still needs its batch axis
        with pytest.raises(ValueError, match=r"dout must have the output's shape \(2, 3, 2\)"):
            layer.forward(np.ones((2, 3, 5)))
            layer.backward(np.ones((6, 2)))
    with pytest.raises(ValueError, match=r"\(N, 3, \.\.\.\)"):
        act.PReLU(3).forward(np.ones((2, 4, 5)))
    with pytest.raises(ValueError, match="shape"):
        layer = act.Activation("relu")
        layer.forward(np.ones((2, 3)))
        layer.backward(np.ones((3, 2)))
    with pytest.raises(ValueError, match="positive integer"):
        act.Maxout(5, 2, pieces=0, rng=0)
    with pytest.raises(TypeError, match="float32 or float64"):
        act.GLU(5, 2, rng=0, dtype=np.int64)
    with pytest.raises(TypeError, match="float32 or float64"):
        act.PReLU(dtype=np.float16)


# ---------------------------------------------------------------------------
# Layers
# ---------------------------------------------------------------------------
def test_activation_layer_training_and_eval_agree():
    x = np.random.default_rng(13).normal(size=(5, 4))
    dout = np.random.default_rng(14).normal(size=(5, 4))
    for name in ELEMENTWISE:
        layer = act.Activation(name)
        y_train, dx_train = layer.forward(x), layer.backward(dout)
        layer.forward(x)
        np.testing.assert_array_equal(layer.backward(dout), dx_train)  # repeatable
        layer.eval()
        np.testing.assert_array_equal(layer.forward(x), y_train)
        np.testing.assert_array_equal(layer.backward(dout), dx_train)
        np.testing.assert_allclose(dx_train, dout * act.get(name).derivative(x), rtol=1e-15)
    assert repr(act.Activation("elu", alpha=2)) == "Activation('elu', alpha=2)"


def test_activation_layer_in_a_sequential():
    seq = dl.Sequential(act.Maxout(4, 6, rng=0), act.Activation("gelu"), act.GLU(6, 2, rng=1))
    x = np.random.default_rng(15).normal(size=(3, 4))
    dl.gradcheck(seq, x)


def test_prelu_gradients_accumulate():
    layer = act.PReLU()
    x = np.array([[-2.0, 1.0, -0.5]])
    layer.forward(x)
    layer.backward(np.ones_like(x))
    assert layer.grads["a"][0] == pytest.approx(-2.5)
    layer.forward(x)
    layer.backward(np.ones_like(x))
    assert layer.grads["a"][0] == pytest.approx(-5.0)
    layer.zero_grad()
    assert layer.grads["a"][0] == 0.0


def test_rrelu_slopes_are_uniform_and_reproducible():
    x = -np.ones(200_000)
    lower, upper = 1 / 8, 1 / 3
    slopes = -act.RReLU(lower, upper, rng=7).forward(x)
    assert lower <= slopes.min() and slopes.max() <= upper
    # uniform, not Gaussian: each quarter of [l, u] holds a quarter of the draws
    counts, _ = np.histogram(slopes, bins=4, range=(lower, upper))
    np.testing.assert_allclose(counts / x.size, 0.25, atol=0.005)
    np.testing.assert_array_equal(slopes, -act.RReLU(lower, upper, rng=7).forward(x))
    assert not np.array_equal(slopes, -act.RReLU(lower, upper, rng=8).forward(x))
    gen = np.random.default_rng(7)
    np.testing.assert_array_equal(slopes, -act.RReLU(lower, upper, rng=gen).forward(x))
    # positives pass unchanged; evaluation uses the mean slope
    layer = act.RReLU(lower, upper, rng=0)
    np.testing.assert_array_equal(layer.forward(np.arange(1.0, 5.0)), np.arange(1.0, 5.0))
    assert layer.eval().forward(np.array([-1.0]))[0] == pytest.approx(-(lower + upper) / 2)


def test_maxout_function_and_layer():
    rng = np.random.default_rng(16)
    x = rng.normal(size=(2, 6, 3))
    y = act.maxout(x, 3, axis=1)
    assert y.shape == (2, 2, 3)
    np.testing.assert_array_equal(y[:, 0], x[:, 0:3].max(axis=1))
    np.testing.assert_array_equal(y[:, 1], x[:, 3:6].max(axis=1))
    np.testing.assert_array_equal(act.maxout(x, 1, axis=-1), x)

    layer = act.Maxout(4, 3, pieces=2, rng=0)
    xb = rng.normal(size=(5, 4))
    z = xb @ layer.params["W"] + layer.params["b"]
    np.testing.assert_allclose(layer.forward(xb), act.maxout(z, 2), rtol=1e-15)

    # ReLU is Maxout with pieces (x, 0)
    relu_like = act.Maxout(4, 4, pieces=2, rng=0)
    relu_like.params["W"][:] = 0.0
    relu_like.params["b"][:] = 0.0
    relu_like.params["W"][:, 0::2] = np.eye(4)
    np.testing.assert_array_equal(relu_like.forward(xb), np.maximum(xb, 0.0))


def test_crelu_doubles_the_axis():
    x = np.array([[1.0, -2.0, 0.0]])
    np.testing.assert_array_equal(act.CReLU().forward(x), [[1.0, 0.0, 0.0, 0.0, 2.0, 0.0]])
    assert act.CReLU(axis=0).forward(np.ones((2, 3))).shape == (4, 3)


def test_glu_and_swiglu_formulas():
    rng = np.random.default_rng(17)
    x = rng.normal(size=(6, 5))
    glu_layer = act.GLU(5, 3, rng=0)
    W, b = glu_layer.params["W"], glu_layer.params["b"]
    a, g = x @ W[:, :3] + b[:3], x @ W[:, 3:] + b[3:]
    np.testing.assert_allclose(glu_layer.forward(x), a * _sig(g), rtol=1e-14)
    np.testing.assert_allclose(glu_layer.forward(x), act.glu(x @ W + b), rtol=1e-14)

    for beta in (1.0, 1.7):
        sw = act.SwiGLU(5, 3, beta=beta, rng=1)
        W, b = sw.params["W"], sw.params["b"]
        u, v = x @ W[:, :3] + b[:3], x @ W[:, 3:] + b[3:]
        y = sw.forward(x)
        # Shazeer (2020): the second factor is linear ...
        np.testing.assert_allclose(y, u * _sig(beta * u) * v, rtol=1e-13)
        # ... not a sigmoid gate, as the source material has it
        assert not np.allclose(y, u * _sig(beta * u) * _sig(v))


def test_layer_initialisation_is_seeded():
    a, b = act.GLU(8, 4, rng=3), act.GLU(8, 4, rng=3)
    np.testing.assert_array_equal(a.params["W"], b.params["W"])
    assert not np.array_equal(a.params["W"], act.GLU(8, 4, rng=4).params["W"])
    assert np.abs(a.params["W"]).max() <= 1 / math.sqrt(8)
    assert act.Maxout(3, 2, pieces=4, rng=0).params["W"].shape == (3, 8)
    assert act.SwiGLU(3, 2, rng=0).params["b"].shape == (4,)
    with pytest.raises(TypeError, match="rng"):
        act.GLU(3, 2, rng="seed")


# ---------------------------------------------------------------------------
# Facts of Chapter 1
# ---------------------------------------------------------------------------
def test_gelu_approximation_errors():
    # dense grid on [-10, 10]; both errors are even functions of x
    x = np.linspace(-10, 10, 2_000_001)
    exact = act.get("gelu")(x)
    err_tanh = np.abs(act.get("gelu_tanh")(x) - exact)
    err_sig = np.abs(act.get("gelu_sigmoid")(x) - exact)
    assert 4.70e-4 < err_tanh.max() < 4.75e-4
    assert 2.68 < abs(x[err_tanh.argmax()]) < 2.72
    assert 2.02e-2 < err_sig.max() < 2.04e-2
    assert 2.25 < abs(x[err_sig.argmax()]) < 2.29
    np.testing.assert_allclose(err_tanh, err_tanh[::-1], atol=1e-13)
    np.testing.assert_allclose(err_sig, err_sig[::-1], atol=1e-13)


def test_gelu_is_the_expectation_of_a_random_mask():
    # x Phi(x) = E[x m], m ~ Bernoulli(Phi(x)): GELU itself is deterministic
    rng = np.random.default_rng(18)
    n = 200_000
    for x in (-2.0, -0.5, 0.3, 1.5, 3.0):
        p = ndtr(x)
        masked = x * (rng.random(n) < p)
        se = abs(x) * math.sqrt(p * (1 - p) / n)
        assert abs(masked.mean() - act.get("gelu")(np.array([x]))[0]) < 4 * se
    y = act.get("gelu")(np.array([0.7, 0.7]))
    assert y[0] == y[1]


def _deep_selu_stack(seed, width=100, depth=30, **params):
    rng = np.random.default_rng(seed)
    h = rng.standard_normal((2000, width))
    for _ in range(depth):
        W = rng.standard_normal((width, width)) / math.sqrt(width)  # LeCun normal
        h = act.get("selu")(h @ W, **params)
    return h.mean(), h.var()


def test_selu_keeps_mean_zero_and_variance_one():
    # 30 layers of width 100: finite width makes the variance wander by about
    # 0.07 from seed to seed, so five seeded stacks are checked
    stats = np.array([_deep_selu_stack(seed) for seed in range(5)])
    assert np.all(np.abs(stats[:, 0]) < 0.1)
    assert np.all(np.abs(stats[:, 1] - 1.0) < 0.15)
    assert abs(stats[:, 1].mean() - 1.0) < 0.1
    # the constants matter: a 5% smaller scale lets the variance decay
    assert _deep_selu_stack(0, scale=1.0)[1] < 0.7


def test_hard_sigmoid_is_continuous_unlike_the_source_version():
    # The source's 0.2x on [-2.5, 2.5] jumps by 0.5 at +-2.5; clip(0.2x + 0.5, 0, 1) does not.
    hs = act.get("hard_sigmoid")
    k = 2.5
    assert abs(hs(np.array([k + 1e-9]))[0] - hs(np.array([k - 1e-9]))[0]) < 1e-9
    source = lambda x: np.where(np.abs(x) <= 2.5, 0.2 * x, np.where(x > 0, 1.0, 0.0))  # noqa: E731
    assert abs(source(k + 1e-9) - source(k - 1e-9)) > 0.49
    # slope 1/6 is PyTorch's ReLU6(x + 3)/6
    x = np.linspace(-5, 5, 101)
    np.testing.assert_allclose(hs(x, slope=1 / 6), np.clip(x + 3, 0, 6) / 6, rtol=1e-15, atol=1e-16)


def test_xexp_is_x_for_positive_and_x_exp_x_for_negative():
    x = np.linspace(-5, 5, 1001)
    expected = np.where(x >= 0, x, x * np.exp(x))
    np.testing.assert_allclose(act.get("xexp")(x), expected, rtol=1e-15)
    assert act.get("xexp")(np.array([-1.0]))[0] == pytest.approx(-1 / math.e, rel=1e-15)


# ---------------------------------------------------------------------------
# The module protocol: a tape per layer, (N, ..., D) inputs, explicit seeds
# ---------------------------------------------------------------------------
def _layers_with_rng():
    return {
        "RReLU": lambda rng: act.RReLU(rng=rng),
        "Maxout": lambda rng: act.Maxout(4, 3, pieces=2, rng=rng),
        "GLU": lambda rng: act.GLU(4, 3, rng=rng),
        "SwiGLU": lambda rng: act.SwiGLU(4, 3, rng=rng),
    }


@pytest.mark.parametrize("name", ["tanh", "gelu", "softplus", "mish", "selu", "sigmoid"])
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_one_activation_used_twice_in_a_sequential(name, mode):
    # the same instance at two places: its tape must hold both calls
    f = act.Activation(name)
    seq = dl.Sequential(f, act.Maxout(4, 4, pieces=2, rng=0), f)
    getattr(seq, mode)()
    x = np.random.default_rng(20).normal(size=(5, 4))
    assert set(dl.gradcheck(seq, x)) == {"x", "1.W", "1.b"}
    twice = dl.Sequential(f, f)  # f(f(x)), no weights in between
    getattr(twice, mode)()
    dl.gradcheck(twice, x)


def test_activation_applied_twice_keeps_each_derivative():
    # float32, large arrays: the layer reuses its buffers, but never one the tape still holds
    rng = np.random.default_rng(21)
    x1, x2 = rng.normal(size=(2, 1000)).astype(np.float32)
    d1, d2 = rng.normal(size=(2, 1000)).astype(np.float32)
    for name in ELEMENTWISE:
        s, layer = act.get(name), act.Activation(name)
        y1 = layer.forward(x1)
        y1_copy = y1.copy()
        layer.forward(x2)
        np.testing.assert_array_equal(y1, y1_copy)  # the second call did not write into y1
        np.testing.assert_array_equal(layer.backward(d2), d2 * s.derivative(x2))
        np.testing.assert_array_equal(layer.backward(d1), d1 * s.derivative(x1))
        with pytest.raises(RuntimeError, match="more often than forward"):
            layer.backward(d1)


def test_activation_reuses_its_derivative_buffer_between_steps():
    # forward, backward, forward: the second forward writes f' into the first one's array
    layer = act.Activation("silu")
    x = np.random.default_rng(22).normal(size=1000).astype(np.float32)
    layer.forward(x)
    first = layer._tape[-1][1]
    layer.backward(np.ones_like(x))
    layer.forward(x)
    assert layer._tape[-1][1] is first
    layer.forward(x)  # a second call before backward gets a fresh array
    assert layer._tape[-1][1] is not first


@pytest.mark.parametrize("make", ["Maxout", "GLU", "SwiGLU", "PReLU", "CReLU", "RReLU"])
def test_one_layer_called_twice_then_backpropagated_twice(make):
    ctor = {
        "Maxout": lambda: act.Maxout(4, 3, pieces=3, rng=5),
        "GLU": lambda: act.GLU(4, 3, rng=5),
        "SwiGLU": lambda: act.SwiGLU(4, 3, beta=1.3, rng=5),
        "PReLU": lambda: act.PReLU(),
        "CReLU": lambda: act.CReLU(),
        "RReLU": lambda: act.RReLU(rng=5),
    }[make]
    rng = np.random.default_rng(23)
    x1, x2 = _nonzero(rng.normal(size=(5, 4))), _nonzero(rng.normal(size=(5, 4)))
    # reference: each call followed at once by its backward
    ref = ctor()
    y1 = ref.forward(x1)
    d1 = rng.normal(size=y1.shape)
    dx1 = ref.backward(d1)
    y2 = ref.forward(x2)
    d2 = rng.normal(size=y2.shape)
    dx2 = ref.backward(d2)
    # both forwards first, then the backwards in reverse order
    layer = ctor()
    np.testing.assert_array_equal(layer.forward(x1), y1)
    np.testing.assert_array_equal(layer.forward(x2), y2)
    np.testing.assert_array_equal(layer.backward(d2), dx2)
    np.testing.assert_array_equal(layer.backward(d1), dx1)
    for k, g in ref.grads.items():
        np.testing.assert_array_equal(layer.grads[k], g)  # the summed gradients of both calls
        assert np.any(g != 0.0)
    # and the sum is the sum: each call alone gives one term
    if ref.params:
        alone = ctor()
        alone.forward(x2)
        alone.backward(d2)
        g2 = {k: g.copy() for k, g in alone.grads.items()}
        alone.zero_grad()
        alone.forward(x1)
        alone.backward(d1)
        for k, g in ref.grads.items():
            np.testing.assert_allclose(alone.grads[k] + g2[k], g, rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("make", ["Maxout", "GLU", "SwiGLU"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_affine_activations_take_sequences(make, dtype):
    # (N, T, D) -> (N, T, H): the same numbers as the 2-D layer on the (N*T, D) rows
    layer = _layers_with_rng()[make](3)
    rng = np.random.default_rng(24)
    x = rng.normal(size=(2, 5, 4)).astype(dtype)
    y = layer.forward(x)
    assert y.shape == (2, 5, 3) and y.dtype == dtype
    dout = rng.normal(size=y.shape).astype(dtype)
    dx = layer.backward(dout)
    grads3 = {k: g.copy() for k, g in layer.grads.items()}
    layer.zero_grad()
    y2 = layer.forward(x.reshape(10, 4))
    dx2 = layer.backward(dout.reshape(10, 3))
    np.testing.assert_array_equal(y, y2.reshape(2, 5, 3))
    np.testing.assert_array_equal(dx, dx2.reshape(2, 5, 4))
    assert dx.shape == x.shape and dx.dtype == dtype
    for k, g in layer.grads.items():
        np.testing.assert_array_equal(grads3[k], g)
    # any number of leading axes
    assert layer.forward(np.ones((2, 1, 3, 4), dtype=dtype)).shape == (2, 1, 3, 3)


@pytest.mark.parametrize("make", ["Maxout", "GLU", "SwiGLU"])
def test_gradcheck_affine_activations_on_sequences(make):
    layer = _layers_with_rng()[make](4)
    x = np.random.default_rng(25).normal(size=(2, 3, 4))
    assert set(dl.gradcheck(layer, x)) == {"x", "W", "b"}
    # a feed-forward block on (N, T, D): D -> H -> D
    ffn = dl.Sequential(layer, act.Activation("tanh"), act.Maxout(3, 4, pieces=2, rng=6))
    dl.gradcheck(ffn, x)


def test_sequence_layers_match_torch():
    torch = pytest.importorskip("torch", reason="comparison with PyTorch needs torch")
    import torch.nn.functional as F

    rng = np.random.default_rng(26)
    x = rng.normal(size=(2, 5, 4))
    dout = rng.normal(size=(2, 5, 3))
    for layer in (act.GLU(4, 3, rng=1), act.SwiGLU(4, 3, beta=1.5, rng=2)):
        y = layer.forward(x)
        dx = layer.backward(dout)
        t = torch.tensor(x, requires_grad=True)
        W = torch.tensor(layer.params["W"].copy(), requires_grad=True)
        b = torch.tensor(layer.params["b"].copy(), requires_grad=True)
        u, v = (t @ W + b).chunk(2, dim=-1)
        if isinstance(layer, act.SwiGLU):
            y_t = u * torch.sigmoid(1.5 * u) * v
        else:
            y_t = F.glu(t @ W + b, dim=-1)
        gx, gW, gb = torch.autograd.grad(y_t, (t, W, b), torch.tensor(dout))
        np.testing.assert_allclose(y, y_t.detach().numpy(), rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(dx, gx.numpy(), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(layer.grads["W"], gW.numpy(), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(layer.grads["b"], gb.numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("make", sorted(_layers_with_rng()))
def test_random_layers_need_an_explicit_rng(make):
    ctor = _layers_with_rng()[make]
    with pytest.raises(ValueError, match="seed"):
        ctor(None)
    with pytest.raises(ValueError, match="seed"):
        {"RReLU": act.RReLU, "Maxout": act.Maxout, "GLU": act.GLU, "SwiGLU": act.SwiGLU}[make](
            *(() if make == "RReLU" else (4, 3))
        )
    # a seed or a Generator; the same seed draws the same numbers
    a, b = ctor(9), ctor(np.random.default_rng(9))
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])


def test_initial_weights_are_unchanged_for_a_seed():
    # chapters quote numbers: the draws are W then b, U(+-1/sqrt(D)), from default_rng(seed)
    for layer, width in ((act.Maxout(4, 3, pieces=2, rng=0), 6), (act.GLU(4, 3, rng=0), 6),
                         (act.SwiGLU(4, 3, rng=0), 6)):  # fmt: skip
        gen = np.random.default_rng(0)
        np.testing.assert_array_equal(layer.params["W"], gen.uniform(-0.5, 0.5, size=(4, width)))
        np.testing.assert_array_equal(layer.params["b"], gen.uniform(-0.5, 0.5, size=width))
    np.testing.assert_allclose(
        act.RReLU(rng=3).forward(-np.ones(4)),
        -(1 / 8 + (1 / 3 - 1 / 8) * np.random.default_rng(3).random(4)),
        rtol=1e-15,
    )


def _every_layer():
    return [act.Activation("tanh"), act.Activation("relu").eval(), act.PReLU(), act.RReLU(rng=0),
            act.RReLU(rng=0).eval(), act.Maxout(4, 3, rng=0), act.CReLU(), act.GLU(4, 3, rng=0),
            act.SwiGLU(4, 3, rng=0)]  # fmt: skip


@pytest.mark.parametrize("layer", _every_layer(), ids=lambda m: type(m).__name__)
def test_backward_without_forward_raises(layer):
    x = np.ones((2, 4))
    with pytest.raises(RuntimeError, match="backward called more often than forward"):
        layer.backward(np.ones((2, 3)))
    y = layer.forward(x)
    layer.backward(np.ones_like(y))
    with pytest.raises(RuntimeError, match="more often than forward"):
        layer.backward(np.ones_like(y))
    # inference mode keeps nothing, and clear_tape drops a forward-only call
    with dl.core.inference_mode():
        layer.forward(x)
    with pytest.raises(RuntimeError, match="inference_mode"):
        layer.backward(np.ones_like(y))
    layer.forward(x)
    layer.clear_tape()
    with pytest.raises(RuntimeError):
        layer.backward(np.ones_like(y))


def test_params_are_read_only_views_of_live_arrays():
    layer = act.GLU(4, 3, rng=0)
    with pytest.raises(TypeError):
        layer.params["W"] = np.zeros((4, 6))
    layer.params["W"][...] = 0.0  # writing into the array works
    layer.params["b"][...] = 1.0
    x = np.random.default_rng(27).normal(size=(2, 4))
    np.testing.assert_allclose(layer.forward(x), np.full((2, 3), 1 / (1 + math.exp(-1.0))), rtol=1e-15)
    assert layer.num_parameters() == 4 * 6 + 6
    state = layer.state_dict()
    other = act.GLU(4, 3, rng=1).load_state_dict(state)
    np.testing.assert_array_equal(other.forward(x), layer.forward(x))


def test_activations_use_the_numerics_kernels():
    from dlbook import numerics

    x = np.concatenate([np.linspace(-50, 50, 1001), [-1e4, 1e4]])
    for dtype in (np.float32, np.float64):
        xd = x.astype(dtype)
        np.testing.assert_array_equal(act.get("sigmoid")(xd), numerics.sigmoid(xd))
        # softplus below PyTorch's threshold is the exact function
        np.testing.assert_array_equal(act.get("softplus")(xd, threshold=1e9), numerics.softplus(xd))
        np.testing.assert_array_equal(act.glu(np.stack([xd, xd], -1))[:, 0], xd * numerics.sigmoid(xd))


@pytest.mark.parametrize("layer", _every_layer(), ids=lambda m: type(m).__name__)
def test_no_attribute_hides_a_module_method(layer):
    # e.g. PReLU(num_parameters=3) must not turn the method num_parameters() into an int
    for method in ("num_parameters", "zero_grad", "train", "eval", "state_dict", "parameter_slots"):
        assert callable(getattr(layer, method)), method
    assert layer.num_parameters() == sum(p.size for p in layer.params.values())
    assert act.PReLU(num_parameters=3).num_parameters() == 3 and act.PReLU(3).channels == 3
