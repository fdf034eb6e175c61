"""Convolution and pooling (dlbook.conv) and BatchNorm2d (dlbook.layers).

Values against the loop definition and against PyTorch's ``conv2d``,
``max_pool2d`` (NaN included), ``avg_pool2d`` and ``batch_norm`` in float64 on
random shapes, strides and paddings; gradients by central differences
(``dl.gradcheck``); im2col/col2im as an adjoint pair; the module protocol (one
layer applied several times, rng without a default); bad input with clear
errors.
"""

import copy

import numpy as np
import pytest

import dlbook as dl
from dlbook.conv import (
    AvgPool2d,
    Conv2d,
    GlobalAvgPool2d,
    MaxPool2d,
    col2im,
    conv2d_naive,
    conv_output_size,
    im2col,
)
from dlbook.core import inference_mode
from dlbook.layers import BatchNorm2d

RAISE_UNMATCHED = "backward called more often than forward"


def _random_geometry(rng):
    """A random (N, C, H, W), kernel, stride and padding that fit together."""
    while True:
        n, c = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        h, w = int(rng.integers(2, 9)), int(rng.integers(2, 9))
        k = (int(rng.integers(1, 5)), int(rng.integers(1, 5)))
        s = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        p = (int(rng.integers(0, 3)), int(rng.integers(0, 3)))
        if k[0] <= h + 2 * p[0] and k[1] <= w + 2 * p[1]:
            return (n, c, h, w), k, s, p


# =============================================================================
# Sizes and im2col
# =============================================================================
@pytest.mark.parametrize("n,k,s,p,expected", [(8, 3, 1, 0, 6), (8, 3, 1, 1, 8), (8, 3, 2, 1, 4),
                                              (7, 3, 2, 0, 3), (15, 5, 2, 2, 8), (5, 5, 1, 0, 1)])
def test_conv_output_size_formula(n, k, s, p, expected):
    assert conv_output_size(n, k, s, p) == expected == (n + 2 * p - k) // s + 1


def test_conv_output_size_errors():
    with pytest.raises(ValueError, match="larger than the padded input"):
        conv_output_size(4, 7, 1, 1)
    with pytest.raises(ValueError):
        conv_output_size(4, 3, 0, 0)
    with pytest.raises(ValueError):
        conv_output_size(4, 3, 1, -1)


def test_im2col_tiny_case_by_hand():
    x = np.arange(1.0, 17.0).reshape(1, 1, 4, 4)
    cols = im2col(x, 3)
    assert cols.shape == (9, 4)
    # column q is window q read row by row; window (0, 0) = rows 0-2, columns 0-2
    np.testing.assert_array_equal(cols[:, 0], [1, 2, 3, 5, 6, 7, 9, 10, 11])
    np.testing.assert_array_equal(cols[:, 3], [6, 7, 8, 10, 11, 12, 14, 15, 16])
    # with padding 1 and stride 2: the first window is centred on pixel 1
    cols_p = im2col(x, 3, stride=2, padding=1)
    assert cols_p.shape == (9, 4)
    np.testing.assert_array_equal(cols_p[:, 0], [0, 0, 0, 0, 1, 2, 0, 5, 6])


def test_im2col_layout_rows_channels_then_offsets_columns_samples_then_positions():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 5, 4))
    cols = im2col(x, (2, 3), stride=(1, 1))
    ho, wo = 4, 2
    for (c, u, v) in [(0, 0, 0), (2, 1, 2), (1, 0, 1)]:
        row = (c * 2 + u) * 3 + v
        for (n, i, j) in [(0, 0, 0), (1, 3, 1), (1, 2, 0)]:
            col = (n * ho + i) * wo + j
            assert cols[row, col] == x[n, c, i + u, j + v]


@pytest.mark.parametrize("seed", range(12))
def test_col2im_is_the_adjoint_of_im2col(seed):
    rng = np.random.default_rng(seed)
    shape, k, s, p = _random_geometry(rng)
    x = rng.standard_normal(shape)
    cols = im2col(x, k, s, p)
    c = rng.standard_normal(cols.shape)
    lhs = np.sum(cols * c)
    rhs = np.sum(x * col2im(c, shape, k, s, p))
    assert lhs == pytest.approx(rhs, rel=1e-12, abs=1e-12)


