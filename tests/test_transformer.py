"""The Transformer of chapter 9 (dlbook.transformer), its decoding and InverseSqrtLR.

Gradients by central differences (float64) of MultiHeadAttention (self and
cross, with masks), FeedForward (ReLU, GELU, SwiGLU), EncoderBlock and
DecoderBlock (Post- and Pre-Norm), PositionalEncoding and the whole
Transformer (Post-/Pre-Norm, tied or not, sinusoidal or learned positions,
shared embeddings, dropout); equality with PyTorch's
``nn.MultiheadAttention``, ``nn.TransformerEncoderLayer`` and
``nn.TransformerDecoderLayer`` (outputs, attention weights and every
gradient, weights copied in); the decoder is causal and padding changes
nothing; cached step-by-step decoding equals teacher forcing and
:func:`greedy_decode_recompute`, beam search works with the cache; the
sinusoidal table's formula and rotation property; the tied output's
gradient; float32; the module protocol for the classes the zoo of
``tests/conftest.py`` leaves out (MultiHeadAttention, EncoderBlock,
DecoderBlock, Transformer, TiedOutput); clear errors for bad input.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

import dlbook as dl
from dlbook.core import Module
from dlbook.numerics import log_softmax
from dlbook.seq2seq import BOS, EOS, PAD, beam_search, greedy_decode
from dlbook.transformer import (
    DecoderBlock,
    DecoderCache,
    EncoderBlock,
    FeedForward,
    MultiHeadAttention,
    PositionalEncoding,
    TiedOutput,
    Transformer,
    TransformerMemory,
    causal_mask,
    greedy_decode_recompute,
    sinusoidal_encoding,
)

D, H, DFF = 8, 2, 12  # the layers
N, S, T = 2, 5, 4  # batch, source and target lengths
LENGTHS = (5, 3)  # the second source is padded
MD, MH, MFF = 4, 2, 6  # the whole model (small: its gradcheck perturbs every parameter)
SRC_V, TGT_V, MAX_LEN = 9, 8, 8


def _randn(seed, *shape):
    return np.random.default_rng(seed).standard_normal(shape)


def _padding(lengths, S):
    """``(N, S)`` bool, True on the first ``lengths[n]`` positions of row ``n``."""
    return np.arange(S)[None, :] < np.asarray(lengths)[:, None]


def _jitter(module, seed, scale=0.1):
    """Move every 1-D parameter (biases, LayerNorm's gamma and beta) off its initial 0 or 1.

    Zero biases and unit gammas would hide a bias added in the wrong place or
    two LayerNorms swapped; random ones do not.
    """
    gen = np.random.default_rng(seed)
    for p in module.params.values():
        if p.ndim == 1:
            p += scale * gen.standard_normal(p.shape)
    return module


def _batch(seed=0, n=3, s=5, t=4, lengths=(5, 2, 3)):
    """Token ids: ``src`` padded with ``<pad>`` after ``lengths``, ``tgt_in`` starting with ``<bos>``."""
    gen = np.random.default_rng(seed)
    src = gen.integers(4, SRC_V, size=(n, s))
    mask = _padding(lengths[:n], s)
    src[~mask] = PAD
    tgt_in = gen.integers(4, TGT_V, size=(n, t))
    tgt_in[:, 0] = BOS
    return src, mask, tgt_in


def _model(seed=0, *, layers=(2, 1), dtype=np.float64, src_vocab=SRC_V, tgt_vocab=TGT_V, **kw):
    kw = {"norm_first": True, "max_len": MAX_LEN, **kw}
    model = Transformer(src_vocab, tgt_vocab, MD, MH, MFF, layers, rng=seed, dtype=dtype, **kw)
    return _jitter(model, seed + 100)


def _tapes_empty(module):
    return all(not m._tape for m in module.modules())


# -- gradients by central differences -----------------------------------------------------------------

MHA_CASES = ["self, no mask", "self, causal (T, T)", "self, key padding (N, 1, T)", "cross, key padding"]
MHA_CASES += ["cross, one mask per sequence (N, Tq, Tk)"]


def _mha_case(case):
    """``(query, key_value, mask)`` for a case of ``MHA_CASES``."""
    x = _randn(3, N, T, D)
    kv = x if case.startswith("self") else _randn(4, N, S, D)
    Tk = kv.shape[1]
    if "causal" in case:
        mask = causal_mask(T)
    elif "padding" in case:
        mask = _padding((Tk, 2), Tk)[:, None, :]
    elif "per sequence" in case:
        mask = np.random.default_rng(5).random((N, T, Tk)) < 0.6
        mask[:, :, 0] = True
    else:
        mask = None
    return x, kv, mask


@pytest.mark.parametrize("case", MHA_CASES)
def test_gradcheck_multi_head_attention(case):
    """dquery, dkey_value (separately, even for self-attention) and all 8 parameters."""
    mha = _jitter(MultiHeadAttention(D, H, rng=1), 2)
    x, kv, mask = _mha_case(case)
    errors = dl.gradcheck(mha, x, kv, options={} if mask is None else {"mask": mask})
    assert set(errors) == {"x0", "x1"} | set(mha.params)
    assert set(mha.params) == {f"{n}.{w}" for n in "qkvo" for w in "Wb"}
    assert _tapes_empty(mha)


def test_gradcheck_multi_head_attention_without_biases():
    mha = MultiHeadAttention(D, H, bias=False, rng=2)
    x, kv, mask = _mha_case("cross, key padding")
    errors = dl.gradcheck(mha, x, kv, options={"mask": mask})
    assert set(mha.params) == {"q.W", "k.W", "v.W", "o.W"} and set(errors) == {"x0", "x1"} | set(mha.params)


@pytest.mark.parametrize("activation", ["relu", "gelu", "gelu_tanh", "swiglu"])
def test_gradcheck_feed_forward(activation):
    ffn = _jitter(FeedForward(D, DFF, activation, rng=3), 4)
    errors = dl.gradcheck(ffn, _randn(5, N, T, D))
    assert set(errors) == {"x"} | set(ffn.params)
    inner = dl.activations.SwiGLU if activation == "swiglu" else dl.layers.Linear
    assert isinstance(ffn.inner, inner)
    assert ffn.params["outer.W"].shape == (DFF, D)
    assert activation in repr(ffn)


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_gradcheck_encoder_block(norm_first, masked):
    blk = _jitter(EncoderBlock(D, H, DFF, norm_first=norm_first, rng=5), 6)
    options = {"mask": _padding((S, 2), S)[:, None, :]} if masked else {}
    errors = dl.gradcheck(blk, _randn(7, N, S, D), options=options)
    assert set(errors) == {"x"} | set(blk.params)
    assert _tapes_empty(blk)


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "swiglu"])
def test_gradcheck_decoder_block(norm_first, activation):
    blk = _jitter(DecoderBlock(D, H, DFF, activation, norm_first=norm_first, rng=7), 8)
    options = {"self_mask": causal_mask(T), "memory_mask": _padding((S, 2), S)[:, None, :]}
    errors = dl.gradcheck(blk, _randn(9, N, T, D), _randn(10, N, S, D), options=options)
    assert set(errors) == {"x0", "x1"} | set(blk.params)
    assert len(blk.norms) == 3 and _tapes_empty(blk)


@pytest.mark.parametrize("kind", ["learned", "sinusoidal"])
def test_gradcheck_positional_encoding_with_an_offset(kind):
    """Only the rows ``offset .. offset + T - 1`` of a learned table get a gradient: the batch's sum."""
    pe = PositionalEncoding(D, 9, kind, rng=11)
    x = _randn(12, N, 3, D)
    errors = dl.gradcheck(pe, x, options={"offset": 4})
    assert set(errors) == {"x"} | set(pe.params)
    np.testing.assert_allclose(pe(x, offset=4) - x, np.broadcast_to(pe.table[4:7], x.shape), atol=1e-15)
    if kind == "learned":
        pe.zero_grad()
        pe(x, offset=4)
        dout = _randn(13, *x.shape)
        np.testing.assert_array_equal(pe.backward(dout), dout)
        g = pe.grads["P"]
        np.testing.assert_allclose(g[4:7], dout.sum(axis=0), rtol=1e-15)
        assert not g[:4].any() and not g[7:].any()
    else:
        assert not pe.params and set(pe.buffers) == {"P"}


@pytest.mark.parametrize(
    "norm_first, tie_output, positional",
    list(itertools.product([False, True], [False, True], ["sinusoidal", "learned"])),
)
def test_gradcheck_transformer_with_padded_sources(norm_first, tie_output, positional):
    model = _model(1, norm_first=norm_first, tie_output=tie_output, positional=positional)
    src, mask, tgt_in = _batch(2)
    errors = dl.gradcheck(model, src, mask, tgt_in)
    assert set(errors) == set(model.params)  # every parameter checked (the ids get None)
    assert ("out.W" in model.params) is not tie_output
    assert ("pos.P" in model.params) is (positional == "learned")
    assert len(model.encoder) == 2 and len(model.decoder) == 1
    assert _tapes_empty(model)  # backward used every entry forward saved


def test_gradcheck_transformer_with_shared_and_tied_embeddings():
    """One matrix used three times: source embedding, target embedding and output layer."""
    model = _model(
        3, src_vocab=TGT_V, share_embeddings=True, tie_output=True, norm_first=False, layers=(1, 2)
    )
    src, mask, tgt_in = _batch(4)
    src[src >= TGT_V] = 4
    errors = dl.gradcheck(model, src, mask, tgt_in)
    assert set(errors) == set(model.params)
    assert [k for k in model.params if "embed" in k or k.startswith("out.")] == ["src_embed.W", "out.b"]
    assert len(model.decoder) == 2  # the memory's gradient sums over the decoder blocks


def test_gradcheck_transformer_with_dropout_in_training():
    """Dropout on the embeddings and every sublayer: each forward re-seeded, so the masks are fixed."""
    model = _model(5, layers=(1, 1), dropout=0.3)
    drops = [m for m in model.modules() if isinstance(m, dl.layers.Dropout)]
    assert len(drops) == 2 + 2 + 3  # embeddings, encoder sublayers, decoder sublayers
    src, mask, tgt_in = _batch(6)

    def forward(*inputs):
        for i, m in enumerate(drops):
            m.rng = np.random.default_rng(i)
        return model.forward(*inputs)

    dl.gradcheck(model, src, mask, tgt_in, forward=forward)
    with model.inference():
        train = forward(src, mask, tgt_in)
        model.eval()
        evaluated = model(src, mask, tgt_in)
    assert np.abs(train - evaluated).max() > 1e-3  # dropout is wired in
    no_dropout = _model(5, layers=(1, 1))
    no_dropout.load_state_dict(model.state_dict())
    with model.inference():
        np.testing.assert_array_equal(evaluated, no_dropout(src, mask, tgt_in))


class _Twice(Module):
    """A decoder block applied twice to the same memory: its tape must hold both calls."""

    def __init__(self, blk):
        super().__init__()
        self.blk = blk

    def forward(self, y, memory, **masks):
        return self.blk(self.blk(y, memory, **masks), memory, **masks)

    def backward(self, dout):
        dy, dm1 = self.blk.backward(dout)
        dy, dm0 = self.blk.backward(dy)
        return dy, dm0 + dm1


def test_one_decoder_block_applied_twice_backpropagates_both_calls():
    blk = _jitter(DecoderBlock(4, 2, 6, rng=9), 10)
    options = {"self_mask": causal_mask(3)[None], "memory_mask": _padding((4, 2), 4)[:, None, :]}
    twice = _Twice(blk)
    assert twice.num_parameters() == blk.num_parameters()
    dl.gradcheck(twice, 0.5 * _randn(11, 2, 3, 4), _randn(12, 2, 4, 4), options=options)
    enc = _jitter(EncoderBlock(4, 2, 6, norm_first=True, rng=13), 14)
    dl.gradcheck(dl.Sequential(enc, enc), _randn(15, 2, 3, 4))


# -- against PyTorch ----------------------------------------------------------------------------------


def _t(torch, a, grad=False):
    return torch.tensor(np.ascontiguousarray(a), dtype=torch.float64, requires_grad=grad)


def _mha_to_torch(view, ours, theirs):
    """Our MultiHeadAttention's arrays (``view``: params or grads, prefix ``ours``) in torch's layout."""

    def p(name):
        return view[ours + name]

    return {
        theirs + "in_proj_weight": np.concatenate([p("q.W").T, p("k.W").T, p("v.W").T]),
        theirs + "in_proj_bias": np.concatenate([p("q.b"), p("k.b"), p("v.b")]),
        theirs + "out_proj.weight": p("o.W").T,
        theirs + "out_proj.bias": p("o.b"),
    }


def _block_to_torch(view, decoder):
    """An Encoder/DecoderBlock's arrays under the names of nn.TransformerEncoderLayer/DecoderLayer."""
    arrays = _mha_to_torch(view, "self_attn.", "self_attn.")
    if decoder:
        arrays.update(_mha_to_torch(view, "cross_attn.", "multihead_attn."))
    for i in (1, 2):
        key = "inner" if i == 1 else "outer"
        arrays[f"linear{i}.weight"] = view[f"ffn.{key}.W"].T
        arrays[f"linear{i}.bias"] = view[f"ffn.{key}.b"]
    for i in range(3 if decoder else 2):
        arrays[f"norm{i + 1}.weight"] = view[f"norms.{i}.gamma"]
        arrays[f"norm{i + 1}.bias"] = view[f"norms.{i}.beta"]
    return arrays


def _load_into_torch(torch, layer, arrays):
    params = dict(layer.named_parameters())
    assert set(params) == set(arrays)  # every parameter of torch's layer is mapped
    with torch.no_grad():
        for name, p in params.items():
            assert p.shape == arrays[name].shape, name
            p.copy_(_t(torch, arrays[name]))


def _assert_grads_equal(layer, arrays):
    for name, p in layer.named_parameters():
        np.testing.assert_allclose(arrays[name], p.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("case", ["self, causal", "self, key padding", "cross, key padding", "cross, none"])
def test_multi_head_attention_equals_torch(torch, case):
    """Output, per-head and head-averaged weights, dquery, dkey_value and every parameter gradient."""
    mha = _jitter(MultiHeadAttention(D, H, rng=20), 21)
    theirs = torch.nn.MultiheadAttention(D, H, batch_first=True, dtype=torch.float64)
    _load_into_torch(torch, theirs, _mha_to_torch(mha.params, "", ""))
    self_attn = case.startswith("self")
    x = _randn(22, N, T, D)
    kv = x if self_attn else _randn(23, N, S, D)
    Tk = kv.shape[1]
    mask, kwargs = None, {}
    if "causal" in case:
        mask = causal_mask(T)
        kwargs = {"attn_mask": torch.tensor(~mask)}  # torch: True = NOT allowed
    elif "padding" in case:
        pad = _padding((Tk, 2), Tk)
        mask = pad[:, None, :]
        kwargs = {"key_padding_mask": torch.tensor(~pad)}
    out = mha(x, kv, mask=mask)
    weights = mha.weights.copy()
    dout = _randn(24, *out.shape)
    dq, dkv = mha.backward(dout)

    xt = _t(torch, x, grad=True)
    kvt = xt if self_attn else _t(torch, kv, grad=True)
    out_t, w_t = theirs(xt, kvt, kvt, need_weights=True, average_attn_weights=False, **kwargs)
    _, w_avg = theirs(xt, kvt, kvt, need_weights=True, average_attn_weights=True, **kwargs)
    (out_t * _t(torch, dout)).sum().backward()

    np.testing.assert_allclose(out, out_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    assert weights.shape == (N, H, T, Tk)
    np.testing.assert_allclose(weights, w_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(weights.mean(axis=1), w_avg.detach().numpy(), rtol=1e-10, atol=1e-12)
    if self_attn:  # one tensor in torch: its gradient is the sum of ours
        np.testing.assert_allclose(dq + dkv, xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    else:
        np.testing.assert_allclose(dq, xt.grad.numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(dkv, kvt.grad.numpy(), rtol=1e-10, atol=1e-12)
    _assert_grads_equal(theirs, _mha_to_torch(mha.grads, "", ""))
    if mask is not None:
        allowed = np.broadcast_to(dl.attention.attention_mask(mask, weights.shape), weights.shape)
        assert np.all(weights[~allowed] == 0) and np.all(weights[allowed] > 0)


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_encoder_block_equals_torch(torch, norm_first, activation):
    blk = _jitter(EncoderBlock(D, H, DFF, activation, norm_first=norm_first, rng=30), 31)
    theirs = torch.nn.TransformerEncoderLayer(
        D,
        H,
        DFF,
        dropout=0.0,
        activation=activation,
        batch_first=True,
        norm_first=norm_first,
        dtype=torch.float64,
    )
    theirs.train()  # the fast path (eval, no grad) would bypass the reference computation
    _load_into_torch(torch, theirs, _block_to_torch(blk.params, decoder=False))
    x = _randn(32, N, S, D)
    pad = _padding(LENGTHS, S)
    out = blk(x, mask=pad[:, None, :])
    dout = _randn(33, *out.shape)
    dx = blk.backward(dout)

    xt = _t(torch, x, grad=True)
    out_t = theirs(xt, src_key_padding_mask=torch.tensor(~pad))
    (out_t * _t(torch, dout)).sum().backward()
    np.testing.assert_allclose(out, out_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    _assert_grads_equal(theirs, _block_to_torch(blk.grads, decoder=False))


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_decoder_block_equals_torch(torch, norm_first, activation):
    blk = _jitter(DecoderBlock(D, H, DFF, activation, norm_first=norm_first, rng=40), 41)
    theirs = torch.nn.TransformerDecoderLayer(
        D,
        H,
        DFF,
        dropout=0.0,
        activation=activation,
        batch_first=True,
        norm_first=norm_first,
        dtype=torch.float64,
    )
    theirs.train()
    _load_into_torch(torch, theirs, _block_to_torch(blk.params, decoder=True))
    y, memory = _randn(42, N, T, D), _randn(43, N, S, D)
    pad, causal = _padding(LENGTHS, S), causal_mask(T)
    out = blk(y, memory, self_mask=causal, memory_mask=pad[:, None, :])
    dout = _randn(44, *out.shape)
    dy, dmemory = blk.backward(dout)

    yt, mt = _t(torch, y, grad=True), _t(torch, memory, grad=True)
    out_t = theirs(yt, mt, tgt_mask=torch.tensor(~causal), memory_key_padding_mask=torch.tensor(~pad))
    (out_t * _t(torch, dout)).sum().backward()
    np.testing.assert_allclose(out, out_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dy, yt.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dmemory, mt.grad.numpy(), rtol=1e-10, atol=1e-12)
    _assert_grads_equal(theirs, _block_to_torch(blk.grads, decoder=True))


@pytest.mark.parametrize("norm_first, tie_output", [(False, False), (True, False), (True, True)])
def test_transformer_equals_torch_built_from_its_layers(torch, norm_first, tie_output):
    """The whole model against nn.TransformerEncoder/Decoder with embeddings, positions and output by hand.

    Checks the wiring the blocks' tests cannot: the sqrt(d) scale, the learned positions shared by
    source and target, the three masks, the final LayerNorms of a Pre-Norm stack (none for Post-Norm),
    the memory's gradient summed over two decoder blocks, and the (tied) output layer.
    """
    nn = torch.nn
    model = _model(160, norm_first=norm_first, tie_output=tie_output, positional="learned", layers=(2, 2))
    src, mask, tgt_in = _batch(161)
    kw = {"dropout": 0.0, "batch_first": True, "norm_first": norm_first, "dtype": torch.float64}

    def final_norm(ours):
        if not norm_first:
            return None
        norm = nn.LayerNorm(MD, dtype=torch.float64)
        _load_into_torch(torch, norm, {"weight": ours.params["gamma"], "bias": ours.params["beta"]})
        return norm

    enc_layer, dec_layer = (
        nn.TransformerEncoderLayer(MD, MH, MFF, **kw),
        nn.TransformerDecoderLayer(MD, MH, MFF, **kw),
    )
    enc = nn.TransformerEncoder(enc_layer, 2, norm=final_norm(model.enc_norm), enable_nested_tensor=False)
    dec = nn.TransformerDecoder(dec_layer, 2, norm=final_norm(model.dec_norm))
    for layers, blocks, decoder in ((enc.layers, model.encoder, False), (dec.layers, model.decoder, True)):
        for layer, blk in zip(layers, blocks, strict=True):
            _load_into_torch(torch, layer, _block_to_torch(blk.params, decoder))
    enc.train(), dec.train()
    E_src, E_tgt, P = (_t(torch, model.params[k], grad=True) for k in ("src_embed.W", "tgt_embed.W", "pos.P"))
    b_out = _t(torch, model.params["out.b"], grad=True)
    W_out = E_tgt.T if tie_output else _t(torch, model.params["out.W"], grad=True)

    def embed(E, ids):
        return E[torch.tensor(ids)] * math.sqrt(MD) + P[: ids.shape[1]]

    memory = enc(embed(E_src, src), src_key_padding_mask=torch.tensor(~mask))
    y = dec(
        embed(E_tgt, tgt_in),
        memory,
        tgt_mask=torch.tensor(~causal_mask(tgt_in.shape[1])),
        memory_key_padding_mask=torch.tensor(~mask),
    )
    logits_t = y @ W_out + b_out

    model.zero_grad()
    logits = model(src, mask, tgt_in)
    dlogits = _randn(162, *logits.shape)
    model.backward(dlogits)
    (logits_t * _t(torch, dlogits)).sum().backward()
    np.testing.assert_allclose(logits, logits_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    g = model.grads
    for name, leaf in (("src_embed.W", E_src), ("tgt_embed.W", E_tgt), ("pos.P", P), ("out.b", b_out)):
        np.testing.assert_allclose(g[name], leaf.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=name)
    if not tie_output:
        np.testing.assert_allclose(g["out.W"], W_out.grad.numpy(), rtol=1e-10, atol=1e-12)
    for layers, blocks, decoder in ((enc.layers, model.encoder, False), (dec.layers, model.decoder, True)):
        for layer, blk in zip(layers, blocks, strict=True):
            _assert_grads_equal(layer, _block_to_torch(blk.grads, decoder))
    for ours, theirs in ((model.enc_norm, enc.norm), (model.dec_norm, dec.norm)):
        if norm_first:
            _assert_grads_equal(theirs, {"weight": ours.grads["gamma"], "bias": ours.grads["beta"]})
        else:
            assert theirs is None and not ours.params


def test_multi_head_attention_initialisation_follows_torch(torch):
    d = 64
    mha = MultiHeadAttention(d, 4, rng=0)
    theirs = torch.nn.MultiheadAttention(d, 4, batch_first=True)
    torch_bound = math.sqrt(6 / (d + 3 * d))  # xavier_uniform_ of in_proj_weight (3d, d)
    assert theirs.in_proj_weight.abs().max().item() <= torch_bound
    assert abs(mha.o.params["W"]).max() <= 1 / math.sqrt(d)  # out_proj: nn.Linear's default
    for name in "qkv":
        assert not getattr(mha, name).params["b"].any()
        assert abs(getattr(mha, name).params["W"]).max() <= torch_bound


# -- causality and padding ----------------------------------------------------------------------------


@pytest.mark.parametrize("norm_first", [False, True])
def test_the_decoder_is_causal(norm_first):
    """Changing target token t changes no logit before t, and does change the logits at t."""
    model = _model(50, norm_first=norm_first, positional="learned")
    src, mask, tgt_in = _batch(51, t=6)
    with model.inference():
        base = model(src, mask, tgt_in)
        for t in range(1, tgt_in.shape[1]):
            changed = tgt_in.copy()
            changed[:, t] = 4 + (changed[:, t] - 3) % (TGT_V - 4)  # another real token
            assert np.all(changed[:, t] != tgt_in[:, t])
            logits = model(src, mask, changed)
            np.testing.assert_allclose(logits[:, :t], base[:, :t], rtol=0, atol=1e-12)
            assert np.abs(logits[:, t] - base[:, t]).max() > 1e-6
    # and the maps say so: no weight above the diagonal
    w = model.decoder[0].self_attn.weights
    assert w.shape == (3, MH, 6, 6)
    assert np.all(w[..., ~causal_mask(6)] == 0)
    np.testing.assert_allclose(w.sum(axis=-1), 1.0, rtol=1e-12)


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("positional", ["sinusoidal", "learned"])
def test_padding_changes_nothing(norm_first, positional):
    """Other ids at padded source positions give the same logits; each example alone, unpadded, too."""
    model = _model(52, norm_first=norm_first, positional=positional)
    src, mask, tgt_in = _batch(53)
    gen = np.random.default_rng(54)
    with model.inference():
        base = model(src, mask, tgt_in)
        other = src.copy()
        other[~mask] = gen.integers(1, SRC_V, size=int((~mask).sum()))
        np.testing.assert_allclose(model(other, mask, tgt_in), base, rtol=0, atol=1e-12)
        real = src.copy()
        real[0, 1] = 4 + (real[0, 1] - 3) % (SRC_V - 4)  # a real token does matter
        assert np.abs(model(real, mask, tgt_in)[0] - base[0]).max() > 1e-6
        for n in range(len(src)):
            L = int(mask[n].sum())
            alone = model(src[n : n + 1, :L], np.ones((1, L), bool), tgt_in[n : n + 1])
            np.testing.assert_allclose(base[n], alone[0], rtol=1e-10, atol=1e-12)
        base = model(src, mask, tgt_in)  # the maps of the padded batch
    for blk in model.encoder:
        assert np.all(blk.self_attn.weights.transpose(0, 3, 1, 2)[~mask] == 0)  # (N, Sk, h, Sq): pad keys
    assert np.all(model.decoder[0].cross_attn.weights.transpose(0, 3, 1, 2)[~mask] == 0)
    # padded positions get no gradient: <pad> (only there in src) has a zero embedding gradient
    model.zero_grad()
    model(src, mask, tgt_in)
    model.backward(_randn(55, *base.shape))
    g = model.grads["src_embed.W"]
    assert not g[PAD].any()
    assert np.all(np.abs(g[np.unique(src[mask])]).max(axis=1) > 0)


def test_attention_maps_after_a_forward_pass():
    model = _model(56, layers=(1, 2))
    src, mask, tgt_in = _batch(57, t=3)
    model(src, mask, tgt_in)
    assert model.encoder[0].self_attn.weights.shape == (3, MH, 5, 5)
    for blk in model.decoder:
        assert blk.self_attn.weights.shape == (3, MH, 3, 3)
        assert blk.cross_attn.weights.shape == (3, MH, 3, 5)
        np.testing.assert_allclose(blk.cross_attn.weights.sum(axis=-1), 1.0, rtol=1e-12)
    model.clear_tape()


# -- decoding with the cache ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "norm_first, positional, layers, tie_output",
    [(True, "sinusoidal", (2, 1), False), (False, "learned", (1, 2), True)],
)
def test_step_by_step_equals_teacher_forcing(norm_first, positional, layers, tie_output):
    """step() fed tgt_in token by token gives the log-softmax of the teacher-forced logits."""
    model = _model(60, norm_first=norm_first, positional=positional, layers=layers, tie_output=tie_output)
    src, mask, tgt_in = _batch(61, t=6)
    with model.inference():
        logits = model(src, mask, tgt_in)
    memory = model.encode(src, mask)
    assert isinstance(memory, TransformerMemory) and len(memory) == 3
    assert len(memory.cross) == layers[1] and memory.cross[0][0].shape == (3, MH, 5, MD // MH)
    cache = model.initial_state(memory, 6)
    assert isinstance(cache, DecoderCache) and cache.t == 0 and len(cache) == 3
    for t in range(6):
        logp, cache, w = model.step(tgt_in[:, t], cache, memory)
        assert cache.t == t + 1 and w is None and logp.dtype == np.float64
        np.testing.assert_allclose(logp, log_softmax(logits[:, t], axis=-1), rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="is full"):
        model.step(tgt_in[:, 0], cache, memory)
    assert _tapes_empty(model)  # decoding keeps nothing


def _teacher_forced_logp(model, src, mask, tokens, finished):
    """Per-step log-probabilities ``(L, V)`` of ``<bos> tokens`` and the sequence's total."""
    tgt_in = np.concatenate([[BOS], tokens]).astype(np.int64)[None]
    if not finished:
        tgt_in = tgt_in[:, :-1]
    with model.inference():
        logp = log_softmax(model(src, mask, tgt_in)[0], axis=-1)
    targets = list(tokens) + ([EOS] if finished else [])
    return logp, float(sum(logp[t, y] for t, y in enumerate(targets)))


@pytest.mark.parametrize("seed", range(4))
def test_greedy_with_the_cache_equals_recomputing_the_prefix(seed):
    """Tokens as greedy_decode_recompute's (up to <eos>), each step's log-probabilities as teacher forcing."""
    model = _model(70 + seed, norm_first=bool(seed % 2), positional=("sinusoidal", "learned")[seed // 2])
    model.out.params["b"][EOS] -= 0.8  # sequences of several lengths (see the next test)
    src, mask, _ = _batch(80 + seed, n=4, lengths=(5, 2, 3, 1))
    max_len = MAX_LEN - 1
    steps = []
    original = model.step

    def spy(y, cache, memory):
        logp, cache, w = original(y, cache, memory)
        steps.append(logp.copy())  # before greedy_decode sets the banned tokens to -inf
        return logp, cache, w

    model.step = spy
    g = greedy_decode(model, src, mask, max_len=max_len)
    del model.step
    r = greedy_decode_recompute(model, src, mask, max_len=max_len)
    finished = []
    for n in range(len(src)):
        tokens = g.tokens[n]
        finished.append(len(tokens) < max_len)
        np.testing.assert_array_equal(r[n, : len(tokens)], tokens)
        if finished[-1]:
            assert r[n, len(tokens)] == EOS
        else:
            assert EOS not in r[n]
        one = (src[n : n + 1], mask[n : n + 1])
        logp, total = _teacher_forced_logp(model, *one, tokens, finished[-1])
        for t in range(len(logp)):
            np.testing.assert_allclose(steps[t][n], logp[t], rtol=1e-10, atol=1e-12)
        assert g.log_prob[n] == pytest.approx(total, rel=1e-10)
    assert len(steps) == max(len(t) + f for t, f in zip(g.tokens, finished, strict=True))
    b = beam_search(model, src, mask, width=1, max_len=max_len, alpha=0.0)
    for x, y in zip(g.tokens, b.tokens, strict=True):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_allclose(b.log_prob, g.log_prob, rtol=1e-12)
    assert _tapes_empty(model)


def test_greedy_decoding_ends_some_sequences_and_not_others():
    """The seeds above exercise <eos> after one token, after several, and max_len reached."""
    lengths = []
    for seed in range(4):
        model = _model(70 + seed, norm_first=bool(seed % 2), positional=("sinusoidal", "learned")[seed // 2])
        model.out.params["b"][EOS] -= 0.3
        src, mask, _ = _batch(80 + seed, n=4, lengths=(5, 2, 3, 1))
        lengths += [len(t) for t in greedy_decode(model, src, mask, max_len=MAX_LEN - 1).tokens]
    assert 1 in lengths and max(lengths) == MAX_LEN - 1
    assert any(1 < L < MAX_LEN - 1 for L in lengths)


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_beam_search_with_the_cache_finds_the_exhaustive_best(alpha):
    """Tokens {4, 5}, at most 3: 15 sequences, each scored by teacher forcing; a beam of 30 finds the best.

    Beam search reorders its beams with ``cache[rows]``: a wrong copy would show as a wrong score.
    """
    model = _model(90, tgt_vocab=6, norm_first=False)
    src, mask, _ = _batch(91, n=2)
    max_len = 3
    wide = beam_search(model, src, mask, width=30, max_len=max_len, alpha=alpha)
    narrow = beam_search(model, src, mask, width=2, max_len=max_len, alpha=alpha)
    seqs = [list(p) for k in range(max_len + 1) for p in itertools.product((4, 5), repeat=k)]
    for n in range(len(src)):
        L = int(mask[n].sum())
        one = (src[n : n + 1, :L], mask[n : n + 1, :L])
        scores = []
        for seq in seqs:
            finished = len(seq) < max_len
            _, total = _teacher_forced_logp(model, *one, seq, finished)
            scores.append(total / (len(seq) + finished) ** alpha)
        best = int(np.argmax(scores))
        assert list(wide.tokens[n]) == seqs[best]
        assert wide.score[n] == pytest.approx(scores[best], rel=1e-10)
        for d in (wide, narrow):  # the reported score is the returned sequence's
            assert d.score[n] == pytest.approx(scores[seqs.index(list(d.tokens[n]))], rel=1e-10)
        assert narrow.score[n] <= wide.score[n] + 1e-12


def _stepped_cache(seed=100):
    model = _model(seed, layers=(1, 2))
    src, mask, tgt_in = _batch(seed + 1)
    memory = model.encode(src, mask)
    cache = model.initial_state(memory, 5)
    for t in range(2):
        model.step(tgt_in[:, t], cache, memory)
    return model, memory, cache


def test_decoder_cache_indexing_copies_rows():
    """cache[rows] holds copies: stepping it equals stepping those rows and leaves the original alone."""
    model, memory, cache = _stepped_cache()
    rows = np.array([2, 0, 0])
    sub = cache[rows]
    assert sub.t == cache.t == 2 and len(sub) == 3 and len(sub.k) == len(sub.v) == 2
    for a, b in zip(sub.k + sub.v, cache.k + cache.v, strict=True):
        np.testing.assert_array_equal(a, b[rows])
        assert not np.shares_memory(a, b)
    before = [a.copy() for a in cache.k + cache.v]
    sub_memory = TransformerMemory(
        memory.enc[rows], memory.src_mask[rows], [(K[rows], V[rows]) for K, V in memory.cross]
    )
    y = np.array([4, 5, 6])
    logp_sub, sub, _ = model.step(y[rows], sub, sub_memory)
    assert sub.t == 3 and cache.t == 2
    for a, b in zip(cache.k + cache.v, before, strict=True):
        np.testing.assert_array_equal(a, b)
    logp, cache, _ = model.step(y, cache, memory)
    np.testing.assert_allclose(logp_sub, logp[rows], rtol=1e-12, atol=1e-14)
    rep = memory.repeat(2)
    assert len(rep) == 6 and np.array_equal(rep.src_mask[[0, 1]], memory.src_mask[[0, 0]])


def test_decoder_cache_sliced_is_a_copy_too():
    _, _, cache = _stepped_cache()
    sub = cache[0:2]
    assert not any(np.shares_memory(a, b) for a, b in zip(sub.k + sub.v, cache.k + cache.v, strict=True))


# -- positional encodings -------------------------------------------------------------------------------


def test_sinusoidal_table_matches_the_formula():
    L, d = 40, 10
    P = sinusoidal_encoding(L, d)
    assert P.shape == (L, d) and P.dtype == np.float64
    for p in range(L):
        for i in range(d // 2):
            angle = p / 10000 ** (2 * i / d)
            assert P[p, 2 * i] == pytest.approx(math.sin(angle), abs=1e-14)
            assert P[p, 2 * i + 1] == pytest.approx(math.cos(angle), abs=1e-14)
    np.testing.assert_array_equal(P[0], np.tile([0.0, 1.0], d // 2))
    Q = sinusoidal_encoding(5, 4, base=100.0)
    assert Q[3, 2] == pytest.approx(math.sin(3 / 100 ** (2 / 4)), abs=1e-14)
    pe = PositionalEncoding(d, L)
    np.testing.assert_array_equal(pe.table, P)


def test_sinusoidal_positions_rotate_with_the_offset():
    """P[p + k] is P[p] rotated pair by pair by the angles k omega_i: a map of k alone."""
    L, d = 64, 16
    P = sinusoidal_encoding(L, d)
    omega = 10000.0 ** (-np.arange(0, d, 2) / d)
    for k in (1, 5, 23):
        for i in range(d // 2):
            a = k * omega[i]
            R = np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])
            for p in (0, 3, 17, 40):
                np.testing.assert_allclose(
                    R @ P[p, 2 * i : 2 * i + 2], P[p + k, 2 * i : 2 * i + 2], atol=1e-12
                )
        # so the dot product of two positions depends on their distance only
        dots = [P[p] @ P[p + k] for p in (0, 3, 17, 40)]
        np.testing.assert_allclose(dots, np.cos(k * omega).sum(), atol=1e-12)


def test_odd_width_and_bad_kind_raise():
    with pytest.raises(ValueError, match="d_model must be even"):
        sinusoidal_encoding(4, 5)
    with pytest.raises(ValueError, match="d_model must be even"):
        PositionalEncoding(5, 4)
    with pytest.raises(ValueError, match="d_model must be even"):
        Transformer(5, 5, d_model=7, heads=7, rng=0)
    with pytest.raises(ValueError, match="kind must be one of"):
        PositionalEncoding(4, 4, "rotary")


def test_learned_table_and_embedding_initialisation():
    """Learned positions ~ N(0, 0.02^2); embeddings ~ N(0, 1/d) (times sqrt(d) in the forward pass)."""
    pe = PositionalEncoding(32, 200, "learned", rng=0)
    assert pe.params["P"].std() == pytest.approx(0.02, rel=0.05) and not pe.buffers
    d = 32
    model = Transformer(300, 200, d_model=d, heads=4, d_ff=8, layers=1, rng=0)
    for name in ("src_embed.W", "tgt_embed.W"):
        assert model.params[name].std() == pytest.approx(d**-0.5, rel=0.05)
    ids = np.array([[5, 7]])
    with model.inference():
        x = model._embed(ids, model.src_embed, model.src_drop)
    np.testing.assert_allclose(x[0], model.params["src_embed.W"][[5, 7]] * math.sqrt(d) + model.pos.table[:2])


# -- InverseSqrtLR ------------------------------------------------------------------------------------


def _optimizer(lr):
    return dl.optim.SGD(dl.core.Parameters(w=np.zeros(3)), lr)


def test_inverse_sqrt_lr_follows_its_formula_and_drives_the_optimizer():
    base, W = 0.5, 10
    opt = _optimizer(base)
    sched = dl.optim.InverseSqrtLR(opt, W)
    want = np.array([base * min((t + 1) / W, math.sqrt(W / (t + 1))) for t in range(100)])
    np.testing.assert_allclose(sched.lrs(100), want, rtol=1e-15)
    assert opt.lr == pytest.approx(base / W)  # making the schedule sets lr_at(0)
    assert int(np.argmax(sched.lrs(100))) == W - 1 and sched.lr_at(W - 1) == pytest.approx(base)
    assert np.all(np.diff(want[:W]) > 0) and np.all(np.diff(want[W - 1 :]) < 0)
    assert sched.lr_at(4 * W - 1) == pytest.approx(base / 2)  # halved by t + 1 = 4W
    w = opt.model.params["w"]
    for t in range(1, 30):
        lr = sched.step()
        assert sched.t == t and opt.lr == lr == pytest.approx(want[t], rel=1e-15)
        opt.model.grads["w"][...] = 1.0
        before = w.copy()
        opt.step()
        np.testing.assert_allclose(before - w, lr, rtol=1e-12)  # SGD took a step of the scheduled size


def test_inverse_sqrt_lr_is_the_papers_schedule():
    """base = (d W)^-1/2 gives d^-1/2 min(s^-1/2, s W^-3/2), s = t + 1 (Vaswani et al. 2017)."""
    d, W = 512, 4000
    sched = dl.optim.InverseSqrtLR(_optimizer((d * W) ** -0.5), W)
    for s in (1, 2, 10, 1000, 3999, 4000, 4001, 10_000, 100_000):
        paper = d**-0.5 * min(s**-0.5, s * W**-1.5)
        assert sched.lr_at(s - 1) == pytest.approx(paper, rel=1e-12)
    assert sched.lr_at(W - 1) == pytest.approx(7.0e-4, abs=1e-5)  # the docstring's peak


def test_inverse_sqrt_lr_bad_arguments_raise():
    for bad in (0, -3, 2.5, True, None):
        with pytest.raises(ValueError, match="warmup_steps must be a positive integer"):
            dl.optim.InverseSqrtLR(_optimizer(0.1), bad)
    sched = dl.optim.InverseSqrtLR(_optimizer(0.1), 3)
    with pytest.raises(ValueError, match="non-negative integer step"):
        sched.lr_at(-1)
    with pytest.raises(TypeError, match="dlbook Optimizer"):
        dl.optim.InverseSqrtLR(object(), 3)


# -- tied output, shared embeddings -----------------------------------------------------------------------


def test_tied_output_adds_its_gradient_to_the_target_embedding():
    """Tied equals untied with out.W = E^T; the tied E gets (untied dE) + (untied dW_out)^T."""
    tied = _model(110, tie_output=True, norm_first=False)
    untied = _model(110, tie_output=False, norm_first=False)
    assert untied.num_parameters() - tied.num_parameters() == MD * TGT_V
    assert tied.out.embedding is tied.tgt_embed and set(tied.out._params) == {"b"}  # its own: the bias
    assert not any(k.startswith("out.embedding") for k in tied.params)
    state = tied.state_dict()
    state["out.W"] = state["tgt_embed.W"].T.copy()
    untied.load_state_dict(state)
    src, mask, tgt_in = _batch(111)
    logits = tied(src, mask, tgt_in)
    np.testing.assert_allclose(untied(src, mask, tgt_in), logits, rtol=1e-12, atol=1e-13)
    dlogits = _randn(112, *logits.shape)
    tied.zero_grad()
    untied.zero_grad()
    assert tied.backward(dlogits) == (None, None, None)
    untied.backward(dlogits)
    g, u = tied.grads, untied.grads
    np.testing.assert_allclose(g["tgt_embed.W"], u["tgt_embed.W"] + u["out.W"].T, rtol=1e-12, atol=1e-14)
    assert np.abs(u["out.W"]).max() > 1e-3 and np.abs(u["tgt_embed.W"]).max() > 1e-3  # both parts count
    for k in g:
        if k != "tgt_embed.W":
            np.testing.assert_allclose(g[k], u[k], rtol=1e-12, atol=1e-14, err_msg=k)


def test_shared_embeddings_are_one_array_with_both_gradients():
    shared = _model(120, src_vocab=TGT_V, share_embeddings=True)
    separate = _model(120, src_vocab=TGT_V)
    assert shared.src_embed is shared.tgt_embed
    assert "tgt_embed.W" not in shared.params and "src_embed.W" in shared.params
    assert separate.num_parameters() - shared.num_parameters() == MD * TGT_V
    state = shared.state_dict()
    state["tgt_embed.W"] = state["src_embed.W"].copy()
    separate.load_state_dict(state)
    src, mask, tgt_in = _batch(121)
    src[src >= TGT_V] = 5
    logits = shared(src, mask, tgt_in)
    np.testing.assert_allclose(separate(src, mask, tgt_in), logits, rtol=1e-12, atol=1e-13)
    dlogits = _randn(122, *logits.shape)
    shared.zero_grad()
    separate.zero_grad()
    shared.backward(dlogits)
    separate.backward(dlogits)
    s, p = shared.grads, separate.grads
    np.testing.assert_allclose(s["src_embed.W"], p["src_embed.W"] + p["tgt_embed.W"], rtol=1e-12, atol=1e-14)


# -- float32 ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tie_output", [False, True])
def test_float32_model_is_close_to_float64(tie_output):
    m64 = _model(130, tie_output=tie_output, positional="learned")
    m32 = Transformer(
        SRC_V,
        TGT_V,
        MD,
        MH,
        MFF,
        (2, 1),
        tie_output=tie_output,
        positional="learned",
        max_len=MAX_LEN,
        rng=0,
        dtype=np.float32,
    )
    m32.load_state_dict(m64.state_dict())
    assert all(p.dtype == np.float32 for p in m32.params.values())
    src, mask, tgt_in = _batch(131)
    l64, l32 = m64(src, mask, tgt_in), m32(src, mask, tgt_in)
    assert l32.dtype == np.float32
    np.testing.assert_allclose(l32, l64, rtol=1e-4, atol=1e-5)
    dlogits = _randn(132, *l64.shape)
    m64.zero_grad()
    m32.zero_grad()
    m64.backward(dlogits)
    m32.backward(dlogits.astype(np.float32))
    for k, g in m32.grads.items():
        assert g.dtype == np.float32, k
        scale = max(np.abs(m64.grads[k]).max(), 1e-2)  # the key biases' gradients are 0 up to rounding
        np.testing.assert_allclose(g, m64.grads[k], rtol=1e-3, atol=1e-4 * scale, err_msg=k)
    g32 = greedy_decode(m32, src, mask, max_len=5)
    g64 = greedy_decode(m64, src, mask, max_len=5)
    np.testing.assert_allclose(g32.log_prob, g64.log_prob, rtol=1e-4)
    memory = m32.encode(src, mask)
    assert memory.enc.dtype == np.float32 and m32.initial_state(memory, 3).k[0].dtype == np.float32


# -- the module protocol of the classes outside the zoo ----------------------------------------------------


def _protocol_case(name, dtype=np.float64):
    """``(module, inputs, options)`` for the classes conftest.OWN_TESTS sends here."""
    x, memory = _randn(140, 2, 3, 4).astype(dtype), _randn(141, 2, 4, 4).astype(dtype)
    if name == "MultiHeadAttention":
        return (
            MultiHeadAttention(4, 2, rng=0, dtype=dtype),
            (x, memory),
            {"mask": _padding((4, 2), 4)[:, None]},
        )
    if name == "EncoderBlock":
        return EncoderBlock(4, 2, 6, rng=0, dtype=dtype), (x,), {"mask": causal_mask(3)}
    if name == "DecoderBlock":
        return DecoderBlock(4, 2, 6, rng=0, dtype=dtype), (x, memory), {"self_mask": causal_mask(3)}
    if name == "TiedOutput":
        return TiedOutput(dl.layers.Embedding(5, 4, rng=0, dtype=dtype)), (x,), {}
    src, mask, tgt_in = _batch(142, n=2, lengths=(5, 3))
    return _model(143, dtype=dtype), (src, mask, tgt_in), {}


PROTOCOL = ["MultiHeadAttention", "EncoderBlock", "DecoderBlock", "TiedOutput", "Transformer"]


def _as_tuple(d):
    return d if isinstance(d, tuple) else (d,)


@pytest.mark.parametrize("name", PROTOCOL)
def test_protocol_gradients_accumulate_and_nothing_is_mutated(name):
    module, inputs, options = _protocol_case(name)
    _jitter(module, 144)
    copies = [a.copy() for a in inputs]
    module.zero_grad()
    out = module(*inputs, **options)
    dout = _randn(145, *out.shape)
    d0 = dout.copy()
    first = _as_tuple(module.backward(dout))
    once = {k: g.copy() for k, g in module.grads.items()}
    assert all(np.any(g != 0) for k, g in once.items() if not k.endswith("k.b")), name
    module(*inputs, **options)
    second = _as_tuple(module.backward(dout))
    for a, b in zip(first, second, strict=True):
        if a is None:
            assert b is None
        else:
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    for k, g in module.grads.items():
        np.testing.assert_allclose(g, 2 * once[k], rtol=1e-12, atol=1e-14, err_msg=k)
    for a, c in zip(inputs, copies, strict=True):
        np.testing.assert_array_equal(a, c)
    np.testing.assert_array_equal(dout, d0)
    module.zero_grad()
    assert all(not g.any() for g in module.grads.values())


@pytest.mark.parametrize("name", PROTOCOL)
def test_protocol_tape_inference_state_dict_and_repr(name):
    module, inputs, options = _protocol_case(name)
    with dl.inference_mode():
        out = module(*inputs, **options)
    assert _tapes_empty(module)
    with pytest.raises(RuntimeError, match="called more often than forward"):
        module.backward(np.ones_like(out))
    np.testing.assert_array_equal(module(*inputs, **options), out)
    module.backward(np.ones_like(out))
    assert _tapes_empty(module)
    state = module.state_dict()
    assert set(state) == set(module.params) | set(module.buffers)
    for arr in module.params.values():
        arr += 1.0
    module.load_state_dict(state)
    for k, v in module.state_dict().items():
        np.testing.assert_array_equal(v, state[k])
    assert type(module).__name__ in repr(module)


@pytest.mark.parametrize("name", PROTOCOL)
def test_protocol_float32_in_float32_out(name):
    module, inputs, options = _protocol_case(name, np.float32)
    assert all(p.dtype == np.float32 for p in module.params.values())
    out = module(*inputs, **options)
    assert out.dtype == np.float32
    for d in _as_tuple(module.backward(np.ones_like(out))):
        assert d is None or d.dtype == np.float32
    assert all(g.dtype == np.float32 for g in module.grads.values())


@pytest.mark.parametrize(
    "name",
    ["MultiHeadAttention", "EncoderBlock", "DecoderBlock", "TiedOutput"],
)
def test_protocol_integer_input_is_refused(name):
    module, inputs, options = _protocol_case(name)
    with pytest.raises(TypeError, match="float32 or float64"):
        module(np.ones(inputs[0].shape, dtype=np.int64), *inputs[1:], **options)


# -- clear errors -------------------------------------------------------------------------------------------


def test_bad_input_raises_clear_errors():
    with pytest.raises(ValueError, match="not divisible by heads"):
        MultiHeadAttention(6, 4, rng=0)
    with pytest.raises(ValueError, match="not divisible by heads"):
        Transformer(5, 5, d_model=6, heads=4, rng=0)
    with pytest.raises(ValueError, match="not divisible by heads"):
        EncoderBlock(6, 4, 8, rng=0)
    with pytest.raises(ValueError, match="share_embeddings needs one vocabulary"):
        Transformer(5, 6, d_model=4, heads=2, share_embeddings=True, rng=0)
    with pytest.raises(ValueError, match="heads must be a positive integer"):
        MultiHeadAttention(4, 0, rng=0)

    mha = MultiHeadAttention(D, H, rng=0)
    x = _randn(0, N, T, D)
    with pytest.raises(ValueError, match="does not fit"):
        mha(x, x, mask=np.ones((N, 1, T + 1), dtype=bool))
    with pytest.raises(TypeError, match="boolean"):
        mha(x, x, mask=np.ones((T, T)))
    with pytest.raises(ValueError, match=r"expected query of shape \(N, T, 8\)"):
        mha(_randn(0, N, T, D + 1), x)
    with pytest.raises(ValueError, match=r"expected key_value of shape \(N, T, 8\)"):
        mha(x, _randn(0, N, T, D - 1))
    with pytest.raises(ValueError, match="same batch size"):
        mha(x, x[:1])
    with pytest.raises(ValueError, match=r"EncoderBlock expected x of shape \(N, T, 8\)"):
        EncoderBlock(D, H, DFF, rng=0)(_randn(0, N, T, 6))
    dec = DecoderBlock(D, H, DFF, rng=0)
    with pytest.raises(ValueError, match=r"DecoderBlock expected memory of shape \(N, T, 8\)"):
        dec(x, _randn(0, N, S, 6))
    with pytest.raises(ValueError, match="must be 3-D"):
        dec(x[0], x)
    with pytest.raises(ValueError, match="expected 8 input features"):
        FeedForward(D, DFF, rng=0)(_randn(0, N, T, 6))
    with pytest.raises(ValueError, match="unknown activation 'nope'"):
        FeedForward(D, DFF, "nope", rng=0)

    pe = PositionalEncoding(D, 4)
    with pytest.raises(ValueError, match=r"positions 0\.\.4 run past the positional table of max_len=4"):
        pe(_randn(0, 1, 5, D))
    with pytest.raises(ValueError, match=r"positions 2\.\.4 run past"):
        pe(_randn(0, 1, 3, D), offset=2)
    with pytest.raises(ValueError, match=r"expected x of shape \(N, T, 8\)"):
        pe(_randn(0, 1, 3, 6))
    with pytest.raises(ValueError, match="offset must be an integer >= 0"):
        pe(_randn(0, 1, 3, D), offset=-1)


def test_model_inputs_and_decoding_limits_raise_clear_errors():
    model = _model(150)
    src, mask, tgt_in = _batch(151)
    long_tgt = np.full((3, MAX_LEN + 1), 4)
    with pytest.raises(ValueError, match="run past the positional table of max_len=8"):
        model(src, mask, long_tgt)
    long_src = np.full((3, MAX_LEN + 1), 4)
    with pytest.raises(ValueError, match="run past the positional table"):
        model(long_src, np.ones(long_src.shape, bool), tgt_in)
    with pytest.raises(ValueError, match="src_mask must be a bool array"):
        model(src, mask[:, :-1], tgt_in)
    with pytest.raises(ValueError, match="src_mask must be a bool array"):
        model(src, mask.astype(int), tgt_in)
    with pytest.raises(ValueError, match="same batch size"):
        model(src, mask, tgt_in[:2])
    with pytest.raises(ValueError, match="integer array of token ids"):
        model(src.astype(float), mask, tgt_in)
    with pytest.raises(ValueError, match=r"token ids must lie in \[0, 7\]"):
        model(src, mask, tgt_in + TGT_V)
    memory = model.encode(src, mask)
    with pytest.raises(ValueError, match="max_len=9 exceeds the positional table"):
        model.initial_state(memory, MAX_LEN + 1)
    with pytest.raises(ValueError, match="exceeds the positional table"):
        greedy_decode(model, src, mask, max_len=MAX_LEN + 1)
    with pytest.raises(ValueError, match="exceeds the positional table"):
        beam_search(model, src, mask, width=2, max_len=MAX_LEN + 1)
    greedy_decode(model, src, mask, max_len=MAX_LEN)  # the whole table is usable
