"""Initialisers: dlbook.init and the ``init=`` names of dlbook.layers.init_weight / Linear.

Values against formulas and PyTorch (float64), statistics of random draws with
tolerances of five standard errors for the sample size, the draws the
chapters' numbers depend on (bit for bit), and bad arguments.
"""

import math

import numpy as np
import pytest

import dlbook as dl
from dlbook import init
from dlbook.layers import Linear

# =============================================================================
# Initialisers
# =============================================================================
FAN_IN, FAN_OUT = 1200, 800  # 960 000 draws: standard error of the variance ~0.1-0.15 %

# (function, keyword arguments, variance, bound of the uniform or None for a normal)
INIT_CASES = [
    (init.xavier_uniform, {}, 2 / (FAN_IN + FAN_OUT), math.sqrt(6 / (FAN_IN + FAN_OUT))),
    (init.xavier_normal, {}, 2 / (FAN_IN + FAN_OUT), None),
    (init.he_uniform, {}, 2 / FAN_IN, math.sqrt(6 / FAN_IN)),
    (init.he_normal, {}, 2 / FAN_IN, None),
    (init.he_normal, {"mode": "fan_out"}, 2 / FAN_OUT, None),
    (init.he_uniform, {"negative_slope": 0.2, "mode": "fan_out"}, 2 / (1.04 * FAN_OUT),
     math.sqrt(6 / (1.04 * FAN_OUT))),
    (init.he_normal, {"negative_slope": 0.5}, 2 / (1.25 * FAN_IN), None),
    (init.lecun_uniform, {}, 1 / FAN_IN, math.sqrt(3 / FAN_IN)),
    (init.lecun_normal, {}, 1 / FAN_IN, None),
    (init.torch_default, {}, 1 / (3 * FAN_IN), 1 / math.sqrt(FAN_IN)),
    (init.xavier_normal, {"gain": 5 / 3}, (5 / 3) ** 2 * 2 / (FAN_IN + FAN_OUT), None),
    (init.lecun_uniform, {"gain": 0.5}, 0.25 / FAN_IN, 0.5 * math.sqrt(3 / FAN_IN)),
]


@pytest.mark.parametrize("fn,kwargs,var,bound", INIT_CASES,
                         ids=[f"{c[0].__name__}-{c[1]}" for c in INIT_CASES])
def test_initialiser_moments_and_support(fn, kwargs, var, bound):
    w = fn(FAN_IN, FAN_OUT, np.random.default_rng(0), **kwargs)
    n = w.size
    assert w.shape == (FAN_IN, FAN_OUT) and w.dtype == np.float64
    # Var(sample variance) = (kurtosis - 1) var^2 / n: kurtosis 1.8 (uniform) or 3 (normal)
    kurt = 1.8 if bound is not None else 3.0
    assert abs(w.var() / var - 1) < 5 * math.sqrt((kurt - 1) / n)
    assert abs(w.mean()) < 5 * math.sqrt(var / n)
    inside = np.mean(np.abs(w) < math.sqrt(var))  # within one standard deviation
    if bound is None:
        assert abs(inside - 0.682689) < 5 * math.sqrt(0.2166 / n)
        assert np.abs(w).max() > 4 * math.sqrt(var)  # a Gaussian tail, not a bounded law
    else:
        assert abs(inside - 1 / math.sqrt(3)) < 5 * math.sqrt(0.2440 / n)
        assert np.abs(w).max() <= bound
        assert np.abs(w).max() > bound * (1 - 1e-4)


def test_initialisers_are_reproducible_and_keep_the_dtype():
    for name, fn in init.INITIALIZERS.items():
        a = fn(30, 20, 7)
        np.testing.assert_array_equal(a, fn(30, 20, np.random.default_rng(7)), err_msg=name)
        assert not np.array_equal(a, fn(30, 20, 8)), name
        b = fn(30, 20, 7, dtype=np.float32)
        assert b.dtype == np.float32
        np.testing.assert_array_equal(b, a.astype(np.float32))  # same draw, rounded
        c = fn(6, 10, 7, shape=(10, 3, 2))
        assert c.shape == (10, 3, 2)


def test_gain_scales_the_weights():
    for fn in init.INITIALIZERS.values():
        np.testing.assert_allclose(fn(9, 4, 3, gain=2.5), 2.5 * fn(9, 4, 3), rtol=1e-14, atol=1e-15,
                                   err_msg=fn.__name__)