def test_col2im_counts_overlaps():
    # folding a matrix of ones counts how many windows contain each pixel
    counts = col2im(np.ones((9, 4)), (1, 1, 4, 4), 3)[0, 0]
    np.testing.assert_array_equal(counts, [[1, 2, 2, 1], [2, 4, 4, 2], [2, 4, 4, 2], [1, 2, 2, 1]])


# =============================================================================
# Conv2d
# =============================================================================
@pytest.mark.parametrize("seed", range(6))
def test_conv2d_equals_the_loop_definition(seed):
    rng = np.random.default_rng(seed)
    shape, k, s, p = _random_geometry(rng)
    layer = Conv2d(shape[1], 3, k, stride=s, padding=p, rng=seed)
    layer.params["b"][:] = rng.standard_normal(3)
    x = rng.standard_normal(shape)
    expected = conv2d_naive(x, layer.params["W"], layer.params["b"], stride=s, padding=p)
    np.testing.assert_allclose(layer(x), expected, rtol=1e-12, atol=1e-12)


def test_conv2d_naive_is_cross_correlation():
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 1, 1] = 1.0  # an impulse: the output is the kernel, flipped only by a true convolution
    w = np.arange(9.0).reshape(1, 1, 3, 3)
    out = conv2d_naive(x, w, padding=1)[0, 0]
    np.testing.assert_array_equal(out, w[0, 0, ::-1, ::-1])  # cross-correlation of an impulse


@pytest.mark.parametrize(
    "k,s,p,bias",
    [(3, 1, 1, True), (3, 2, 1, True), ((2, 3), (2, 1), (0, 1), False), (1, 1, 0, True), (3, 1, 2, False),
     (4, 3, 0, True)],
)
def test_conv2d_gradcheck(k, s, p, bias):
    rng = np.random.default_rng(1)
    layer = Conv2d(2, 3, k, stride=s, padding=p, bias=bias, init="he", rng=2)
    errors = dl.gradcheck(layer, rng.standard_normal((2, 2, 6, 5)))
    assert set(errors) == ({"x", "W", "b"} if bias else {"x", "W"})


def _torch():
    return pytest.importorskip("torch", reason="PyTorch not installed: reference comparison skipped")


@pytest.mark.parametrize("seed", range(15))
def test_conv2d_against_torch(seed):
    torch = _torch()
    F = torch.nn.functional
    rng = np.random.default_rng(seed)
    shape, k, s, p = _random_geometry(rng)
    c_out = int(rng.integers(1, 5))
    layer = Conv2d(shape[1], c_out, k, stride=s, padding=p, rng=seed)
    layer.params["b"][:] = rng.standard_normal(c_out)
    x = rng.standard_normal(shape)
    layer.zero_grad()
    y = layer(x)
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(dy)

    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(layer.params["W"], requires_grad=True)
    bt = torch.tensor(layer.params["b"], requires_grad=True)
    yt = F.conv2d(xt, wt, bt, stride=s, padding=p)
    yt.backward(torch.tensor(dy))
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.grads["W"], wt.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.grads["b"], bt.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_conv2d_default_init_matches_torch_bounds_and_he_variance():
    layer = Conv2d(16, 64, 3, rng=0)  # PyTorch's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    bound = 1 / np.sqrt(16 * 9)
    w = layer.params["W"]
    assert w.shape == (64, 16, 3, 3) and np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
    he = Conv2d(16, 64, 3, init="he", rng=0).params["W"]
    assert he.var() == pytest.approx(2 / (16 * 9), rel=0.05)
    assert np.all(layer.params["b"] == 0)


def test_conv2d_float32_and_accumulation():
    rng = np.random.default_rng(3)
    layer = Conv2d(3, 4, 3, padding=1, rng=0, dtype=np.float32)
    x = rng.standard_normal((2, 3, 5, 5)).astype(np.float32)
    layer.zero_grad()
    y = layer(x)
    assert y.dtype == np.float32
    dy = np.ones_like(y)
    dx = layer.backward(dy)
    assert dx.dtype == np.float32 and layer.grads["W"].dtype == np.float32
    once = layer.grads["W"].copy()
    layer(x)
    layer.backward(dy)
    np.testing.assert_allclose(layer.grads["W"], 2 * once, rtol=1e-6)
    assert np.all(x == x)  # input untouched (no NaN written into it)


