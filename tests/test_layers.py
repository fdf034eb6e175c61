"""Initialisers (dlbook.init), the chapter-3 layers (dlbook.layers) and mlp (dlbook.models).

Values against formulas and PyTorch (float64), gradients by central differences
(dl.gradcheck) on the input and every parameter, statistics of random draws
with tolerances of five standard errors for the sample size, and bad input.
"""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dlbook as dl
from dlbook import init
from dlbook.layers import BatchNorm1d, Dropout, Flatten, Identity, LayerNorm, Linear

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


# =============================================================================
# Layers: helpers
# =============================================================================
def _randomise(layer, seed):
    """Give gamma/beta values away from 1/0 so their gradients are tested in general position."""
    gen = np.random.default_rng(seed)
    for k, p in layer.params.items():
        p[...] = gen.uniform(0.5, 1.5, p.shape) if k == "gamma" else gen.standard_normal(p.shape)
    return layer


def _torch_grads(torch, module, x, dout):
    """Run a torch module forward and backward; return (y, dx) as NumPy arrays."""
    xt = torch.tensor(x, requires_grad=True)
    y = module(xt)
    y.backward(torch.tensor(dout))
    return y.detach().numpy(), xt.grad.numpy()


def _fixed_mask_forward(layer, seed):
    """A forward that re-seeds the layer's Generator, so every call draws the same mask."""
    def forward(x):
        layer.rng = np.random.default_rng(seed)
        return layer.forward(x)
    return forward