def test_initialiser_bad_arguments():
    with pytest.raises(ValueError, match="fan_in must be a positive integer"):
        init.he_normal(0, 3, 0)
    with pytest.raises(ValueError, match="fan_out must be a positive integer"):
        init.xavier_uniform(3, 2.5, 0)
    with pytest.raises(ValueError, match="fan_in must be a positive integer"):
        init.lecun_normal(True, 3, 0)
    with pytest.raises(ValueError, match="gain must be positive"):
        init.xavier_normal(3, 3, 0, gain=-1.0)
    with pytest.raises(ValueError, match="gain must be positive"):
        init.xavier_normal(3, 3, 0, gain=math.nan)
    with pytest.raises(TypeError, match="gain must be a number"):
        init.xavier_normal(3, 3, 0, gain="relu")
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        init.torch_default(3, 3, 0, dtype=np.int32)
    with pytest.raises(ValueError, match="no hidden global RNG"):
        init.he_uniform(3, 3, None)
    with pytest.raises(TypeError, match="int seed or a np.random.Generator"):
        init.he_uniform(3, 3, 0.5)
    with pytest.raises(ValueError, match="mode must be 'fan_in' or 'fan_out'"):
        init.he_normal(3, 3, 0, mode="fan_avg")
    with pytest.raises(TypeError, match="negative_slope must be a number"):
        init.he_normal(3, 3, 0, negative_slope="0.1")
    with pytest.raises(TypeError, match="shape must be a tuple"):
        init.lecun_uniform(3, 3, 0, shape=9)
    with pytest.raises(ValueError, match="every entry of shape"):
        init.lecun_uniform(3, 3, 0, shape=(3, 0))


def test_calculate_gain_values():
    assert init.calculate_gain("linear") == init.calculate_gain("sigmoid") == 1.0
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3, rel=1e-15)
    assert init.calculate_gain("relu") == pytest.approx(math.sqrt(2), rel=1e-15)
    assert init.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04), rel=1e-15)
    assert init.calculate_gain("leaky_relu") == pytest.approx(math.sqrt(2 / 1.0001), rel=1e-15)
    assert init.calculate_gain("selu") == 0.75
    with pytest.raises(ValueError, match="unknown nonlinearity 'gelu'"):
        init.calculate_gain("gelu")
    with pytest.raises(ValueError, match="takes none"):
        init.calculate_gain("relu", 0.1)
    with pytest.raises(TypeError, match="nonlinearity must be a string"):
        init.calculate_gain(None)


def test_initialisers_against_torch():
    torch = pytest.importorskip("torch", reason="PyTorch not installed: reference comparison skipped")
    for name, param in [("linear", None), ("sigmoid", None), ("tanh", None), ("relu", None), ("selu", None),
                        ("leaky_relu", None), ("leaky_relu", 0.3), ("conv2d", None)]:
        assert init.calculate_gain(name, param) == pytest.approx(
            torch.nn.init.calculate_gain(name, param), rel=1e-15
        ), name
    gen = torch.Generator().manual_seed(0)
    n = FAN_IN * FAN_OUT
    tol = 5 * math.sqrt(2 / n)  # relative standard error of a Gaussian sample variance, x5
    # torch stores a Linear weight as (out, in); its fans are the same as ours for (in, out)
    t = torch.empty(FAN_OUT, FAN_IN, dtype=torch.float64)
    torch.nn.init.kaiming_normal_(t, mode="fan_in", nonlinearity="relu", generator=gen)
    ours = init.he_normal(FAN_IN, FAN_OUT, 0)
    assert abs(t.var().item() / (2 / FAN_IN) - 1) < tol
    assert abs(ours.var() / t.var().item() - 1) < 2 * tol
    torch.nn.init.kaiming_normal_(t, a=0.3, mode="fan_out", nonlinearity="leaky_relu", generator=gen)
    ours = init.he_normal(FAN_IN, FAN_OUT, 0, negative_slope=0.3, mode="fan_out")
    assert abs(ours.var() / t.var().item() - 1) < 2 * tol
    torch.nn.init.xavier_normal_(t, generator=gen)
    assert abs(init.xavier_normal(FAN_IN, FAN_OUT, 0).var() / t.var().item() - 1) < 2 * tol
    # nn.Linear's default weight and torch_default share the bound 1/sqrt(fan_in)
    lin = torch.nn.Linear(FAN_IN, 50, dtype=torch.float64)
    bound = 1 / math.sqrt(FAN_IN)
    assert lin.weight.abs().max().item() <= bound
    assert np.abs(init.torch_default(FAN_IN, 50, 0)).max() <= bound
    assert lin.weight.abs().max().item() > 0.99 * bound


