"""Attention (dlbook.attention): DotProductAttention and AdditiveAttention of chapter 8.

Gradients by central differences (float64) for every input and parameter,
with and without masks of every accepted shape and with and without an
upstream gradient on the weights; equality with the same computation in
PyTorch (autograd) and with ``F.scaled_dot_product_attention``; properties
of the weights and the masks; the module protocol (tape, inference mode,
accumulation); clear errors for bad input; float32 in, float32 out.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import dlbook as dl
from dlbook.attention import AdditiveAttention, DotProductAttention, attention_mask

N, TQ, TK, D, DV, HEADS = 2, 3, 4, 5, 3, 2
DQ, DK, HID = 3, 5, 6  # additive attention: queries and keys of different sizes
KINDS = ["scaled", "unscaled", "additive"]


def _randn(seed, *shape):
    return np.random.default_rng(seed).standard_normal(shape)


def _make(kind, rng=0, dtype=np.float64):
    if kind == "additive":
        return AdditiveAttention(DQ, DK, HID, rng=rng, dtype=dtype)
    return DotProductAttention(scaled=(kind == "scaled"))


def _inputs(kind, seed, lead=(N,), tq=TQ, tk=TK):
    """``(q, k, v)`` of the sizes ``kind`` expects, with leading axes ``lead``."""
    dq, dk = (DQ, DK) if kind == "additive" else (D, D)
    return (
        _randn(seed, *lead, tq, dq),
        _randn(seed + 1, *lead, tk, dk),
        _randn(seed + 2, *lead, tk, DV),
    )


def _mask(seed, shape):
    """A random boolean mask of ``shape`` with at least one True in every row (last axis)."""
    gen = np.random.default_rng(seed)
    m = gen.random(shape) < 0.6
    np.put_along_axis(m, gen.integers(0, shape[-1], shape[:-1] + (1,)), True, axis=-1)
    return m


def _full_mask(mask, shape):
    """The mask as the layer reads it, broadcast to the scores' ``shape``."""
    return np.broadcast_to(attention_mask(mask, shape), shape)


MASK_SHAPES = {  # name -> shape, for scores (N, Tq, Tk)
    "none": None,
    "key padding (N, Tk)": (N, TK),
    "shared (Tq, Tk)": (TQ, TK),
    "per sequence (N, Tq, Tk)": (N, TQ, TK),
    "key padding (N, 1, Tk)": (N, 1, TK),
    "shared (1, Tq, Tk)": (1, TQ, TK),
}


def _named_mask(name, seed=7):
    """A random mask of the shape ``MASK_SHAPES[name]`` (``None`` for ``"none"``)."""
    shape = MASK_SHAPES[name]
    return None if shape is None else _mask(seed, shape)


# -- gradients by central differences -----------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("mask_name", list(MASK_SHAPES))
@pytest.mark.parametrize("dweights", ["given", "None"])
def test_gradcheck_inputs_and_parameters(kind, mask_name, dweights):
    """dq, dk, dv and every parameter gradient match central differences, for every mask shape.

    ``given``: gradcheck weights both outputs (random upstream gradients on
    the context and on the weights); ``None``: the context only.
    """
    layer = _make(kind, rng=1)
    q, k, v = _inputs(kind, 2)
    mask = _named_mask(mask_name)
    options = {} if mask is None else {"mask": mask}
    douts = None if dweights == "given" else (_randn(5, N, TQ, DV), None)
    errors = dl.gradcheck(layer, q, k, v, douts=douts, options=options)
    assert set(errors) == {"x0", "x1", "x2"} | set(layer.params)
    expected_params = {"W_q", "W_k", "v"} if kind == "additive" else set()
    assert set(layer.params) == expected_params


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "mask_shape", [None, (N, TK), (TQ, TK), (N, TQ, TK), (N, HEADS, TQ, TK), (N, 1, 1, TK)]
)
def test_gradcheck_with_a_heads_axis(kind, mask_shape):
    """q (N, h, Tq, d): gradients right, and every mask form broadcasts over the heads."""
    layer = _make(kind, rng=3)
    q, k, v = _inputs(kind, 4, lead=(N, HEADS))
    options = {} if mask_shape is None else {"mask": _mask(8, mask_shape)}
    errors = dl.gradcheck(layer, q, k, v, options=options)
    assert {"x0", "x1", "x2"} <= set(errors)


