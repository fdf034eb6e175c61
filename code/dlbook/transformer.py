"""The Transformer of chapter 9 (Vaswani et al. 2017), every piece with its backward pass.

.. code-block:: text

    src (N, S) ids --Embedding*sqrt(d) + PE--> [EncoderBlock] x L_enc --> memory (N, S, d)
    tgt_in (N, T) --Embedding*sqrt(d) + PE--> [DecoderBlock(memory)] x L_dec --> Linear --> logits (N, T, V)

    EncoderBlock, Post-Norm (the paper)      EncoderBlock, Pre-Norm (Xiong et al. 2020)
      h = LN(x + SelfAttn(x))                  h = x + SelfAttn(LN(x))
      y = LN(h + FFN(h))                       y = h + FFN(LN(h))

    DecoderBlock: causal self-attention, then cross-attention to the memory, then the FFN,
    each wrapped the same way. A Pre-Norm stack ends with one more LayerNorm.

Multi-head attention projects ``(N, T, d)`` to queries, keys and values,
splits each into ``h`` heads ``(N, h, T, d/h)``, runs scaled dot-product
attention (:class:`dlbook.attention.DotProductAttention`, which handles the
head axis and the masks) and merges the heads back to ``(N, T, d)`` before
an output projection:

.. math:: \\operatorname{MultiHead}(Q, K, V) = [\\operatorname{head}_1; \\dots; \\operatorname{head}_h]
          W^O, \\quad \\operatorname{head}_i = \\operatorname{softmax}\\Bigl(
          \\frac{Q W_i^Q (K W_i^K)^\\top}{\\sqrt{d/h}}\\Bigr) V W_i^V

Masks are boolean, True = attend (chapter 8's convention): key padding of the
source as ``(N, 1, S)``, the decoder's causal mask ``(T, T)`` from
:func:`causal_mask`.

Decoding runs one token at a time (:func:`dlbook.seq2seq.greedy_decode`,
:func:`dlbook.seq2seq.beam_search` work with this model): :meth:`Transformer.encode`
computes the memory and every decoder layer's cross-attention keys and values
once; :meth:`Transformer.step` feeds one token, appends its keys and values to
a :class:`DecoderCache` and attends over the cache, so step ``t`` costs
``O(t)`` instead of re-running the whole prefix (:func:`greedy_decode_recompute`
does that, for comparison and as a test).

References
----------
- Vaswani et al. (2017). Attention Is All You Need. NeurIPS.
- Ba, Kiros & Hinton (2016). Layer Normalization. arXiv:1607.06450.
- Xiong et al. (2020). On Layer Normalization in the Transformer Architecture. ICML (Pre-Norm).
- Shazeer (2020). GLU Variants Improve Transformer. arXiv:2002.05202 (SwiGLU).
- Press & Wolf (2017). Using the Output Embedding to Improve Language Models. EACL (tied output).
- PyTorch's ``nn.MultiheadAttention``, ``nn.TransformerEncoderLayer`` and
  ``nn.TransformerDecoderLayer``, which the tests match with copied weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .activations import Activation, SwiGLU
from .attention import DotProductAttention
from .core import Module, as_generator, check_dout, check_dtype, check_float_array, check_positive_int
from .layers import Dropout, Embedding, Identity, LayerNorm, Linear, init_weight
from .numerics import log_softmax
from .seq2seq import BOS, _check_ids, _check_src_mask

__all__ = [
    "causal_mask",
    "sinusoidal_encoding",
    "PositionalEncoding",
    "MultiHeadAttention",
    "FeedForward",
    "EncoderBlock",
    "DecoderBlock",
    "Transformer",
    "TransformerMemory",
    "DecoderCache",
    "greedy_decode_recompute",
]


def causal_mask(T: int) -> np.ndarray:
    """``(T, T)`` bool, True on and below the diagonal: query ``i`` may attend to keys ``j <= i``."""
    T = check_positive_int(T, "T")
    return np.tril(np.ones((T, T), dtype=bool))


# ---------------------------------------------------------------------------
# Positional encodings
# ---------------------------------------------------------------------------
def sinusoidal_encoding(max_len: int, d_model: int, base: float = 10000.0) -> np.ndarray:
    """The table ``P (max_len, d_model)`` of Vaswani et al. (2017), float64.

    .. math:: P_{p, 2i} = \\sin(p\\, \\omega_i), \\quad P_{p, 2i+1} = \\cos(p\\, \\omega_i),
              \\quad \\omega_i = \\text{base}^{-2i/d}

    Each pair of columns is a point on a circle turning at frequency
    :math:`\\omega_i`, so :math:`P_{p+k}` is :math:`P_p` rotated pair by pair
    by the angles :math:`k \\omega_i`: a linear map that depends on the offset
    ``k`` only. ``d_model`` must be even.
    """
    max_len = check_positive_int(max_len, "max_len")
    d_model = check_positive_int(d_model, "d_model")
    if d_model % 2:
        raise ValueError(f"the sinusoidal encoding pairs sin and cos: d_model must be even, got {d_model}")
    pos = np.arange(max_len, dtype=np.float64)[:, None]  # (L, 1)
    omega = base ** (-np.arange(0, d_model, 2, dtype=np.float64) / d_model)  # (d/2,)
    P = np.empty((max_len, d_model))
    P[:, 0::2] = np.sin(pos * omega)
    P[:, 1::2] = np.cos(pos * omega)
    return P


class PositionalEncoding(Module):
    """Add a position's vector to each token: ``x (N, T, d) -> x + P[offset : offset + T]``.

    ``kind="sinusoidal"``: the fixed table of :func:`sinusoidal_encoding`
    (a buffer, not trained); ``kind="learned"``: a trained table ``P``
    (``params["P"]``, drawn from N(0, 0.02²) as in BERT and GPT-2). ``offset``
    is the position of the first token (incremental decoding feeds one token
    at position ``t``). A sequence that runs past ``max_len`` raises
    ``ValueError``: the table has no row for it.
    """

    KINDS = ("sinusoidal", "learned")

    def __init__(
        self,
        d_model: int,
        max_len: int,
        kind: str = "sinusoidal",
        *,
        rng: np.random.Generator | int | None = None,
        dtype=np.float64,
    ) -> None:
        super().__init__()
        if kind not in self.KINDS:
            raise ValueError(f"kind must be one of {self.KINDS}, got {kind!r}")
        self.d_model = check_positive_int(d_model, "d_model")
        self.max_len = check_positive_int(max_len, "max_len")
        self.kind = kind
        dt = check_dtype(dtype)
        if kind == "sinusoidal":
            self.buffers = {"P": sinusoidal_encoding(self.max_len, self.d_model).astype(dt)}
        else:
            P = 0.02 * as_generator(rng).standard_normal((self.max_len, self.d_model))
            self.params = {"P": P.astype(dt)}

    @property
    def table(self) -> np.ndarray:
        """The ``(max_len, d_model)`` table (live array)."""
        return self._params["P"] if self.kind == "learned" else self._buffers["P"]

    def forward(self, x: np.ndarray, offset: int = 0) -> np.ndarray:
        x = check_float_array(x, "x", ndim=3)
        N, T, d = x.shape
        if d != self.d_model:
            raise ValueError(f"PositionalEncoding expected x of shape (N, T, {self.d_model}), got {x.shape}")
        offset = check_positive_int(offset, "offset", minimum=0)
        if offset + T > self.max_len:
            raise ValueError(
                f"positions {offset}..{offset + T - 1} run past the positional table of max_len="
                f"{self.max_len}: build the model with a larger max_len or feed shorter sequences"
            )
        self._save(x.shape, offset)
        return x + self.table[offset : offset + T].astype(x.dtype, copy=False)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        shape, offset = self._saved()
        dout = check_dout(dout, shape, "PositionalEncoding")
        if self.kind == "learned":
            self._grad("P")[offset : offset + shape[1]] += dout.sum(axis=0)
        return dout

    def __repr__(self) -> str:
        return f"PositionalEncoding({self.d_model}, max_len={self.max_len}, kind={self.kind!r})"


# ---------------------------------------------------------------------------
# Multi-head attention
# ---------------------------------------------------------------------------
def _check_width(d_model: int, heads: int) -> tuple[int, int]:
    d_model = check_positive_int(d_model, "d_model")
    heads = check_positive_int(heads, "heads")
    if d_model % heads:
        raise ValueError(
            f"d_model={d_model} is not divisible by heads={heads}: each head gets d_model / heads features"
        )
    return d_model, heads


class MultiHeadAttention(Module):
    """Multi-head scaled dot-product attention with input and output projections.

    ``forward(query (N, Tq, d), key_value (N, Tk, d), mask=None) -> (N, Tq, d)``;
    self-attention passes the same array twice. ``backward(dout)`` returns
    ``(dquery, dkey_value)`` (a self-attention caller adds the two). The
    attention weights of the last forward pass are kept in ``weights``
    ``(N, h, Tq, Tk)`` (read-only) for plotting. ``mask``: bool, True =
    attend, any form :mod:`dlbook.attention` accepts, e.g. ``(N, 1, Tk)`` key
    padding or ``(Tq, Tk)`` causal; one mask for all heads.

    Parameters are four :class:`~dlbook.layers.Linear` layers ``q``, ``k``,
    ``v``, ``o`` of shape ``(d, d)``: ``q``, ``k``, ``v`` drawn together as
    one Xavier-uniform ``(d, 3d)`` matrix (bound sqrt(6 / 4d)),
    ``o`` by ``nn.Linear``'s default, biases zero, as
    ``torch.nn.MultiheadAttention`` does (its ``in_proj_weight`` stacks the
    transposes of ``q.W``, ``k.W``, ``v.W``). Head ``i`` uses columns
    ``i*d/h : (i+1)*d/h`` of each projection.
    """

    def __init__(
        self, d_model: int, heads: int, *, bias: bool = True, rng: np.random.Generator | int, dtype=np.float64
    ) -> None:
        super().__init__()
        self.d_model, self.heads = _check_width(d_model, heads)
        gen = as_generator(rng)
        d = self.d_model
        # q, k, v drawn as one Xavier-uniform (d, 3d) matrix, as torch draws its in_proj_weight
        packed = init_weight(d, 3 * d, gen, "xavier_uniform", check_dtype(dtype))
        zeros = np.zeros(d, dtype=packed.dtype) if bias else None
        q, k, v = (packed[:, i * d : (i + 1) * d] for i in range(3))
        self.q, self.k, self.v = (Linear.from_weights(w, zeros) for w in (q, k, v))
        self.o = Linear(d, d, bias=bias, rng=gen, dtype=dtype)
        self.attn = DotProductAttention(scaled=True)
        self.weights = None

    def split(self, x: np.ndarray) -> np.ndarray:
        """``(N, T, d) -> (N, h, T, d/h)``: head ``i`` gets features ``i*d/h .. (i+1)*d/h - 1``."""
        N, T, _ = x.shape
        return x.reshape(N, T, self.heads, -1).transpose(0, 2, 1, 3)

    @staticmethod
    def merge(x: np.ndarray) -> np.ndarray:
        """``(N, h, T, d/h) -> (N, T, d)``, the inverse of :meth:`split`."""
        N, h, T, dk = x.shape
        return x.transpose(0, 2, 1, 3).reshape(N, T, h * dk)

    def _check(self, x, name: str) -> np.ndarray:
        x = check_float_array(x, name, ndim=3)
        if x.shape[-1] != self.d_model:
            raise ValueError(
                f"MultiHeadAttention expected {name} of shape (N, T, {self.d_model}), got {x.shape}"
            )
        return x

    def forward(self, query: np.ndarray, key_value: np.ndarray, mask=None) -> np.ndarray:
        query, key_value = self._check(query, "query"), self._check(key_value, "key_value")
        if len(query) != len(key_value):
            raise ValueError(
                f"query and key_value need the same batch size, got {query.shape} and {key_value.shape}"
            )
        q = self.split(self.q(query))  # (N, h, Tq, d/h)
        k = self.split(self.k(key_value))  # (N, h, Tk, d/h)
        v = self.split(self.v(key_value))
        context, self.weights = self.attn(q, k, v, mask=mask)  # (N, h, Tq, d/h), (N, h, Tq, Tk)
        return self.o(self.merge(context))  # (N, Tq, d)

    def backward(self, dout: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        dcontext = self.split(self.o.backward(dout))  # (N, h, Tq, d/h)
        dq, dk, dv = self.attn.backward(dcontext)
        dkey_value = self.v.backward(self.merge(dv))
        dkey_value += self.k.backward(self.merge(dk))
        return self.q.backward(self.merge(dq)), dkey_value

    # -- incremental decoding (inference mode) -----------------------------------------
    def keys_values(self, key_value: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The keys and values ``(N, h, Tk, d/h)`` of ``key_value (N, Tk, d)``, for a cache."""
        key_value = self._check(key_value, "key_value")
        return self.split(self.k(key_value)), self.split(self.v(key_value))

    def attend(self, query: np.ndarray, k: np.ndarray, v: np.ndarray, mask=None) -> np.ndarray:
        """Attention of ``query (N, Tq, d)`` over given keys and values ``(N, h, Tk, d/h)``."""
        context, self.weights = self.attn(self.split(self.q(query)), k, v, mask=mask)
        return self.o(self.merge(context))

    def __repr__(self) -> str:
        return f"MultiHeadAttention(d_model={self.d_model}, heads={self.heads})"