def test_conv2d_does_not_mutate_input_or_upstream_gradient():
    rng = np.random.default_rng(4)
    layer = Conv2d(2, 2, 3, padding=1, rng=0)
    x = rng.standard_normal((1, 2, 4, 4))
    x0 = x.copy()
    y = layer(x)
    dy = rng.standard_normal(y.shape)
    dy0 = dy.copy()
    layer.backward(dy)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(dy, dy0)


def test_conv2d_bad_input():
    layer = Conv2d(3, 8, 5, padding=1, rng=0)
    with pytest.raises(ValueError, match="4-D"):
        layer(np.zeros((3, 8, 8)))
    with pytest.raises(ValueError, match="expected 3 input channels"):
        layer(np.zeros((1, 4, 8, 8)))
    with pytest.raises(ValueError, match="larger than the padded input"):
        layer(np.zeros((1, 3, 2, 2)))
    with pytest.raises(RuntimeError, match=RAISE_UNMATCHED):
        Conv2d(1, 1, 3, rng=0).backward(np.zeros((1, 1, 1, 1)))
    y = layer(np.zeros((1, 3, 6, 6)))
    with pytest.raises(ValueError, match="output's shape"):
        layer.backward(np.zeros(y.shape[:-1] + (y.shape[-1] + 1,)))
    with pytest.raises(ValueError, match="in_channels must be a positive integer"):
        Conv2d(0, 8, 3, rng=0)
    with pytest.raises(ValueError, match="kernel_size must be an int or a pair"):
        Conv2d(3, 8, (3, 3, 3), rng=0)
    with pytest.raises(ValueError, match="unknown init"):
        Conv2d(3, 8, 3, init="nonsense", rng=0)
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        Conv2d(3, 8, 3, rng=0, dtype=np.int32)


def test_conv2d_needs_an_explicit_rng():
    with pytest.raises(TypeError, match="rng"):
        Conv2d(3, 8, 3, padding=1)
    with pytest.raises(ValueError, match="no hidden global RNG"):
        Conv2d(3, 8, 3, rng=None)
    with pytest.raises(TypeError):
        Conv2d(3, 8, 3, 1, 1, rng=0)  # stride, padding, ... are keywords
    np.testing.assert_array_equal(Conv2d(3, 8, 3, rng=5).params["W"],
                                  Conv2d(3, 8, 3, rng=np.random.default_rng(5)).params["W"])