@pytest.mark.parametrize("kind", KINDS)
def test_gradcheck_with_a_fully_masked_query(kind):
    """A query that may attend to nothing: gradients are still right (and zero for that query)."""
    layer = _make(kind, rng=5)
    q, k, v = _inputs(kind, 6)
    mask = _mask(9, (N, TQ, TK))
    mask[1, 2] = False
    dl.gradcheck(layer, q, k, v, options={"mask": mask})


@pytest.mark.parametrize("kind", KINDS)
def test_gradcheck_passes_both_outputs_and_the_weights_gradient_counts(kind):
    """By default gradcheck sends an upstream gradient for the weights too, and it is used.

    Checked three ways: backward receives a non-None ``dweights``; a check
    with an upstream gradient on the weights only passes; and the input
    gradients then differ from zero, so the ``dweights`` path is exercised.
    """
    layer = _make(kind, rng=6)
    q, k, v = _inputs(kind, 7)
    seen = []
    original = layer.backward

    def spy(dcontext, dweights=None):
        seen.append((dcontext is not None, dweights is not None))
        return original(dcontext, dweights)

    layer.backward = spy
    dl.gradcheck(layer, q, k, v)
    assert seen == [(True, True)]
    # the weights' gradient alone: the context gets zero upstream gradient
    dweights = _randn(10, N, TQ, TK)
    dl.gradcheck(layer, q, k, v, douts=(np.zeros((N, TQ, DV)), dweights))
    layer.zero_grad()
    layer(q, k, v)
    dq, dk, dv = original(None, dweights)
    assert np.abs(dq).max() > 1e-3 and np.abs(dk).max() > 1e-3
    assert not dv.any()  # v enters only the context


# -- against PyTorch ------------------------------------------------------------------------------------


def _t(torch, a, grad=False):
    return torch.tensor(a, dtype=torch.float64, requires_grad=grad)


def _torch_attention(torch, scores, vt, mask, dc, dw):
    """Weights and context from torch scores (masked_fill -inf, softmax), and backward from (dc, dw)."""
    if mask is not None:
        scores = scores.masked_fill(~torch.tensor(mask), float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    context = weights @ vt
    ((context * _t(torch, dc)).sum() + (weights * _t(torch, dw)).sum()).backward()
    return context, weights


def _assert_close(ours, theirs, rtol=1e-12, atol=1e-13):
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else theirs
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol)


@pytest.mark.parametrize("scaled", [True, False])
@pytest.mark.parametrize("mask_name", list(MASK_SHAPES))
def test_dot_product_equals_torch_autograd(torch, scaled, mask_name):
    """Context, weights, dq, dk, dv equal torch ops with autograd (softmax(q k^T / sqrt(d)) v)."""
    layer = DotProductAttention(scaled=scaled)
    q, k, v = _inputs("scaled", 20)
    mask = _named_mask(mask_name, seed=21)
    dc, dw = _randn(22, N, TQ, DV), _randn(23, N, TQ, TK)
    qt, kt, vt = (_t(torch, a, grad=True) for a in (q, k, v))
    scores = qt @ kt.transpose(-1, -2)
    if scaled:
        scores = scores / math.sqrt(D)
    full = None if mask is None else _full_mask(mask, (N, TQ, TK))
    context_t, weights_t = _torch_attention(torch, scores, vt, full, dc, dw)
    context, weights = layer(q, k, v, mask=mask)
    dq, dk, dv = layer.backward(dc, dw)
    _assert_close(context, context_t)
    _assert_close(weights, weights_t)
    _assert_close(dq, qt.grad, rtol=1e-10, atol=1e-12)
    _assert_close(dk, kt.grad, rtol=1e-10, atol=1e-12)
    _assert_close(dv, vt.grad, rtol=1e-10, atol=1e-12)


# our mask -> the same mask in the form torch's attn_mask broadcasts (NumPy's right-aligned rules)
SDPA_MASKS = {
    "key padding (N, Tk)": (lambda m: m[:, None, :], (N, TK)),
    "shared (Tq, Tk)": (lambda m: m, (TQ, TK)),
    "per sequence (N, Tq, Tk)": (lambda m: m, (N, TQ, TK)),
}
SDPA_MASKS_HEADS = {
    "key padding (N, Tk)": (lambda m: m[:, None, None, :], (N, TK)),
    "shared (Tq, Tk)": (lambda m: m, (TQ, TK)),
    "per sequence (N, Tq, Tk)": (lambda m: m[:, None], (N, TQ, TK)),
    "full (N, h, Tq, Tk)": (lambda m: m, (N, HEADS, TQ, TK)),
}