# ---------------------------------------------------------------------------
# Position-wise feed-forward network
# ---------------------------------------------------------------------------
class FeedForward(Module):
    """The position-wise feed-forward network, applied to every position alike.

    .. math:: \\operatorname{FFN}(x) = f(x W_1 + b_1) W_2 + b_2 \\quad\\text{or, for SwiGLU,}

              \\operatorname{FFN}(x) = \\bigl(\\operatorname{Swish}(x W + b) \\odot (x V + c)\\bigr) W_2 + b_2

    ``x (N, T, d) -> (N, T, d)``, hidden width ``d_ff``. ``activation`` is any
    elementwise name of :mod:`dlbook.activations` (``"relu"``, the paper's;
    ``"gelu"``, exact, as PyTorch's ``activation="gelu"``; ``"gelu_tanh"``,
    faster) or ``"swiglu"`` (:class:`~dlbook.activations.SwiGLU`, which has
    two input matrices: Shazeer keeps parameters equal by using ``2/3`` of
    ``d_ff``, a choice left to the caller). Children: ``inner`` (``Linear``
    or ``SwiGLU``), ``act`` (an ``Activation``, or ``Identity`` for SwiGLU),
    ``outer`` (``Linear``); their names match PyTorch's ``linear1``/``linear2``.
    """

    def __init__(
        self,
        d_model: int,
        d_ff: int,
        activation: str = "relu",
        *,
        rng: np.random.Generator | int,
        dtype=np.float64,
    ) -> None:
        super().__init__()
        gen = as_generator(rng)
        d_model, d_ff = check_positive_int(d_model, "d_model"), check_positive_int(d_ff, "d_ff")
        self.activation = activation
        if activation == "swiglu":
            self.inner = SwiGLU(d_model, d_ff, rng=gen, dtype=dtype)
            self.act = Identity()
        else:
            self.inner = Linear(d_model, d_ff, rng=gen, dtype=dtype)
            self.act = Activation(activation)
        self.outer = Linear(d_ff, d_model, rng=gen, dtype=dtype)

    def forward(self, x: np.ndarray) -> np.ndarray:
        return self.outer(self.act(self.inner(x)))

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return self.inner.backward(self.act.backward(self.outer.backward(dout)))

    def __repr__(self) -> str:
        return (
            f"FeedForward({self.inner.in_features}, d_ff={self.inner.out_features}, "
            f"activation={self.activation!r})"
        )