# =============================================================================
# Pooling
# =============================================================================
def _pool_geometry(rng):
    while True:
        n, c = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        h, w = int(rng.integers(2, 9)), int(rng.integers(2, 9))
        k = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        s = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        p = (int(rng.integers(0, k[0] // 2 + 1)), int(rng.integers(0, k[1] // 2 + 1)))
        if k[0] <= h + 2 * p[0] and k[1] <= w + 2 * p[1]:
            return (n, c, h, w), k, s, p


@pytest.mark.parametrize("seed", range(15))
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pooling_against_torch(seed, kind):
    torch = _torch()
    F = torch.nn.functional
    rng = np.random.default_rng(100 + seed)
    shape, k, s, p = _pool_geometry(rng)
    x = rng.standard_normal(shape)
    layer = (MaxPool2d if kind == "max" else AvgPool2d)(k, stride=s, padding=p)
    y = layer(x)
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(dy)
    xt = torch.tensor(x, requires_grad=True)
    yt = (F.max_pool2d if kind == "max" else F.avg_pool2d)(xt, k, stride=s, padding=p)
    yt.backward(torch.tensor(dy))
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("k,s,p", [(2, 2, 0), (3, 1, 1), (3, 2, 1), ((2, 3), (1, 2), (1, 0))])
def test_pooling_gradcheck(k, s, p):
    rng = np.random.default_rng(5)
    # distinct values far apart: no ties, and no argmax changes under the finite difference
    x = rng.permutation(2 * 2 * 6 * 5).reshape(2, 2, 6, 5).astype(float) / 10
    dl.gradcheck(MaxPool2d(k, stride=s, padding=p), x)
    dl.gradcheck(AvgPool2d(k, stride=s, padding=p), rng.standard_normal((2, 2, 6, 5)))


def test_maxpool_routes_each_window_gradient_to_its_maximum():
    x = np.array([[[[1.0, 5.0, 2.0, 0.0], [3.0, 4.0, 9.0, 8.0], [0.0, 0.0, 1.0, 1.0], [7.0, 0.0, 1.0, 2.0]]]])
    pool = MaxPool2d(2)
    np.testing.assert_array_equal(pool(x)[0, 0], [[5.0, 9.0], [7.0, 2.0]])
    dx = pool.backward(np.array([[[[10.0, 20.0], [30.0, 40.0]]]]))[0, 0]
    expected = np.zeros((4, 4))
    expected[0, 1], expected[1, 2], expected[3, 0], expected[3, 3] = 10, 20, 30, 40
    np.testing.assert_array_equal(dx, expected)


def test_maxpool_overlapping_windows_accumulate_and_ties_go_to_the_first():
    x = np.zeros((1, 1, 1, 3))
    x[0, 0, 0, 1] = 1.0  # the maximum of both windows of size 2, stride 1
    pool = MaxPool2d((1, 2), stride=1)
    dx = pool.backward(np.ones_like(pool(x)))
    np.testing.assert_array_equal(dx[0, 0, 0], [0.0, 2.0, 0.0])
    ties = MaxPool2d(2)
    ties(np.ones((1, 1, 2, 2)))
    np.testing.assert_array_equal(ties.backward(np.ones((1, 1, 1, 1)))[0, 0], [[1.0, 0.0], [0.0, 0.0]])


def test_global_avg_pool():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((3, 4, 5, 2))
    pool = GlobalAvgPool2d()
    np.testing.assert_allclose(pool(x), x.mean(axis=(2, 3)), rtol=1e-14)
    dl.gradcheck(pool, x)
    pool(x)
    with pytest.raises(ValueError, match=r"dout must have the output's shape \(3, 4\)"):
        pool.backward(np.zeros((3, 5)))


def test_pooling_bad_input():
    with pytest.raises(ValueError, match="at most half"):
        MaxPool2d(2, padding=2)
    with pytest.raises(ValueError, match="4-D"):
        MaxPool2d(2)(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="larger than the padded input"):
        AvgPool2d(5)(np.zeros((1, 1, 3, 3)))
    with pytest.raises(RuntimeError, match=RAISE_UNMATCHED):
        AvgPool2d(2).backward(np.zeros((1, 1, 1, 1)))
    assert MaxPool2d(3).stride == (3, 3)  # stride defaults to the window


def test_pooling_float32():
    x = np.random.default_rng(7).standard_normal((2, 3, 4, 4)).astype(np.float32)
    for layer in (MaxPool2d(2), AvgPool2d(2), GlobalAvgPool2d()):
        y = layer(x)
        assert y.dtype == np.float32
        assert layer.backward(np.ones_like(y)).dtype == np.float32


# =============================================================================
# BatchNorm2d
# =============================================================================
@pytest.mark.parametrize("training", [True, False])
def test_batchnorm2d_gradcheck(training):
    rng = np.random.default_rng(8)
    bn = BatchNorm2d(3)
    bn.params["gamma"][:] = rng.uniform(0.5, 1.5, 3)
    bn.params["beta"][:] = rng.standard_normal(3)
    bn(rng.standard_normal((4, 3, 3, 3)))  # move the running statistics away from 0 and 1
    bn.train() if training else bn.eval()
    dl.gradcheck(bn, rng.standard_normal((2, 3, 3, 2)) * 2 + 1, forward=None)


def test_batchnorm2d_against_torch_over_several_steps():
    torch = _torch()
    rng = np.random.default_rng(9)
    bn = BatchNorm2d(3, momentum=0.2)
    bn.params["gamma"][:] = rng.uniform(0.5, 1.5, 3)
    bn.params["beta"][:] = rng.standard_normal(3)
    ref = torch.nn.BatchNorm2d(3, momentum=0.2).double()
    ref.weight.data = torch.tensor(bn.params["gamma"].copy())
    ref.bias.data = torch.tensor(bn.params["beta"].copy())
    for step in range(5):
        training = step < 4
        bn.train() if training else bn.eval()
        ref.train(training)
        x = rng.standard_normal((4, 3, 5, 6)) * 3 + step
        dy = rng.standard_normal(x.shape)
        bn.zero_grad()
        y = bn(x)
        dx = bn.backward(dy)
        xt = torch.tensor(x, requires_grad=True)
        ref.zero_grad()
        yt = ref(xt)
        yt.backward(torch.tensor(dy))
        np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(bn.grads["gamma"], ref.weight.grad.numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(bn.grads["beta"], ref.bias.grad.numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(bn.running_mean, ref.running_mean.numpy(), rtol=1e-12)
        np.testing.assert_allclose(bn.running_var, ref.running_var.numpy(), rtol=1e-12)


def test_batchnorm2d_normalises_each_channel_over_batch_and_positions():
    rng = np.random.default_rng(10)
    x = rng.standard_normal((5, 2, 3, 4)) * np.array([1.0, 10.0])[None, :, None, None] + 7
    y = BatchNorm2d(2)(x)
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), 1, rtol=1e-3)


def test_batchnorm2d_bad_input():
    bn = BatchNorm2d(3)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        bn(np.zeros((4, 3, 5)))
    with pytest.raises(ValueError, match="expected 3 channels"):
        bn(np.zeros((4, 2, 5, 5)))
    with pytest.raises(ValueError, match="more than one value"):
        bn(np.zeros((1, 3, 1, 1)))
    assert bn.eval()(np.zeros((1, 3, 1, 1))).shape == (1, 3, 1, 1)  # fine in evaluation
    assert "BatchNorm2d(3" in repr(bn)


def test_maxpool_padding_is_never_the_maximum():
    # PyTorch pads max pooling with -inf: a very negative image keeps its own values
    x = np.full((1, 1, 3, 3), -1e6)
    x[0, 0, 1, 1] = -2e6
    pool = MaxPool2d(3, stride=1, padding=1)
    y = pool(x)
    assert np.all(y == -1e6)
    dx = pool.backward(np.ones_like(y))
    assert dx.sum() == y.size  # every window's gradient reaches a real pixel


# =============================================================================
# MaxPool2d and NaN
# =============================================================================
def _nan_cases():
    """(x, kernel, stride, padding): NaN first, inside, last in a window, two in one window, in overlaps."""
    base = np.arange(1.0, 1.0 + 2 * 2 * 6 * 6).reshape(2, 2, 6, 6) % 7.0  # ties too
    cases = []
    for positions, k, s, p in [
        ([(0, 0, 0, 0)], 2, 2, 0),  # first element of a window
        ([(0, 0, 1, 1)], 2, 2, 0),  # last element of a window
        ([(0, 1, 2, 3), (1, 0, 5, 4)], 2, 2, 0),  # inside, one per window
        ([(0, 0, 0, 1), (0, 0, 1, 0)], 2, 2, 0),  # two NaNs in one window
        ([(0, 0, 2, 2)], 3, 1, 1),  # overlapping windows, padding
        ([(1, 1, 0, 5), (1, 1, 4, 4)], 3, 2, 1),  # at the border next to the -inf padding
        ([(0, 0, 3, 3), (0, 0, 3, 4), (0, 0, 4, 3)], (2, 3), (1, 2), (1, 0)),
    ]:
        x = base.copy()
        for i in positions:
            x[i] = np.nan
        cases.append((x, k, s, p))
    return cases


@pytest.mark.parametrize("case", range(7))
def test_maxpool_nan_against_torch(case):
    torch = _torch()
    x, k, s, p = _nan_cases()[case]
    pool = MaxPool2d(k, stride=s, padding=p)
    y = pool(x)
    dy = np.random.default_rng(case).standard_normal(y.shape)
    dx = pool.backward(dy)
    xt = torch.tensor(x, requires_grad=True)
    yt = torch.nn.functional.max_pool2d(xt, k, stride=s, padding=p)
    yt.backward(torch.tensor(dy))
    assert np.isnan(y).any()
    np.testing.assert_array_equal(y, yt.detach().numpy())  # NaN where torch has NaN, equal elsewhere
    dx_ref = xt.grad.numpy()
    np.testing.assert_array_equal(dx != 0, dx_ref != 0)  # the gradient goes where torch sends it
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-13, atol=1e-15)  # overlaps: sums in another order


def test_maxpool_propagates_nan_wherever_it_is_in_the_window():
    pool = MaxPool2d(2)
    for pos in [(0, 0), (0, 1), (1, 0), (1, 1)]:
        x = np.array([[[[1.0, 5.0], [3.0, 4.0]]]])
        x[0, 0][pos] = np.nan
        y = pool(x)
        assert np.isnan(y[0, 0, 0, 0]), pos
        dx = pool.backward(np.full((1, 1, 1, 1), 7.0))[0, 0]
        expected = np.zeros((2, 2))
        expected[pos] = 7.0  # the NaN takes the gradient
        np.testing.assert_array_equal(dx, expected, err_msg=str(pos))
    # two NaNs in one window: the last one in row-major order (PyTorch's rule); other windows unaffected
    x = np.array([[[[np.nan, 2.0, 1.0, 1.0], [np.nan, 0.0, 1.0, 0.0]]]])
    y = pool(x)
    assert np.isnan(y[0, 0, 0, 0]) and y[0, 0, 0, 1] == 1.0
    dx = pool.backward(np.ones_like(y))[0, 0]
    np.testing.assert_array_equal(dx, [[0.0, 0.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0]])  # ties: the first
    # overlapping windows: every window holding the NaN gives NaN, the others do not
    x = np.arange(5.0).reshape(1, 1, 1, 5)
    x[0, 0, 0, 2] = np.nan
    y = MaxPool2d((1, 2), stride=1)(x)[0, 0, 0]
    np.testing.assert_array_equal(np.isnan(y), [False, True, True, False])
    assert y[0] == 1.0 and y[3] == 4.0


def test_maxpool_without_nan_is_unchanged_by_the_nan_rule():
    rng = np.random.default_rng(11)
    x = np.round(rng.standard_normal((2, 3, 7, 6)), 1)  # many ties
    x[0, 0, 0, 0] = -np.inf
    pool = MaxPool2d(3, stride=2, padding=1)
    y = pool(x)
    assert not np.isnan(y).any()
    # the first maximum in row-major order, from the definition
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=-np.inf)
    for i in range(y.shape[2]):
        for j in range(y.shape[3]):
            win = xp[:, :, 2 * i : 2 * i + 3, 2 * j : 2 * j + 3]
            np.testing.assert_array_equal(y[:, :, i, j], win.max(axis=(2, 3)))


# =============================================================================
# One layer applied several times (the tape)
# =============================================================================
CONV_MAKERS = {
    "Conv2d": (lambda: Conv2d(3, 3, 3, padding=1, rng=0), (2, 3, 5, 4)),
    "Conv2d-strided": (
        lambda: Conv2d(3, 3, (2, 3), stride=2, padding=(1, 0), init="he", rng=1),
        (2, 3, 6, 5),
    ),
    "BatchNorm2d": (lambda: BatchNorm2d(3, momentum=0.3), (2, 3, 4, 3)),
    "MaxPool2d": (lambda: MaxPool2d(3, stride=2, padding=1), (2, 3, 6, 5)),
    "AvgPool2d": (lambda: AvgPool2d(2, stride=1, padding=1), (2, 3, 4, 5)),
    "GlobalAvgPool2d": (lambda: GlobalAvgPool2d(), (2, 3, 4, 5)),
}
CONV_PARAMS = {"Conv2d": {"W", "b"}, "Conv2d-strided": {"W", "b"}, "BatchNorm2d": {"gamma", "beta"}}


def _randomise(layer, seed):
    gen = np.random.default_rng(seed)
    for k, p in layer.params.items():
        p[...] = gen.uniform(0.5, 1.5, p.shape) if k == "gamma" else gen.standard_normal(p.shape)
    return layer


@pytest.mark.parametrize("name", CONV_MAKERS)
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_one_layer_applied_twice_equals_two_copies(name, mode):
    """Two forwards, then the two backwards in reverse order: each gets its own saved state."""
    make, shape = CONV_MAKERS[name]
    gen = np.random.default_rng(12)
    shared = getattr(_randomise(make(), 2), mode)()
    first = copy.deepcopy(shared)
    x1 = gen.permutation(np.prod(shape)).reshape(shape) / 7.0  # distinct values: no max-pool ties
    x2 = gen.standard_normal(shape[:2] + (shape[2] + 2, shape[3] + 1))  # another size
    y1, y2 = shared(x1), shared(x2)
    d1, d2 = gen.standard_normal(y1.shape), gen.standard_normal(y2.shape)
    dx2 = shared.backward(d2)
    dx1 = shared.backward(d1)
    assert dx1.shape == x1.shape and dx2.shape == x2.shape
    np.testing.assert_array_equal(first(x1), y1)
    second = copy.deepcopy(first).clear_tape()  # the state the first call left (running statistics)
    np.testing.assert_array_equal(second(x2), y2)
    np.testing.assert_array_equal(second.backward(d2), dx2)
    np.testing.assert_array_equal(first.backward(d1), dx1)
    assert set(shared.grads) == CONV_PARAMS.get(name, set())
    for k, g in shared.grads.items():
        np.testing.assert_allclose(g, first.grads[k] + second.grads[k], rtol=1e-13, err_msg=k)
    with pytest.raises(RuntimeError, match=RAISE_UNMATCHED):
        shared.backward(d1)


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_gradcheck_of_one_layer_used_twice(mode):
    rng = np.random.default_rng(13)
    conv = Conv2d(2, 2, 3, padding=1, rng=3)
    conv.params["b"][:] = rng.standard_normal(2)
    errors = dl.gradcheck(dl.Sequential(conv, conv), rng.standard_normal((2, 2, 4, 5)))
    assert set(errors) == {"x", "0.W", "0.b"}
    bn = _randomise(BatchNorm2d(2, momentum=0.5), 4)
    bn(rng.standard_normal((3, 2, 3, 3)) * 2 + 1)  # running statistics away from 0 and 1
    getattr(bn, mode)()
    errors = dl.gradcheck(dl.Sequential(bn, bn), rng.standard_normal((2, 2, 3, 3)) * 2 + 1)
    assert set(errors) == {"x", "0.gamma", "0.beta"}
    # 8x8 -> 4x4 -> 2x2 through one pooling layer; distinct values far apart: no ties
    x = rng.permutation(2 * 2 * 8 * 8).reshape(2, 2, 8, 8).astype(float) / 10
    dl.gradcheck(dl.Sequential(MaxPool2d(2), MaxPool2d(2)), x)  # two layers, for reference
    pool = MaxPool2d(2)
    dl.gradcheck(dl.Sequential(pool, pool), x)
    avg = AvgPool2d(2)
    dl.gradcheck(dl.Sequential(avg, avg), rng.standard_normal((2, 2, 8, 8)))


@pytest.mark.parametrize("name", CONV_MAKERS)
def test_backward_without_forward_raises(name):
    make, shape = CONV_MAKERS[name]
    layer = make()
    x = np.random.default_rng(0).standard_normal(shape)
    with inference_mode():
        dout = np.ones(layer(x).shape)  # a forward in inference mode keeps nothing
    with pytest.raises(RuntimeError, match=RAISE_UNMATCHED):
        layer.backward(dout)
    layer(x)
    layer.backward(dout)
    with pytest.raises(RuntimeError, match=RAISE_UNMATCHED):
        layer.backward(dout)


def test_batchnorm2d_state_dict_holds_the_running_statistics():
    rng = np.random.default_rng(14)
    bn = BatchNorm2d(3, momentum=0.5)
    bn(rng.standard_normal((2, 3, 4, 4)) * 3 + 2)
    state = bn.state_dict()
    assert set(state) == {"gamma", "beta", "running_mean", "running_var"}
    fresh = BatchNorm2d(3).load_state_dict(state)
    np.testing.assert_array_equal(fresh.running_mean, bn.running_mean)
    np.testing.assert_array_equal(fresh.running_var, bn.running_var)
    x = rng.standard_normal((1, 3, 2, 2))
    np.testing.assert_array_equal(fresh.eval()(x), bn.eval()(x))


# =============================================================================
# Dilation, groups, depthwise and 1x1 convolutions
# =============================================================================
GROUPED = [  # (C_in, C_out, kernel, stride, padding, dilation, groups)
    (4, 6, 3, 1, 1, 1, 2),
    (3, 3, 3, 1, 1, 1, 3),  # depthwise
    (3, 6, (3, 2), (2, 1), (1, 0), 1, 3),  # depthwise with a channel multiplier of 2
    (2, 3, 3, 1, 2, 2, 1),  # dilated
    (4, 4, (3, 2), (1, 2), (2, 1), (2, 3), 2),  # dilated and grouped
    (5, 2, 1, 1, 0, 1, 1),  # 1x1: channel mixing at every pixel
    (4, 8, 2, 2, 0, 3, 4),
]


@pytest.mark.parametrize("case", GROUPED, ids=[str(c) for c in GROUPED])
def test_dilated_and_grouped_conv2d_against_torch(case):
    torch = _torch()
    F = torch.nn.functional
    c_in, c_out, k, s, p, d, g = case
    rng = np.random.default_rng(len(str(case)))
    layer = Conv2d(c_in, c_out, k, stride=s, padding=p, dilation=d, groups=g, rng=3)
    assert layer.params["W"].shape[:2] == (c_out, c_in // g)
    layer.params["b"][:] = rng.standard_normal(c_out)
    x = rng.standard_normal((2, c_in, 9, 8))
    y = layer(x)
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(dy)
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(layer.params["W"], requires_grad=True)
    bt = torch.tensor(layer.params["b"], requires_grad=True)
    yt = F.conv2d(xt, wt, bt, stride=s, padding=p, dilation=d, groups=g)
    yt.backward(torch.tensor(dy))
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.grads["W"], wt.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.grads["b"], bt.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("case", GROUPED[:5], ids=[str(c) for c in GROUPED[:5]])
def test_dilated_and_grouped_conv2d_gradcheck(case):
    c_in, c_out, k, s, p, d, g = case
    layer = Conv2d(c_in, c_out, k, stride=s, padding=p, dilation=d, groups=g, init="he", rng=2)
    errors = dl.gradcheck(layer, np.random.default_rng(0).standard_normal((2, c_in, 7, 6)))
    assert set(errors) == {"x", "W", "b"}


def test_depthwise_conv_keeps_channels_apart_and_1x1_only_mixes_them():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 6, 6))
    dw = Conv2d(3, 3, 3, padding=1, groups=3, bias=False, rng=0)
    x2 = x.copy()
    x2[:, 1] += 1.0  # change channel 1 only
    diff = np.abs(dw(x2) - dw(x)).max(axis=(0, 2, 3))
    assert diff[1] > 0 and diff[0] == diff[2] == 0.0
    pw = Conv2d(3, 4, 1, bias=False, rng=0)  # a 1x1 convolution is a matrix product per pixel
    expected = np.einsum("oc,nchw->nohw", pw.params["W"][:, :, 0, 0], x)
    np.testing.assert_allclose(pw(x), expected, rtol=1e-13)


