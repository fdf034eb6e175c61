"""Forward + backward time of every activation: dlbook (NumPy) against PyTorch.

For each elementwise activation of ``dlbook.activations`` (and PReLU) this
times ``Activation(name).forward(x)`` followed by ``.backward(dout)`` on 10^6
float32 values drawn from N(0, 1), and the same through PyTorch autograd
(``F.<fn>(x)`` then ``torch.autograd.grad``). Both sides run on one thread
(threadpoolctl for NumPy's BLAS, ``torch.set_num_threads(1)``), all NumPy
timings first and all torch timings after a pause (their worker threads must
not compete), each the median of ``REPEATS`` runs after ``WARMUP`` runs.

Run it with ``make bench`` (or ``python benchmarks/bench_activations.py``).
Without torch only the dlbook column is printed. Why
some functions cannot reach torch: NumPy makes one pass over memory per
elementwise operation, while torch fuses a whole activation into one loop.
"""

from __future__ import annotations

import time

import numpy as np
from threadpoolctl import threadpool_limits
from timing import median_ms
from timing import versions as timing_versions

from dlbook import activations as act

N = 10**6
WARMUP = 3
REPEATS = 11


def _median_ms(fn) -> float:
    return median_ms(fn, 1, WARMUP, REPEATS)


def _torch_functions(torch, F) -> dict:
    """dlbook name -> torch function of a tensor (only those torch has)."""
    prelu_weight = torch.tensor([0.25])
    return {
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "softsign": F.softsign,
        "hardtanh": F.hardtanh,
        "hard_sigmoid(1/6)": F.hardsigmoid,
        "relu": F.relu,
        "relu6": F.relu6,
        "leaky_relu": F.leaky_relu,
        "elu": F.elu,
        "selu": F.selu,
        "celu": F.celu,
        "softplus": F.softplus,
        "gelu": F.gelu,
        "gelu_tanh": lambda t: F.gelu(t, approximate="tanh"),
        "silu": F.silu,
        "swish": F.silu,
        "hardswish": F.hardswish,
        "mish": F.mish,
        "prelu": lambda t: F.prelu(t, prelu_weight),
    }


def _dlbook_layers() -> dict:
    layers = {}
    for name in act.names("elementwise"):
        if name == "hard_sigmoid":
            layers["hard_sigmoid(1/6)"] = act.Activation(name, slope=1 / 6)  # torch's slope
        else:
            layers[name] = act.Activation(name)
    layers["prelu"] = act.PReLU(1, init=0.25)
    return layers


def main() -> list[dict]:
    """Print the table and return its rows (name, dlbook_ms, torch_ms, ratio)."""
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        torch = F = None

    rng = np.random.default_rng(0)
    x = rng.standard_normal(N).astype(np.float32)
    dout = rng.standard_normal(N).astype(np.float32)

    # -- all NumPy timings ----------------------------------------------------
    ours = {}
    with threadpool_limits(limits=1):
        for name, layer in _dlbook_layers().items():

            def step(layer=layer):
                layer.forward(x)
                layer.backward(dout)

            ours[name] = _median_ms(step)

    # -- then all torch timings -------------------------------------------------
    theirs = {}
    if torch is not None:
        time.sleep(0.5)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            xt, dt = torch.from_numpy(x), torch.from_numpy(dout)
            for name, fn in _torch_functions(torch, F).items():

                def step_t(fn=fn):
                    leaf = xt.detach().requires_grad_(True)
                    torch.autograd.grad(fn(leaf), leaf, dt)

                theirs[name] = _median_ms(step_t)
        finally:
            torch.set_num_threads(threads)

    print("Activation forward + backward, 10^6 float32 values from N(0, 1), one thread")
    versions = timing_versions(torch)
    print(versions)
    print(
        f"threads: NumPy 1 (threadpoolctl), torch {1 if torch is not None else '-'}; "
        f"median of {REPEATS} runs after {WARMUP} warm-up runs"
    )
    if torch is None:
        print("torch is not installed: dlbook times only")
    print()
    print(f"{'activation':<20}{'dlbook ms':>10}{'torch ms':>10}{'ratio':>8}")
    rows = []
    for name, ms in ours.items():
        t_ms = theirs.get(name)
        ratio = ms / t_ms if t_ms else None
        rows.append({"name": name, "dlbook_ms": ms, "torch_ms": t_ms, "ratio": ratio})
        t_txt = f"{t_ms:10.3f}" if t_ms else f"{'-':>10}"
        r_txt = f"{ratio:8.2f}" if ratio else f"{'-':>8}"
        print(f"{name:<20}{ms:10.3f}{t_txt}{r_txt}")
    return rows


if __name__ == "__main__":
    main()