# ---------------------------------------------------------------------------
# Blocks
# ---------------------------------------------------------------------------
class _Block(Module):
    """Residual sublayers around LayerNorm, Post-Norm or Pre-Norm; shared by both blocks."""

    def __init__(self, d_model, heads, d_ff, activation, norm_first, dropout, gen, dtype, n_sub) -> None:
        super().__init__()
        self.d_model, self.heads = _check_width(d_model, heads)
        self.norm_first = bool(norm_first)
        self.norms = [LayerNorm(d_model, dtype=dtype) for _ in range(n_sub)]
        self.drops = [Dropout(dropout, rng=gen) if dropout else Identity() for _ in range(n_sub)]
        self.ffn = FeedForward(d_model, d_ff, activation, rng=gen, dtype=dtype)

    # A sublayer ``f`` (its module does the work) wrapped as
    #   Post-Norm: y = LN(x + drop(f(x)))       Pre-Norm: y = x + drop(f(LN(x)))
    def _pre(self, i: int, x: np.ndarray) -> np.ndarray:
        return self.norms[i](x) if self.norm_first else x

    def _post(self, i: int, x: np.ndarray, fx: np.ndarray) -> np.ndarray:
        y = x + self.drops[i](fx)
        return y if self.norm_first else self.norms[i](y)

    def _post_backward(self, i: int, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``dy -> (d of the residual input x, d of f(x))``, before ``f``'s backward."""
        if not self.norm_first:
            dy = self.norms[i].backward(dy)
        return dy, self.drops[i].backward(dy)

    def _pre_backward(self, i: int, dx_res: np.ndarray, dfin: np.ndarray) -> np.ndarray:
        """Add the gradient through ``f``'s input ``dfin`` to the residual path ``dx_res``."""
        return dx_res + (self.norms[i].backward(dfin) if self.norm_first else dfin)

    def _check_x(self, x, name: str = "x") -> np.ndarray:
        x = check_float_array(x, name, ndim=3)
        if x.shape[-1] != self.d_model:
            raise ValueError(
                f"{type(self).__name__} expected {name} of shape (N, T, {self.d_model}), got {x.shape}"
            )
        return x


class EncoderBlock(_Block):
    """Self-attention then the feed-forward network, each a residual sublayer (Post- or Pre-Norm).

    ``forward(x (N, S, d), mask=None) -> (N, S, d)``; ``mask`` is the source
    key padding ``(N, 1, S)`` (or any mask :mod:`dlbook.attention` accepts).
    ``backward(dout) -> dx``. ``norm_first=False`` is the paper's Post-Norm,
    ``True`` Pre-Norm; the children match ``nn.TransformerEncoderLayer``
    (``self_attn``, ``ffn.inner``/``ffn.outer`` = ``linear1``/``linear2``,
    ``norms[0]``/``norms[1]`` = ``norm1``/``norm2``).
    """

    def __init__(
        self,
        d_model: int,
        heads: int,
        d_ff: int,
        activation: str = "relu",
        *,
        norm_first: bool = False,
        dropout: float = 0.0,
        rng: np.random.Generator | int,
        dtype=np.float64,
    ) -> None:
        gen = as_generator(rng)
        super().__init__(d_model, heads, d_ff, activation, norm_first, dropout, gen, dtype, 2)
        self.self_attn = MultiHeadAttention(d_model, heads, rng=gen, dtype=dtype)

    def forward(self, x: np.ndarray, mask=None) -> np.ndarray:
        x = self._check_x(x)
        u = self._pre(0, x)
        h = self._post(0, x, self.self_attn(u, u, mask=mask))
        return self._post(1, h, self.ffn(self._pre(1, h)))

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dh, df = self._post_backward(1, dout)
        dh = self._pre_backward(1, dh, self.ffn.backward(df))
        dx, da = self._post_backward(0, dh)
        dq, dkv = self.self_attn.backward(da)
        dq += dkv
        return self._pre_backward(0, dx, dq)

    def __repr__(self) -> str:
        norm = "Pre-Norm" if self.norm_first else "Post-Norm"
        return f"EncoderBlock(d_model={self.d_model}, heads={self.heads}, {self.ffn!r}, {norm})"


class DecoderBlock(_Block):
    """Causal self-attention, cross-attention to the encoder's memory, then the feed-forward network.

    ``forward(y (N, T, d), memory (N, S, d), self_mask=None, memory_mask=None)
    -> (N, T, d)``: ``self_mask`` is usually :func:`causal_mask` ``(T, T)``,
    ``memory_mask`` the source key padding ``(N, 1, S)``.
    ``backward(dout) -> (dy, dmemory)``. Children match
    ``nn.TransformerDecoderLayer`` (``self_attn``, ``cross_attn`` =
    ``multihead_attn``, ``norms[0..2]`` = ``norm1..3``).
    """

    def __init__(
        self,
        d_model: int,
        heads: int,
        d_ff: int,
        activation: str = "relu",
        *,
        norm_first: bool = False,
        dropout: float = 0.0,
        rng: np.random.Generator | int,
        dtype=np.float64,
    ) -> None:
        gen = as_generator(rng)
        super().__init__(d_model, heads, d_ff, activation, norm_first, dropout, gen, dtype, 3)
        self.self_attn = MultiHeadAttention(d_model, heads, rng=gen, dtype=dtype)
        self.cross_attn = MultiHeadAttention(d_model, heads, rng=gen, dtype=dtype)

    def forward(self, y: np.ndarray, memory: np.ndarray, self_mask=None, memory_mask=None) -> np.ndarray:
        y, memory = self._check_x(y, "y"), self._check_x(memory, "memory")
        u = self._pre(0, y)
        h = self._post(0, y, self.self_attn(u, u, mask=self_mask))
        g = self._post(1, h, self.cross_attn(self._pre(1, h), memory, mask=memory_mask))
        return self._post(2, g, self.ffn(self._pre(2, g)))

    def backward(self, dout: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        dg, df = self._post_backward(2, dout)
        dg = self._pre_backward(2, dg, self.ffn.backward(df))
        dh, dc = self._post_backward(1, dg)
        dq, dmemory = self.cross_attn.backward(dc)
        dh = self._pre_backward(1, dh, dq)
        dy, da = self._post_backward(0, dh)
        dq, dkv = self.self_attn.backward(da)
        dq += dkv
        return self._pre_backward(0, dy, dq), dmemory

    def step(self, y: np.ndarray, cache: DecoderCache, layer: int, memory: TransformerMemory) -> np.ndarray:
        """One new position ``y (N, 1, d)`` at ``cache.t``, attending over the cached prefix."""
        u = self._pre(0, y)
        k_new, v_new = self.self_attn.keys_values(u)  # (N, h, 1, d/h)
        t = cache.t
        cache.k[layer][:, :, t] = k_new[:, :, 0]
        cache.v[layer][:, :, t] = v_new[:, :, 0]
        K, V = cache.k[layer][:, :, : t + 1], cache.v[layer][:, :, : t + 1]  # the prefix 0..t
        h = self._post(0, y, self.self_attn.attend(u, K, V))
        K, V = memory.cross[layer]
        g = self._post(1, h, self.cross_attn.attend(self._pre(1, h), K, V, mask=memory.key_mask))
        return self._post(2, g, self.ffn(self._pre(2, g)))

    def __repr__(self) -> str:
        norm = "Pre-Norm" if self.norm_first else "Post-Norm"
        return f"DecoderBlock(d_model={self.d_model}, heads={self.heads}, {self.ffn!r}, {norm})"


# ---------------------------------------------------------------------------
# The encoder-decoder
# ---------------------------------------------------------------------------
class _Scale(Module):
    """``x -> c x`` with a fixed constant ``c`` (the embeddings' sqrt(d))."""

    def __init__(self, c: float) -> None:
        super().__init__()
        self.c = float(c)

    def forward(self, x: np.ndarray) -> np.ndarray:
        return x * self.c

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout * self.c


class TiedOutput(Module):
    """Logits from the target embedding's own matrix: ``z = x E^T + b`` (Press & Wolf 2017).

    ``E`` belongs to ``embedding`` (the sharing rule of :mod:`dlbook.core`): this
    layer adds its gradient to ``embedding``'s; it owns only the bias ``b (V,)``.
    """

    def __init__(self, embedding: Embedding) -> None:
        super().__init__()
        self.embedding = embedding
        self.params = {"b": np.zeros(embedding.num_embeddings, dtype=embedding._params["W"].dtype)}

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = check_float_array(x, "x", min_ndim=2)
        if x.shape[-1] != self.embedding.embedding_dim:
            raise ValueError(
                f"TiedOutput expected x of shape (..., {self.embedding.embedding_dim}), got {x.shape}"
            )
        E = self.embedding._params["W"].astype(x.dtype, copy=False)
        self._save(x)
        return x @ E.T + self._params["b"].astype(x.dtype, copy=False)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        (x,) = self._saved()
        dout = check_dout(dout, x.shape[:-1] + (self.embedding.num_embeddings,), "TiedOutput")
        E = self.embedding._params["W"]
        d2, x2 = dout.reshape(-1, dout.shape[-1]), x.reshape(-1, x.shape[-1])
        self.embedding._accumulate("W", d2.T @ x2)  # (V, M) @ (M, d)
        self._accumulate("b", d2.sum(axis=0))
        return (d2 @ E.astype(d2.dtype, copy=False)).reshape(x.shape)


@dataclass
class TransformerMemory:
    """What :meth:`Transformer.encode` hands the decoder: the encoder output, the source mask, and
    every decoder layer's cross-attention keys and values ``(N, h, S, d/h)``, computed once."""

    enc: np.ndarray  # (N, S, d)
    src_mask: np.ndarray  # (N, S)
    cross: list[tuple[np.ndarray, np.ndarray]]

    @property
    def key_mask(self) -> np.ndarray:
        return self.src_mask[:, None, :]  # (N, 1, S)

    def __len__(self) -> int:
        return len(self.enc)

    def repeat(self, k: int) -> TransformerMemory:
        """Each example ``k`` times in a row (for ``k`` beams)."""
        rep = lambda a: np.repeat(a, k, axis=0)  # noqa: E731
        return TransformerMemory(rep(self.enc), rep(self.src_mask), [(rep(K), rep(V)) for K, V in self.cross])


@dataclass
class DecoderCache:
    """The decoder's keys and values of every position fed so far: ``k[l], v[l]`` of shape
    ``(N, h, max_len, d/h)`` for layer ``l``, filled up to position ``t`` (exclusive).
    ``cache[rows]`` is a copy holding the rows ``rows`` (beam search reorders its beams so)."""

    k: list[np.ndarray]
    v: list[np.ndarray]
    t: int = 0

    def __getitem__(self, rows) -> DecoderCache:
        return DecoderCache([a[rows].copy() for a in self.k], [a[rows].copy() for a in self.v], self.t)

    def __len__(self) -> int:
        return len(self.k[0])


class Transformer(Module):
    """An encoder-decoder Transformer; see the module docstring.

    ``forward(src (N, S), src_mask (N, S), tgt_in (N, T)) -> logits (N, T, V)``
    with teacher forcing, the signature of :class:`dlbook.seq2seq.Seq2Seq`, so
    :func:`dlbook.train.fit` and the decoders of :mod:`dlbook.seq2seq` work
    with either. ``backward(dlogits)`` returns ``(None, None, None)``.

    - ``d_model``, ``heads``, ``d_ff``, ``layers`` (encoder and decoder blocks;
      an int or a pair), ``activation`` of the FFN, ``norm_first`` (Pre-Norm;
      the stacks then end with a LayerNorm), ``dropout`` (on each sublayer's
      output and on the embeddings, as in the paper; 0 by default),
      ``positional`` (``"sinusoidal"`` or ``"learned"``), ``max_len`` (the
      longest source or target sequence);
    - embeddings are drawn from N(0, 1/d) and multiplied by sqrt(d), the
      paper's scaling (entries of unit size, like the positional table);
    - ``tie_output``: the output layer is the target embedding transposed
      (``TiedOutput``); ``share_embeddings``: one embedding for source
      and target (the paper's shared vocabulary; the sizes must be equal).

    After a forward pass every block's ``self_attn.weights`` (and the decoder's
    ``cross_attn.weights``), ``(N, h, Tq, Tk)``, hold its attention maps.
    """

    def __init__(
        self,
        src_vocab: int,
        tgt_vocab: int,
        d_model: int = 64,
        heads: int = 4,
        d_ff: int = 256,
        layers: int | tuple[int, int] = 2,
        *,
        activation: str = "relu",
        norm_first: bool = True,
        dropout: float = 0.0,
        positional: str = "sinusoidal",
        max_len: int = 64,
        tie_output: bool = False,
        share_embeddings: bool = False,
        rng: np.random.Generator | int,
        dtype=np.float64,
    ) -> None:
        super().__init__()
        gen = as_generator(rng)
        d_model, heads = _check_width(d_model, heads)
        n_enc, n_dec = (layers, layers) if isinstance(layers, (int, np.integer)) else tuple(layers)
        n_enc, n_dec = (
            check_positive_int(n_enc, "encoder layers"),
            check_positive_int(n_dec, "decoder layers"),
        )
        src_vocab, tgt_vocab = (
            check_positive_int(src_vocab, "src_vocab"),
            check_positive_int(tgt_vocab, "tgt_vocab"),
        )
        if share_embeddings and src_vocab != tgt_vocab:
            raise ValueError(
                "share_embeddings needs one vocabulary for source and target, got sizes "
                f"{src_vocab} and {tgt_vocab}"
            )
        self.d_model, self.heads, self.norm_first = d_model, heads, bool(norm_first)
        self.max_len = check_positive_int(max_len, "max_len")

        def embedding(V: int) -> Embedding:
            e = Embedding(V, d_model, rng=gen, dtype=dtype)
            e._params["W"] *= d_model**-0.5
            return e

        self.src_embed = embedding(src_vocab)
        self.tgt_embed = self.src_embed if share_embeddings else embedding(tgt_vocab)
        self.scale = _Scale(math.sqrt(d_model))
        self.pos = PositionalEncoding(d_model, self.max_len, positional, rng=gen, dtype=dtype)
        self.src_drop = Dropout(dropout, rng=gen) if dropout else Identity()
        self.tgt_drop = Dropout(dropout, rng=gen) if dropout else Identity()
        block = dict(norm_first=norm_first, dropout=dropout, rng=gen, dtype=dtype)
        self.encoder = [EncoderBlock(d_model, heads, d_ff, activation, **block) for _ in range(n_enc)]
        self.decoder = [DecoderBlock(d_model, heads, d_ff, activation, **block) for _ in range(n_dec)]
        self.enc_norm = LayerNorm(d_model, dtype=dtype) if norm_first else Identity()
        self.dec_norm = LayerNorm(d_model, dtype=dtype) if norm_first else Identity()
        self.out = (
            TiedOutput(self.tgt_embed) if tie_output else Linear(d_model, tgt_vocab, rng=gen, dtype=dtype)
        )

    # -- training: teacher forcing ------------------------------------------------------
    def _embed(self, ids: np.ndarray, embed: Embedding, drop: Module, offset: int = 0) -> np.ndarray:
        return drop(self.pos(self.scale(embed(ids)), offset))

    def _embed_backward(self, dx: np.ndarray, embed: Embedding, drop: Module) -> None:
        embed.backward(self.scale.backward(self.pos.backward(drop.backward(dx))))

    def _check_inputs(self, src, src_mask) -> tuple[np.ndarray, np.ndarray]:
        src = _check_ids(src, "src")
        return src, _check_src_mask(src_mask, src)

    def encoder_output(self, src: np.ndarray, src_mask: np.ndarray) -> np.ndarray:
        """The memory ``(N, S, d)``: the encoder stack's output (saved for backward unless inference)."""
        src, src_mask = self._check_inputs(src, src_mask)
        x = self._embed(src, self.src_embed, self.src_drop)
        key_mask = src_mask[:, None, :]  # (N, 1, S)
        for blk in self.encoder:
            x = blk(x, mask=key_mask)
        return self.enc_norm(x)

    def decoder_output(self, tgt_in: np.ndarray, memory: np.ndarray, src_mask: np.ndarray) -> np.ndarray:
        """Logits ``(N, T, V)`` of the decoder on ``tgt_in`` given the memory."""
        tgt_in = _check_ids(tgt_in, "tgt_in")
        if len(tgt_in) != len(memory):
            raise ValueError(f"src and tgt_in need the same batch size, got {len(memory)} and {len(tgt_in)}")
        y = self._embed(tgt_in, self.tgt_embed, self.tgt_drop)
        causal = causal_mask(tgt_in.shape[1])[None]  # (1, T, T): shared by the batch
        key_mask = src_mask[:, None, :]
        for blk in self.decoder:
            y = blk(y, memory, self_mask=causal, memory_mask=key_mask)
        return self.out(self.dec_norm(y))

    def forward(self, src: np.ndarray, src_mask: np.ndarray, tgt_in: np.ndarray) -> np.ndarray:
        src, src_mask = self._check_inputs(src, src_mask)
        memory = self.encoder_output(src, src_mask)
        return self.decoder_output(tgt_in, memory, src_mask)

    def backward(self, dlogits: np.ndarray):
        dy = self.dec_norm.backward(self.out.backward(dlogits))
        dmemory = None
        for blk in reversed(self.decoder):
            dy, dm = blk.backward(dy)
            dmemory = dm if dmemory is None else dmemory + dm
        self._embed_backward(dy, self.tgt_embed, self.tgt_drop)
        dx = self.enc_norm.backward(dmemory)
        for blk in reversed(self.encoder):
            dx = blk.backward(dx)
        self._embed_backward(dx, self.src_embed, self.src_drop)
        return None, None, None

    # -- decoding: one token at a time ----------------------------------------------------
    def encode(self, src: np.ndarray, src_mask: np.ndarray) -> TransformerMemory:
        """The memory, with every decoder layer's cross-attention keys and values (inference mode)."""
        with self.inference():
            src, src_mask = self._check_inputs(src, src_mask)
            enc = self.encoder_output(src, src_mask)
            cross = [blk.cross_attn.keys_values(enc) for blk in self.decoder]
        return TransformerMemory(enc, src_mask, cross)

    def initial_state(self, memory: TransformerMemory, max_len: int) -> DecoderCache:
        """An empty cache for ``max_len`` positions."""
        max_len = check_positive_int(max_len, "max_len")
        if max_len > self.max_len:
            raise ValueError(f"max_len={max_len} exceeds the positional table (max_len={self.max_len})")
        N, dk = len(memory), self.d_model // self.heads
        shape = (N, self.heads, max_len, dk)
        dt = memory.enc.dtype
        return DecoderCache(
            [np.zeros(shape, dt) for _ in self.decoder], [np.zeros(shape, dt) for _ in self.decoder]
        )

    def step(self, y_prev: np.ndarray, cache: DecoderCache, memory: TransformerMemory):
        """Feed ``y_prev (N,)`` at position ``cache.t``: ``(log-probabilities (N, V), cache, None)``.

        The cache is filled in place and returned with ``t`` advanced.
        """
        if cache.t >= cache.k[0].shape[2]:
            raise ValueError(f"the cache holds {cache.k[0].shape[2]} positions and is full")
        with self.inference():
            y = self._embed(np.asarray(y_prev)[:, None], self.tgt_embed, self.tgt_drop, offset=cache.t)
            for layer, blk in enumerate(self.decoder):
                y = blk.step(y, cache, layer, memory)
            logits = self.out(self.dec_norm(y))[:, 0]  # (N, V)
        cache.t += 1
        return log_softmax(logits.astype(np.float64), axis=-1), cache, None

    def __repr__(self) -> str:
        norm = "Pre-Norm" if self.norm_first else "Post-Norm"
        return (
            f"Transformer(d_model={self.d_model}, heads={self.heads}, layers=({len(self.encoder)}, "
            f"{len(self.decoder)}), {self.encoder[0].ffn!r}, {norm}, {self.pos!r})"
        )


def greedy_decode_recompute(model: Transformer, src: np.ndarray, src_mask: np.ndarray, *, max_len: int):
    """Greedy decoding that re-runs the decoder on the whole prefix at every step (no cache).

    Returns the tokens ``(N, L)`` (``<eos>`` and what follows included, no
    ``<bos>``). Quadratic work per step instead of linear: the baseline the
    cache is measured against, and a test of it.
    """
    from .seq2seq import EOS, _banned

    max_len = check_positive_int(max_len, "max_len")
    with model.inference():
        src, src_mask = model._check_inputs(src, src_mask)
        memory = model.encoder_output(src, src_mask)
        ys = np.full((len(src), 1), BOS, dtype=np.int64)
        for _ in range(max_len):
            logits = model.decoder_output(ys, memory, src_mask)[:, -1]
            logits[:, _banned(logits.shape[1])] = -np.inf
            ys = np.concatenate([ys, logits.argmax(axis=1)[:, None]], axis=1)
            if (ys[:, 1:] == EOS).any(axis=1).all():
                break
    return ys[:, 1:]
