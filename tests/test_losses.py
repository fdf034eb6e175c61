"""Losses (dlbook.losses): values and gradients against formulas, central differences and PyTorch."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dlbook as dl
from dlbook import losses
from dlbook.core import numerical_gradient


def _reference_ce(z, y, eps=0.0, ignore_index=None):
    """Cross-entropy written the slow, obvious way: explicit smoothed targets and a loop over positions."""
    k = z.shape[-1]
    z2, y2 = z.reshape(-1, k), y.reshape(-1)
    total, count = 0.0, 0
    for zn, yn in zip(z2, y2, strict=True):
        if ignore_index is not None and yn == ignore_index:
            continue
        logp = zn - zn.max() - math.log(np.exp(zn - zn.max()).sum())
        q = np.full(k, eps / k)
        q[yn] += 1 - eps
        total -= float(q @ logp)
        count += 1
    return total / count


CE_CASES = [
    ((7, 4), 0.0, None),
    ((7, 4), 0.1, None),
    ((6, 5), 0.3, -100),
    ((3, 5, 6), 0.0, -100),
    ((3, 5, 6), 0.1, 2),  # a real class ignored
    ((2, 4, 3, 5), 0.3, -1),
    ((9, 2), 1.0, None),
]


def _labels(gen, shape, k, ignore_index):
    y = gen.integers(0, k, shape[:-1])
    if ignore_index is not None:
        y[gen.random(y.shape) < 0.3] = ignore_index
        y.reshape(-1)[0] = (ignore_index + 1) % k  # at least one position is scored
    return y


@pytest.mark.parametrize("shape,eps,ignore_index", CE_CASES)
def test_cross_entropy_against_torch(shape, eps, ignore_index):
    torch = pytest.importorskip("torch", reason="PyTorch not installed: reference comparison skipped")
    gen = np.random.default_rng(len(shape) * 10 + int(eps * 10))
    k = shape[-1]
    z = gen.standard_normal(shape) * 3
    y = _labels(gen, shape, k, ignore_index)
    zt = torch.tensor(z, requires_grad=True)
    logits_t = zt if zt.ndim == 2 else zt.movedim(-1, 1)  # torch wants the classes on axis 1
    ref = torch.nn.functional.cross_entropy(
        logits_t, torch.tensor(y), label_smoothing=eps,
        ignore_index=-100 if ignore_index is None else ignore_index,
    )
    ref.backward()
    loss, dz = losses.softmax_cross_entropy(z, y, label_smoothing=eps, ignore_index=ignore_index)
    assert loss == pytest.approx(ref.item(), rel=1e-13, abs=1e-14)
    assert dz.shape == z.shape and dz.dtype == np.float64
    np.testing.assert_allclose(dz, zt.grad.numpy(), rtol=1e-12, atol=1e-15)
    assert loss == pytest.approx(_reference_ce(z, y, eps, ignore_index), rel=1e-12)


@pytest.mark.parametrize("eps,ignore_index", [(0.0, None), (0.2, None), (0.3, 1), (0.1, -100)])
def test_cross_entropy_gradient_by_central_differences(eps, ignore_index):
    gen = np.random.default_rng(3)
    z = gen.standard_normal((2, 3, 4))
    y = gen.integers(0, 4, (2, 3))
    if ignore_index is not None:
        y[0, 1] = y[1, 2] = ignore_index
    _, dz = losses.softmax_cross_entropy(z, y, eps, ignore_index)
    num = numerical_gradient(lambda: losses.softmax_cross_entropy(z, y, eps, ignore_index)[0], z)
    np.testing.assert_allclose(dz, num, rtol=1e-6, atol=1e-10)
    if ignore_index is not None:
        assert not dz[0, 1].any() and not dz[1, 2].any()  # ignored positions get no gradient


def test_cross_entropy_ignores_positions_exactly():
    gen = np.random.default_rng(0)
    z = gen.standard_normal((10, 3))
    y = gen.integers(0, 3, 10)
    y_masked = y.copy()
    y_masked[[2, 5, 7]] = -100
    keep = y_masked != -100
    loss, dz = losses.softmax_cross_entropy(z, y_masked, 0.1, ignore_index=-100)
    loss_kept, dz_kept = losses.softmax_cross_entropy(z[keep], y[keep], 0.1)
    assert loss == pytest.approx(loss_kept, rel=1e-15)
    np.testing.assert_allclose(dz[keep], dz_kept, rtol=1e-15)
    assert not dz[~keep].any()


def test_all_ignored_gives_zero_loss_and_gradient():
    z = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)
    loss, dz = losses.softmax_cross_entropy(z, np.full((2, 3), 7), ignore_index=7)
    assert loss == 0.0 and dz.shape == z.shape and dz.dtype == np.float32 and not dz.any()
    loss, dz = losses.softmax_cross_entropy(np.zeros((0, 4)), np.zeros(0, dtype=int))
    assert loss == 0.0 and dz.shape == (0, 4)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_cross_entropy_huge_logits_stay_finite(dtype, eps):
    z = np.array([[1e4, 0.0, -1e4], [-1e4, 1e4, 0.0], [3e4, 3e4, -3e4]], dtype=dtype)
    y = np.array([2, 1, 0])
    loss, dz = losses.softmax_cross_entropy(z, y, label_smoothing=eps)
    # -log p_k for each row and class k
    nll = np.array([[0.0, 1e4, 2e4], [2e4, 0.0, 1e4], [math.log(2), math.log(2), 6e4 + math.log(2)]])
    expected = np.mean([(1 - eps) * nll[n, y[n]] + eps * nll[n].mean() for n in range(3)])
    assert loss == pytest.approx(expected, rel=1e-6 if dtype == np.float32 else 1e-12)
    assert dz.dtype == dtype and np.all(np.isfinite(dz))
    np.testing.assert_allclose(dz.sum(axis=1), 0.0, atol=1e-6)


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), shift=st.floats(-1e3, 1e3), eps=st.sampled_from([0.0, 0.1, 0.3]))
def test_cross_entropy_properties(seed, shift, eps):
    gen = np.random.default_rng(seed)
    z = gen.standard_normal((5, 6)) * 4
    y = gen.integers(0, 6, 5)
    loss, dz = losses.softmax_cross_entropy(z, y, eps)
    # a constant added to a row's logits changes nothing
    loss_shifted, dz_shifted = losses.softmax_cross_entropy(z + shift, y, eps)
    assert loss_shifted == pytest.approx(loss, rel=1e-9, abs=1e-9)
    np.testing.assert_allclose(dz_shifted, dz, atol=1e-10)
    # the gradient of each row sums to 0 (p and q are both distributions), loss >= the entropy of q
    np.testing.assert_allclose(dz.sum(axis=1), 0.0, atol=1e-15)
    q = np.full(6, eps / 6)
    q[0] += 1 - eps
    q_entropy = -float(np.sum(q[q > 0] * np.log(q[q > 0])))
    assert loss >= q_entropy - 1e-12


def test_cross_entropy_keeps_float32():
    z = np.random.default_rng(0).standard_normal((4, 3, 5)).astype(np.float32)
    y = np.random.default_rng(1).integers(0, 5, (4, 3))
    loss, dz = losses.softmax_cross_entropy(z, y, 0.1, ignore_index=0)
    assert isinstance(loss, float) and dz.dtype == np.float32
    loss64, dz64 = losses.softmax_cross_entropy(z.astype(np.float64), y, 0.1, ignore_index=0)
    assert loss == pytest.approx(loss64, rel=1e-6)
    np.testing.assert_allclose(dz, dz64, atol=1e-7)


def test_cross_entropy_bad_input():
    z = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\], got values in \[0, 4\]"):
        losses.softmax_cross_entropy(z, np.array([0, 1, 4]))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\] \(or equal ignore_index=-100\)"):
        losses.softmax_cross_entropy(z, np.array([-100, -1, 2]), ignore_index=-100)
    losses.softmax_cross_entropy(z, np.array([-100, 3, 2]), ignore_index=-100)  # fine
    with pytest.raises(ValueError, match=r"shape \(3,\) to match logits of shape \(3, 4\), got y of shape"):
        losses.softmax_cross_entropy(z, np.array([0, 1]))
    with pytest.raises(ValueError, match=r"shape \(2, 5\) to match logits of shape \(2, 5, 4\)"):
        losses.softmax_cross_entropy(np.zeros((2, 5, 4)), np.zeros((5, 2), dtype=int))
    with pytest.raises(TypeError, match="labels y must be integers, got dtype float64"):
        losses.softmax_cross_entropy(z, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(TypeError, match="labels y must be integers, got dtype bool"):
        losses.softmax_cross_entropy(z, np.array([True, False, True]))
    with pytest.raises(ValueError, match=r"label_smoothing must lie in \[0, 1\]"):
        losses.softmax_cross_entropy(z, np.array([0, 1, 2]), label_smoothing=1.5)
    with pytest.raises(TypeError, match="ignore_index must be an int or None"):
        losses.softmax_cross_entropy(z, np.array([0, 1, 2]), ignore_index=1.0)
    with pytest.raises(ValueError, match=r"logits must have shape \(N, K\)"):
        losses.softmax_cross_entropy(np.zeros(4), np.array(1))
    with pytest.raises(TypeError, match="float32 or float64"):
        losses.softmax_cross_entropy(np.zeros((3, 4), dtype=int), np.array([0, 1, 2]))


def test_accuracy():
    z = np.array([[0.1, 0.9, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 5.0], [1.0, 1.0, 0.0]])
    assert losses.accuracy(z, np.array([1, 0, 0, 0])) == 0.75  # the tie in row 3 goes to class 0
    assert losses.accuracy(z, np.array([1, 0, 0, 1])) == 0.5
    assert losses.accuracy(z, np.array([1, 0, -1, 0]), ignore_index=-1) == 1.0
    z3 = np.stack([z, z[::-1]])  # (2, 4, 3)
    assert losses.accuracy(z3, np.array([[1, 0, 2, 0], [0, 0, 0, 0]])) == 6 / 8
    with pytest.raises(ValueError, match="every label is ignore_index"):
        losses.accuracy(z, np.full(4, -1), ignore_index=-1)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\]"):
        losses.accuracy(z, np.array([1, 0, 3, 0]))
    with pytest.raises(ValueError, match="to match logits"):
        losses.accuracy(z, np.array([1, 0]))


@pytest.mark.parametrize("pos_weight", [None, 3.0, "per_class"])
def test_binary_cross_entropy_against_torch(pos_weight):
    torch = pytest.importorskip("torch", reason="PyTorch not installed: reference comparison skipped")
    gen = np.random.default_rng(5)
    z = gen.standard_normal((6, 4)) * 4
    t = gen.random((6, 4))  # soft targets are allowed
    w = gen.uniform(0.5, 4, 4) if pos_weight == "per_class" else pos_weight
    zt = torch.tensor(z, requires_grad=True)
    ref = torch.nn.functional.binary_cross_entropy_with_logits(
        zt, torch.tensor(t), pos_weight=None if w is None else torch.as_tensor(w, dtype=torch.float64)
    )
    ref.backward()
    loss, dz = losses.binary_cross_entropy(z, t, pos_weight=w)
    assert loss == pytest.approx(ref.item(), rel=1e-13)
    np.testing.assert_allclose(dz, zt.grad.numpy(), rtol=1e-12, atol=1e-16)
    num = numerical_gradient(lambda: losses.binary_cross_entropy(z, t, pos_weight=w)[0], z)
    np.testing.assert_allclose(dz, num, rtol=1e-6, atol=1e-10)


def test_binary_cross_entropy_pos_weight_formula_and_errors():
    z = np.array([1e4, -1e4, 0.0])
    t = np.array([0.0, 1.0, 1.0])
    loss, dz = losses.binary_cross_entropy(z, t, pos_weight=2.0)
    assert loss == pytest.approx((1e4 + 2 * 1e4 + 2 * math.log(2)) / 3, rel=1e-12)
    np.testing.assert_allclose(dz, np.array([1.0, -2.0, 2 * 0.5 - 2]) / 3, atol=1e-15)
    with pytest.raises(ValueError, match=r"pos_weight of shape \(2,\) does not broadcast"):
        losses.binary_cross_entropy(np.zeros((3, 4)), np.zeros((3, 4)), pos_weight=np.ones(2))
    with pytest.raises(TypeError, match="pos_weight must be a number"):
        losses.binary_cross_entropy(np.zeros(3), np.zeros(3), pos_weight="2")
    z32 = np.zeros((2, 3), dtype=np.float32)
    assert losses.binary_cross_entropy(z32, z32, pos_weight=np.ones(3))[1].dtype == np.float32


def test_softmax_and_log_softmax_against_torch():
    torch = pytest.importorskip("torch", reason="PyTorch not installed: reference comparison skipped")
    z = np.random.default_rng(0).standard_normal((3, 4, 5)) * 10
    for axis in (-1, 1, 0):
        zt = torch.tensor(z)
        np.testing.assert_allclose(losses.log_softmax(z, axis), torch.log_softmax(zt, dim=axis).numpy(),
                                   rtol=1e-13, atol=1e-13)
        np.testing.assert_allclose(losses.softmax(z, axis), torch.softmax(zt, dim=axis).numpy(),
                                   rtol=1e-13, atol=1e-300)
    big = np.array([[1e4, -1e4, 0.0]], dtype=np.float32)
    p = losses.softmax(big)
    assert p.dtype == np.float32 and p[0, 0] == 1.0 and np.all(np.isfinite(losses.log_softmax(big)))


def test_softmax_and_log_softmax_are_the_numerics_functions():
    from dlbook import numerics

    # one home for the stable functions; chapter 3 still calls them as dl.losses.*
    assert losses.softmax is numerics.softmax and losses.log_softmax is numerics.log_softmax
    assert {"softmax", "log_softmax"} <= set(losses.__all__)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_losses_raise_no_floating_point_error_at_extremes(dtype):
    # overflow, underflow and invalid operations all raise here: e^{-2e4} must be 0 quietly
    z = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 88.8], [-710.0, 710.0, 0.0]], dtype=dtype)
    y = np.array([1, 1, 0])
    t = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 1.0, 0.0]], dtype=dtype)
    with np.errstate(all="raise"):
        for eps in (0.0, 0.1):
            loss, dz = losses.softmax_cross_entropy(z, y, label_smoothing=eps)
            assert math.isfinite(loss) and dz.dtype == dtype and np.all(np.isfinite(dz))
        for w in (None, 2.0):
            loss, dz = losses.binary_cross_entropy(z, t, pos_weight=w)
            assert math.isfinite(loss) and dz.dtype == dtype and np.all(np.isfinite(dz))
        assert np.all(np.isfinite(losses.log_softmax(z))) and losses.softmax(z).dtype == dtype


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_binary_cross_entropy_is_softplus_minus_t_z(dtype):
    from dlbook import numerics

    gen = np.random.default_rng(6)
    z = (gen.standard_normal((5, 4)) * 6).astype(dtype)
    t = gen.random((5, 4)).astype(dtype)
    loss, dz = losses.binary_cross_entropy(z, t)
    z64, t64 = z.astype(np.float64), t.astype(np.float64)
    expected = float(np.mean(numerics.softplus(z64) - t64 * z64))
    assert loss == pytest.approx(expected, rel=1e-6 if dtype == np.float32 else 1e-14)
    assert dz.dtype == dtype
    rtol = 1e-6 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(dz, (numerics.sigmoid(z64) - t64) / z.size, rtol=rtol)


# -- basics (moved here from test_core.py) ------------------------------------

def test_softmax_cross_entropy_value_and_gradient():
    gen = np.random.default_rng(0)
    z = gen.standard_normal((6, 4))
    y = gen.integers(0, 4, 6)
    loss, dz = dl.losses.softmax_cross_entropy(z, y)
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    assert loss == pytest.approx(-np.mean(np.log(p[np.arange(6), y])), rel=1e-12)
    num = numerical_gradient(lambda: dl.losses.softmax_cross_entropy(z, y)[0], z)
    np.testing.assert_allclose(dz, num, rtol=1e-6, atol=1e-9)


def test_softmax_cross_entropy_is_stable_for_huge_logits():
    z = np.array([[1e4, 0.0, -1e4], [-1e4, 1e4, 0.0]])
    loss, dz = dl.losses.softmax_cross_entropy(z, np.array([2, 1]))
    assert np.isfinite(loss) and loss == pytest.approx(1e4, rel=1e-12)
    assert np.all(np.isfinite(dz))


def test_binary_cross_entropy_value_gradient_and_stability():
    gen = np.random.default_rng(1)
    z = gen.standard_normal(7) * 3
    t = (gen.random(7) > 0.5).astype(float)
    loss, dz = dl.losses.binary_cross_entropy(z, t)
    s = 1 / (1 + np.exp(-z))
    assert loss == pytest.approx(-np.mean(t * np.log(s) + (1 - t) * np.log(1 - s)), rel=1e-12)
    np.testing.assert_allclose(dz, numerical_gradient(lambda: dl.losses.binary_cross_entropy(z, t)[0], z),
                               rtol=1e-6, atol=1e-10)
    big, dbig = dl.losses.binary_cross_entropy(np.array([1e4, -1e4]), np.array([0.0, 1.0]))
    assert big == pytest.approx(1e4) and np.all(np.isfinite(dbig))


def test_mse_gradient():
    p, t = np.random.default_rng(2).standard_normal((2, 3, 4))
    loss, dp = dl.losses.mse(p, t)
    assert loss == pytest.approx(np.mean((p - t) ** 2))
    np.testing.assert_allclose(dp, numerical_gradient(lambda: dl.losses.mse(p, t)[0], p), rtol=1e-6)


def test_loss_bad_input():
    z = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\]"):
        dl.losses.softmax_cross_entropy(z, np.array([0, 1, 4]))
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        dl.losses.softmax_cross_entropy(z, np.array([0, 1]))
    with pytest.raises(TypeError, match="integers"):
        dl.losses.softmax_cross_entropy(z, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match="shapes differ"):
        dl.losses.mse(np.zeros(3), np.zeros(4))


def test_losses_against_torch():
    torch = pytest.importorskip("torch", reason="PyTorch not installed: reference comparison skipped")
    gen = np.random.default_rng(3)
    z = gen.standard_normal((8, 5))
    y = gen.integers(0, 5, 8)
    zt = torch.tensor(z, requires_grad=True)
    ref = torch.nn.functional.cross_entropy(zt, torch.tensor(y))
    ref.backward()
    loss, dz = dl.losses.softmax_cross_entropy(z, y)
    assert loss == pytest.approx(ref.item(), abs=1e-12)
    np.testing.assert_allclose(dz, zt.grad.numpy(), atol=1e-12)
    t = (gen.random((8, 5)) > 0.5).astype(float)
    zt.grad = None
    ref = torch.nn.functional.binary_cross_entropy_with_logits(zt, torch.tensor(t))
    ref.backward()
    loss, dz = dl.losses.binary_cross_entropy(z, t)
    assert loss == pytest.approx(ref.item(), abs=1e-12)
    np.testing.assert_allclose(dz, zt.grad.numpy(), atol=1e-12)
