"""Convolution and pooling (dlbook.conv) and BatchNorm2d (dlbook.layers).

Values against the loop definition and against PyTorch's ``conv2d``,
``max_pool2d``, ``avg_pool2d`` and ``batch_norm`` in float64 on random shapes,
strides and paddings; gradients by central differences (``dl.gradcheck``);
im2col/col2im as an adjoint pair; bad input with clear errors.
"""

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
from dlbook.layers import BatchNorm2d


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
    y = layer(x)
    dy = rng.standard_normal(y.shape)
    layer.zero_grad()
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
    y = layer(x)
    assert y.dtype == np.float32
    dy = np.ones_like(y)
    layer.zero_grad()
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
    layer = Conv2d(3, 8, 5, padding=1)
    with pytest.raises(ValueError, match="4-D"):
        layer(np.zeros((3, 8, 8)))
    with pytest.raises(ValueError, match="expected 3 input channels"):
        layer(np.zeros((1, 4, 8, 8)))
    with pytest.raises(ValueError, match="larger than the padded input"):
        layer(np.zeros((1, 3, 2, 2)))
    with pytest.raises(RuntimeError, match="before forward"):
        Conv2d(1, 1, 3).backward(np.zeros((1, 1, 1, 1)))
    y = layer(np.zeros((1, 3, 6, 6)))
    with pytest.raises(ValueError, match="output's shape"):
        layer.backward(np.zeros(y.shape[:-1] + (y.shape[-1] + 1,)))
    with pytest.raises(ValueError):
        Conv2d(0, 8, 3)
    with pytest.raises(ValueError):
        Conv2d(3, 8, (3, 3, 3))
    with pytest.raises(ValueError, match="unknown init"):
        Conv2d(3, 8, 3, init="nonsense")


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
    with pytest.raises(ValueError, match="shape"):
        pool.backward(np.zeros((3, 5)))


def test_pooling_bad_input():
    with pytest.raises(ValueError, match="at most half"):
        MaxPool2d(2, padding=2)
    with pytest.raises(ValueError, match="4-D"):
        MaxPool2d(2)(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="larger than the padded input"):
        AvgPool2d(5)(np.zeros((1, 1, 3, 3)))
    with pytest.raises(RuntimeError, match="before forward"):
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
