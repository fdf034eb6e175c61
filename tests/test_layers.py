"""The chapter-3 layers (dlbook.layers) and mlp (dlbook.models); the initialisers are in test_init.py.

Values against formulas and PyTorch (float64), gradients by central differences
(dl.gradcheck) on the input and every parameter, statistics of random draws
with tolerances of five standard errors for the sample size, the module
protocol (a layer applied several times, state_dict, inference mode, rng
without a default), and bad input.
"""

import copy
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dlbook as dl
from dlbook.core import inference_mode
from dlbook.layers import BatchNorm1d, Dropout, Flatten, Identity, LayerNorm, Linear

RAISE_UNMATCHED = "backward called more often than forward"


# =============================================================================
# Helpers
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
    layer.zero_grad()
    y = layer(x)
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


def test_linear_needs_an_explicit_rng():
    with pytest.raises(TypeError, match="rng"):
        Linear(4, 4)
    with pytest.raises(ValueError, match="no hidden global RNG"):
        Linear(4, 4, rng=None)
    with pytest.raises(TypeError):
        Linear(4, 4, True, 0)  # bias and what follows are keywords
    a, b = Linear(4, 4, rng=0), Linear(4, 4, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(a.params["W"], b.params["W"])
    assert not np.array_equal(a.params["W"], Linear(4, 4, rng=1).params["W"])


def test_linear_used_twice_in_one_pass_sums_both_gradients():
    gen = np.random.default_rng(0)
    shared = _randomise(Linear(4, 4, rng=3), 1)
    net = dl.Sequential(shared, dl.activations.Activation("tanh"), shared)
    assert set(net.params) == {"0.W", "0.b"}  # one layer, listed once
    errors = dl.gradcheck(net, gen.standard_normal((5, 4)))
    assert set(errors) == {"x", "0.W", "0.b"}
    # the gradient is the sum of the two uses: the same as two copies of the layer
    first, second = copy.deepcopy(shared), copy.deepcopy(shared)
    twins = dl.Sequential(first, dl.activations.Activation("tanh"), second)
    x, dout = gen.standard_normal((6, 4)), gen.standard_normal((6, 4))
    net.zero_grad()
    twins.zero_grad()
    np.testing.assert_array_equal(net(x), twins(x))
    np.testing.assert_allclose(net.backward(dout), twins.backward(dout), rtol=1e-14)
    for k in ("W", "b"):
        np.testing.assert_allclose(shared.grads[k], first.grads[k] + second.grads[k], rtol=1e-13, err_msg=k)
        assert not np.allclose(first.grads[k], second.grads[k])  # two different contributions


def test_linear_two_forwards_then_two_backwards_in_reverse():
    gen = np.random.default_rng(1)
    layer = Linear(3, 2, rng=0)
    x1, x2 = gen.standard_normal((4, 3)), gen.standard_normal((5, 3))
    d1, d2 = gen.standard_normal((4, 2)), gen.standard_normal((5, 2))
    layer(x1)
    layer(x2)
    np.testing.assert_allclose(layer.backward(d2), d2 @ layer.params["W"].T, rtol=1e-15)
    np.testing.assert_allclose(layer.backward(d1), d1 @ layer.params["W"].T, rtol=1e-15)
    np.testing.assert_allclose(layer.grads["W"], x1.T @ d1 + x2.T @ d2, rtol=1e-13)
    with pytest.raises(RuntimeError, match=RAISE_UNMATCHED):
        layer.backward(d1)


def test_linear_from_weights():
    W, b = np.array([[1.0, -1.0, 0.0], [0.5, 2.0, -3.0]]), np.array([0.0, 1.0, -1.0])
    layer = Linear.from_weights(W, b)
    assert (layer.in_features, layer.out_features) == (2, 3) and set(layer.params) == {"W", "b"}
    x = np.random.default_rng(0).standard_normal((4, 2))
    np.testing.assert_array_equal(layer(x), x @ W + b)
    W[0, 0] = 99.0  # copied: the layer keeps its own arrays
    assert layer.params["W"][0, 0] == 1.0
    assert "bias=True" in repr(layer)
    dl.gradcheck(layer, x)
    # nested lists (as chapter 2 writes them), no bias, the dtype of W
    no_bias = Linear.from_weights([[1, -1]])
    assert set(no_bias.params) == {"W"} and no_bias.params["W"].dtype == np.float64
    np.testing.assert_array_equal(no_bias(np.array([[2.0], [-3.0]])), [[2.0, -2.0], [-3.0, 3.0]])
    f32 = Linear.from_weights(W.astype(np.float32), [1, 2, 3])
    assert f32.params["W"].dtype == f32.params["b"].dtype == np.float32
    with pytest.raises(ValueError, match=r"b must have shape \(3,\)"):
        Linear.from_weights(W, np.zeros(2))
    with pytest.raises(ValueError, match="W must be 2-D"):
        Linear.from_weights(np.ones(3))
    with pytest.raises(TypeError, match="float32 or float64"):
        Linear.from_weights(np.ones((2, 2), dtype=np.int64))


def test_linear_uses_its_parameters_in_the_inputs_dtype():
    gen = np.random.default_rng(2)
    layer64 = Linear(4, 3, rng=0)
    x = gen.standard_normal((5, 4)).astype(np.float32)
    y = layer64(x)
    assert y.dtype == np.float32  # as Conv2d: the input's dtype
    dx = layer64.backward(np.ones_like(y))
    assert dx.dtype == np.float32 and layer64.grads["W"].dtype == np.float64
    np.testing.assert_allclose(y, x.astype(np.float64) @ layer64.params["W"], rtol=1e-5, atol=1e-6)
    # float64 input through a float32 layer: computed in float64, as before
    layer32 = Linear(4, 3, rng=0, dtype=np.float32)
    x64 = x.astype(np.float64)
    np.testing.assert_array_equal(layer32(x64), x64 @ layer32.params["W"].astype(np.float64))


def test_inference_mode_saves_nothing():
    x = np.random.default_rng(3).standard_normal((4, 3))
    layers = (Linear(3, 3, rng=0), Dropout(0.5, rng=0), BatchNorm1d(3), LayerNorm(3), Identity(), Flatten())
    for layer in layers:
        with inference_mode():
            layer(x)
        assert layer._tape == [], type(layer).__name__
        with pytest.raises(RuntimeError, match=RAISE_UNMATCHED):
            layer.backward(np.ones_like(x))


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
    np.testing.assert_array_equal(layer.backward(np.ones_like(x)), y2 / 2.0)  # the latest mask first
    np.testing.assert_array_equal(layer.backward(np.ones_like(x)), y / 2.0)  # then the earlier one
    assert x.min() == 2.0  # input untouched


def test_dropout_backward_uses_the_saved_mask():
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
    with pytest.raises(TypeError, match="rng"):
        Dropout(0.5)
    with pytest.raises(TypeError):
        Dropout(0.5, 0)  # rng is a keyword
    layer(x)
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
    with pytest.raises(RuntimeError, match=RAISE_UNMATCHED):
        BatchNorm1d(3).backward(np.ones((4, 3)))
    with pytest.raises(ValueError, match=r"momentum must lie in \[0, 1\]"):
        BatchNorm1d(3, momentum=1.5)
    with pytest.raises(ValueError, match="eps must be positive"):
        BatchNorm1d(3, eps=0.0)
    with pytest.raises(ValueError, match="num_features must be a positive integer"):
        BatchNorm1d(0)


def test_batchnorm_state_dict_holds_the_running_statistics():
    gen = np.random.default_rng(4)
    bn = _randomise(BatchNorm1d(3, momentum=0.5), 0)
    for _ in range(3):
        bn(gen.standard_normal((8, 3)) * 2 + 1)
    state = bn.state_dict()
    assert set(state) == {"gamma", "beta", "running_mean", "running_var"}
    np.testing.assert_array_equal(state["running_mean"], bn.running_mean)
    np.testing.assert_array_equal(state["running_var"], bn.running_var)
    assert not np.array_equal(state["running_var"], np.ones(3))  # they moved
    state_copy = {k: v.copy() for k, v in state.items()}
    bn(gen.standard_normal((8, 3)))
    for k, v in state.items():
        np.testing.assert_array_equal(v, state_copy[k], err_msg=k)  # copies, not the live arrays
    fresh = BatchNorm1d(3)
    running_mean = fresh.running_mean
    fresh.load_state_dict(state)
    assert fresh.running_mean is running_mean  # restored in place
    for k, v in fresh.state_dict().items():
        np.testing.assert_array_equal(v, state[k], err_msg=k)
    bn.load_state_dict(state)
    x = gen.standard_normal((5, 3))
    np.testing.assert_array_equal(fresh.eval()(x), bn.eval()(x))
    assert set(BatchNorm1d(3, affine=False).state_dict()) == {"running_mean", "running_var"}
    net = dl.models.mlp([3, 4, 2], norm="batch", rng=0)
    assert {"1.running_mean", "1.running_var", "1.gamma"} <= set(net.state_dict())
    assert "1.running_mean" not in net.params  # a buffer, not a parameter


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("shape", [(6, 4), (3, 4, 2)])
def test_batchnorm_applied_twice_in_one_pass(mode, shape):
    gen = np.random.default_rng(5)
    bn = _randomise(BatchNorm1d(4, momentum=0.5), 2)
    for _ in range(2):
        bn(gen.standard_normal(shape) + 1)  # running statistics away from 0 and 1
    getattr(bn, mode)()
    errors = dl.gradcheck(dl.Sequential(bn, bn), gen.standard_normal(shape) * 2 + 0.5)
    assert set(errors) == {"x", "0.gamma", "0.beta"}


def test_batchnorm_backward_follows_the_mode_of_its_forward():
    gen = np.random.default_rng(6)
    x, dout = gen.standard_normal((6, 3)), gen.standard_normal((6, 3))
    a, b = _randomise(BatchNorm1d(3), 1), _randomise(BatchNorm1d(3), 1)
    a(x)
    expected = a.backward(dout)
    b(x)  # a training forward ...
    b.eval()  # ... then a switch before its backward
    np.testing.assert_array_equal(b.backward(dout), expected)
    np.testing.assert_array_equal(b.grads["gamma"], a.grads["gamma"])


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
    dl.gradcheck(dl.Sequential(layer, layer), np.random.default_rng(2).standard_normal(shape) * 2 + 1)


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
    flat(x)
    dl.gradcheck(Flatten(), np.random.default_rng(0).standard_normal((2, 3, 2, 2)))
    dl.gradcheck(Identity(), np.random.default_rng(0).standard_normal((3, 2)))
    assert Flatten()(np.zeros((0, 3, 2))).shape == (0, 6)
    with pytest.raises(ValueError, match="at least 2-D"):
        Flatten()(np.ones(3))
    with pytest.raises(ValueError, match=r"dout must have the output's shape \(2, 12\)"):
        flat.backward(np.ones((2, 3, 4)))
    with pytest.raises(RuntimeError, match=RAISE_UNMATCHED):
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


PARAMS = {"Linear": {"W", "b"}, "Linear3d": {"W", "b"}, "BatchNorm1d": {"gamma", "beta"},
          "BatchNorm1d3d": {"gamma", "beta"}, "LayerNorm": {"gamma", "beta"}}


@pytest.mark.parametrize("name", LAYER_MAKERS)
def test_parameter_gradients_accumulate_input_gradients_do_not(name):
    make, shape = LAYER_MAKERS[name]
    layer = make(np.float64).eval()  # deterministic forward (Dropout), grads still accumulate
    x = np.random.default_rng(0).standard_normal(shape)
    with inference_mode():
        out_shape = layer(x).shape
    dout = np.random.default_rng(1).standard_normal(out_shape)
    layer.zero_grad()
    layer(x)
    dx_once = layer.backward(dout).copy()
    once = {k: g.copy() for k, g in layer.grads.items()}
    assert set(once) == PARAMS.get(name, set())  # parameter-free layers: dx is what is checked
    assert dx_once.shape == x.shape and np.count_nonzero(dx_once) == dx_once.size
    layer(x)
    dx_twice = layer.backward(dout)
    np.testing.assert_array_equal(dx_twice, dx_once)  # returned afresh, never accumulated
    for k, g in layer.grads.items():
        assert np.count_nonzero(once[k]) == once[k].size, k
        np.testing.assert_allclose(g, 2 * once[k], rtol=1e-14, err_msg=k)


@pytest.mark.parametrize("name", LAYER_MAKERS)
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_one_layer_applied_twice_equals_two_copies(name, mode):
    """Two forwards, then the two backwards in reverse order: each gets its own saved state."""
    make, shape = LAYER_MAKERS[name]
    gen = np.random.default_rng(7)
    shared = getattr(_randomise(make(np.float64), 3), mode)()
    first = copy.deepcopy(shared)
    x1, x2 = gen.standard_normal(shape), gen.standard_normal(shape) * 2 + 1
    y1, y2 = shared(x1), shared(x2)
    d1, d2 = gen.standard_normal(y1.shape), gen.standard_normal(y2.shape)
    dx2 = shared.backward(d2)
    dx1 = shared.backward(d1)
    # the copies: the second starts from the state the first call left (Dropout's Generator,
    # BatchNorm's running statistics), as the shared layer's second call does
    np.testing.assert_array_equal(first(x1), y1)
    second = copy.deepcopy(first).clear_tape()
    np.testing.assert_array_equal(second(x2), y2)
    np.testing.assert_array_equal(second.backward(d2), dx2)
    np.testing.assert_array_equal(first.backward(d1), dx1)
    assert set(shared.grads) == PARAMS.get(name, set())
    for k, g in shared.grads.items():
        np.testing.assert_allclose(g, first.grads[k] + second.grads[k], rtol=1e-13, err_msg=k)
    with pytest.raises(RuntimeError, match=RAISE_UNMATCHED):
        shared.backward(d1)


@pytest.mark.parametrize("name", LAYER_MAKERS)
def test_backward_without_forward_raises(name):
    make, shape = LAYER_MAKERS[name]
    layer = make(np.float64)
    x = np.random.default_rng(0).standard_normal(shape)
    dout = np.ones(layer(x).shape)
    layer.backward(dout)
    with pytest.raises(RuntimeError, match=RAISE_UNMATCHED):
        layer.backward(dout)
    with pytest.raises(RuntimeError, match=RAISE_UNMATCHED):
        make(np.float64).backward(dout)
    layer(x)
    layer.clear_tape()  # forgets what the forward saved
    with pytest.raises(RuntimeError, match=RAISE_UNMATCHED):
        layer.backward(dout)


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
    """One Generator, one draw per layer in order (init_weight equals the old formulas: test_init.py)."""
    gen = np.random.default_rng(seed)
    pairs = zip(sizes[:-1], sizes[1:], strict=True)
    return [dl.layers.init_weight(a, b, gen, init_name, np.float64) for a, b in pairs]


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
        dl.models.mlp([2, 3, 1], norm="group", rng=0)
    with pytest.raises(ValueError, match=r"dropout must lie in \[0, 1\)"):
        dl.models.mlp([2, 3, 1], dropout=1.0, rng=0)
    with pytest.raises(TypeError, match="dropout must be a probability"):
        dl.models.mlp([2, 3, 1], dropout="0.1", rng=0)
    assert len(dl.models.mlp([2, 3, 1], dropout=0.5, rng=0)) == 4  # Linear, act, Dropout, Linear
    assert len(dl.models.mlp([2, 1], dropout=0.5, norm="batch", rng=0)) == 1  # no hidden layer


# -- Linear basics (moved here from test_core.py) -----------------------------

def test_linear_bad_input():
    layer = dl.layers.Linear(3, 2, rng=0)
    with pytest.raises(ValueError, match="expected 3 input features"):
        layer(np.ones((2, 4)))
    with pytest.raises(TypeError, match="dtype float32 or float64"):
        layer(np.ones((2, 3), dtype=np.int64))
    with pytest.raises(ValueError, match="2-D"):
        layer(np.ones(3))
    with pytest.raises(ValueError, match="positive integer"):
        dl.layers.Linear(0, 2, rng=0)
    with pytest.raises(ValueError, match="seed"):
        dl.layers.Linear(2, 2, rng=None)
    with pytest.raises(ValueError, match="unknown init"):
        dl.layers.Linear(2, 2, rng=0, init="orthogonal")


def test_linear_keeps_float32():
    layer = dl.layers.Linear(3, 2, rng=0, dtype=np.float32)
    y = layer(np.ones((2, 3), dtype=np.float32))
    assert y.dtype == np.float32
    assert layer.backward(np.ones_like(y)).dtype == np.float32
