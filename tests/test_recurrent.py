"""Recurrent layers (dlbook.recurrent), Embedding and the recurrent models of chapter 6.

Gradients by central differences (float64) for every cell and sequence layer,
every input, initial state and parameter; equality with PyTorch's RNN, LSTM
and GRU (layers and cells) with the weights copied in; truncated
backpropagation through time in ``CharLM``; clear errors for bad input.
"""

from __future__ import annotations

import numpy as np
import pytest

import dlbook as dl
from dlbook.layers import Embedding
from dlbook.models import CNNLSTM, CharLM, RecurrentClassifier, sequence_classifier
from dlbook.recurrent import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell

N, T, D, H = 2, 4, 3, 3
KINDS = ["rnn", "lstm", "gru"]
LAYERS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}
CELLS = {"rnn": RNNCell, "lstm": LSTMCell, "gru": GRUCell}


def _randn(seed, *shape):
    return np.random.default_rng(seed).standard_normal(shape)


def _state(kind, seed, n=N, h=H):
    """A non-zero initial state: ``h`` or ``(h, c)`` for the LSTM."""
    if kind == "lstm":
        return (0.5 * _randn(seed, n, h), 0.5 * _randn(seed + 1, n, h))
    return 0.5 * _randn(seed, n, h)


def _param_names(layer):
    return set(layer.params)


# -- gradients by central differences ---------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_cell_gradcheck_input_state_and_every_parameter(kind):
    """One step: dx, d(initial state) and every weight gradient match central differences."""
    cell = CELLS[kind](D, H, rng=1)
    errors = dl.gradcheck(cell, _randn(2, N, D), _state(kind, 3))
    state_names = {"x1.0", "x1.1"} if kind == "lstm" else {"x1"}
    assert set(errors) == {"x0"} | state_names | _param_names(cell)
    assert _param_names(cell) == ({"W_x", "W_h", "b_x", "b_h"} if kind == "gru" else {"W_x", "W_h", "b"})


@pytest.mark.parametrize("kind", KINDS)
def test_cell_gradcheck_without_a_state(kind):
    """Omitting the state means zeros; the input and parameter gradients are still right."""
    cell = CELLS[kind](D, H, rng=4)
    errors = dl.gradcheck(cell, _randn(5, N, D))
    assert set(errors) == {"x"} | _param_names(cell)


def test_lstm_cell_backward_with_one_upstream_gradient():
    """LSTMCell.backward accepts dh only or dc only (the other None = zero)."""
    cell = LSTMCell(D, H, rng=6)
    x, state = _randn(7, N, D), _state("lstm", 8)
    for douts in [(_randn(9, N, H), None), (None, _randn(10, N, H))]:
        errors = dl.gradcheck(cell, x, state, douts=douts)
        assert {"x0", "x1.0", "x1.1", "W_x"} <= set(errors)
    cell(x, state)
    dx, (dh, dc) = cell.backward(None, None)
    assert not dx.any() and not dh.any() and not dc.any()


@pytest.mark.parametrize("kind", KINDS)
def test_layer_gradcheck_inputs_initial_state_and_every_parameter(kind):
    """Backpropagation through time: dxs, d(initial state) and every parameter, T = 4 steps."""
    layer = LAYERS[kind](D, H, rng=11)
    errors = dl.gradcheck(layer, _randn(12, N, T, D), _state(kind, 13))
    state_names = {"x1.0", "x1.1"} if kind == "lstm" else {"x1"}
    assert set(errors) == {"x0"} | state_names | _param_names(layer)
    prefix = {"cell.W_x", "cell.W_h"}
    assert _param_names(layer) == prefix | ({"cell.b_x", "cell.b_h"} if kind == "gru" else {"cell.b"})


@pytest.mark.parametrize("kind", KINDS)
def test_layer_gradcheck_without_an_initial_state(kind):
    layer = LAYERS[kind](D, H, rng=14)
    errors = dl.gradcheck(layer, _randn(15, N, T, D))
    assert set(errors) == {"x"} | _param_names(layer)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("which", ["final state only", "outputs only"])
