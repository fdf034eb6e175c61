"""LSTM and GRU forward + backward over a sequence: dlbook (NumPy) against PyTorch on the CPU.

One layer, batch first, float32, at the size of a small word-level language
model: N=64 sequences of T=35 steps, D=H=128. One "call" is the forward pass
over all steps and backpropagation through time from a gradient on every
step's output (``dhs``), giving the input gradient and every weight
gradient. dlbook: ``recurrent.LSTM`` / ``recurrent.GRU``; PyTorch:
``nn.LSTM`` / ``nn.GRU`` with autograd (its CPU kernels, not cuDNN). Both
sides run on one thread (threadpoolctl for NumPy's BLAS,
``torch.set_num_threads(1)``), all NumPy timings first and the torch timings
after a pause, each the median of ``REPEATS`` runs of ``CALLS`` calls after
warm-up. A second table splits the dlbook call into its forward pass (saving
for backward, and in inference mode) and its backward pass (the difference).

Run it with ``make bench`` (or ``python benchmarks/bench_recurrent.py``).
Without torch only the dlbook column is printed.
"""

from __future__ import annotations

import time

import numpy as np
from threadpoolctl import threadpool_limits
from timing import blas_libraries, median_ms
from timing import versions as timing_versions

from dlbook import recurrent
from dlbook.core import inference_mode

N, T, D, H = 64, 35, 128, 128
KINDS = ("lstm", "gru")
CALLS = 5
WARMUP = 4  # the first ~20 calls are slower (the allocator settles)
REPEATS = 9


def _median_ms(fn) -> float:
    return median_ms(fn, CALLS, WARMUP * CALLS, REPEATS)


def _data():
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((N, T, D)).astype(np.float32)
    dhs = rng.standard_normal((N, T, H)).astype(np.float32)
    return xs, dhs


def _dlbook_parts(layer, xs, dhs) -> dict:
    """Forward with saving (its tape entries dropped again), forward in inference mode, backward (ms).

    Backward needs its own forward, so it is timed together with it and
    reported as the difference.
    """

    def fwd_saving():
        layer.forward(xs)
        layer.clear_tape()

    def fwd_inference():
        with inference_mode():
            layer.forward(xs)

    def fwd_bwd():
        layer.forward(xs)
        layer.backward(dhs, None)

    times = {
        "forward (saving)": _median_ms(fwd_saving),
        "forward (inference)": _median_ms(fwd_inference),
        "forward + backward": _median_ms(fwd_bwd),
    }
    times["backward (difference)"] = times["forward + backward"] - times["forward (saving)"]
    return times


def main() -> dict:
    """Print the comparison and the breakdown; return the numbers."""
    try:
        import torch
    except ImportError:
        torch = None

    xs, dhs = _data()
    ours, parts = {}, {}
    # -- NumPy side -------------------------------------------------------------
    with threadpool_limits(limits=1):
        blas = blas_libraries()
        for kind in KINDS:
            layer = recurrent.recurrent_layer(kind, D, H, rng=0, dtype=np.float32)

            def call(layer=layer):
                layer.forward(xs)
                layer.backward(dhs, None)

            ours[kind] = _median_ms(call)
            assert all(g.dtype == np.float32 for g in layer.grads.values()), "gradients left float32"
            parts[kind] = _dlbook_parts(layer, xs, dhs)

    # -- torch side ---------------------------------------------------------------
    theirs = {}
    if torch is not None:
        time.sleep(0.5)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            for kind in KINDS:
                torch.manual_seed(0)
                net = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind](D, H, batch_first=True)
                xt = torch.from_numpy(xs).requires_grad_()
                dhst = torch.from_numpy(dhs)

                def call_t(net=net, xt=xt, dhst=dhst):
                    xt.grad = None
                    for p in net.parameters():
                        p.grad = None
                    out, _ = net(xt)
                    out.backward(dhst)

                theirs[kind] = _median_ms(call_t)
        finally:
            torch.set_num_threads(threads)

    print(f"LSTM and GRU, one layer, forward + backward through time, N={N}, T={T}, D=H={H}, float32")
    print("one thread on each side")
    versions = timing_versions(torch)
    print(versions)
    print("BLAS: " + "; ".join(blas))
    print(
        f"threads: NumPy 1 (threadpoolctl), torch {1 if torch is not None else '-'}; median of "
        f"{REPEATS} runs of {CALLS} calls after {WARMUP * CALLS} warm-up calls"
    )
    print()
    print(f"{'layer':<12}{'dlbook ms':>10}{'torch ms':>10}{'ratio':>8}")
    ratios = {}
    for kind in KINDS:
        t = theirs.get(kind)
        ratios[kind] = ours[kind] / t if t else None
        t_txt = f"{t:10.2f}" if t else f"{'-':>10}"
        r_txt = f"{ratios[kind]:8.2f}" if t else f"{'-':>8}"
        print(f"{kind.upper():<12}{ours[kind]:10.2f}{t_txt}{r_txt}")
    for kind in KINDS:
        print()
        print(f"dlbook parts for the {kind.upper()} (ms):")
        for name, ms in parts[kind].items():
            print(f"  {name:<28}{ms:8.2f}")
    return {"dlbook_ms": ours, "torch_ms": theirs, "ratio": ratios, "parts": parts}


if __name__ == "__main__":
    main()
