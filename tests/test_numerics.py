"""Tests of dlbook.numerics: the stable sigmoid, softplus, log-sum-exp, softmax and masked softmax.

Values are checked against the formulas written out directly (for moderate
inputs), against scipy.special and against PyTorch in float64 (skipped when
torch is absent); extremes under ``np.errstate(all="raise")``, so any
overflow, underflow or invalid operation fails; gradients of the masked
softmax by central differences (``dl.core.gradcheck_fn``) and torch.autograd.
"""

import math

import numpy as np
import pytest
import scipy.special as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import dlbook as dl
from dlbook import losses
from dlbook import numerics as nx

DTYPES = [np.float32, np.float64]
EXTREME = np.array([-1e4, -1e3, -710.0, -88.8, -20.0, -1e-30, 0.0, 1e-30, 20.0, 88.8, 710.0, 1e3, 1e4])
MODERATE = np.linspace(-30, 30, 1201)


def _rel_tol(dtype):
    return 2e-6 if dtype == np.float32 else 1e-14


# ---------------------------------------------------------------------------
# Docstrings: purpose, formula, shapes, chapter
# ---------------------------------------------------------------------------
CHAPTER = {
    "sigmoid": "Chapter 1",
    "softplus": "Chapter 1",
    "logsumexp": "Chapter 3",
    "log_softmax": "Chapter 3",
    "softmax": "Chapter 3",
    "masked_softmax": "Chapter 8",
    "masked_softmax_backward": "Chapter 8",
}


@pytest.mark.parametrize("name", sorted(CHAPTER))
def test_docstrings_give_formula_shapes_and_chapter(name):
    doc = getattr(nx, name).__doc__
    assert doc.splitlines()[0].strip().endswith(".")
    assert ".. math::" in doc and "Shapes" in doc and CHAPTER[name] in doc
    assert name in nx.__all__


def test_the_masking_approach_is_documented_once():
    assert nx.MASKED_SCORE == -math.inf
    assert "Masking" in nx.__doc__ and "fully masked" in nx.__doc__
    assert "MASKED_SCORE" in nx.masked_softmax.__doc__


def test_losses_reexports_the_numerics_functions():
    assert losses.softmax is nx.softmax and losses.log_softmax is nx.log_softmax


# ---------------------------------------------------------------------------
# Elementwise: sigmoid and softplus
# ---------------------------------------------------------------------------
def test_sigmoid_and_softplus_against_the_formulas_and_scipy():
    x = MODERATE
    np.testing.assert_allclose(nx.sigmoid(x), 1.0 / (1.0 + np.exp(-x)), rtol=1e-15, atol=0)
    np.testing.assert_allclose(nx.sigmoid(x), sp.expit(x), rtol=1e-15, atol=0)
    np.testing.assert_allclose(nx.softplus(x), np.log1p(np.exp(x)), rtol=1e-15, atol=0)
    np.testing.assert_allclose(nx.softplus(x), np.logaddexp(0.0, x), rtol=1e-15, atol=0)
    # softplus' = sigmoid, and softplus(x) - softplus(-x) = x
    h = 1e-6
    np.testing.assert_allclose((nx.softplus(x + h) - nx.softplus(x - h)) / (2 * h), nx.sigmoid(x), atol=1e-9)
    np.testing.assert_allclose(nx.softplus(x) - nx.softplus(-x), x, atol=1e-13)


