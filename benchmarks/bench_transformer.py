"""One training step of a small encoder-decoder Transformer: dlbook (NumPy) against PyTorch on the CPU.

The model of the issue that asked for it: 2 encoder and 2 decoder blocks,
d_model=128, 4 heads, FFN width 512 (ReLU), Post-Norm, dropout 0, vocabulary
64; a batch of N=64 sources and targets of T=32 tokens, float32. One "call" is
a whole training step: forward with teacher forcing, cross-entropy, backward,
and an AdamW update.

- dlbook: ``transformer.Transformer`` with ``losses.softmax_cross_entropy`` and
  ``optim.AdamW`` (``train.train_step``).
- torch: ``nn.Embedding`` (x sqrt(d)) + the same sinusoidal table, ``nn.Transformer``
  (``batch_first=True``, the same masks) and a ``nn.Linear`` output, ``F.cross_entropy``,
  ``torch.optim.AdamW``.

A second table times decoding: greedy decoding of 64 sources, 32 steps, with
the key-value cache (``seq2seq.greedy_decode``) and without it
(``transformer.greedy_decode_recompute``, which re-runs the decoder on the
whole prefix at every step).

Both sides run on one thread (threadpoolctl for NumPy's BLAS,
``torch.set_num_threads(1)``), NumPy first and torch after a pause, each the
median of ``REPEATS`` runs of ``CALLS`` calls after warm-up. Run it with
``make bench`` (or ``python benchmarks/bench_transformer.py``). Without torch
only the dlbook column is printed.
"""

from __future__ import annotations

import math
import time

import numpy as np
from threadpoolctl import threadpool_limits
from timing import blas_libraries, median_ms
from timing import versions as timing_versions

from dlbook import losses, optim, seq2seq, train, transformer

N, T, D, HEADS, FF, LAYERS, V = 64, 32, 128, 4, 512, 2, 64
CALLS = 3
WARMUP = 2
REPEATS = 5


def _data():
    rng = np.random.default_rng(0)
    src = rng.integers(4, V, (N, T))
    tgt_in = rng.integers(4, V, (N, T))
    tgt_out = rng.integers(4, V, (N, T))
    src_mask = np.ones((N, T), dtype=bool)
    src_mask[N // 2 :, 3 * T // 4 :] = False  # half the batch padded
    return src, src_mask, tgt_in, tgt_out


def _dlbook_step(src, src_mask, tgt_in, tgt_out):
    model = transformer.Transformer(
        V, V, D, HEADS, FF, LAYERS, norm_first=False, max_len=T, rng=0, dtype=np.float32
    )
    opt = optim.AdamW(model, lr=1e-4)

    def step():
        train.train_step(model, losses.softmax_cross_entropy, opt, src, src_mask, tgt_in, tgt_out)

    return model, step


def _torch_step(torch, src, src_mask, tgt_in, tgt_out):
    nn = torch.nn
    torch.manual_seed(0)
    embed_src, embed_tgt = nn.Embedding(V, D), nn.Embedding(V, D)
    body = nn.Transformer(D, HEADS, LAYERS, LAYERS, FF, dropout=0.0, batch_first=True, norm_first=False)
    out = nn.Linear(D, V)
    params = [*embed_src.parameters(), *embed_tgt.parameters(), *body.parameters(), *out.parameters()]
    opt = torch.optim.AdamW(params, lr=1e-4)
    pe = torch.from_numpy(transformer.sinusoidal_encoding(T, D).astype(np.float32))
    s, t_in, t_out = (torch.from_numpy(a) for a in (src, tgt_in, tgt_out))
    pad = torch.from_numpy(~src_mask)
    causal = torch.from_numpy(~transformer.causal_mask(T))
    scale = math.sqrt(D)

    def step():
        opt.zero_grad()
        x = embed_src(s) * scale + pe
        y = embed_tgt(t_in) * scale + pe
        h = body(x, y, tgt_mask=causal, src_key_padding_mask=pad, memory_key_padding_mask=pad)
        loss = torch.nn.functional.cross_entropy(out(h).reshape(-1, V), t_out.reshape(-1))
        loss.backward()
        opt.step()

    return step


def main() -> dict:
    """Print the comparison and the decoding times; return the numbers."""
    try:
        import torch
    except ImportError:
        torch = None
    src, src_mask, tgt_in, tgt_out = _data()
    with threadpool_limits(limits=1):
        blas = blas_libraries()
        model, step = _dlbook_step(src, src_mask, tgt_in, tgt_out)
        ours = median_ms(step, CALLS, WARMUP * CALLS, REPEATS)
        assert all(g.dtype == np.float32 for g in model.grads.values()), "gradients left float32"
        decode = {
            "with cache": lambda: seq2seq.greedy_decode(model, src, src_mask, max_len=T),
            "recomputing the prefix": lambda: transformer.greedy_decode_recompute(
                model, src, src_mask, max_len=T
            ),
        }
        decode_ms = {name: median_ms(fn, 1, 1, 3) for name, fn in decode.items()}
    theirs = None
    if torch is not None:
        time.sleep(0.5)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            theirs = median_ms(
                _torch_step(torch, src, src_mask, tgt_in, tgt_out), CALLS, WARMUP * CALLS, REPEATS
            )
        finally:
            torch.set_num_threads(threads)

    print(
        f"Transformer training step: {LAYERS}+{LAYERS} blocks, d={D}, {HEADS} heads, FFN {FF}, "
        f"N={N}, T={T}, vocabulary {V}, float32, AdamW"
    )
    print("one thread on each side")
    versions = timing_versions(torch)
    print(versions)
    print("BLAS: " + "; ".join(blas))
    print(f"median of {REPEATS} runs of {CALLS} steps after {WARMUP * CALLS} warm-up steps")
    print()
    print(f"{'':<22}{'dlbook ms':>10}{'torch ms':>10}{'ratio':>8}")
    ratio = ours / theirs if theirs else None
    t_txt = f"{theirs:10.1f}" if theirs else f"{'-':>10}"
    r_txt = f"{ratio:8.2f}" if theirs else f"{'-':>8}"
    print(f"{'training step':<22}{ours:10.1f}{t_txt}{r_txt}")
    print()
    print(f"greedy decoding, {N} sources, {T} steps (dlbook, ms):")
    for name, ms in decode_ms.items():
        print(f"  {name:<26}{ms:8.1f}")
    speedup = decode_ms["recomputing the prefix"] / decode_ms["with cache"]
    print(f"  speed-up of the cache     {speedup:8.1f}x")
    return {"dlbook_ms": ours, "torch_ms": theirs, "ratio": ratio, "decode_ms": decode_ms}


if __name__ == "__main__":
    main()
