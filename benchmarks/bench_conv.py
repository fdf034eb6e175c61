"""Conv2d forward + backward: dlbook (NumPy, im2col) against PyTorch on the CPU.

Two 3x3 convolutions with padding 1, float32, as in the ResNets of chapter 5:
(N=32, 3 -> 16 channels, 32x32) and (N=64, 16 -> 32 channels, 16x16). One
"call" is the forward pass and the backward pass for the input, the weight
and the bias. dlbook: ``conv.Conv2d``; PyTorch: ``F.conv2d`` with autograd.
Both sides run on one thread (threadpoolctl for NumPy's BLAS,
``torch.set_num_threads(1)``), all NumPy timings first and the torch timings
after a pause, each the median of ``REPEATS`` runs of ``CALLS`` calls after
warm-up. A second table splits the dlbook call into its parts (the three
matrix products and the im2col/col2im copies).

Run it with ``make bench`` (or ``python benchmarks/bench_conv.py``).
Without torch only the dlbook column is printed. Plain NumPy has been measured at
ratios of 2.7 and 3.1 for im2col written as in textbooks.
"""

from __future__ import annotations

import time

import numpy as np
from threadpoolctl import threadpool_limits
from timing import blas_libraries, median_ms
from timing import versions as timing_versions

from dlbook import conv

CASES = [  # (N, C_in, C_out, H = W)
    (32, 3, 16, 32),
    (64, 16, 32, 16),
]
CALLS = 10
WARMUP = 2
REPEATS = 9


def _median_ms(fn) -> float:
    return median_ms(fn, CALLS, WARMUP * CALLS, REPEATS)


def _data(n, c_in, c_out, size):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c_in, size, size)).astype(np.float32)
    dy = rng.standard_normal((n, c_out, size, size)).astype(np.float32)
    return x, dy


def _parts(layer: conv.Conv2d, x, dy) -> dict:
    """Time the pieces of one dlbook call (ms)."""
    layer.forward(x)
    saved = layer._tape[-1]  # what forward saved for backward
    _, padded_shape, cols, out_hw = saved
    xp = conv._padded_cnhw(x, layer.padding)
    w2 = layer.params["W"].reshape(layer.out_channels, -1)
    d2 = np.ascontiguousarray(dy.transpose(1, 0, 2, 3)).reshape(layer.out_channels, -1)
    dcols = (w2.T @ d2).reshape(layer.in_channels, *layer.kernel_size, x.shape[0], *out_hw)
    return {
        "forward": _median_ms(lambda: (layer.forward(x), layer._tape.pop())),
        "backward": _median_ms(lambda: (layer._tape.append(saved), layer.backward(dy))),
        "  im2col": _median_ms(lambda: conv._im2col_cnhw(xp, layer.kernel_size, layer.stride, out_hw)),
        "  GEMM W @ cols": _median_ms(lambda: w2 @ cols),
        "  GEMM dY @ cols^T": _median_ms(lambda: d2 @ cols.T),
        "  GEMM W^T @ dY": _median_ms(lambda: w2.T @ d2),
        "  col2im": _median_ms(
            lambda: conv._col2im_cnhw(dcols, padded_shape, layer.kernel_size, layer.stride, out_hw)
        ),
    }


def main() -> dict:
    """Print the comparison and the breakdown; return the numbers."""
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        torch = F = None

    ours, parts = {}, {}
    # -- NumPy side -------------------------------------------------------------
    with threadpool_limits(limits=1):
        blas = blas_libraries()
        for case in CASES:
            n, c_in, c_out, size = case
            x, dy = _data(*case)
            layer = conv.Conv2d(c_in, c_out, 3, padding=1, rng=0, dtype=np.float32)

            def call(layer=layer, x=x, dy=dy):
                layer.forward(x)
                layer.backward(dy)

            ours[case] = _median_ms(call)
            assert layer.grads["W"].dtype == np.float32, "gradients left float32"
            parts[case] = _parts(layer, x, dy)

    # -- torch side ---------------------------------------------------------------
    theirs = {}
    if torch is not None:
        time.sleep(0.5)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            for case in CASES:
                n, c_in, c_out, size = case
                x, dy = _data(*case)
                torch.manual_seed(0)
                xt = torch.from_numpy(x).requires_grad_()
                wt = (0.1 * torch.randn(c_out, c_in, 3, 3)).requires_grad_()
                bt = torch.zeros(c_out, requires_grad=True)
                dyt = torch.from_numpy(dy)

                def call_t(xt=xt, wt=wt, bt=bt, dyt=dyt):
                    xt.grad = wt.grad = bt.grad = None
                    F.conv2d(xt, wt, bt, padding=1).backward(dyt)

                theirs[case] = _median_ms(call_t)
        finally:
            torch.set_num_threads(threads)

    print("Conv2d 3x3, padding 1, forward + backward (input, weight, bias), float32, one thread")
    versions = timing_versions(torch)
    print(versions)
    print("BLAS: " + "; ".join(blas))
    print(
        f"threads: NumPy 1 (threadpoolctl), torch {1 if torch is not None else '-'}; median of "
        f"{REPEATS} runs of {CALLS} calls after {WARMUP * CALLS} warm-up calls"
    )
    print()
    print(f"{'case (N, C_in -> C_out, HxW)':<32}{'dlbook ms':>10}{'torch ms':>10}{'ratio':>8}")
    ratios = {}
    for case in CASES:
        n, c_in, c_out, size = case
        label = f"N={n}, {c_in} -> {c_out}, {size}x{size}"
        t = theirs.get(case)
        ratios[case] = ours[case] / t if t else None
        t_txt = f"{t:10.3f}" if t else f"{'-':>10}"
        r_txt = f"{ratios[case]:8.2f}" if t else f"{'-':>8}"
        print(f"{label:<32}{ours[case]:10.3f}{t_txt}{r_txt}")
    for case in CASES:
        print()
        print(f"dlbook parts for N={case[0]}, {case[1]} -> {case[2]}, {case[3]}x{case[3]} (ms):")
        for name, ms in parts[case].items():
            print(f"  {name:<28}{ms:8.3f}")
    return {"dlbook_ms": ours, "torch_ms": theirs, "ratio": ratios, "parts": parts}


if __name__ == "__main__":
    main()
