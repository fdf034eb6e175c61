"""One training step of an MLP: dlbook (NumPy) against PyTorch on the CPU.

The step is forward + softmax cross-entropy + backward + Adam update of a
784-256-256-10 ReLU MLP on a float32 batch of 128, as chapter 3 and later
chapters run it in ``dlbook.train.fit``. dlbook: ``models.mlp`` +
``losses.softmax_cross_entropy`` + ``optim.Adam``; PyTorch: ``nn.Sequential``
+ ``F.cross_entropy`` + ``torch.optim.Adam``. Both sides run on one thread
(threadpoolctl for NumPy's BLAS, ``torch.set_num_threads(1)``), all NumPy
timings first and the torch timings after a pause, each the median of
``REPEATS`` runs of ``STEPS`` steps after warm-up. A second table splits the
dlbook step into its parts.

Run it with ``make bench`` (or ``python benchmarks/bench_train.py``).
Without torch only the dlbook column is printed.
"""

from __future__ import annotations

import time

import numpy as np
from threadpoolctl import threadpool_limits
from timing import blas_libraries, median_ms
from timing import versions as timing_versions

from dlbook import losses, models, optim
from dlbook.core import inference_mode

SIZES = (784, 256, 256, 10)
BATCH = 128
STEPS = 20
WARMUP = 2
REPEATS = 9


def _median_ms_per_step(fn) -> float:
    return median_ms(fn, STEPS, WARMUP * STEPS, REPEATS)


def _data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, SIZES[0])).astype(np.float32)
    y = rng.integers(0, SIZES[-1], BATCH)
    return x, y


def _dlbook_parts(net, opt, x, y) -> dict:
    """Time each part of the dlbook step separately (ms).

    A forward pass saves what its backward needs on the layers' tapes, so
    backward is timed together with its forward and reported as the
    difference; forward-only timings run under ``inference_mode`` (nothing
    saved, as in evaluation) and with saving (as in training).
    """
    logits = net(x)
    _, dlogits = losses.softmax_cross_entropy(logits, y)
    net.clear_tape()

    def fwd_bwd():
        net.forward(x)
        net.backward(dlogits)

    def fwd_inference():
        with inference_mode():
            net.forward(x)

    times = {
        "forward (saving)": _median_ms_per_step(lambda: (net.forward(x), net.clear_tape())),
        "forward (inference)": _median_ms_per_step(fwd_inference),
        "loss": _median_ms_per_step(lambda: losses.softmax_cross_entropy(logits, y)),
        "forward + backward": _median_ms_per_step(fwd_bwd),
        "zero_grad": _median_ms_per_step(opt.zero_grad),
        "Adam step": _median_ms_per_step(opt.step),
    }
    h = x
    for i, layer in enumerate(net.layers):
        out = layer.forward(h)
        layer.clear_tape()
        dout = np.ones_like(out)
        name = f"  layer {i} {type(layer).__name__}"
        times[name + " fwd+bwd"] = _median_ms_per_step(
            lambda layer=layer, h=h, d=dout: (layer.forward(h), layer.backward(d))
        )
        h = out
    return times


def main() -> dict:
    """Print the comparison and the breakdown; return the numbers."""
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        torch = F = None

    x, y = _data()

    # -- NumPy side -------------------------------------------------------------
    with threadpool_limits(limits=1):
        blas = blas_libraries()
        net = models.mlp(SIZES, "relu", rng=0, dtype=np.float32)
        opt = optim.Adam(net, lr=1e-3)

        def step():
            opt.zero_grad()
            logits = net.forward(x)
            _, dlogits = losses.softmax_cross_entropy(logits, y)
            net.backward(dlogits)
            opt.step()

        ours = _median_ms_per_step(step)
        assert all(p.dtype == np.float32 for p in net.params.values()), "parameters left float32"
        parts = _dlbook_parts(net, opt, x, y)

    # -- torch side ---------------------------------------------------------------
    theirs = None
    if torch is not None:
        time.sleep(0.5)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            torch.manual_seed(0)
            layers = []
            for i, (a, b) in enumerate(zip(SIZES[:-1], SIZES[1:], strict=True)):
                layers.append(torch.nn.Linear(a, b))
                if i < len(SIZES) - 2:
                    layers.append(torch.nn.ReLU())
            tnet = torch.nn.Sequential(*layers)
            topt = torch.optim.Adam(tnet.parameters(), lr=1e-3)
            xt, yt = torch.from_numpy(x), torch.from_numpy(y)

            def step_t():
                topt.zero_grad()
                loss = F.cross_entropy(tnet(xt), yt)
                loss.backward()
                topt.step()

            theirs = _median_ms_per_step(step_t)
        finally:
            torch.set_num_threads(threads)

    print(
        f"One training step (forward + cross-entropy + backward + Adam) of a "
        f"{'-'.join(map(str, SIZES))} ReLU MLP, batch {BATCH}, float32, one thread"
    )
    versions = timing_versions(torch)
    print(versions)
    print("BLAS: " + "; ".join(blas))
    print(
        f"threads: NumPy 1 (threadpoolctl), torch {1 if torch is not None else '-'}; median of "
        f"{REPEATS} runs of {STEPS} steps after {WARMUP * STEPS} warm-up steps"
    )
    print()
    print(f"{'':<12}{'dlbook ms':>10}{'torch ms':>10}{'ratio':>8}")
    ratio = ours / theirs if theirs else None
    t_txt = f"{theirs:10.3f}" if theirs else f"{'-':>10}"
    r_txt = f"{ratio:8.2f}" if ratio else f"{'-':>8}"
    print(f"{'step':<12}{ours:10.3f}{t_txt}{r_txt}")
    print()
    print("dlbook step by part (ms):")
    for name, ms in parts.items():
        print(f"  {name:<32}{ms:8.3f}")
    return {"dlbook_ms": ours, "torch_ms": theirs, "ratio": ratio, "parts": parts}


if __name__ == "__main__":
    main()
