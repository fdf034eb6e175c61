"""Encoder-decoder models, decoding and metrics (dlbook.seq2seq), chapters 7-8.

Gradients by central differences for the model with and without attention,
with padded sources; padding changes nothing; greedy decoding equals beam
search of width 1; beam search finds the best sequence where exhaustive
search is possible; the metrics against hand-computed values and sacrebleu.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import dlbook as dl
from dlbook.seq2seq import (
    BOS,
    EOS,
    Seq2Seq,
    beam_search,
    bleu,
    char_error_rate,
    edit_distance,
    exact_match,
    greedy_decode,
)

ATTN = [None, "additive", "dot"]
SRC_V, TGT_V = 7, 6


def _batch(seed=0, N=3, S=5, T=4):
    gen = np.random.default_rng(seed)
    src = gen.integers(4, SRC_V, size=(N, S))
    lens = np.array([S, 2, 3][:N])
    mask = np.arange(S)[None] < lens[:, None]
    src[~mask] = 0  # <pad>
    tgt_in = gen.integers(4, TGT_V, size=(N, T))
    tgt_in[:, 0] = BOS
    return src, mask, tgt_in


def _model(attention, seed=0, dtype=np.float64, hidden=4):
    return Seq2Seq(SRC_V, TGT_V, 3, hidden, attention=attention, rng=seed, dtype=dtype)


@pytest.mark.parametrize("attention", ATTN)
def test_gradcheck_with_padded_sources(attention):
    model = _model(attention)
    src, mask, tgt_in = _batch()
    errors = dl.core.gradcheck(model, src, mask, tgt_in)
    names = {k for k in errors if not k.startswith("x")}
    assert names == set(model.params)  # every parameter was checked


@pytest.mark.parametrize("attention", ATTN)
def test_padding_changes_nothing(attention):
    """Each example of a padded batch gets the logits it gets alone, unpadded."""
    model = _model(attention, seed=1)
    src, mask, tgt_in = _batch(seed=2)
    logits = model(src, mask, tgt_in)
    for n in range(len(src)):
        length = int(mask[n].sum())
        alone = model(src[n : n + 1, :length], np.ones((1, length), dtype=bool), tgt_in[n : n + 1])
        np.testing.assert_allclose(logits[n], alone[0], rtol=1e-12, atol=1e-14)
    if attention is not None:
        w = model.attention_weights  # of the last call: the single example
        assert w.shape == (1, tgt_in.shape[1], int(mask[-1].sum()))


@pytest.mark.parametrize("attention", ATTN)
def test_teacher_forcing_equals_stepping(attention):
    """forward with teacher forcing and step() fed the same tokens give the same log-probabilities."""
    model = _model(attention, seed=3)
    src, mask, tgt_in = _batch(seed=4)
    logits = model(src, mask, tgt_in)
    memory = model.encode(src, mask)
    s = memory.h
    for t in range(tgt_in.shape[1]):
        logp, s, w = model.step(tgt_in[:, t], s, memory)
        np.testing.assert_allclose(logp, dl.numerics.log_softmax(logits[:, t]), rtol=1e-12, atol=1e-13)
        if attention is None:
            assert w is None
        else:
            np.testing.assert_allclose(w, model.attention_weights[:, t], rtol=1e-12, atol=1e-15)
            assert np.all(w[~mask] == 0)


def _score(model, src, mask, tokens, alpha=0.0, max_len=None):
    """log p(tokens + <eos>) / len^alpha, or of the unfinished tokens when they reach max_len."""
    memory = model.encode(src, mask)
    s, y, total = memory.h, np.array([BOS]), 0.0
    seq = list(tokens) + ([] if max_len is not None and len(tokens) == max_len else [EOS])
    for tok in seq:
        logp, s, _ = model.step(y, s, memory)
        total += logp[0, tok]
        y = np.array([tok])
    return total / len(seq) ** alpha


@pytest.mark.parametrize("attention", ATTN)
def test_beam_of_width_one_is_greedy(attention):
    model = _model(attention, seed=5, hidden=6)
    src, mask, _ = _batch(seed=6)
    g = greedy_decode(model, src, mask, max_len=6)
    b = beam_search(model, src, mask, width=1, max_len=6)
    for x, y in zip(g.tokens, b.tokens, strict=True):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_allclose(g.log_prob, b.log_prob, rtol=1e-12)
    for n in range(len(src)):  # the reported log-probability is the sequence's
        L = int(mask[n].sum())
        want = _score(model, src[n : n + 1, :L], mask[n : n + 1, :L], g.tokens[n], max_len=6)
        assert g.log_prob[n] == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("attention", ["additive", None])
@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_beam_search_finds_the_exhaustive_best(attention, alpha):
    """Tokens {4, 5}, at most 3: 15 sequences; a beam of 30 sees them all."""
    model = _model(attention, seed=7, hidden=5)
    src, mask, _ = _batch(seed=8, N=2)
    max_len = 3
    result = beam_search(model, src, mask, width=30, max_len=max_len, alpha=alpha)
    narrow = beam_search(model, src, mask, width=2, max_len=max_len, alpha=alpha)
    for n in range(len(src)):
        L = int(mask[n].sum())
        one = (src[n : n + 1, :L], mask[n : n + 1, :L])
        seqs = [list(p) for k in range(max_len + 1) for p in itertools.product((4, 5), repeat=k)]
        scores = [_score(model, *one, seq, alpha, max_len) for seq in seqs]
        best = int(np.argmax(scores))
        assert list(result.tokens[n]) == seqs[best]
        assert result.score[n] == pytest.approx(scores[best], rel=1e-10)
        assert narrow.score[n] <= result.score[n] + 1e-12  # a narrower beam never does better


def test_decoding_never_emits_pad_bos_or_unk():
    model = _model("dot", seed=9)
    src, mask, _ = _batch(seed=10)
    for d in (greedy_decode(model, src, mask, max_len=8), beam_search(model, src, mask, width=3, max_len=8)):
        for seq in d.tokens:
            assert not set(seq.tolist()) & {0, 1, 2, 3}


def test_greedy_returns_attention_weights_per_token():
    model = _model("additive", seed=11)
    src, mask, _ = _batch(seed=12)
    d = greedy_decode(model, src, mask, max_len=5)
    for n, w in enumerate(d.weights):
        produced = len(d.tokens[n]) + (len(d.tokens[n]) < 5)  # the <eos> step has weights too
        assert w.shape == (produced, src.shape[1])
        np.testing.assert_allclose(w.sum(axis=1), 1.0, rtol=1e-12)
        assert np.all(w[:, ~mask[n]] == 0)


def test_metrics():
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance("", "abc") == 3 and edit_distance("abc", "") == 3 and edit_distance("ab", "ab") == 0
    assert exact_match([[1, 2], [3]], [[1, 2], [4]]) == 0.5
    assert char_error_rate(["三十二万", "五"], ["三十二万一", "六"]) == pytest.approx(2 / 6)
    assert bleu(["三十二万一千四百零五"], ["三十二万一千四百零五"]) == pytest.approx(100.0)
    import sacrebleu

    hyps, refs = ["一百二十三", "四千零五", "九十"], ["一百二十三", "四千零五十", "十九"]
    assert bleu(hyps, refs) == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs], tokenize="zh").score)
    with pytest.raises(ValueError, match="as many hypotheses as references"):
        exact_match([[1]], [[1], [2]])
    with pytest.raises(ValueError, match="as many hypotheses as references"):
        char_error_rate([], [])
    with pytest.raises(ValueError, match="references are all empty"):
        char_error_rate([[1]], [[]])


def test_bad_input_raises_clear_errors():
    model = _model(None)
    src, mask, tgt_in = _batch()
    with pytest.raises(ValueError, match="attention must be one of"):
        Seq2Seq(5, 5, 2, 2, attention="luong", rng=0)
    with pytest.raises(ValueError, match="src_mask must be a bool array"):
        model(src, mask.astype(int), tgt_in)
    with pytest.raises(ValueError, match="src_mask must be a bool array"):
        model(src, mask[:, :-1], tgt_in)
    with pytest.raises(ValueError, match="at least one token"):
        model(src, np.zeros_like(mask), tgt_in)
    with pytest.raises(ValueError, match="same batch size"):
        model(src, mask, tgt_in[:2])
    with pytest.raises(ValueError, match="integer array of token ids"):
        model(src.astype(float), mask, tgt_in)
    with pytest.raises(ValueError, match="is empty"):
        model(src[:, :0], mask[:, :0], tgt_in)
    with pytest.raises(ValueError, match="width must be a positive integer"):
        beam_search(model, src, mask, width=0, max_len=3)
    with pytest.raises(ValueError, match="alpha must be >= 0"):
        beam_search(model, src, mask, width=2, max_len=3, alpha=-1.0)