# =============================================================================
# Linear
# =============================================================================
@pytest.mark.parametrize("shape", [(5, 4), (3, 6, 4), (2, 3, 2, 4)])
def test_linear_against_torch(shape):
    torch = pytest.importorskip("torch", reason="PyTorch not installed: reference comparison skipped")
    gen = np.random.default_rng(0)
    layer = _randomise(Linear(4, 3, rng=1), 2)
    x, dout = gen.standard_normal(shape), gen.standard_normal(shape[:-1] + (3,))
    ref = torch.nn.Linear(4, 3, dtype=torch.float64)
    with torch.no_grad():
        ref.weight.copy_(torch.tensor(layer.params["W"].T))  # torch stores (H, D)
        ref.bias.copy_(torch.tensor(layer.params["b"]))
    y_ref, dx_ref = _torch_grads(torch, ref, x, dout)
    y = layer(x)
    layer.zero_grad()
    dx = layer.backward(dout)
    np.testing.assert_allclose(y, y_ref, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(layer.grads["W"], ref.weight.grad.numpy().T, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(layer.grads["b"], ref.bias.grad.numpy(), rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 3)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_gradcheck_with_leading_axes(shape, bias):
    errors = dl.gradcheck(Linear(3, 2, bias=bias, rng=0), np.random.default_rng(1).standard_normal(shape))
    assert set(errors) == ({"x", "W", "b"} if bias else {"x", "W"})


def test_linear_leading_axes_equal_a_loop_over_them():
    layer = Linear(4, 3, rng=0)
    x = np.random.default_rng(1).standard_normal((2, 5, 4))
    y = layer(x)
    assert y.shape == (2, 5, 3)
    for t in range(5):
        np.testing.assert_allclose(y[:, t], layer(x[:, t]), rtol=1e-14)


# =============================================================================
# Dropout
# =============================================================================
def test_dropout_statistics():
    p, n = 0.3, 400_000
    layer = Dropout(p, rng=0)
    x = np.full((800, 500), 2.0)
    y = layer(x)
    zeroed = np.mean(y == 0)
    assert abs(zeroed - p) < 5 * math.sqrt(p * (1 - p) / n)
    np.testing.assert_array_equal(y[y != 0], 2.0 / (1 - p))  # survivors rescaled by 1/(1-p)
    # E[y] = x: each y is 2 * Bernoulli(1-p) / (1-p), of variance 4 p / (1-p)
    assert abs(y.mean() - 2.0) < 5 * math.sqrt(4 * p / (1 - p) / n)
    y2 = layer(x)
    assert not np.array_equal(y, y2)  # a fresh mask every call
    np.testing.assert_array_equal(layer.backward(np.ones_like(x)), y2 / 2.0)  # the latest mask
    assert x.min() == 2.0  # input untouched


def test_dropout_backward_uses_the_cached_mask():
    layer = Dropout(0.5, rng=3)
    x = np.random.default_rng(0).standard_normal((50, 40))
    y = layer(x)
    dout = np.random.default_rng(1).standard_normal(x.shape)
    dout_copy = dout.copy()
    dx = layer.backward(dout)
    np.testing.assert_array_equal(dx, np.where(y != 0, 2.0 * dout, 0.0))
    np.testing.assert_array_equal(dout, dout_copy)  # incoming gradient not mutated


def test_dropout_eval_is_the_identity_and_p0_too():
    x = np.random.default_rng(0).standard_normal((6, 5))
    layer = Dropout(0.9, rng=0).eval()
    assert layer(x) is x
    assert layer.backward(x) is x
    layer = Dropout(0.0, rng=0)
    np.testing.assert_array_equal(layer(x), x)
    dl.gradcheck(Dropout(0.4, rng=0).eval(), x)


def test_dropout_seed_reproducibility_and_gradcheck():
    x = np.random.default_rng(0).standard_normal((7, 6))
    np.testing.assert_array_equal(Dropout(0.5, rng=4)(x), Dropout(0.5, rng=np.random.default_rng(4))(x))
    assert not np.array_equal(Dropout(0.5, rng=4)(x), Dropout(0.5, rng=5)(x))
    layer = Dropout(0.5, rng=0)
    forward = _fixed_mask_forward(layer, 9)
    y = forward(x)
    assert 0 < np.count_nonzero(y == 0) < y.size  # a real mask, not all or nothing
    dl.gradcheck(layer, x, forward=forward)


def test_dropout_float32_and_bad_arguments():
    x = np.ones((4, 3), dtype=np.float32)
    layer = Dropout(0.25, rng=0)
    y = layer(x)
    assert y.dtype == np.float32 and layer.backward(np.ones_like(y)).dtype == np.float32
    assert set(np.unique(y)) <= {0.0, np.float32(1 / 0.75)}
    with pytest.raises(ValueError, match=r"p must lie in \[0, 1\), got 1"):
        Dropout(1.0, rng=0)
    with pytest.raises(ValueError, match=r"p must lie in \[0, 1\)"):
        Dropout(-0.1, rng=0)
    with pytest.raises(TypeError, match="p must be a number"):
        Dropout("0.5", rng=0)
    with pytest.raises(ValueError, match="no hidden global RNG"):
        Dropout(0.5, rng=None)
    with pytest.raises(ValueError, match="dout must have the output's shape"):
        layer.backward(np.ones((3, 4), dtype=np.float32))


# =============================================================================
# BatchNorm1d
# =============================================================================
def _bn_pair(torch, d, momentum, affine, seed):
    ours = BatchNorm1d(d, momentum=momentum, affine=affine)
    if affine:
        _randomise(ours, seed)
    ref = torch.nn.BatchNorm1d(d, momentum=momentum, affine=affine, dtype=torch.float64)
    if affine:
        with torch.no_grad():
            ref.weight.copy_(torch.tensor(ours.params["gamma"]))
            ref.bias.copy_(torch.tensor(ours.params["beta"]))
    return ours, ref


@pytest.mark.parametrize("shape", [(8, 5), (4, 5, 3)])
@pytest.mark.parametrize("affine", [True, False])
def test_batchnorm_against_torch(shape, affine):
    torch = pytest.importorskip("torch", reason="PyTorch not installed: reference comparison skipped")
    gen = np.random.default_rng(0)
    d = shape[1]
    ours, ref = _bn_pair(torch, d, 0.3, affine, 1)
    close = {"rtol": 1e-11, "atol": 1e-12}
    for step in range(4):
        # batches with different means and scales per feature, so the running stats move
        x = gen.standard_normal(shape) * gen.uniform(0.5, 3, (1, d) + (1,) * (len(shape) - 2)) + step
        dout = gen.standard_normal(shape)
        ref.zero_grad()
        y_ref, dx_ref = _torch_grads(torch, ref, x, dout)
        ours.zero_grad()
        y = ours(x)
        dx = ours.backward(dout)
        np.testing.assert_allclose(y, y_ref, **close)
        np.testing.assert_allclose(dx, dx_ref, **close)
        if affine:
            np.testing.assert_allclose(ours.grads["gamma"], ref.weight.grad.numpy(), **close)
            np.testing.assert_allclose(ours.grads["beta"], ref.bias.grad.numpy(), **close)
    np.testing.assert_allclose(ours.running_mean, ref.running_mean.numpy(), rtol=1e-13)
    np.testing.assert_allclose(ours.running_var, ref.running_var.numpy(), rtol=1e-13)
    # evaluation: the running statistics, and its (simple) backward
    ours.eval()
    ref.eval()
    x, dout = gen.standard_normal(shape), gen.standard_normal(shape)
    ref.zero_grad()
    y_ref, dx_ref = _torch_grads(torch, ref, x, dout)
    ours.zero_grad()
    np.testing.assert_allclose(ours(x), y_ref, **close)
    np.testing.assert_allclose(ours.backward(dout), dx_ref, **close)
    if affine:
        np.testing.assert_allclose(ours.grads["gamma"], ref.weight.grad.numpy(), **close)
        np.testing.assert_allclose(ours.grads["beta"], ref.bias.grad.numpy(), **close)


def test_batchnorm_running_statistics_formula():
    gen = np.random.default_rng(0)
    layer = BatchNorm1d(3, momentum=0.25)
    rm, rv = np.zeros(3), np.ones(3)
    for _ in range(3):
        x = gen.standard_normal((10, 3)) * 2 + 1
        layer(x)
        rm = 0.75 * rm + 0.25 * x.mean(0)
        rv = 0.75 * rv + 0.25 * x.var(0, ddof=1)  # unbiased
    np.testing.assert_allclose(layer.buffers["running_mean"], rm, rtol=1e-14)
    np.testing.assert_allclose(layer.buffers["running_var"], rv, rtol=1e-14)
    assert layer.running_mean is layer.buffers["running_mean"]
    y = layer(x)  # training output uses the batch's biased statistics
    np.testing.assert_allclose(y, (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5), rtol=1e-12)
    before = layer.running_mean.copy()
    layer.eval()(x)
    np.testing.assert_array_equal(layer.running_mean, before)  # evaluation leaves them alone


@pytest.mark.parametrize("shape", [(6, 4), (3, 4, 2)])
@pytest.mark.parametrize("affine", [True, False])
def test_batchnorm_gradcheck_train_and_eval(shape, affine):
    gen = np.random.default_rng(0)
    layer = BatchNorm1d(4, affine=affine, momentum=0.5)
    if affine:
        _randomise(layer, 1)
    for _ in range(3):  # non-trivial running statistics for the evaluation check
        layer(gen.standard_normal(shape) * 2 + 0.5)
    x = gen.standard_normal(shape) * 1.5 + 0.3
    errors = dl.gradcheck(layer.train(), x)
    assert set(errors) == ({"x", "gamma", "beta"} if affine else {"x"})
    dl.gradcheck(layer.eval(), x)


def test_batchnorm_buffers_are_not_parameters():
    net = dl.models.mlp([3, 4, 2], norm="batch", rng=0)
    bn = net[1]
    assert isinstance(bn, BatchNorm1d)
    assert set(bn.params) == {"gamma", "beta"} and set(bn.buffers) == {"running_mean", "running_var"}
    assert set(net.params) == {"0.W", "0.b", "1.gamma", "1.beta", "3.W", "3.b"}
    assert set(net.grads) == set(net.params)


def test_batchnorm_bad_input():
    layer = BatchNorm1d(3)
    with pytest.raises(ValueError, match="more than one value per feature"):
        layer(np.ones((1, 3)))
    layer.eval()(np.ones((1, 3)))  # fine in evaluation
    layer.train()
    with pytest.raises(ValueError, match=r"expected 3 features on axis 1, got x of shape \(4, 2\)"):
        layer(np.ones((4, 2)))
    with pytest.raises(ValueError, match=r"\(N, D\) or \(N, D, L\)"):
        layer(np.ones(3))
    with pytest.raises(ValueError, match=r"\(N, D\) or \(N, D, L\)"):
        layer(np.ones((2, 3, 2, 2)))
    with pytest.raises(TypeError, match="float32 or float64"):
        layer(np.ones((4, 3), dtype=np.int64))
    with pytest.raises(RuntimeError, match="before forward"):
        BatchNorm1d(3).backward(np.ones((4, 3)))
    with pytest.raises(ValueError, match=r"momentum must lie in \[0, 1\]"):
        BatchNorm1d(3, momentum=1.5)
    with pytest.raises(ValueError, match="eps must be positive"):
        BatchNorm1d(3, eps=0.0)
    with pytest.raises(ValueError, match="num_features must be a positive integer"):
        BatchNorm1d(0)


# =============================================================================
# LayerNorm
# =============================================================================
@pytest.mark.parametrize("shape", [(6, 5), (3, 4, 5), (2, 2, 3, 5), (5,)])
@pytest.mark.parametrize("affine", [True, False])
def test_layernorm_against_torch(shape, affine):
    torch = pytest.importorskip("torch", reason="PyTorch not installed: reference comparison skipped")
    gen = np.random.default_rng(0)
    ours = LayerNorm(5, elementwise_affine=affine)
    ref = torch.nn.LayerNorm(5, elementwise_affine=affine, dtype=torch.float64)
    if affine:
        _randomise(ours, 1)
        with torch.no_grad():
            ref.weight.copy_(torch.tensor(ours.params["gamma"]))
            ref.bias.copy_(torch.tensor(ours.params["beta"]))
    x = gen.standard_normal(shape) * 3 + 1
    dout = gen.standard_normal(shape)
    y_ref, dx_ref = _torch_grads(torch, ref, x, dout)
    close = {"rtol": 1e-11, "atol": 1e-12}
    for mode in ("train", "eval"):  # no difference between the modes
        getattr(ours, mode)()
        ours.zero_grad()
        np.testing.assert_allclose(ours(x), y_ref, **close)
        np.testing.assert_allclose(ours.backward(dout), dx_ref, **close)
        if affine:
            np.testing.assert_allclose(ours.grads["gamma"], ref.weight.grad.numpy(), **close)
            np.testing.assert_allclose(ours.grads["beta"], ref.bias.grad.numpy(), **close)


@pytest.mark.parametrize("shape", [(4, 5), (2, 3, 5)])
@pytest.mark.parametrize("affine", [True, False])
def test_layernorm_gradcheck(shape, affine):
    layer = LayerNorm((5,), elementwise_affine=affine)
    if affine:
        _randomise(layer, 0)
    errors = dl.gradcheck(layer, np.random.default_rng(1).standard_normal(shape) * 2 + 1)
    assert set(errors) == ({"x", "gamma", "beta"} if affine else {"x"})


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), shift=st.floats(-50, 50), log_scale=st.floats(-1, 3))
def test_layernorm_ignores_each_rows_shift_and_scale(seed, shift, log_scale):
    gen = np.random.default_rng(seed)
    x = gen.standard_normal((3, 4, 16))
    layer = LayerNorm(16, eps=1e-12)
    y = layer(x)
    np.testing.assert_allclose(y.mean(-1), 0.0, atol=1e-12)
    np.testing.assert_allclose(y.var(-1), 1.0, rtol=1e-9)
    np.testing.assert_allclose(layer(x * 10.0**log_scale + shift), y, atol=1e-9)