def test_layer_gradcheck_with_one_upstream_gradient(kind, which):
    """backward(None, dh_T) (a classifier of the sequence) and backward(dhs, None) (a tagger)."""
    layer = LAYERS[kind](D, H, rng=16)
    xs, state = _randn(17, N, T, D), _state(kind, 18)
    d_final = (_randn(19, N, H), _randn(20, N, H)) if kind == "lstm" else _randn(19, N, H)
    d_none = (None, None) if kind == "lstm" else None
    douts = (None, d_final) if which == "final state only" else (_randn(21, N, T, H), d_none)
    dl.gradcheck(layer, xs, state, douts=douts)
    # and None for the whole LSTM state works too
    if kind == "lstm" and which == "outputs only":
        layer(xs, state)
        dxs, (dh0, dc0) = layer.backward(_randn(21, N, T, H), None)
        layer(xs, state)
        dxs2, (dh02, dc02) = layer.backward(_randn(21, N, T, H), (None, None))
        np.testing.assert_array_equal(dxs, dxs2)
        np.testing.assert_array_equal(dc0, dc02)


@pytest.mark.parametrize("kind", KINDS)
def test_sequence_layer_equals_its_cell_applied_step_by_step(kind):
    """hs[:, t] is the cell's state after step t, and hs[:, -1] equals h_T."""
    layer = LAYERS[kind](D, H, rng=22)
    xs, state = _randn(23, N, T, D), _state(kind, 24)
    hs, final = layer(xs, state)
    h_T = final[0] if kind == "lstm" else final
    np.testing.assert_array_equal(hs[:, -1], h_T)
    st = state
    for t in range(T):
        st = layer.cell(xs[:, t], st)
        np.testing.assert_allclose(hs[:, t], st[0] if kind == "lstm" else st, rtol=1e-13, atol=1e-15)
    if kind == "lstm":
        np.testing.assert_allclose(final[1], st[1], rtol=1e-13, atol=1e-15)


# -- against PyTorch ----------------------------------------------------------------------------------


def _copy_from_torch(cell, tm, suffix):
    """Copy torch weights into a dlbook cell: W_x = weight_ih.T, W_h = weight_hh.T, biases packed."""
    w = {k: v.detach().numpy() for k, v in tm.named_parameters()}
    cell.params["W_x"][...] = w["weight_ih" + suffix].T
    cell.params["W_h"][...] = w["weight_hh" + suffix].T
    if isinstance(cell, GRUCell):
        cell.params["b_x"][...] = w["bias_ih" + suffix]
        cell.params["b_h"][...] = w["bias_hh" + suffix]
    else:
        cell.params["b"][...] = w["bias_ih" + suffix] + w["bias_hh" + suffix]


def _torch_biases_nonzero(torch, tm):
    """Distinct non-zero biases in both bias_ih and bias_hh, so a wrong packing shows."""
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in tm.named_parameters():
            if name.startswith("bias"):
                p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype))