def _old_init_weight(fan_in, fan_out, gen, method, dtype):
    """The formulas init_weight used before dlbook.init existed (the chapters' numbers depend on them)."""
    if method == "uniform":
        w = gen.uniform(-1 / np.sqrt(fan_in), 1 / np.sqrt(fan_in), size=(fan_in, fan_out))
    else:
        var = {"lecun": 1 / fan_in, "xavier": 2 / (fan_in + fan_out), "he": 2 / fan_in}[method]
        w = gen.standard_normal((fan_in, fan_out)) * np.sqrt(var)
    return w.astype(dtype)


@pytest.mark.parametrize("method", ["uniform", "lecun", "xavier", "he"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_init_weight_keeps_the_old_draws_bit_for_bit(method, dtype):
    for fan_in, fan_out in [(2, 64), (64, 64), (7, 1)]:
        new = dl.layers.init_weight(fan_in, fan_out, np.random.default_rng(11), method, dtype)
        old = _old_init_weight(fan_in, fan_out, np.random.default_rng(11), method, dtype)
        assert new.dtype == old.dtype
        np.testing.assert_array_equal(new, old)


@pytest.mark.parametrize("method,fn", [("xavier_uniform", init.xavier_uniform),
                                       ("he_uniform", init.he_uniform),
                                       ("lecun_uniform", init.lecun_uniform),
                                       ("he_normal", init.he_normal)])
def test_init_weight_delegates_the_new_names(method, fn):
    np.testing.assert_array_equal(dl.layers.init_weight(5, 3, np.random.default_rng(2), method),
                                  fn(5, 3, np.random.default_rng(2)))
    layer = Linear(5, 3, rng=2, init=method, dtype=np.float32)
    np.testing.assert_array_equal(layer.params["W"], fn(5, 3, 2, dtype=np.float32))
    with pytest.raises(ValueError, match="unknown init 'kaiming'"):
        dl.layers.init_weight(5, 3, 0, "kaiming")


@pytest.mark.parametrize("method", ["uniform", "lecun", "xavier", "he"])
def test_linear_and_conv2d_draw_the_weights_the_chapters_quote(method):
    # rng is now a required keyword; the draws for a given seed must not move
    W = Linear(7, 5, rng=3, init=method).params["W"]
    np.testing.assert_array_equal(W, _old_init_weight(7, 5, np.random.default_rng(3), method, np.float64))
    gen = np.random.default_rng(4)
    first, second = Linear(3, 6, rng=gen, init=method), Linear(6, 2, rng=gen, init=method)
    gen = np.random.default_rng(4)
    np.testing.assert_array_equal(first.params["W"], _old_init_weight(3, 6, gen, method, np.float64))
    np.testing.assert_array_equal(second.params["W"], _old_init_weight(6, 2, gen, method, np.float64))
    conv = dl.conv.Conv2d(3, 4, 3, rng=2, init=method).params["W"]
    gen = np.random.default_rng(2)
    fan_in, fan_out = 27, 36
    if method == "uniform":
        old = gen.uniform(-1 / np.sqrt(fan_in), 1 / np.sqrt(fan_in), size=(4, 3, 3, 3))
    else:
        var = {"lecun": 1 / fan_in, "xavier": 2 / (fan_in + fan_out), "he": 2 / fan_in}[method]
        old = gen.standard_normal((4, 3, 3, 3)) * np.sqrt(var)
    np.testing.assert_array_equal(conv, old)


@pytest.mark.parametrize("method,var", [("lecun", 1 / 400), ("xavier", 2 / 500), ("he", 2 / 400),
                                        ("uniform", 1 / (3 * 400))])
def test_init_variances(method, var):
    w = dl.layers.init_weight(400, 100, np.random.default_rng(0), method)
    assert w.shape == (400, 100)
    assert w.var() == pytest.approx(var, rel=0.03)
    assert abs(w.mean()) < 0.01 * np.sqrt(var) * 10