def test_dilation_spreads_the_taps():
    """A dilated kernel is the plain kernel with d - 1 zeros between its taps."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 2, 9, 9))
    dil = Conv2d(2, 3, 3, dilation=2, rng=0)
    wide = Conv2d(2, 3, 5, rng=0)
    wide.params["W"][...] = 0.0
    wide.params["W"][:, :, ::2, ::2] = dil.params["W"]
    np.testing.assert_allclose(dil(x), wide(x), rtol=1e-13)
    assert conv_output_size(9, 3, 1, 0, dilation=2) == dil(x).shape[-1] == 5


def test_grouped_conv_bad_arguments():
    with pytest.raises(ValueError, match="groups=2 must divide in_channels=3"):
        Conv2d(3, 4, 3, groups=2, rng=0)
    with pytest.raises(ValueError, match="must divide"):
        Conv2d(4, 3, 3, groups=2, rng=0)
    with pytest.raises(ValueError):
        Conv2d(4, 4, 3, dilation=0, rng=0)
    with pytest.raises(ValueError, match="larger than the padded input"):
        Conv2d(1, 1, 3, dilation=3, rng=0)(np.zeros((1, 1, 6, 6)))
    with pytest.raises(ValueError, match="dilated by 3"):
        conv_output_size(6, 3, dilation=3)