def _check_param_grads(cell, tm, suffix, prefix=""):
    g = {k: v.grad.numpy() for k, v in tm.named_parameters()}
    ours = {k.removeprefix(prefix): v for k, v in cell.grads.items()} if prefix else dict(cell.grads)
    np.testing.assert_allclose(ours["W_x"], g["weight_ih" + suffix].T, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours["W_h"], g["weight_hh" + suffix].T, rtol=1e-10, atol=1e-12)
    if "b" in ours:  # the sum b = b_ih + b_hh: both torch biases get the same gradient
        np.testing.assert_allclose(ours["b"], g["bias_ih" + suffix], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(ours["b"], g["bias_hh" + suffix], rtol=1e-10, atol=1e-12)
    else:
        np.testing.assert_allclose(ours["b_x"], g["bias_ih" + suffix], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(ours["b_h"], g["bias_hh" + suffix], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_sequence_layers_equal_torch(torch, kind):
    """Outputs, final states, dxs, d(initial state) and every weight gradient equal torch.nn.RNN/LSTM/GRU."""
    Nt, Tt, Dt, Ht = 3, 6, 4, 5
    torch.manual_seed(0)
    tm = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind](
        Dt, Ht, batch_first=True
    ).double()
    _torch_biases_nonzero(torch, tm)
    layer = LAYERS[kind](Dt, Ht, rng=0)
    _copy_from_torch(layer.cell, tm, "_l0")
    xs, state = _randn(30, Nt, Tt, Dt), _state(kind, 31, Nt, Ht)
    dhs, dh_T, dc_T = _randn(33, Nt, Tt, Ht), _randn(34, Nt, Ht), _randn(35, Nt, Ht)

    xt = torch.tensor(xs, requires_grad=True)
    if kind == "lstm":
        h0t = torch.tensor(state[0][None], requires_grad=True)
        c0t = torch.tensor(state[1][None], requires_grad=True)
        out, (hn, cn) = tm(xt, (h0t, c0t))
        ((out * torch.tensor(dhs)).sum() + (hn[0] * torch.tensor(dh_T)).sum()
         + (cn[0] * torch.tensor(dc_T)).sum()).backward()  # fmt: skip
        hs, (h_T, c_T) = layer(xs, state)
        dxs, (dh0, dc0) = layer.backward(dhs, (dh_T, dc_T))
        np.testing.assert_allclose(c_T, cn[0].detach().numpy(), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(dc0, c0t.grad[0].numpy(), rtol=1e-10, atol=1e-12)
    else:
        h0t = torch.tensor(state[None], requires_grad=True)
        out, hn = tm(xt, h0t)
        ((out * torch.tensor(dhs)).sum() + (hn[0] * torch.tensor(dh_T)).sum()).backward()
        hs, h_T = layer(xs, state)
        dxs, dh0 = layer.backward(dhs, dh_T)
    np.testing.assert_allclose(hs, out.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(h_T, hn[0].detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dxs, xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dh0, h0t.grad[0].numpy(), rtol=1e-10, atol=1e-12)
    _check_param_grads(layer, tm, "_l0", prefix="cell.")


@pytest.mark.parametrize("kind", KINDS)
def test_sequence_layers_equal_torch_from_a_zero_state(torch, kind):
    """No initial state on either side (zeros), only the outputs' gradient: still equal."""
    torch.manual_seed(1)
    tm = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind](D, H, batch_first=True)
    tm = tm.double()
    layer = LAYERS[kind](D, H, rng=0)
    _copy_from_torch(layer.cell, tm, "_l0")
    xs, dhs = _randn(36, N, T, D), _randn(37, N, T, H)
    xt = torch.tensor(xs, requires_grad=True)
    out = tm(xt)[0]
    (out * torch.tensor(dhs)).sum().backward()
    hs, _ = layer(xs)
    dxs, _ = layer.backward(dhs, None)
    np.testing.assert_allclose(hs, out.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dxs, xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    _check_param_grads(layer, tm, "_l0", prefix="cell.")


@pytest.mark.parametrize("kind", KINDS)
def test_cells_equal_torch(torch, kind):
    """RNNCell, LSTMCell, GRUCell equal torch.nn.RNNCell/LSTMCell/GRUCell: state, dx, dstate, weights."""
    torch.manual_seed(2)
    tm = {"rnn": torch.nn.RNNCell, "lstm": torch.nn.LSTMCell, "gru": torch.nn.GRUCell}[kind](D, H).double()
    _torch_biases_nonzero(torch, tm)
    cell = CELLS[kind](D, H, rng=0)
    _copy_from_torch(cell, tm, "")
    x, state, dh, dc = _randn(40, N, D), _state(kind, 41), _randn(43, N, H), _randn(44, N, H)
    xt = torch.tensor(x, requires_grad=True)
    if kind == "lstm":
        ht, ct = (torch.tensor(s, requires_grad=True) for s in state)
        h1, c1 = tm(xt, (ht, ct))
        ((h1 * torch.tensor(dh)).sum() + (c1 * torch.tensor(dc)).sum()).backward()
        h, c = cell(x, state)
        dx, (dh_prev, dc_prev) = cell.backward(dh, dc)
        np.testing.assert_allclose(c, c1.detach().numpy(), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(dc_prev, ct.grad.numpy(), rtol=1e-10, atol=1e-12)
    else:
        ht = torch.tensor(state, requires_grad=True)
        h1 = tm(xt, ht)
        (h1 * torch.tensor(dh)).sum().backward()
        h = cell(x, state)
        dx, dh_prev = cell.backward(dh)
    np.testing.assert_allclose(h, h1.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dh_prev, ht.grad.numpy(), rtol=1e-10, atol=1e-12)
    _check_param_grads(cell, tm, "")


# -- initialisation --------------------------------------------------------------------------------------


def test_lstm_forget_bias_sits_on_the_forget_gate():
    """b = [0, forget_bias, 0, 0] per gate block (i, f, g, o); with zero weights c_1 = sigmoid(b_f) c_0."""
    for fb in (1.0, 2.5, 0.0):
        layer = LSTM(D, H, rng=0, forget_bias=fb)
        b = layer.cell.params["b"].reshape(4, H)
        np.testing.assert_array_equal(b, np.array([0.0, fb, 0.0, 0.0])[:, None] * np.ones(H))
        assert f"forget_bias={fb:g}" in repr(layer)
    assert np.all(LSTMCell(D, H, rng=0).params["b"][H : 2 * H] == 1.0)  # the default
    cell = LSTMCell(D, H, rng=0, forget_bias=2.0)
    cell.params["W_x"][...] = 0.0
    cell.params["W_h"][...] = 0.0
    c0 = _randn(45, N, H)
    _, c1 = cell(_randn(46, N, D), (np.zeros((N, H)), c0))
    np.testing.assert_allclose(c1, c0 / (1.0 + np.exp(-2.0)), rtol=1e-14)  # i g = 0.5 tanh(0) = 0


@pytest.mark.parametrize("kind", KINDS)
def test_initial_weights_are_pytorchs_uniform_and_seeded(kind):
    """W_x, W_h uniform on [-1/sqrt(H), 1/sqrt(H)]; the same seed gives the same weights."""
    Hb = 16
    a, b, c = (LAYERS[kind](8, Hb, rng=s) for s in (3, 3, 4))
    bound = 1.0 / np.sqrt(Hb)
    G = {"rnn": 1, "lstm": 4, "gru": 3}[kind]
    assert a.cell.params["W_x"].shape == (8, G * Hb) and a.cell.params["W_h"].shape == (Hb, G * Hb)
    for k in ("cell.W_x", "cell.W_h"):
        w = a.params[k]
        assert np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound
        np.testing.assert_array_equal(w, b.params[k])
        assert not np.array_equal(w, c.params[k])


# -- truncated backpropagation through time -----------------------------------------------------------

V, E = 6, 3


def _ids(seed, n, t):
    return np.random.default_rng(seed).integers(0, V, (n, t))


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_charlm_carries_the_state_from_window_to_window(kind):
    """Two windows with carry_state=True give exactly the logits of one pass over the whole sequence."""
    model = CharLM(V, E, H, kind=kind, carry_state=True, rng=0)
    whole = CharLM(V, E, H, kind=kind, carry_state=False, rng=1)
    whole.load_state_dict(model.state_dict())
    ids = _ids(50, N, 2 * T)
    first, second = model(ids[:, :T]), model(ids[:, T:])
    full = whole(ids)
    assert full.shape == (N, 2 * T, V)
    np.testing.assert_allclose(np.concatenate([first, second], axis=1), full, rtol=1e-12, atol=1e-14)
    assert whole.state is None  # carry_state=False keeps nothing
    model.reset_state()
    assert model.state is None
    np.testing.assert_allclose(model(ids[:, T:]), whole(ids[:, T:]), rtol=1e-12, atol=1e-14)
    assert not np.allclose(model.reset_state()(ids[:, T:]), second)  # the carried state mattered
    # a batch of another size starts afresh instead of failing
    model(ids[:, :T])
    np.testing.assert_allclose(model(ids[:1, T:]), whole(ids[:1, T:]), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("kind", ["lstm", "rnn"])
def test_charlm_gradient_stops_at_the_window_edge(kind):
    """The second window's parameter gradient equals that of its loss with the carried state a constant.

    Checked by central differences with the state frozen, and shown to differ
    from the full gradient through both windows (so the test can fail).
    """
    model = CharLM(V, E, H, kind=kind, carry_state=True, rng=2)
    ids = _ids(51, N, 2 * T)
    dlogits = _randn(52, N, T, V)
    model(ids[:, :T])
    model.backward(_randn(53, N, T, V))
    carried = model.state
    model.zero_grad()
    model(ids[:, T:])
    assert model.backward(dlogits) is None  # token ids get no gradient
    truncated = {k: g.copy() for k, g in model.grads.items()}

    frozen = CharLM(V, E, H, kind=kind, carry_state=False, rng=3)
    frozen.load_state_dict(model.state_dict())
    frozen.state = carried  # every forward starts from this constant state
    dl.gradcheck(frozen, ids[:, T:], douts=dlogits)
    for k, g in frozen.grads.items():
        np.testing.assert_allclose(truncated[k], g, rtol=1e-12, atol=1e-14, err_msg=k)

    full = CharLM(V, E, H, kind=kind, carry_state=False, rng=4)
    full.load_state_dict(model.state_dict())
    full(ids)
    full.backward(np.concatenate([np.zeros((N, T, V)), dlogits], axis=1))
    assert not np.allclose(full.grads["rnn.cell.W_h"], truncated["rnn.cell.W_h"], rtol=1e-6)


def test_charlm_state_is_a_copy():
    """The carried state does not alias the layer's arrays: changing it in place changes nothing saved."""
    model = CharLM(V, E, H, kind="lstm", rng=5)
    ids = _ids(54, N, T)
    model(ids)
    h, c = model.state
    assert isinstance(model.state, tuple) and h.shape == c.shape == (N, H)
    rnn_saved = model.rnn._tape[-1]
    assert not any(np.shares_memory(h, a) for a in rnn_saved if isinstance(a, np.ndarray))


# -- models: gradients --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_charlm_gradcheck(kind):
    model = CharLM(V, E, H, kind=kind, carry_state=False, rng=6)
    errors = dl.gradcheck(model, _ids(55, N, T))
    assert set(errors) == set(model.params)
    assert {"embed.W", "rnn.cell.W_x", "head.W"} <= set(errors)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("read", ["last", "all"])
def test_recurrent_classifier_gradcheck(kind, read):
    """read='last' gives (N, K) logits from h_T, read='all' (N, T, K) from every step."""
    model = RecurrentClassifier(kind, D, H, 2, read=read, rng=7)
    x = _randn(56, N, T, D)
    assert model(x).shape == ((N, 2) if read == "last" else (N, T, 2))
    model.clear_tape()
    errors = dl.gradcheck(model, x)
    assert set(errors) == {"x"} | set(model.params)
    with pytest.raises(ValueError, match="read must be 'last'"):
        RecurrentClassifier(kind, D, H, 2, read="first", rng=0)


@pytest.mark.parametrize("kind", KINDS)
def test_recurrent_classifier_reads_the_final_state_or_every_output(kind):
    """read='last': logits = head(h_T); read='all': logits = head(hs), one row per step."""
    x = _randn(57, N, T, D)
    for read in ("last", "all"):
        model = RecurrentClassifier(kind, D, H, 2, read=read, rng=8)
        with dl.inference_mode():
            logits = model(x)
            hs, final = model.rnn(x)
        W, b = model.head.params["W"], model.head.params["b"]
        h_T = final[0] if kind == "lstm" else final
        np.testing.assert_allclose(logits, (h_T if read == "last" else hs) @ W + b, rtol=1e-13, atol=1e-15)
    # read='last' backpropagates only through h_T: the same dx as the layer given dh_T alone
    model = RecurrentClassifier(kind, D, H, 2, read="last", rng=8)
    dout = _randn(58, N, 2)
    model(x)
    dx = model.backward(dout)
    dh_T = dout @ model.head.params["W"].T
    model.rnn(x)
    ref, _ = model.rnn.backward(None, (dh_T, None) if kind == "lstm" else dh_T)
    np.testing.assert_allclose(dx, ref, rtol=1e-13, atol=1e-15)


def test_sequence_classifier_gradcheck():
    model = sequence_classifier("gru", V, E, H, 3, rng=9)
    assert len(model) == 2 and type(model[0]) is Embedding and type(model[1]) is RecurrentClassifier
    ids = _ids(59, N, T)
    assert model(ids).shape == (N, 3)
    model.clear_tape()
    errors = dl.gradcheck(model, ids)
    assert set(errors) == set(model.params)


def test_cnnlstm_gradcheck_in_eval_mode():
    """Images (N, T, 1, 8, 8) -> per-step logits (N, T, K); gradients through CNN and LSTM."""
    model = CNNLSTM(4, hidden=3, widths=(2, 2), rng=10).eval()
    x = _randn(59, 2, 3, 1, 8, 8)
    assert model(x).shape == (2, 3, 4)
    model.clear_tape()
    errors = dl.gradcheck(model, x, rtol=1e-5, atol=1e-7)
    assert set(errors) == {"x"} | set(model.params)
    with pytest.raises(ValueError, match=r"expects images \(N, T, 1, 8, 8\)"):
        model(x[:, 0])


# -- Embedding ------------------------------------------------------------------------------------------


def test_embedding_forward_is_a_row_lookup():
    emb = Embedding(V, E, rng=11)
    ids = np.array([[0, 5, 5], [2, 0, 1]])
    out = emb(ids)
    np.testing.assert_array_equal(out, emb.params["W"][ids])
    assert out.shape == (2, 3, E)
    W = _randn(60, 4, 2)
    fixed = Embedding.from_weights(W)
    np.testing.assert_array_equal(fixed(np.array([3, 1])), W[[3, 1]])
    W[...] = 0.0
    assert fixed.params["W"].any()  # from_weights copies
    assert repr(fixed) == "Embedding(4, 2)"


def test_embedding_gradient_with_repeated_ids_equals_torch(torch):
    """A token used several times collects the sum of its rows' gradients (np.add.at)."""
    emb = Embedding(V, E, rng=12)
    ids = np.array([[1, 1, 4, 1], [4, 0, 1, 1]])
    dout = _randn(61, 2, 4, E)
    emb(ids)
    assert emb.backward(dout) is None
    te = torch.nn.Embedding.from_pretrained(torch.tensor(emb.params["W"]), freeze=False)
    out = te(torch.tensor(ids))
    (out * torch.tensor(dout)).sum().backward()
    np.testing.assert_allclose(emb(ids), out.detach().numpy(), rtol=0, atol=0)
    np.testing.assert_allclose(emb.grads["W"], te.weight.grad.numpy(), rtol=1e-13, atol=1e-15)
    assert emb.grads["W"][1] == pytest.approx(dout[ids == 1].sum(axis=0))
    assert not emb.grads["W"][[2, 3, 5]].any()  # unused rows get nothing


# -- bad input ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_bad_input_raises_clear_errors(kind):
    layer, cell = LAYERS[kind](D, H, rng=13), CELLS[kind](D, H, rng=13)
    xs = _randn(62, N, T, D)
    with pytest.raises(ValueError, match=r"expects 3 input features, got shape \(2, 4, 5\)"):
        layer(_randn(63, N, T, 5))
    with pytest.raises(ValueError, match=r"expects xs of shape \(N, T, D\), got shape \(2, 3\)"):
        layer(_randn(64, N, D))
    with pytest.raises(ValueError, match=r"expects x of shape \(N, D\), got shape \(2, 4, 3\)"):
        cell(xs)
    with pytest.raises(ValueError, match="needs at least one time step"):
        layer(np.zeros((N, 0, D)))
    with pytest.raises(TypeError, match="float32 or float64"):
        layer(xs.astype(np.int64))
    bad_h = np.zeros((N, H + 1))
    with pytest.raises(ValueError, match=r"h0 must have shape \(N, H\) = \(2, 3\), got \(2, 4\)"):
        layer(xs, (bad_h, np.zeros((N, H))) if kind == "lstm" else bad_h)
    layer(xs)
    with pytest.raises(ValueError, match=r"dhs must have the output.s shape \(2, 4, 3\)"):
        layer.backward(np.zeros((N, T + 1, H)), None)


def test_lstm_state_must_be_a_tuple():
    layer, cell = LSTM(D, H, rng=14), LSTMCell(D, H, rng=14)
    h = np.zeros((N, H))
    for bad in ([h, h], h, (h,)):
        with pytest.raises(TypeError, match=r"the LSTM state must be a tuple \(h, c\)"):
            layer(_randn(65, N, T, D), bad)
        with pytest.raises(TypeError, match=r"the LSTM state must be a tuple \(h, c\)"):
            cell(_randn(66, N, D), bad)
    with pytest.raises(ValueError, match=r"c0 must have shape \(N, H\)"):
        layer(_randn(65, N, T, D), (h, np.zeros((N + 1, H))))
    layer(_randn(65, N, T, D))
    with pytest.raises(TypeError, match=r"expects dstate = \(dh_T, dc_T\)"):
        layer.backward(None, h)


def test_embedding_refuses_bad_token_ids():
    emb = Embedding(V, E, rng=15)
    with pytest.raises(ValueError, match=r"token ids must lie in \[0, 5\].*got values in \[0, 6\]"):
        emb(np.array([[0, 6]]))
    with pytest.raises(ValueError, match=r"token ids must lie in \[0, 5\].*got values in \[-1, 2\]"):
        emb(np.array([-1, 2]))
    with pytest.raises(TypeError, match="Embedding expects integer token ids, got dtype float64"):
        emb(np.array([0.0, 1.0]))
    with pytest.raises(TypeError, match="integer token ids"):
        emb(np.array([True, False]))
    with pytest.raises(ValueError, match="must be 2-D"):
        Embedding.from_weights(np.zeros(3))


# -- dtypes ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_float32_in_float32_out(kind):
    """A float32 layer on float32 input: outputs, states, input and weight gradients stay float32."""
    layer = LAYERS[kind](D, H, rng=16, dtype=np.float32)
    xs = _randn(67, N, T, D).astype(np.float32)
    hs, final = layer(xs)
    finals = final if kind == "lstm" else (final,)
    assert hs.dtype == np.float32 and all(f.dtype == np.float32 for f in finals)
    dxs, d0 = layer.backward(np.ones_like(hs), None)
    assert dxs.dtype == np.float32
    assert all(d.dtype == np.float32 for d in (d0 if kind == "lstm" else (d0,)))
    assert all(g.dtype == np.float32 for g in layer.grads.values())
    ref = LAYERS[kind](D, H, rng=16)  # the same weights in float64
    np.testing.assert_allclose(hs, ref(xs.astype(np.float64))[0], rtol=1e-5, atol=1e-6)


# -- CharLM.sample ----------------------------------------------------------------------------------------


def test_charlm_sample_is_seeded_in_range_and_leaves_the_state_alone():
    model = CharLM(V, E, 4, rng=17)
    model(_ids(68, 1, T))
    model.clear_tape()
    carried = tuple(a.copy() for a in model.state)
    prompt = np.array([1, 2, 3])
    a = model.sample(prompt, 20, rng=0)
    b = model.sample(prompt, 20, rng=0)
    c = model.sample(prompt, 20, rng=1)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.shape == (20,) and a.dtype == np.int64 and a.min() >= 0 and a.max() < V
    for s, t in zip(model.state, carried, strict=True):
        np.testing.assert_array_equal(s, t)
    assert all(not m._tape for m in model.modules())  # sampling runs in inference mode
    # a near-zero temperature is greedy: always the most likely next id
    cold = model.sample(prompt, 5, temperature=1e-4, rng=2)
    np.testing.assert_array_equal(cold, model.sample(prompt, 5, temperature=1e-4, rng=3))


def test_charlm_sample_checks_its_arguments():
    model = CharLM(V, E, 4, kind="gru", rng=18)
    for t in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="temperature must be positive"):
            model.sample(np.array([0]), 3, temperature=t, rng=0)
    with pytest.raises(ValueError, match="non-empty 1-D array"):
        model.sample(np.array([[0, 1]]), 3, rng=0)
    with pytest.raises(ValueError, match="non-empty 1-D array"):
        model.sample(np.array([], dtype=np.int64), 3, rng=0)
    with pytest.raises(ValueError, match="length must be a positive integer"):
        model.sample(np.array([0]), 0, rng=0)
    with pytest.raises(ValueError, match="token ids must lie in"):
        model.sample(np.array([V]), 3, rng=0)
    with pytest.raises(ValueError, match="no hidden global RNG"):
        model.sample(np.array([0]), 3, rng=None)


def test_charlm_sample_agrees_with_forward():
    """With near-zero temperature the first sampled id is the argmax of forward's last logits."""
    model = CharLM(V, E, 4, kind="rnn", carry_state=False, rng=19)
    prompt = np.array([0, 3, 2, 5])
    logits = model(prompt[None])[0, -1]
    model.clear_tape()
    assert model.sample(prompt, 1, temperature=1e-6, rng=0)[0] == np.argmax(logits)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_lstm_trace_repeats_the_forward_pass_and_keeps_nothing(dtype):
    """trace's h and c are forward's outputs and final state; its gates obey the LSTM equations."""
    layer = LSTM(D, H, rng=3, forget_bias=2.0, dtype=dtype)
    xs = _randn(47, N, T, D).astype(dtype)
    state = tuple(s.astype(dtype) for s in _state("lstm", 48))
    tr = layer.trace(xs, state)
    assert not layer._tape  # nothing saved for a backward pass
    hs, (h_T, c_T) = layer(xs, state)
    tol = {"rtol": 1e-5, "atol": 1e-6} if dtype == np.float32 else {"rtol": 1e-13, "atol": 1e-15}
    assert all(v.shape == (N, T, H) and v.dtype == dtype for v in tr.values())
    np.testing.assert_allclose(tr["h"], hs, **tol)
    np.testing.assert_allclose(tr["h"][:, -1], h_T, **tol)
    np.testing.assert_allclose(tr["c"][:, -1], c_T, **tol)
    c_prev = np.concatenate([state[1][:, None], tr["c"][:, :-1]], axis=1)
    np.testing.assert_allclose(tr["c"], tr["f"] * c_prev + tr["i"] * tr["g"], **tol)
    np.testing.assert_allclose(tr["h"], tr["o"] * np.tanh(tr["c"]), **tol)
    for k in "ifo":
        assert np.all((tr[k] > 0) & (tr[k] < 1)), k
    assert np.all(np.abs(tr["g"]) < 1)
    # the gates against the formula: sigma / tanh of x W_x + h W_h + b, blocks i, f, g, o
    h_prev = np.concatenate([state[0][:, None], tr["h"][:, :-1]], axis=1).astype(np.float64)
    p = {k: v.astype(np.float64) for k, v in layer.cell.params.items()}
    a = xs.astype(np.float64) @ p["W_x"] + h_prev @ p["W_h"] + p["b"]
    sig = 1.0 / (1.0 + np.exp(-a))
    g = np.tanh(a[..., 2 * H : 3 * H])
    expected = {"i": sig[..., :H], "f": sig[..., H : 2 * H], "g": g, "o": sig[..., 3 * H :]}
    for k, v in expected.items():
        np.testing.assert_allclose(tr[k], v, **tol, err_msg=k)


@pytest.mark.parametrize("kind", KINDS)
def test_masked_padding_changes_nothing(kind):
    """With mask (N, T), each padded sequence gives the outputs and final state of its unpadded self."""
    layer = LAYERS[kind](D, H, rng=11)
    xs = _randn(50, 3, 6, D)
    lens = [6, 2, 4]
    mask = np.arange(6)[None] < np.array(lens)[:, None]
    state0 = _state(kind, 51, n=3)
    hs, final = layer(xs, state0, mask=mask)
    for n, length in enumerate(lens):
        s0 = tuple(a[n : n + 1] for a in state0) if kind == "lstm" else state0[n : n + 1]
        hs1, final1 = layer(xs[n : n + 1, :length], s0)
        np.testing.assert_allclose(hs[n, :length], hs1[0], rtol=1e-13, atol=1e-15)
        carried = np.broadcast_to(hs1[0, -1], hs[n, length:].shape)  # the last real output, repeated
        np.testing.assert_allclose(hs[n, length:], carried, rtol=1e-13)
        parts = zip(final, final1, strict=True) if kind == "lstm" else [(final, final1)]
        for a, b in parts:
            np.testing.assert_allclose(a[n], b[0], rtol=1e-13, atol=1e-15)
    layer._tape.clear()
    # padded inputs get no gradient; gradcheck covers inputs, initial state and parameters
    layer(xs, state0, mask=mask)
    dxs, _ = layer.backward(_randn(52, 3, 6, H), None)
    assert np.all(dxs[~mask] == 0)
    dl.core.gradcheck(layer, xs, state0, options={"mask": mask})
    all_true = np.ones((3, 6), dtype=bool)
    np.testing.assert_array_equal(layer(xs, state0, mask=all_true)[0], layer(xs, state0)[0])


def test_mask_must_be_bool_of_shape_n_t():
    layer = GRU(D, H, rng=0)
    xs = _randn(53, 2, 4, D)
    with pytest.raises(TypeError, match="mask must be a bool array"):
        layer(xs, mask=np.ones((2, 4)))
    with pytest.raises(ValueError, match=r"mask must have shape \(2, 4\)"):
        layer(xs, mask=np.ones((2, 3), dtype=bool))
