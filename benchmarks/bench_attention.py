"""Attention forward + backward: dlbook (NumPy) against PyTorch on the CPU.

Self-attention-sized inputs, batch first, float32: N=32 sequences, Tq=Tk=64
positions, d=128 features for queries, keys and values. One "call" is the
forward pass (context and weights) and the backward pass from a gradient on
the context, giving dq, dk and dv (and, for additive attention, the gradients
of W_q, W_k and v).

- Dot-product: dlbook ``attention.DotProductAttention()`` against the same
  formula in torch ops with autograd, ``softmax(q k^T / sqrt(d)) v``, and
  against ``F.scaled_dot_product_attention`` (its fused CPU kernel).
- Additive: dlbook ``attention.AdditiveAttention(d, d, 128)`` against
  ``softmax(tanh(q W_q + k W_k) v) values`` in torch ops with autograd; both
  form the ``(N, Tq, Tk, 128)`` tensor (67 MB in float32).

Both sides run on one thread (threadpoolctl for NumPy's BLAS,
``torch.set_num_threads(1)``), all NumPy timings first and the torch timings
after a pause, each the median of ``REPEATS`` runs of ``CALLS`` calls after
warm-up. A second table splits the dlbook call into its forward pass (saving
for backward, and in inference mode) and its backward pass (the difference).

Run it with ``make bench`` (or ``python benchmarks/bench_attention.py``).
Without torch only the dlbook column is printed.
"""

from __future__ import annotations

import math
import time

import numpy as np
from threadpoolctl import threadpool_limits
from timing import blas_libraries, median_ms
from timing import versions as timing_versions

from dlbook import attention
from dlbook.core import inference_mode

N, T, D, H = 32, 64, 128, 128
CALLS = 5
WARMUP = 4
REPEATS = 9
ROWS = ("dot-product", "dot-product vs SDPA", "additive")


def _median_ms(fn, calls: int = CALLS) -> float:
    return median_ms(fn, calls, WARMUP * calls, REPEATS)


def _data():
    rng = np.random.default_rng(0)
    q, k, v, dcontext = (rng.standard_normal((N, T, D)).astype(np.float32) for _ in range(4))
    return q, k, v, dcontext


def _dlbook_parts(layer, q, k, v, dcontext) -> dict:
    """Forward with saving (its tape entry dropped again), forward in inference mode, backward (ms)."""

    def fwd_saving():
        layer.forward(q, k, v)
        layer.clear_tape()

    def fwd_inference():
        with inference_mode():
            layer.forward(q, k, v)

    def fwd_bwd():
        layer.forward(q, k, v)
        layer.backward(dcontext)

    times = {
        "forward (saving)": _median_ms(fwd_saving),
        "forward (inference)": _median_ms(fwd_inference),
        "forward + backward": _median_ms(fwd_bwd),
    }
    times["backward (difference)"] = times["forward + backward"] - times["forward (saving)"]
    return times


def _torch_calls(torch, q, k, v, dcontext) -> dict:
    """The torch versions of the three rows, each a function of no arguments."""
    F = torch.nn.functional
    qt, kt, vt = (torch.from_numpy(a).requires_grad_() for a in (q, k, v))
    dct = torch.from_numpy(dcontext)
    scale = 1.0 / math.sqrt(D)
    torch.manual_seed(0)
    W_q = (torch.rand(D, H) * 2 - 1).mul_(scale).requires_grad_()
    W_k = (torch.rand(D, H) * 2 - 1).mul_(scale).requires_grad_()
    w_v = (torch.rand(H) * 2 - 1).mul_(1.0 / math.sqrt(H)).requires_grad_()
    leaves = (qt, kt, vt, W_q, W_k, w_v)

    def clear():
        for a in leaves:
            a.grad = None

    def dot():
        clear()
        weights = torch.softmax((qt @ kt.transpose(1, 2)) * scale, dim=-1)
        (weights @ vt).backward(dct)

    def sdpa():
        clear()
        F.scaled_dot_product_attention(qt, kt, vt).backward(dct)

    def additive():
        clear()
        hidden = torch.tanh((qt @ W_q)[:, :, None, :] + (kt @ W_k)[:, None, :, :])  # (N, Tq, Tk, H)
        weights = torch.softmax(hidden @ w_v, dim=-1)
        (weights @ vt).backward(dct)

    return {"dot-product": dot, "dot-product vs SDPA": sdpa, "additive": additive}


def main() -> dict:
    """Print the comparison and the breakdown; return the numbers."""
    try:
        import torch
    except ImportError:
        torch = None

    q, k, v, dcontext = _data()
    layers = {
        "dot-product": attention.DotProductAttention(),
        "additive": attention.AdditiveAttention(D, D, H, rng=0, dtype=np.float32),
    }
    ours, parts = {}, {}
    # -- NumPy side -------------------------------------------------------------
    with threadpool_limits(limits=1):
        blas = blas_libraries()
        for name, layer in layers.items():

            def call(layer=layer):
                layer.forward(q, k, v)
                layer.backward(dcontext)

            ours[name] = _median_ms(call)
            assert all(g.dtype == np.float32 for g in layer.grads.values()), "gradients left float32"
            parts[name] = _dlbook_parts(layer, q, k, v, dcontext)
    ours["dot-product vs SDPA"] = ours["dot-product"]

    # -- torch side ---------------------------------------------------------------
    theirs = {}
    if torch is not None:
        time.sleep(0.5)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            for name, fn in _torch_calls(torch, q, k, v, dcontext).items():
                theirs[name] = _median_ms(fn)
        finally:
            torch.set_num_threads(threads)

    print(f"attention forward + backward, N={N}, Tq=Tk={T}, d={D}, additive hidden={H}, float32")
    print("one thread on each side")
    versions = timing_versions(torch)
    print(versions)
    print("BLAS: " + "; ".join(blas))
    print(
        f"threads: NumPy 1 (threadpoolctl), torch {1 if torch is not None else '-'}; median of "
        f"{REPEATS} runs of {CALLS} calls after {WARMUP * CALLS} warm-up calls"
    )
    print("torch: the same formula in torch ops with autograd; 'vs SDPA': F.scaled_dot_product_attention")
    print()
    print(f"{'attention':<22}{'dlbook ms':>10}{'torch ms':>10}{'ratio':>8}")
    ratios = {}
    for name in ROWS:
        t = theirs.get(name)
        ratios[name] = ours[name] / t if t else None
        t_txt = f"{t:10.2f}" if t else f"{'-':>10}"
        r_txt = f"{ratios[name]:8.2f}" if t else f"{'-':>8}"
        print(f"{name:<22}{ours[name]:10.2f}{t_txt}{r_txt}")
    for name, times in parts.items():
        print()
        print(f"dlbook parts for {name} attention (ms):")
        for part, ms in times.items():
            print(f"  {part:<28}{ms:8.2f}")
    return {"dlbook_ms": ours, "torch_ms": theirs, "ratio": ratios, "parts": parts}


if __name__ == "__main__":
    main()