def test_sigmoid_and_softplus_against_torch_float64():
    torch = pytest.importorskip("torch", reason="comparison with PyTorch needs torch")
    x = np.concatenate([np.linspace(-700, 700, 14001), EXTREME])
    t = torch.tensor(x)
    np.testing.assert_allclose(nx.sigmoid(x), torch.sigmoid(t).numpy(), rtol=1e-15, atol=0)
    # torch's softplus is linear above its threshold; a huge threshold gives the exact function
    ref = torch.nn.functional.softplus(t, beta=1.0, threshold=1e6).numpy()
    finite = np.abs(x) <= 700
    np.testing.assert_allclose(nx.softplus(x)[finite], ref[finite], rtol=1e-15, atol=0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_and_softplus_keep_the_dtype_and_are_accurate(dtype):
    x = MODERATE.astype(dtype)
    exact_sig = sp.expit(x.astype(np.float64))
    exact_sp = np.logaddexp(0.0, x.astype(np.float64))
    for fn, exact in ((nx.sigmoid, exact_sig), (nx.softplus, exact_sp)):
        y = fn(x)
        assert y.dtype == dtype and y.shape == x.shape
        np.testing.assert_allclose(y, exact, rtol=_rel_tol(dtype), atol=0)  # relative, on both tails
    assert nx.sigmoid(dtype(0.0)).shape == () and nx.sigmoid(dtype(0.0)).dtype == dtype
    assert nx.softplus(np.array(0.0, dtype)) == pytest.approx(math.log(2), rel=1e-7)
    assert nx.sigmoid(0.0) == 0.5 and nx.sigmoid([0.0, 0.0]).dtype == np.float64


@pytest.mark.parametrize("dtype", DTYPES)
def test_elementwise_extremes_without_floating_point_errors(dtype):
    x = EXTREME.astype(dtype)
    with np.errstate(all="raise"):
        s, p = nx.sigmoid(x), nx.softplus(x)
    assert s.dtype == p.dtype == dtype
    assert np.all(np.isfinite(s)) and np.all(np.isfinite(p))
    assert s[0] == 0.0 and s[-1] == 1.0 and np.all(np.diff(s) >= 0)
    assert p[0] == 0.0 and p[-1] == dtype(1e4) and np.all(p >= 0)
    np.testing.assert_allclose(p[x > 30], x[x > 30], rtol=1e-15)


def test_elementwise_inputs_are_checked_and_not_mutated():
    for fn in (nx.sigmoid, nx.softplus, nx.softmax, nx.log_softmax, nx.logsumexp):
        with pytest.raises(TypeError, match="float32 or float64"):
            fn(np.arange(3))
        x = np.linspace(-3, 3, 7)
        x0 = x.copy()
        fn(x)
        np.testing.assert_array_equal(x, x0)


# ---------------------------------------------------------------------------
# Reductions: logsumexp, log_softmax, softmax
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("axis", [-1, 0, 1])
@pytest.mark.parametrize("keepdims", [False, True])
def test_logsumexp_against_scipy(axis, keepdims):
    z = np.random.default_rng(0).standard_normal((3, 4, 5)) * 20
    ours = nx.logsumexp(z, axis=axis, keepdims=keepdims)
    ref = sp.logsumexp(z, axis=axis, keepdims=keepdims)
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, rtol=1e-15)
    small = z[:1, :1, :3] / 20
    np.testing.assert_allclose(nx.logsumexp(small), np.log(np.exp(small).sum(-1)), rtol=1e-15)


@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_softmax_and_log_softmax_against_scipy_and_formula(axis):
    z = np.random.default_rng(1).standard_normal((3, 4, 5)) * 10
    p, lp = nx.softmax(z, axis), nx.log_softmax(z, axis)
    np.testing.assert_allclose(p, sp.softmax(z, axis=axis), rtol=1e-15, atol=0)
    np.testing.assert_allclose(lp, sp.log_softmax(z, axis=axis), rtol=1e-14, atol=1e-13)
    moderate = z / 10
    direct = np.exp(moderate) / np.exp(moderate).sum(axis=axis, keepdims=True)
    np.testing.assert_allclose(nx.softmax(moderate, axis), direct, rtol=1e-14)
    np.testing.assert_allclose(p.sum(axis=axis), 1.0, rtol=1e-15)
    np.testing.assert_allclose(np.exp(lp), p, rtol=1e-13)
    np.testing.assert_allclose(lp, z - nx.logsumexp(z, axis, keepdims=True), rtol=1e-13, atol=1e-12)


