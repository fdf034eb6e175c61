"""Encoder-decoder models for sequence-to-sequence tasks, their decoding and their metrics (chapters 7-8).

.. code-block:: text

    src (N, S) ids, src_mask (N, S) bool -> Embedding -> GRU encoder -> enc_hs (N, S, H), h_S (N, H)
    tgt_in (N, T) ids (<bos> y_1 ... y_{T-1}) -> Embedding -> GRU decoder from h_S -> logits (N, T, V)

:class:`Seq2Seq` trains with *teacher forcing*: the decoder reads the true
previous token at every step, so all ``T`` steps run in one pass and the loss
is the cross-entropy of ``tgt_out = y_1 ... y_T <eos>`` (padding ignored).
Without attention the only thing the decoder learns about the source is the
encoder's final state ``h_S``, a fixed-size *context* (Sutskever et al. 2014;
Cho et al. 2014). With ``attention="additive"`` (Bahdanau et al. 2015) or
``"dot"`` (scaled dot product; Luong et al. 2015, Vaswani et al. 2017) the
decoder looks back at every encoder state at every step, Bahdanau's design:

.. math:: c_t = \\operatorname{attend}(s_{t-1}; h_1, \\dots, h_S), \\quad
          s_t = \\operatorname{GRU}([e(y_{t-1}); c_t], s_{t-1}), \\quad
          z_t = [s_t; c_t] W + b

At inference the model runs one step at a time on its own predictions:
:func:`greedy_decode` takes the likeliest token, :func:`beam_search` keeps
the ``width`` best prefixes. :func:`exact_match`, :func:`char_error_rate`
and :func:`bleu` score the results.

References
----------
- Sutskever, Vinyals & Le (2014). Sequence to Sequence Learning with Neural Networks. NeurIPS.
- Cho et al. (2014). Learning Phrase Representations using RNN Encoder-Decoder for Statistical
  Machine Translation. EMNLP.
- Bahdanau, Cho & Bengio (2015). Neural Machine Translation by Jointly Learning to Align and
  Translate. ICLR.
- Luong, Pham & Manning (2015). Effective Approaches to Attention-based Neural Machine
  Translation. EMNLP.
- Papineni et al. (2002). BLEU: a Method for Automatic Evaluation of Machine Translation. ACL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .attention import AdditiveAttention, DotProductAttention
from .core import Module, as_generator, check_positive_int, inference_mode
from .layers import Embedding, Linear
from .numerics import log_softmax
from .recurrent import GRU, GRUCell

__all__ = [
    "PAD",
    "BOS",
    "EOS",
    "UNK",
    "ATTENTION",
    "Memory",
    "Seq2Seq",
    "Decoded",
    "greedy_decode",
    "beam_search",
    "exact_match",
    "edit_distance",
    "char_error_rate",
    "bleu",
]

#: The ids of the special tokens: padding, ``<bos>``, ``<eos>`` and unknown
#: (those of :class:`dlbook.numbers.Vocab`).
PAD, BOS, EOS, UNK = 0, 1, 2, 3
#: The kinds of attention :class:`Seq2Seq` accepts: none, additive (Bahdanau) and dot.
ATTENTION = (None, "additive", "dot")


def _check_ids(ids, name: str, ndim: int = 2) -> np.ndarray:
    ids = np.asarray(ids)
    if ids.ndim != ndim or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(
            f"{name} must be a {ndim}-D integer array of token ids, got {ids.dtype} of shape {ids.shape}"
        )
    if ids.shape[-1] == 0:
        raise ValueError(f"{name} is empty: shape {ids.shape}")
    return ids


def _check_src_mask(mask, src: np.ndarray) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.dtype != np.bool_ or mask.shape != src.shape:
        raise ValueError(
            f"src_mask must be a bool array of the shape of src {src.shape} (True = a real token), "
            f"got {mask.dtype} of shape {mask.shape}"
        )
    if not mask[:, 0].all():
        raise ValueError("every source sequence needs at least one token (src_mask[:, 0] must be True)")
    return mask


@dataclass
class Memory:
    """What the encoder hands the decoder: every state, the final state and the source mask."""

    enc_hs: np.ndarray  # (N, S, H)
    h: np.ndarray  # (N, H)
    src_mask: np.ndarray  # (N, S)

    def repeat(self, k: int) -> Memory:
        """Each example ``k`` times in a row (for ``k`` beams)."""
        return Memory(*(np.repeat(a, k, axis=0) for a in (self.enc_hs, self.h, self.src_mask)))

    def __len__(self) -> int:
        return len(self.h)


class Seq2Seq(Module):
    """A GRU encoder-decoder, with a fixed context or with attention; see the module docstring.

    ``forward(src (N, S), src_mask (N, S), tgt_in (N, T)) -> logits (N, T, V)``
    with teacher forcing; ``backward(dlogits)`` returns ``(None, None, None)``
    (token ids and the mask get no gradient) and accumulates every parameter's
    gradient. With attention the weights of the last forward pass are kept in
    ``attention_weights`` ``(N, T, S)`` for plotting. For step-by-step
    decoding: :meth:`encode` and :meth:`step` (inference mode). Chapters 7-8.
    """

    def __init__(
        self,
        src_vocab: int,
        tgt_vocab: int,
        embed: int,
        hidden: int,
        *,
        attention: str | None = None,
        rng: np.random.Generator | int,
        dtype=np.float64,
    ) -> None:
        super().__init__()
        if attention not in ATTENTION:
            raise ValueError(f"attention must be one of {ATTENTION}, got {attention!r}")
        gen = as_generator(rng)
        E, H = check_positive_int(embed, "embed"), check_positive_int(hidden, "hidden")
        self.attention = attention
        self.hidden = H
        self.src_embed = Embedding(src_vocab, E, rng=gen, dtype=dtype)
        self.encoder = GRU(E, H, rng=gen, dtype=dtype)
        self.tgt_embed = Embedding(tgt_vocab, E, rng=gen, dtype=dtype)
        if attention is None:
            self.decoder = GRU(E, H, rng=gen, dtype=dtype)
            self.out = Linear(H, tgt_vocab, rng=gen, dtype=dtype)
        else:
            self.cell = GRUCell(E + H, H, rng=gen, dtype=dtype)
            if attention == "additive":
                self.attn = AdditiveAttention(H, H, H, rng=gen, dtype=dtype)
            else:
                self.attn = DotProductAttention(scaled=True)
            self.out = Linear(2 * H, tgt_vocab, rng=gen, dtype=dtype)
        self.attention_weights = None

    # -- training: teacher forcing ------------------------------------------------------
    def forward(self, src: np.ndarray, src_mask: np.ndarray, tgt_in: np.ndarray) -> np.ndarray:
        src = _check_ids(src, "src")
        src_mask = _check_src_mask(src_mask, src)
        tgt_in = _check_ids(tgt_in, "tgt_in")
        if len(tgt_in) != len(src):
            raise ValueError(f"src and tgt_in need the same batch size, got {len(src)} and {len(tgt_in)}")
        enc_hs, h = self.encoder(self.src_embed(src), None, mask=src_mask)
        Y = self.tgt_embed(tgt_in)  # (N, T, E)
        if self.attention is None:
            dec_hs, _ = self.decoder(Y, h)
            return self.out(dec_hs)
        N, T, _ = Y.shape
        H = self.hidden
        outs = np.empty((N, T, 2 * H), dtype=Y.dtype)  # [s_t; c_t]
        weights = np.empty((N, T, src.shape[1]), dtype=Y.dtype)
        key_mask = src_mask[:, None, :]  # (N, 1, S): key padding, one query per step
        s = h
        for t in range(T):
            ctx, w = self.attn(s[:, None], enc_hs, enc_hs, mask=key_mask)  # (N, 1, H), (N, 1, S)
            s = self.cell(np.concatenate([Y[:, t], ctx[:, 0]], axis=1), s)
            outs[:, t, :H], outs[:, t, H:] = s, ctx[:, 0]
            weights[:, t] = w[:, 0]
        self.attention_weights = weights
        self._save(Y.shape[-1], enc_hs.shape)
        return self.out(outs)

    def backward(self, dlogits: np.ndarray):
        douts = self.out.backward(dlogits)  # (N, T, H) or (N, T, 2H)
        if self.attention is None:
            dY, dh = self.decoder.backward(douts, None)
            self.tgt_embed.backward(dY)
            dxs, _ = self.encoder.backward(None, dh)
            self.src_embed.backward(dxs)
            return None, None, None
        E, enc_shape = self._saved()
        N, T, _ = douts.shape
        H = self.hidden
        dY = np.empty((N, T, E), dtype=douts.dtype)
        denc = np.zeros(enc_shape, dtype=douts.dtype)
        ds = np.zeros((N, H), dtype=douts.dtype)
        for t in range(T - 1, -1, -1):
            ds = ds + douts[:, t, :H]
            dx, ds = self.cell.backward(ds)  # dx = d[e(y_{t-1}); c_t]
            dY[:, t] = dx[:, :E]
            dctx = douts[:, t, H:] + dx[:, E:]
            dq, dk, dv = self.attn.backward(dctx[:, None], None)
            denc += dk
            denc += dv
            ds = ds + dq[:, 0]
        self.tgt_embed.backward(dY)
        dxs, _ = self.encoder.backward(denc, ds)
        self.src_embed.backward(dxs)
        return None, None, None

    # -- inference: one step at a time ----------------------------------------------------------
    def encode(self, src: np.ndarray, src_mask: np.ndarray) -> Memory:
        """Run the encoder (inference mode): the :class:`Memory` the decoder reads."""
        src = _check_ids(src, "src")
        src_mask = _check_src_mask(src_mask, src)
        with inference_mode():
            enc_hs, h = self.encoder(self.src_embed(src), None, mask=src_mask)
        return Memory(enc_hs, h, src_mask)

    def initial_state(self, memory: Memory, max_len: int) -> np.ndarray:
        """The decoder's first state: the encoder's final state ``(N, H)`` (``max_len`` is unused)."""
        return memory.h

    def step(self, y_prev: np.ndarray, s: np.ndarray, memory: Memory):
        """One decoder step in inference mode: ``y_prev (B,)``, state ``s (B, H)`` ->
        ``(log-probabilities (B, V), next state (B, H), attention weights (B, S) or None)``."""
        with inference_mode():
            x = self.tgt_embed(np.asarray(y_prev)[:, None])[:, 0]  # (B, E)
            if self.attention is None:
                s = self.decoder.cell(x, s)
                z, w = self.out(s), None
            else:
                key_mask = memory.src_mask[:, None, :]
                ctx, w = self.attn(s[:, None], memory.enc_hs, memory.enc_hs, mask=key_mask)
                s = self.cell(np.concatenate([x, ctx[:, 0]], axis=1), s)
                z = self.out(np.concatenate([s, ctx[:, 0]], axis=1))
                w = w[:, 0]
        return log_softmax(z, axis=-1), s, w

    def __repr__(self) -> str:
        return (
            f"Seq2Seq(src_vocab={self.src_embed.num_embeddings}, tgt_vocab={self.tgt_embed.num_embeddings}, "
            f"embed={self.src_embed.embedding_dim}, hidden={self.hidden}, attention={self.attention!r})"
        )


# ---------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------
@dataclass
class Decoded:
    """Decoded sequences: ``tokens`` (list of int arrays, without ``<eos>``), their total
    log-probability ``log_prob`` (N,) including ``<eos>`` when it was produced, the score
    the search ranked by ``score`` (N,), and, from :func:`greedy_decode` of an attention
    model, the attention weights of every produced token ``weights`` (list of (L, S))."""

    tokens: list[np.ndarray]
    log_prob: np.ndarray
    score: np.ndarray
    weights: list[np.ndarray] | None = None


def _banned(V: int) -> np.ndarray:
    """Tokens a decoder never produces: <pad>, <bos> (and <unk>)."""
    return np.array([t for t in (PAD, BOS, UNK) if t < V], dtype=np.int64)


def greedy_decode(model: Seq2Seq, src: np.ndarray, src_mask: np.ndarray, *, max_len: int) -> Decoded:
    """Feed back the likeliest token at each step until ``<eos>`` or ``max_len`` tokens.

    ``model`` is any decoder with ``encode(src, src_mask) -> memory`` (``len(memory)``
    sequences, ``memory.repeat(k)``), ``initial_state(memory, max_len)`` and ``step(y_prev,
    state, memory) -> (log-probabilities, next state, weights or None)``: a :class:`Seq2Seq`
    (the state is a GRU's) or a :class:`dlbook.transformer.Transformer` (a key-value cache).
    """
    max_len = check_positive_int(max_len, "max_len")
    memory = model.encode(src, src_mask)
    N = len(memory)
    s, y = model.initial_state(memory, max_len), np.full(N, BOS, dtype=np.int64)
    out = np.zeros((N, max_len), dtype=np.int64)
    lengths = np.full(N, max_len)
    log_prob = np.zeros(N)
    alive = np.ones(N, dtype=bool)
    weights = []
    for t in range(max_len):
        logp, s, w = model.step(y, s, memory)
        logp[:, _banned(logp.shape[1])] = -np.inf
        y = logp.argmax(axis=1)
        log_prob += np.where(alive, logp[np.arange(N), y], 0.0)
        if w is not None:
            weights.append(w)
        ended = alive & (y == EOS)
        lengths[ended] = t
        out[:, t] = np.where(alive, y, PAD)
        alive &= ~ended
        if not alive.any():
            break
    tokens = [out[n, : lengths[n]] for n in range(N)]
    W = None
    if weights:
        stacked = np.stack(weights, axis=1)  # (N, steps, S)
        W = [stacked[n, : min(lengths[n] + 1, stacked.shape[1])] for n in range(N)]
    return Decoded(tokens, log_prob, log_prob.copy(), W)


def beam_search(
    model: Seq2Seq,
    src: np.ndarray,
    src_mask: np.ndarray,
    *,
    width: int,
    max_len: int,
    alpha: float = 0.0,
) -> Decoded:
    """Keep the ``width`` likeliest prefixes at each step; return the best finished sequence.

    A hypothesis is ranked by :math:`\\log p(y) / |y|^{\\alpha}` (``|y|`` counts
    ``<eos>``; ``alpha = 0`` is the plain log-probability, which favours short
    outputs; Wu et al. 2016 use a similar length penalty). At each step the
    ``width`` best extensions of all live prefixes are chosen by
    log-probability; those that end in ``<eos>`` are finished, and the next
    best extensions that do not keep ``width`` prefixes alive. The search
    stops when no live prefix can still beat the best finished one (log
    probabilities only fall as a prefix grows) or after ``max_len`` tokens,
    when unfinished prefixes count as they are. With ``width=1`` and
    ``alpha=0`` the result is :func:`greedy_decode`'s; with a width at least
    the number of possible sequences it is exhaustive search. ``model`` is
    as for :func:`greedy_decode`; the states are reordered with ``state[rows]``.
    """
    width = check_positive_int(width, "width")
    max_len = check_positive_int(max_len, "max_len")
    if not alpha >= 0:
        raise ValueError(f"alpha must be >= 0, got {alpha!r}")
    memory = model.encode(src, src_mask)
    N = len(memory)
    k = width
    mem = memory.repeat(k)
    s = model.initial_state(mem, max_len)  # (N*k, H) or a Transformer's cache
    y = np.full(N * k, BOS, dtype=np.int64)
    raw = np.full((N, k), -np.inf)
    raw[:, 0] = 0.0  # one live prefix to start with
    prefixes = np.zeros((N, k, 0), dtype=np.int64)
    best = np.full(N, -np.inf)  # best finished score
    best_raw = np.full(N, -np.inf)
    best_tokens: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * N
    rows = np.arange(N)
    for t in range(max_len):
        logp, s_next, _ = model.step(y, s, mem)
        V = logp.shape[1]
        logp[:, _banned(V)] = -np.inf
        cand = (raw[:, :, None] + logp.reshape(N, k, V)).reshape(N, k * V)  # (N, k V)
        m = min(2 * k, k * V)
        top = np.argpartition(-cand, m - 1, axis=1)[:, :m]
        order = np.argsort(-cand[rows[:, None], top], axis=1, kind="stable")
        top = top[rows[:, None], order]  # (N, m), best first
        top_scores = cand[rows[:, None], top]
        beam, token = top // V, top % V
        # finished: <eos> among the k best extensions
        fin = (token[:, :k] == EOS) & np.isfinite(top_scores[:, :k])
        norm = top_scores[:, :k] / (t + 1) ** alpha
        for n, j in zip(*np.nonzero(fin & (norm > best[:, None])), strict=True):
            if norm[n, j] > best[n]:
                best[n], best_raw[n] = norm[n, j], top_scores[n, j]
                best_tokens[n] = prefixes[n, beam[n, j]].copy()
        # alive: the k best extensions that are not <eos>
        keep = (token != EOS) & np.isfinite(top_scores)
        rank = np.cumsum(keep, axis=1)
        keep &= rank <= k
        new_raw = np.full((N, k), -np.inf)
        new_beam = np.zeros((N, k), dtype=np.int64)
        new_tok = np.full((N, k), EOS, dtype=np.int64)
        n_idx, j_idx = np.nonzero(keep)
        slot = rank[n_idx, j_idx] - 1
        new_raw[n_idx, slot] = top_scores[n_idx, j_idx]
        new_beam[n_idx, slot] = beam[n_idx, j_idx]
        new_tok[n_idx, slot] = token[n_idx, j_idx]
        src_rows = (rows[:, None] * k + new_beam).reshape(-1)
        s = s_next[src_rows]
        prefixes = np.concatenate([prefixes[rows[:, None], new_beam], new_tok[:, :, None]], axis=2)
        raw, y = new_raw, new_tok.reshape(-1)
        # a live prefix can at best keep its log-probability and reach length max_len
        bound = raw.max(axis=1) / max_len**alpha
        if np.all(best >= bound):
            break
    else:  # max_len reached: unfinished prefixes count as they are
        norm = raw / max_len**alpha
        for n in range(N):
            j = int(np.argmax(norm[n]))
            if norm[n, j] > best[n]:
                best[n], best_raw[n] = norm[n, j], raw[n, j]
                best_tokens[n] = prefixes[n, j].copy()
    return Decoded(best_tokens, best_raw, best)


# ---------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------
def _count_message(hyps, refs) -> str:
    return f"need as many hypotheses as references (and at least one), got {len(hyps)} and {len(refs)}"


def _as_lists(seqs) -> list[list]:
    return [list(s) for s in seqs]


def exact_match(hyps: Sequence, refs: Sequence) -> float:
    """The fraction of hypotheses equal to their reference, token for token."""
    hyps, refs = _as_lists(hyps), _as_lists(refs)
    if len(hyps) != len(refs) or not refs:
        raise ValueError(_count_message(hyps, refs))
    return float(np.mean([h == r for h, r in zip(hyps, refs, strict=True)]))


def edit_distance(a: Sequence, b: Sequence) -> int:
    """Levenshtein distance: the fewest insertions, deletions and substitutions turning ``a`` into ``b``."""
    a, b = list(a), list(b)
    prev = np.arange(len(b) + 1)
    for i, x in enumerate(a, 1):
        cur = np.empty_like(prev)
        cur[0] = i
        sub = prev[:-1] + np.array([x != y for y in b], dtype=np.int64)
        for j in range(1, len(b) + 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, sub[j - 1])
        prev = cur
    return int(prev[-1])


def char_error_rate(hyps: Sequence, refs: Sequence) -> float:
    """Total edit distance over total reference length (character error rate, CER)."""
    hyps, refs = _as_lists(hyps), _as_lists(refs)
    if len(hyps) != len(refs) or not refs:
        raise ValueError(_count_message(hyps, refs))
    total = sum(len(r) for r in refs)
    if total == 0:
        raise ValueError("the references are all empty")
    return sum(edit_distance(h, r) for h, r in zip(hyps, refs, strict=True)) / total


def bleu(hyps: Sequence[str], refs: Sequence[str]) -> float:
    """Corpus BLEU (Papineni et al. 2002) of Chinese strings, by ``sacrebleu`` with its Chinese tokeniser.

    On a 0-100 scale, as the field reports it; one reference per hypothesis.
    """
    import sacrebleu

    hyps, refs = [str(h) for h in hyps], [str(r) for r in refs]
    if len(hyps) != len(refs) or not refs:
        raise ValueError(_count_message(hyps, refs))
    return float(sacrebleu.corpus_bleu(hyps, [refs], tokenize="zh").score)