def _check_against_sdpa(torch, lead, mask, torch_mask, is_causal=False, tq=TQ):
    layer = DotProductAttention()
    q, k, v = _inputs("scaled", 30, lead=lead, tq=tq)
    dc = _randn(31, *lead, tq, DV)
    qt, kt, vt = (_t(torch, a, grad=True) for a in (q, k, v))
    F = torch.nn.functional
    attn_mask = None if torch_mask is None else torch.tensor(torch_mask)
    out = F.scaled_dot_product_attention(qt, kt, vt, attn_mask=attn_mask, is_causal=is_causal)
    (out * _t(torch, dc)).sum().backward()
    context, _ = layer(q, k, v, mask=mask)
    dq, dk, dv = layer.backward(dc)
    _assert_close(context, out)
    _assert_close(dq, qt.grad, rtol=1e-10, atol=1e-12)
    _assert_close(dk, kt.grad, rtol=1e-10, atol=1e-12)
    _assert_close(dv, vt.grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("mask_name", list(SDPA_MASKS))
def test_dot_product_equals_torch_sdpa_with_a_boolean_mask(torch, mask_name):
    """Same context and gradients as F.scaled_dot_product_attention; True = attend on both sides."""
    to_torch, shape = SDPA_MASKS[mask_name]
    mask = _mask(32, shape)
    _check_against_sdpa(torch, (N,), mask, to_torch(mask))


@pytest.mark.parametrize("mask_name", list(SDPA_MASKS_HEADS))
def test_dot_product_equals_torch_sdpa_with_heads(torch, mask_name):
    """With a heads axis, (N, Tk) and (N, Tq, Tk) masks mean the same for every head, as documented."""
    to_torch, shape = SDPA_MASKS_HEADS[mask_name]
    mask = _mask(33, shape)
    _check_against_sdpa(torch, (N, HEADS), mask, to_torch(mask))


def test_dot_product_equals_torch_sdpa_on_a_fully_masked_query(torch):
    """PyTorch's SDPA also gives a zero context (not NaN) for a query that may attend to nothing."""
    mask = _mask(34, (N, TQ, TK))
    mask[1, 0] = False
    _check_against_sdpa(torch, (N,), mask, mask)


@pytest.mark.parametrize("lead", [(N,), (N, HEADS)])
def test_dot_product_with_a_causal_mask_equals_torch_is_causal(torch, lead):
    """A (T, T) lower-triangular mask is is_causal=True: position i sees positions 0..i."""
    causal = np.tril(np.ones((TK, TK), dtype=bool))
    _check_against_sdpa(torch, lead, causal, None, is_causal=True, tq=TK)


@pytest.mark.parametrize("mask_name", list(MASK_SHAPES))
def test_additive_equals_torch_autograd(torch, mask_name):
    """Context, weights, dq, dk, dv and dW_q, dW_k, dv (parameter) equal the formula in torch ops."""
    layer = _make("additive", rng=40)
    q, k, v = _inputs("additive", 41)
    mask = _named_mask(mask_name, seed=42)
    dc, dw = _randn(43, N, TQ, DV), _randn(44, N, TQ, TK)
    qt, kt, vt = (_t(torch, a, grad=True) for a in (q, k, v))
    Wq, Wk, wv = (_t(torch, layer.params[n], grad=True) for n in ("W_q", "W_k", "v"))
    hidden = torch.tanh((qt @ Wq)[:, :, None, :] + (kt @ Wk)[:, None, :, :])  # (N, Tq, Tk, H)
    scores = hidden @ wv
    full = None if mask is None else _full_mask(mask, (N, TQ, TK))
    context_t, weights_t = _torch_attention(torch, scores, vt, full, dc, dw)
    context, weights = layer(q, k, v, mask=mask)
    dq, dk, dv = layer.backward(dc, dw)
    _assert_close(context, context_t)
    _assert_close(weights, weights_t)
    for ours, theirs in ((dq, qt), (dk, kt), (dv, vt)):
        _assert_close(ours, theirs.grad, rtol=1e-10, atol=1e-12)
    for name, theirs in (("W_q", Wq), ("W_k", Wk), ("v", wv)):
        _assert_close(layer.grads[name], theirs.grad, rtol=1e-10, atol=1e-12)


# -- properties -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_weights_sum_to_one_over_attended_keys_and_are_zero_elsewhere(kind, seed):
    layer = _make(kind, rng=seed)
    q, k, v = _inputs(kind, 50 + seed)
    mask = _mask(60 + seed, (N, TQ, TK))
    assert not mask.all()  # some keys are hidden, so the test can fail
    context, weights = layer(q, k, v, mask=mask)
    assert np.all(weights[~mask] == 0.0)  # exactly 0, not merely small
    assert np.all(weights[mask] > 0.0)
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, rtol=1e-14)
    np.testing.assert_allclose(context, weights @ v, rtol=1e-14)
    # a padded key's value does not matter at all
    pad = np.arange(TK) < np.array([TK - 1, 2])[:, None]  # (N, Tk): sequences of 3 and 2 keys
    context = layer(q, k, v, mask=pad)[0]
    v2 = v + 1e3 * ~pad[..., None]  # change the values of the padded keys only
    np.testing.assert_array_equal(layer(q, k, v2, mask=pad)[0], context)