def test_layernorm_bad_input():
    layer = LayerNorm(4)
    with pytest.raises(ValueError, match=r"expected x of shape \(\.\.\., 4\), got shape \(2, 3\)"):
        layer(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"\(\.\.\., 4\)"):
        layer(np.float64(1.0).reshape(()))
    with pytest.raises(TypeError, match="float32 or float64"):
        layer(np.ones((2, 4), dtype=np.int32))
    with pytest.raises(ValueError, match="last axis only"):
        LayerNorm((3, 4))
    with pytest.raises(ValueError, match="normalized_shape must be a positive integer"):
        LayerNorm(-2)
    layer(np.ones((2, 4)))
    with pytest.raises(ValueError, match="dout must have the output's shape"):
        layer.backward(np.ones((4, 2)))


# =============================================================================
# Identity, Flatten; every layer: float32, integers, gradcheck
# =============================================================================
def test_flatten_and_identity():
    x = np.arange(24.0).reshape(2, 3, 4)
    flat = Flatten()
    y = flat(x)
    assert y.shape == (2, 12)
    np.testing.assert_array_equal(y[1], x[1].ravel())
    assert flat.backward(y).shape == (2, 3, 4)
    dl.gradcheck(Flatten(), np.random.default_rng(0).standard_normal((2, 3, 2, 2)))
    dl.gradcheck(Identity(), np.random.default_rng(0).standard_normal((3, 2)))
    assert Flatten()(np.zeros((0, 3, 2))).shape == (0, 6)
    with pytest.raises(ValueError, match="at least 2-D"):
        Flatten()(np.ones(3))
    with pytest.raises(ValueError, match=r"dout must have the output's shape \(2, 12\)"):
        flat.backward(np.ones((2, 3, 4)))
    with pytest.raises(RuntimeError, match="before forward"):
        Identity().backward(np.ones(2))