def test_reductions_against_torch_float64():
    torch = pytest.importorskip("torch", reason="comparison with PyTorch needs torch")
    z = np.random.default_rng(2).standard_normal((2, 3, 6)) * 30
    t = torch.tensor(z)
    for axis in (-1, 1):
        np.testing.assert_allclose(
            nx.softmax(z, axis), torch.softmax(t, dim=axis).numpy(), rtol=1e-13, atol=1e-300
        )
        np.testing.assert_allclose(
            nx.log_softmax(z, axis), torch.log_softmax(t, dim=axis).numpy(), rtol=1e-14, atol=1e-13
        )
        np.testing.assert_allclose(nx.logsumexp(z, axis), torch.logsumexp(t, dim=axis).numpy(), rtol=1e-15)


@pytest.mark.parametrize("dtype", DTYPES)
def test_reductions_at_extremes_without_floating_point_errors(dtype):
    z = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4], [1e3, 1e3, -710.0], [88.8, -88.8, 0.0]], dtype=dtype)
    with np.errstate(all="raise"):
        lse = nx.logsumexp(z)
        lp = nx.log_softmax(z)
        p = nx.softmax(z)
    for a in (lse, lp, p):
        assert a.dtype == dtype and np.all(np.isfinite(a))
    np.testing.assert_allclose(lse, [1e4, -1e4 + math.log(3), 1e3 + math.log(2), 88.8], rtol=1e-6)
    np.testing.assert_array_equal(p[0], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(p[1], 1 / 3, rtol=1e-6)
    np.testing.assert_array_equal(lp[0], np.array([0.0, -2e4, -1e4], dtype=dtype))
    np.testing.assert_allclose(p.sum(axis=-1), 1.0, rtol=1e-6)


def test_logsumexp_of_minus_infinity_is_minus_infinity():
    # as SciPy: a row that is all -inf has log-sum-exp -inf, without a warning
    z = np.array([[-np.inf, -np.inf], [-np.inf, 0.0]])
    with np.errstate(all="raise"):
        out = nx.logsumexp(z)
        lp = nx.log_softmax(z[1:])
    np.testing.assert_array_equal(out, sp.logsumexp(z, axis=-1))
    np.testing.assert_array_equal(lp, [[-np.inf, 0.0]])


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), shift=st.floats(-1e3, 1e3))
def test_shift_invariance(seed, shift):
    z = np.random.default_rng(seed).standard_normal((4, 7)) * 5
    np.testing.assert_allclose(nx.softmax(z + shift), nx.softmax(z), rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(nx.logsumexp(z + shift), nx.logsumexp(z) + shift, rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("dtype", DTYPES)
def test_float32_in_float32_out_for_every_function(dtype):
    z = np.random.default_rng(3).standard_normal((2, 3, 4)).astype(dtype)
    mask = np.ones((2, 3, 4), dtype=bool)
    outs = [nx.sigmoid(z), nx.softplus(z), nx.logsumexp(z), nx.log_softmax(z), nx.softmax(z),
            nx.masked_softmax(z, mask), nx.masked_softmax_backward(nx.softmax(z), z)]  # fmt: skip
    for out in outs:
        assert out.dtype == dtype
    ref = [nx.sigmoid(z.astype(np.float64)), nx.softmax(z.astype(np.float64))]
    np.testing.assert_allclose(outs[0], ref[0], rtol=_rel_tol(dtype))
    np.testing.assert_allclose(outs[4], ref[1], rtol=_rel_tol(dtype))


# ---------------------------------------------------------------------------
# Masked softmax
# ---------------------------------------------------------------------------
def _attention_case(seed=4, n=2, h=3, tq=4, tk=5):
    gen = np.random.default_rng(seed)
    scores = gen.standard_normal((n, h, tq, tk)) * 3
    mask = gen.random((n, h, tq, tk)) < 0.6
    mask[0, 0, 1] = False  # a fully masked row
    mask[1, 2, 3] = False  # another
    mask[1, 0, 0] = True  # and an unmasked one
    return scores, mask


def test_masked_softmax_against_torch_masked_fill():
    torch = pytest.importorskip("torch", reason="comparison with PyTorch needs torch")
    scores, mask = _attention_case()
    p = nx.masked_softmax(scores, mask)
    ref = torch.softmax(torch.tensor(scores).masked_fill(~torch.tensor(mask), float("-inf")), dim=-1).numpy()
    rows = mask.any(axis=-1)
    np.testing.assert_allclose(p[rows], ref[rows], rtol=1e-14, atol=1e-300)
    assert np.all(np.isnan(ref[~rows]))  # torch gives NaN on a fully masked row ...
    assert not np.any(p[~rows])  # ... this gives zeros


def test_masked_softmax_values():
    scores, mask = _attention_case()
    p = nx.masked_softmax(scores, mask)
    assert p.shape == scores.shape and p.dtype == scores.dtype
    assert not np.any(p[~mask])  # exactly 0 where masked
    rows = mask.any(axis=-1)
    np.testing.assert_allclose(p.sum(axis=-1)[rows], 1.0, rtol=1e-15)
    np.testing.assert_array_equal(p.sum(axis=-1)[~rows], 0.0)
    # on the attended positions: the softmax of those positions alone
    for idx in np.ndindex(*scores.shape[:-1]):
        keep = mask[idx]
        if keep.any():
            np.testing.assert_allclose(p[idx][keep], sp.softmax(scores[idx][keep]), rtol=1e-15)
    # an all-True mask gives the softmax itself, bit for bit
    np.testing.assert_array_equal(nx.masked_softmax(scores, np.ones_like(mask)), nx.softmax(scores))
    np.testing.assert_array_equal(nx.masked_softmax(scores, np.True_), nx.softmax(scores))


def test_masked_scores_do_not_matter_whatever_their_value():
    scores, mask = _attention_case()
    wild = scores.copy()
    wild[~mask] = np.random.default_rng(5).choice([1e308, -1e308, np.inf, np.nan, 1e4], size=(~mask).sum())
    with np.errstate(all="raise"):
        np.testing.assert_array_equal(nx.masked_softmax(wild, mask), nx.masked_softmax(scores, mask))


@pytest.mark.parametrize("dtype", DTYPES)
def test_masked_softmax_extremes_without_floating_point_errors(dtype):
    scores = np.array([[1e4, -1e4, 0.0, 5.0], [-1e4, -1e4, 1e4, 1e4], [3.0, 1.0, 2.0, 0.0]], dtype=dtype)
    mask = np.array([[True, True, False, True], [True, True, False, False], [False, False, False, False]])
    with np.errstate(all="raise"):
        p = nx.masked_softmax(scores, mask)
        g = nx.masked_softmax_backward(p, np.ones_like(p))
    assert p.dtype == g.dtype == dtype and np.all(np.isfinite(p)) and np.all(np.isfinite(g))
    np.testing.assert_array_equal(p, np.array([[1, 0, 0, 0], [0.5, 0.5, 0, 0], [0, 0, 0, 0]], dtype=dtype))


def test_mask_broadcasting_padding_and_causal():
    gen = np.random.default_rng(6)
    n, h, tq, tk = 3, 2, 4, 5
    scores = gen.standard_normal((n, h, tq, tk))
    lengths = np.array([5, 2, 0])  # the last sequence is all padding
    pad = (np.arange(tk)[None, :] < lengths[:, None])[:, None, None, :]  # (N, 1, 1, T_k)
    full = np.broadcast_to(pad, scores.shape).copy()
    np.testing.assert_array_equal(nx.masked_softmax(scores, pad), nx.masked_softmax(scores, full))
    p = nx.masked_softmax(scores, pad)
    assert not p[2].any() and not p[1, ..., 2:].any()
    causal = np.tril(np.ones((tq, tk), dtype=bool), k=tk - tq)  # (T_q, T_k)
    both = pad & causal
    assert both.shape == (n, 1, tq, tk)
    np.testing.assert_array_equal(
        nx.masked_softmax(scores, both), nx.masked_softmax(scores, np.broadcast_to(both, scores.shape))
    )
    # the mask may sit on another axis
    p0 = nx.masked_softmax(scores, np.ones((n, 1, 1, 1), dtype=bool), axis=0)
    np.testing.assert_array_equal(p0, nx.softmax(scores, axis=0))


def test_mask_errors_are_clear():
    scores = np.zeros((2, 3, 4, 5))
    with pytest.raises(TypeError, match="boolean"):
        nx.masked_softmax(scores, np.ones((2, 1, 1, 5)))  # 0/1 floats
    with pytest.raises(TypeError, match="boolean.*int64"):
        nx.masked_softmax(scores, np.ones((2, 1, 1, 5), dtype=np.int64))
    with pytest.raises(TypeError, match="boolean"):
        nx.masked_softmax(scores, None)
    with pytest.raises(ValueError, match=r"mask of shape \(2, 1, 1, 4\) does not broadcast.*\(2, 3, 4, 5\)"):
        nx.masked_softmax(scores, np.ones((2, 1, 1, 4), dtype=bool))
    with pytest.raises(ValueError, match="does not broadcast"):
        nx.masked_softmax(scores, np.ones((7, 2, 3, 4, 5), dtype=bool))  # would grow the scores
    with pytest.raises(TypeError, match="float32 or float64"):
        nx.masked_softmax(np.zeros((2, 3), dtype=int), np.ones((2, 3), dtype=bool))
    with pytest.raises(ValueError, match="shape of probs"):
        nx.masked_softmax_backward(np.zeros((2, 3)), np.zeros((3, 2)))


def _masked_loss(scores, mask, weights):
    """A scalar of the masked softmax and its gradient, for gradcheck_fn."""
    p = nx.masked_softmax(scores, mask)
    return float(np.sum(p * weights)), nx.masked_softmax_backward(p, weights)


def test_masked_softmax_backward_by_central_differences():
    scores, mask = _attention_case(seed=7)
    weights = np.random.default_rng(8).standard_normal(scores.shape)
    dl.core.gradcheck_fn(_masked_loss, scores, mask=mask, weights=weights)
    _, grad = _masked_loss(scores, mask, weights)
    assert not np.any(grad[~mask])  # masked positions and fully masked rows: zero gradient
    # broadcast mask, and the plain softmax (the same backward)
    pad = np.array([True, True, False, True, False])[None, None, None, :]
    dl.core.gradcheck_fn(_masked_loss, scores, mask=pad, weights=weights)
    dl.core.gradcheck_fn(_masked_loss, scores, mask=np.True_, weights=weights)


def test_masked_softmax_backward_against_torch():
    torch = pytest.importorskip("torch", reason="comparison with PyTorch needs torch")
    scores, mask = _attention_case(seed=9)
    mask[:, :, :, 0] = True  # torch has NaN gradients on fully masked rows: keep every row alive
    dprobs = np.random.default_rng(10).standard_normal(scores.shape)
    t = torch.tensor(scores, requires_grad=True)
    p_t = torch.softmax(t.masked_fill(~torch.tensor(mask), float("-inf")), dim=-1)
    (g_t,) = torch.autograd.grad(p_t, t, torch.tensor(dprobs))
    p = nx.masked_softmax(scores, mask)
    np.testing.assert_allclose(nx.masked_softmax_backward(p, dprobs), g_t.numpy(), rtol=1e-12, atol=1e-15)