@pytest.mark.parametrize("kind", KINDS)
def test_a_fully_masked_query_gets_zero_weights_context_and_gradients(kind):
    """No NaN (PyTorch's masked_fill(-inf) + softmax gives NaN there): zeros, and it contributes nothing."""
    layer = _make(kind, rng=8)
    q, k, v = _inputs(kind, 70)
    mask = _mask(71, (N, TQ, TK))
    mask[0, 1] = False  # query 1 of sequence 0 may attend to nothing
    dc, dw = _randn(72, N, TQ, DV), _randn(73, N, TQ, TK)
    with np.errstate(all="raise"):
        context, weights = layer(q, k, v, mask=mask)
        dq, dk, dv = layer.backward(dc, dw)
    assert not weights[0, 1].any() and not context[0, 1].any()
    assert not dq[0, 1].any()
    grads = {n: g.copy() for n, g in layer.grads.items()}
    # that query's upstream gradients change nothing: k, v and the parameters get nothing from it
    dc2, dw2 = dc.copy(), dw.copy()
    dc2[0, 1] = 0.0
    dw2[0, 1] = 0.0
    layer.zero_grad()
    layer(q, k, v, mask=mask)
    dq2, dk2, dv2 = layer.backward(dc2, dw2)
    np.testing.assert_array_equal(dq2, dq)
    np.testing.assert_allclose(dk2, dk, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(dv2, dv, rtol=1e-14, atol=1e-15)
    for n, g in layer.grads.items():
        np.testing.assert_allclose(g, grads[n], rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("kind", KINDS)
def test_permuting_keys_and_values_together_leaves_the_context_unchanged(kind):
    """Attention is a weighted set average: the order of the key-value pairs does not matter."""
    layer = _make(kind, rng=9)
    q, k, v = _inputs(kind, 80)
    mask = _mask(81, (N, TK))
    perm = np.array([2, 0, 3, 1])
    context, weights = layer(q, k, v, mask=mask)
    context_p, weights_p = layer(q, k[:, perm], v[:, perm], mask=mask[:, perm])
    np.testing.assert_allclose(context_p, context, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(weights_p, weights[..., perm], rtol=1e-13, atol=1e-15)
    # and the pairing matters: permuting the values alone changes the context
    assert not np.allclose(layer(q, k, v[:, perm], mask=mask)[0], context)


def test_scaled_and_unscaled_scores_differ_by_sqrt_d():
    """softmax(q k^T / sqrt(d)) vs softmax(q k^T): the scaled layer equals the unscaled one on q / sqrt(d)."""
    q, k, v = _inputs("scaled", 90)
    scaled, unscaled = DotProductAttention(), DotProductAttention(scaled=False)
    scores = q @ k.transpose(0, 2, 1)
    _, w_scaled = scaled(q, k, v)
    _, w_unscaled = unscaled(q, k, v)
    np.testing.assert_allclose(w_scaled, dl.numerics.softmax(scores / math.sqrt(D)), rtol=1e-14)
    np.testing.assert_allclose(w_unscaled, dl.numerics.softmax(scores), rtol=1e-14)
    np.testing.assert_allclose(w_scaled, unscaled(q / math.sqrt(D), k, v)[1], rtol=1e-14)
    # log-weights are scores up to a per-query constant: their spreads differ by the factor sqrt(d)
    spread = np.ptp(np.log(w_unscaled), axis=-1) / np.ptp(np.log(w_scaled), axis=-1)
    np.testing.assert_allclose(spread, math.sqrt(D), rtol=1e-12)
    assert repr(scaled) == "DotProductAttention(scaled=True)"


def test_large_scores_stay_finite_without_warnings():
    """Scores of about 1e4 neither overflow nor warn (the softmax subtracts the maximum)."""
    with np.errstate(all="raise"):
        for kind in ("unscaled", "additive"):
            layer = _make(kind)
            q, k, v = _inputs(kind, 91)
            if kind == "additive":  # tanh bounds the hidden units: make the output weights large
                layer.params["v"][...] *= 1e4
            else:
                q, k = 1e2 * q, 1e2 * k
            context, weights = layer(q, k, v, mask=_mask(92, (N, TK)))
            assert np.all(np.isfinite(context)) and np.all(np.isfinite(weights))
            assert np.all(weights.max(axis=-1) > 0.99)  # saturated: each query attends to one key
            dq, dk, dv = layer.backward(np.ones_like(context))
            assert all(np.all(np.isfinite(g)) for g in (dq, dk, dv))


# -- masks --------------------------------------------------------------------------------------------------


def test_mask_forms_are_read_by_name():
    """(N, Tk) is key padding, (Tq, Tk) is shared, (N, Tq, Tk) is per sequence, also over heads."""
    pad, shared, per_seq = _mask(100, (N, TK)), _mask(101, (TQ, TK)), _mask(102, (N, TQ, TK))
    for lead in [(N,), (N, HEADS)]:
        shape = lead + (TQ, TK)
        for n in range(N):
            for i in range(TQ):
                idx = (n,) + (0,) * (len(lead) - 1) + (i,)
                np.testing.assert_array_equal(_full_mask(pad, shape)[idx], pad[n])
                np.testing.assert_array_equal(_full_mask(shared, shape)[idx], shared[i])
                np.testing.assert_array_equal(_full_mask(per_seq, shape)[idx], per_seq[n, i])
        np.testing.assert_array_equal(_full_mask(pad, shape), _full_mask(pad[:, None, :], shape))
        np.testing.assert_array_equal(_full_mask(shared, shape), _full_mask(shared[None], shape))
    # the layer gives the same result for the equivalent forms
    layer = DotProductAttention()
    q, k, v = _inputs("scaled", 103, lead=(N, HEADS))
    a = layer(q, k, v, mask=pad)
    b = layer(q, k, v, mask=pad[:, None, None, :])
    c = layer(q, k, v, mask=np.broadcast_to(pad[:, None, None, :], (N, HEADS, TQ, TK)))
    for x, y in ((a, b), (a, c)):
        np.testing.assert_array_equal(x[0], y[0])
        np.testing.assert_array_equal(x[1], y[1])


def test_an_ambiguous_2d_mask_is_refused_and_the_3d_forms_work():
    """With N == Tq a 2-D mask could be key padding or a shared mask: refused, with the way out named."""
    layer = DotProductAttention()
    q, k, v = _inputs("scaled", 110, lead=(3,), tq=3)  # N = Tq = 3
    mask = _mask(111, (3, TK))
    with pytest.raises(ValueError, match=r"ambiguous when N == Tq == 3.*\(N, 1, Tk\).*\(1, Tq, Tk\)"):
        layer(q, k, v, mask=mask)
    pad, _ = layer(q, k, v, mask=mask[:, None, :])
    shared, _ = layer(q, k, v, mask=mask[None])
    assert not np.allclose(pad, shared)  # the two readings differ, so refusing to guess matters
    # a 1-row mask means the same either way and is accepted
    one = mask[:1]
    np.testing.assert_array_equal(layer(q, k, v, mask=one)[0], layer(q, k, v, mask=one[None])[0])


# -- the module protocol ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_one_layer_applied_twice_backpropagates_each_call(kind):
    """Two forwards, two backwards in reverse order: each backward gets its own forward's values."""
    layer = _make(kind, rng=11)
    a, b = _inputs(kind, 120), _inputs(kind, 130)
    da, db = _randn(140, N, TQ, DV), _randn(141, N, TQ, DV)
    separate, param_sum = [], {n: np.zeros_like(p) for n, p in layer.params.items()}
    for x, dx in ((a, da), (b, db)):
        layer.zero_grad()
        layer(*x)
        separate.append(layer.backward(dx))
        for n, g in layer.grads.items():
            param_sum[n] += g
    layer.zero_grad()
    layer(*a)
    layer(*b)
    for ours, expected in zip(
        layer.backward(db) + layer.backward(da), separate[1] + separate[0], strict=True
    ):
        np.testing.assert_allclose(ours, expected, rtol=1e-13, atol=1e-15)
    for n, g in layer.grads.items():  # the parameter gradients of both calls add up
        np.testing.assert_allclose(g, param_sum[n], rtol=1e-13, atol=1e-15)
    with pytest.raises(RuntimeError, match="called more often than forward"):
        layer.backward(da)


def test_additive_gradients_accumulate_and_are_not_zero():
    layer = _make("additive", rng=12)
    q, k, v = _inputs("additive", 150)
    dc = _randn(151, N, TQ, DV)
    layer.zero_grad()
    layer(q, k, v)
    layer.backward(dc)
    once = {n: g.copy() for n, g in layer.grads.items()}
    assert all(np.abs(g).max() > 1e-6 for g in once.values())
    layer(q, k, v)
    layer.backward(dc)
    for n, g in layer.grads.items():
        np.testing.assert_allclose(g, 2 * once[n], rtol=1e-13)


@pytest.mark.parametrize("kind", KINDS)
def test_inference_mode_keeps_nothing_and_inputs_are_not_mutated(kind):
    layer = _make(kind, rng=13)
    q, k, v = _inputs(kind, 160)
    mask = _mask(161, (N, TK))
    copies = [a.copy() for a in (q, k, v, mask)]
    with dl.inference_mode():
        context, weights = layer(q, k, v, mask=mask)
    assert not layer._tape
    with pytest.raises(RuntimeError, match="called more often than forward"):
        layer.backward(np.ones_like(context))
    layer(q, k, v, mask=mask)
    dc, dw = _randn(162, N, TQ, DV), _randn(163, N, TQ, TK)
    dcopies = [dc.copy(), dw.copy()]
    layer.backward(dc, dw)
    for a, b in zip((q, k, v, mask, dc, dw), copies + dcopies, strict=True):
        np.testing.assert_array_equal(a, b)


def test_additive_initialisation_state_dict_and_repr():
    """W_q, W_k, v uniform on +-1/sqrt(fan_in) like Linear, seeded; state_dict round trip."""
    a, b, c = (AdditiveAttention(16, 32, 64, rng=s) for s in (3, 3, 4))
    bounds = {"W_q": 1 / math.sqrt(16), "W_k": 1 / math.sqrt(32), "v": 1 / math.sqrt(64)}
    shapes = {"W_q": (16, 64), "W_k": (32, 64), "v": (64,)}
    for n, p in a.params.items():
        assert p.shape == shapes[n] and p.dtype == np.float64
        assert bounds[n] * 0.8 < np.abs(p).max() <= bounds[n]
        np.testing.assert_array_equal(p, b.params[n])
        assert not np.array_equal(p, c.params[n])
    assert a.num_parameters() == 16 * 64 + 32 * 64 + 64
    state = a.state_dict()
    c.load_state_dict(state)
    for n, p in c.params.items():
        np.testing.assert_array_equal(p, state[n])
    assert repr(a) == "AdditiveAttention(16, 32, hidden=64)"
    assert DotProductAttention().num_parameters() == 0 and DotProductAttention().state_dict() == {}


# -- bad input -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_bad_input_raises_clear_errors(kind):
    layer = _make(kind, rng=14)
    q, k, v = _inputs(kind, 170)
    name = type(layer).__name__
    with pytest.raises(ValueError, match=r"k and v must have the same number of keys Tk.*\(2, 5, 3\)"):
        layer(q, k, np.zeros((N, TK + 1, DV)))
    with pytest.raises(ValueError, match=r"same leading axes"):
        layer(q, k[:1], v[:1])
    with pytest.raises(ValueError, match=rf"{name} expects q of shape \(N, T, D\)"):
        layer(q[0], k, v)
    with pytest.raises(ValueError, match="needs at least one key"):
        layer(q, k[:, :0], v[:, :0])
    with pytest.raises(TypeError, match="float32 or float64"):
        layer(q.astype(np.int64), k, v)
    with pytest.raises(TypeError, match=r"q, k and v must have the same dtype, got float32, float64"):
        layer(q.astype(np.float32), k, v)
    # masks: the wrong shape, the wrong type
    with pytest.raises(
        ValueError, match=r"mask of shape \(2, 5\) does not fit; expected \(N, Tk\) = \(2, 4\)"
    ):
        layer(q, k, v, mask=np.ones((N, TK + 1), dtype=bool))
    with pytest.raises(
        ValueError, match=r"mask of shape \(2, 3, 3\) does not fit.*\(N, Tq, Tk\) = \(2, 3, 4\)"
    ):
        layer(q, k, v, mask=np.ones((N, TQ, TQ), dtype=bool))
    with pytest.raises(ValueError, match=r"mask must be 2-D or 3-D: .*got shape \(4,\)"):
        layer(q, k, v, mask=np.ones(TK, dtype=bool))
    with pytest.raises(TypeError, match=r"mask must be a boolean array \(True = attend\), got dtype int64"):
        layer(q, k, v, mask=np.ones((N, TK), dtype=np.int64))
    with pytest.raises(TypeError, match=r"mask must be a boolean array \(True = attend\), got dtype float64"):
        layer(q, k, v, mask=np.ones((N, TK)))
    with pytest.raises(TypeError, match=r"mask must be a boolean array \(True = attend\), got str"):
        layer(q, k, v, mask="causal")
    # upstream gradients of the wrong shape
    layer(q, k, v)
    with pytest.raises(ValueError, match=rf"{name}.backward: dcontext must have .* shape \(2, 3, 3\)"):
        layer.backward(np.zeros((N, TQ, DV + 1)))
    layer(q, k, v)
    with pytest.raises(ValueError, match=rf"{name}.backward: dweights must have .* shape \(2, 3, 4\)"):
        layer.backward(np.zeros((N, TQ, DV)), np.zeros((N, TK, TQ)))


def test_mismatched_feature_sizes_raise():
    q, k, v = _inputs("scaled", 180)
    with pytest.raises(
        ValueError, match=r"q and k must have the same feature size d.*\(2, 3, 5\).*\(2, 4, 6\)"
    ):
        DotProductAttention()(q, np.zeros((N, TK, D + 1)), v)
    layer = _make("additive")
    qa, ka, va = _inputs("additive", 181)
    with pytest.raises(ValueError, match=r"expects q with query_size = 3 features.*got shape \(2, 3, 5\)"):
        layer(np.zeros((N, TQ, DK)), ka, va)
    with pytest.raises(ValueError, match=r"expects k with key_size = 5 features.*got shape \(2, 4, 3\)"):
        layer(qa, np.zeros((N, TK, DQ)), va)


def test_bad_constructor_arguments():
    with pytest.raises(TypeError, match="scaled must be True or False"):
        DotProductAttention(scaled="yes")
    with pytest.raises(ValueError, match="hidden must be a positive integer"):
        AdditiveAttention(3, 3, 0, rng=0)
    with pytest.raises(ValueError, match="no hidden global RNG"):
        AdditiveAttention(3, 3, 4, rng=None)
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        AdditiveAttention(3, 3, 4, rng=0, dtype=np.int32)


# -- dtypes ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_float32_in_float32_out(kind):
    """float32 inputs (and a float32 layer): outputs, input and parameter gradients stay float32."""
    layer = _make(kind, rng=15, dtype=np.float32)
    q, k, v = (a.astype(np.float32) for a in _inputs(kind, 190))
    mask = _mask(191, (N, TK))
    context, weights = layer(q, k, v, mask=mask)
    assert context.dtype == np.float32 and weights.dtype == np.float32
    grads = layer.backward(np.ones_like(context), np.ones_like(weights))
    assert all(g.dtype == np.float32 for g in grads)
    assert all(g.dtype == np.float32 for g in layer.grads.values())
    ref = _make(kind, rng=15)  # the same weights in float64
    ref_context, _ = ref(*(a.astype(np.float64) for a in (q, k, v)), mask=mask)
    np.testing.assert_allclose(context, ref_context, rtol=1e-5, atol=1e-6)
    # a float32 batch through a float64 layer is float32 too, as with Linear
    if kind == "additive":
        assert _make(kind, rng=15)(q, k, v)[0].dtype == np.float32