LAYER_MAKERS = {
    "Linear": (lambda dt: Linear(4, 3, rng=0, dtype=dt), (5, 4)),
    "Linear3d": (lambda dt: Linear(4, 3, rng=0, dtype=dt), (2, 5, 4)),
    "Dropout": (lambda dt: Dropout(0.5, rng=0), (5, 4)),
    "BatchNorm1d": (lambda dt: BatchNorm1d(4, dtype=dt), (5, 4)),
    "BatchNorm1d3d": (lambda dt: BatchNorm1d(4, dtype=dt), (5, 4, 3)),
    "LayerNorm": (lambda dt: LayerNorm(4, dtype=dt), (2, 5, 4)),
    "Identity": (lambda dt: Identity(), (5, 4)),
    "Flatten": (lambda dt: Flatten(), (5, 2, 2)),
}


@pytest.mark.parametrize("name", LAYER_MAKERS)
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_float32_in_float32_out(name, mode):
    make, shape = LAYER_MAKERS[name]
    layer = getattr(make(np.float32), mode)()
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    x_copy = x.copy()
    y = layer(x)
    assert y.dtype == np.float32
    dx = layer.backward(np.ones_like(y))
    assert dx.dtype == np.float32 and dx.shape == x.shape
    for k, g in layer.grads.items():
        assert g.dtype == np.float32, k
    np.testing.assert_array_equal(x, x_copy)  # forward and backward leave the input alone
    if name == "Dropout" and mode == "train":
        return  # masks are drawn in x's dtype: float32 and float64 masks differ by design
    # the float32 result agrees with the float64 layer on the same input
    ref = getattr(make(np.float64), mode)()
    np.testing.assert_allclose(y, ref(x.astype(np.float64)), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", LAYER_MAKERS)
def test_integer_input_is_refused(name):
    make, shape = LAYER_MAKERS[name]
    with pytest.raises(TypeError, match="dtype float32 or float64, got int64"):
        make(np.float64)(np.ones(shape, dtype=np.int64))


@pytest.mark.parametrize("name", LAYER_MAKERS)
def test_gradients_accumulate(name):
    make, shape = LAYER_MAKERS[name]
    layer = make(np.float64).eval()  # deterministic forward (Dropout), grads still accumulate
    x = np.random.default_rng(0).standard_normal(shape)
    dout = np.random.default_rng(1).standard_normal(layer(x).shape)
    layer.zero_grad()
    layer.backward(dout)
    once = {k: g.copy() for k, g in layer.grads.items()}
    layer(x)
    layer.backward(dout)
    for k, g in layer.grads.items():
        np.testing.assert_allclose(g, 2 * once[k], rtol=1e-14, err_msg=k)


def test_wrong_feature_size_and_ndim():
    with pytest.raises(ValueError, match="expected 3 input features"):
        Linear(3, 2, rng=0)(np.ones((2, 5, 4)))
    with pytest.raises(ValueError, match="2-D"):
        Linear(3, 2, rng=0)(np.ones(3))
    layer = Linear(3, 2, rng=0)
    layer(np.ones((2, 4, 3)))
    with pytest.raises(ValueError, match=r"dout must have the output's shape \(2, 4, 2\)"):
        layer.backward(np.ones((8, 2)))


# =============================================================================
# mlp
# =============================================================================
def _old_mlp_weights(sizes, seed, init_name):
    gen = np.random.default_rng(seed)
    pairs = zip(sizes[:-1], sizes[1:], strict=True)
    return [_old_init_weight(a, b, gen, init_name, np.float64) for a, b in pairs]


@pytest.mark.parametrize("init_name", ["uniform", "he", "lecun", "xavier"])
def test_mlp_defaults_give_the_same_network_as_before(init_name):
    sizes = [3, 8, 8, 2]
    net = dl.models.mlp(sizes, "tanh", init=init_name, rng=5)
    assert [type(l).__name__ for l in net.layers] == ["Linear", "Activation"] * 2 + ["Linear"]
    for i, w in enumerate(_old_mlp_weights(sizes, 5, init_name)):
        np.testing.assert_array_equal(net[2 * i].params["W"], w)


@pytest.mark.parametrize("norm,cls", [("batch", BatchNorm1d), ("layer", LayerNorm)])
def test_mlp_norm_and_dropout_keep_the_weights(norm, cls):
    sizes = [3, 8, 6, 2]
    plain = dl.models.mlp(sizes, "relu", init="he", rng=4)
    net = dl.models.mlp(sizes, "relu", init="he", rng=4, dropout=0.3, norm=norm)
    kinds = [type(l).__name__ for l in net.layers]
    assert kinds == ["Linear", cls.__name__, "Activation", "Dropout"] * 2 + ["Linear"]
    linears = [l for l in net.layers if isinstance(l, Linear)]
    for a, b in zip(linears, [l for l in plain.layers if isinstance(l, Linear)], strict=True):
        np.testing.assert_array_equal(a.params["W"], b.params["W"])
    assert net[1].num_parameters() == 16 and net[5].num_parameters() == 12
    assert net[3].p == 0.3
    # two Dropout layers draw from different streams; the same seed repeats them
    x = np.ones((20, 8))
    m1, m2 = net[3](x), net[7](x)
    assert not np.array_equal(m1, m2)
    again = dl.models.mlp(sizes, "relu", init="he", rng=4, dropout=0.3, norm=norm)
    np.testing.assert_array_equal(again[3](x), m1)
    # the whole network differentiates correctly (dropout off: eval, or fixed masks)
    xs = np.random.default_rng(0).standard_normal((6, 3))
    no_drop = dl.models.mlp(sizes, "tanh", rng=4, norm=norm)
    dl.gradcheck(no_drop, xs)
    dl.gradcheck(net.eval(), xs)


def test_mlp_bad_options():
    with pytest.raises(ValueError, match="norm must be None, 'batch' or 'layer'"):
        dl.models.mlp([2, 3, 1], norm="group")
    with pytest.raises(ValueError, match=r"dropout must lie in \[0, 1\)"):
        dl.models.mlp([2, 3, 1], dropout=1.0)
    with pytest.raises(TypeError, match="dropout must be a probability"):
        dl.models.mlp([2, 3, 1], dropout="0.1")
    assert len(dl.models.mlp([2, 3, 1], dropout=0.5)) == 4  # Linear, act, Dropout, Linear
    assert len(dl.models.mlp([2, 1], dropout=0.5, norm="batch")) == 1  # no hidden layer
