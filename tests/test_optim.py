"""Optimisers, gradient clipping and learning-rate schedules (dlbook.optim), against PyTorch."""

import math

import numpy as np
import pytest

import dlbook as dl
from dlbook import optim

SHAPES = {"W": (3, 4), "b": (4,), "s": (1,)}


class Params(dl.Module):
    """A module that only holds parameters (gradients are set by the test)."""

    def __init__(self, dtype=np.float64, seed=0):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.params = {k: rng.standard_normal(shape).astype(dtype) for k, shape in SHAPES.items()}


def _grad_sequence(steps=20, seed=1):
    rng = np.random.default_rng(seed)
    return [{k: rng.standard_normal(s) for k, s in SHAPES.items()} for _ in range(steps)]


CONFIGS = [
    ("sgd", optim.SGD, "SGD", {"lr": 0.1}),
    ("momentum", optim.SGD, "SGD", {"lr": 0.1, "momentum": 0.9}),
    ("dampening", optim.SGD, "SGD", {"lr": 0.1, "momentum": 0.8, "dampening": 0.3}),
    ("nesterov", optim.SGD, "SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
    ("sgd+wd", optim.SGD, "SGD", {"lr": 0.1, "weight_decay": 0.05}),
    ("nesterov+wd", optim.SGD, "SGD", {"lr": 0.05, "momentum": 0.7, "nesterov": True, "weight_decay": 0.1}),
    ("adam", optim.Adam, "Adam", {"lr": 0.01}),
    ("adam-betas", optim.Adam, "Adam", {"lr": 0.03, "betas": (0.5, 0.8), "eps": 1e-3}),
    ("adam+wd", optim.Adam, "Adam", {"lr": 0.01, "weight_decay": 0.1}),
    ("adamw", optim.AdamW, "AdamW", {"lr": 0.01, "weight_decay": 0.1}),
    ("adamw-default", optim.AdamW, "AdamW", {}),
    ("adagrad", optim.Adagrad, "Adagrad", {"lr": 0.1}),
    ("adagrad-all", optim.Adagrad, "Adagrad",
     {"lr": 0.1, "lr_decay": 0.05, "weight_decay": 0.1, "initial_accumulator_value": 0.5, "eps": 1e-3}),
    ("rmsprop", optim.RMSprop, "RMSprop", {}),
    ("rmsprop-momentum", optim.RMSprop, "RMSprop", {"lr": 0.01, "alpha": 0.9, "momentum": 0.8}),
    ("rmsprop-centered", optim.RMSprop, "RMSprop",
     {"lr": 0.01, "centered": True, "momentum": 0.5, "weight_decay": 0.1, "eps": 1e-4}),
]


@pytest.mark.parametrize("name, ours, theirs, kwargs", CONFIGS, ids=[c[0] for c in CONFIGS])
def test_matches_torch_float64_over_20_steps(name, ours, theirs, kwargs):
    torch = pytest.importorskip("torch")
    model = Params()
    tparams = {k: torch.tensor(p.copy(), requires_grad=True) for k, p in model.params.items()}
    opt = ours(model, **kwargs)
    topt = getattr(torch.optim, theirs)(list(tparams.values()), **kwargs)
    for t, grads in enumerate(_grad_sequence()):
        if t == 10:  # a schedule changing lr between steps is picked up by both
            opt.lr = opt.lr * 0.5
            topt.param_groups[0]["lr"] *= 0.5
        for k, g in grads.items():
            model.grads[k][...] = g
            tparams[k].grad = torch.from_numpy(g.copy())
        opt.step()
        topt.step()
    assert opt.steps == 20
    for k, p in model.params.items():
        ref = tparams[k].detach().numpy()
        assert dl.rel_error(p, ref) < 1e-10, (name, k)
        assert not np.allclose(p, Params().params[k])  # the parameters did move


@pytest.mark.parametrize("name, ours, theirs, kwargs", CONFIGS, ids=[c[0] for c in CONFIGS])
def test_float32_stays_float32_and_grads_are_not_mutated(name, ours, theirs, kwargs):
    model = Params(np.float32)
    ids = {k: id(p) for k, p in model.params.items()}
    opt = ours(model, **kwargs)
    for grads in _grad_sequence(3):
        for k, g in grads.items():
            model.grads[k][...] = g
        before = {k: g.copy() for k, g in model.grads.items()}
        opt.step()
        for k, g in model.grads.items():
            np.testing.assert_array_equal(g, before[k])
    for k, p in model.params.items():
        assert p.dtype == np.float32 and id(p) == ids[k]  # updated in place
        for v in opt.state.get(k, {}).values():
            if isinstance(v, np.ndarray):
                assert v.dtype == np.float32


def test_plain_sgd_step_is_the_formula_and_backwards_compatible():
    model = Params()
    p0 = {k: p.copy() for k, p in model.params.items()}
    opt = optim.SGD(model, 0.3)  # positional lr, as chapter 1 calls it
    grads = _grad_sequence(1)[0]
    for k, g in grads.items():
        model.grads[k][...] = g
    opt.step()
    for k, p in model.params.items():
        np.testing.assert_allclose(p, p0[k] - 0.3 * grads[k], rtol=1e-15)
    assert opt.state == {}  # plain SGD keeps no state


def test_sgd_through_sequential_updates_the_layers():
    net = dl.models.mlp([3, 4, 2], "tanh", rng=0)
    opt = optim.Adam(net, lr=0.1)
    x = np.random.default_rng(0).standard_normal((5, 3))
    opt.zero_grad()
    _, d = dl.losses.mse(net(x), np.zeros((5, 2)))
    net.backward(d)
    w0 = net[0].params["W"].copy()
    opt.step()
    assert net[0].params["W"] is net.params["0.W"]
    assert not np.allclose(net[0].params["W"], w0)


def _quadratic(dim=6, seed=0):
    rng = np.random.default_rng(seed)
    Q = rng.standard_normal((dim, dim))
    A = Q @ Q.T + dim * np.eye(dim)  # symmetric positive definite
    b = rng.standard_normal(dim)
    return A, b, np.linalg.solve(A, b)


@pytest.mark.parametrize(
    "make",
    [
        lambda m: optim.SGD(m, 0.02),
        lambda m: optim.SGD(m, 0.02, momentum=0.9),
        lambda m: optim.SGD(m, 0.02, momentum=0.9, nesterov=True),
        lambda m: optim.Adam(m, 0.05),
        lambda m: optim.AdamW(m, 0.05, weight_decay=0.0),
        lambda m: optim.Adagrad(m, 0.5),
        lambda m: optim.RMSprop(m, 0.01, momentum=0.5),
    ],
)
def test_descends_a_convex_quadratic(make):
    A, b, x_star = _quadratic()

    class Quad(dl.Module):
        def __init__(self):
            super().__init__()
            self.params = {"x": np.zeros(len(b))}

    m = Quad()
    opt = make(m)

    def f(x):
        return 0.5 * x @ A @ x - b @ x

    f_star, f0 = f(x_star), f(m.params["x"])
    for _ in range(600):
        opt.zero_grad()
        m.grads["x"] += A @ m.params["x"] - b  # the gradient of f
        opt.step()
    assert f(m.params["x"]) - f_star < 1e-4 * (f0 - f_star)
    assert np.linalg.norm(m.params["x"] - x_star) < 0.02 * np.linalg.norm(x_star)


def test_adamw_decays_weights_without_a_gradient():
    model = Params()
    p0 = model.params["W"].copy()
    opt = optim.AdamW(model, lr=0.1, weight_decay=0.5)
    opt.step()  # zero gradients: m = v = 0, only the decoupled decay acts
    np.testing.assert_allclose(model.params["W"], p0 * (1 - 0.1 * 0.5), rtol=1e-15)
    plain = Params()
    optim.Adam(plain, lr=0.1, weight_decay=0.5).step()  # L2 inside Adam: normalised step of size ~lr
    np.testing.assert_allclose(np.abs(plain.params["W"] - p0), 0.1, rtol=1e-6)


def test_adaptive_first_steps_are_the_formulas():
    """Adagrad's first step is lr * sign(g); RMSprop's is lr * sign(g) / sqrt(1 - alpha)."""
    g = _grad_sequence(1)[0]
    for opt_cls, kwargs, size in [(optim.Adagrad, {"lr": 0.1, "eps": 0.0}, 0.1),
                                  (optim.RMSprop, {"lr": 0.01, "alpha": 0.96, "eps": 0.0}, 0.05)]:
        m = Params()
        p0 = {k: p.copy() for k, p in m.params.items()}
        for k, v in g.items():
            m.grads[k][...] = v
        opt_cls(m, **kwargs).step()
        for k in p0:
            np.testing.assert_allclose(p0[k] - m.params[k], size * np.sign(g[k]), rtol=1e-12)


def test_adagrad_steps_shrink_like_one_over_root_t():
    """A constant gradient: Adagrad's t-th step is lr / sqrt(t); RMSprop's falls to lr."""
    steps = {}
    for name, make in [("adagrad", lambda m: optim.Adagrad(m, 0.1)),
                       ("rmsprop", lambda m: optim.RMSprop(m, 0.1))]:
        m = Params()
        opt = make(m)
        out = []
        for _ in range(400):
            before = m.params["b"].copy()
            m.grads["b"][...] = 2.0
            opt.step()
            out.append(before[0] - m.params["b"][0])
        steps[name] = np.array(out)
    t = np.arange(1, 401)
    np.testing.assert_allclose(steps["adagrad"], 0.1 / np.sqrt(t), rtol=1e-9)
    # v_t = (1 - 0.99^t) g^2: the step lr / sqrt(1 - 0.99^t) starts 10x lr (no bias correction)
    np.testing.assert_allclose(steps["rmsprop"], 0.1 / np.sqrt(1 - 0.99**t), rtol=1e-7)


def test_bad_arguments_raise_clear_errors():
    m = Params()
    with pytest.raises(ValueError, match="lr must be positive"):
        optim.SGD(m, lr=0)
    with pytest.raises(ValueError, match="lr must be positive"):
        optim.Adam(m, lr=-1e-3)
    with pytest.raises(ValueError, match="finite"):
        optim.Adam(m, lr=math.inf)
    with pytest.raises(TypeError, match="real number"):
        optim.SGD(m, lr="0.1")
    with pytest.raises(ValueError, match=r"betas\[0\] must lie in \[0, 1\)"):
        optim.Adam(m, betas=(1.0, 0.999))
    with pytest.raises(ValueError, match=r"betas\[1\] must lie in \[0, 1\)"):
        optim.AdamW(m, betas=(0.9, -0.1))
    with pytest.raises(ValueError, match="pair"):
        optim.Adam(m, betas=(0.9,))
    with pytest.raises(ValueError, match="eps must be >= 0"):
        optim.Adam(m, eps=-1.0)
    with pytest.raises(ValueError, match="nesterov=True needs momentum > 0"):
        optim.SGD(m, 0.1, nesterov=True)
    with pytest.raises(ValueError, match="dampening = 0"):
        optim.SGD(m, 0.1, momentum=0.9, dampening=0.1, nesterov=True)
    with pytest.raises(ValueError, match=r"momentum must lie in \[0, 1\)"):
        optim.SGD(m, 0.1, momentum=1.5)
    with pytest.raises(ValueError, match="weight_decay must be >= 0"):
        optim.AdamW(m, weight_decay=-0.1)
    with pytest.raises(ValueError, match=r"alpha must lie in \[0, 1\)"):
        optim.RMSprop(m, alpha=1.0)
    with pytest.raises(ValueError, match=r"momentum must lie in \[0, 1\)"):
        optim.RMSprop(m, momentum=-0.1)
    with pytest.raises(TypeError, match="centered must be True or False"):
        optim.RMSprop(m, centered=1)
    with pytest.raises(ValueError, match="lr_decay must be >= 0"):
        optim.Adagrad(m, lr_decay=-1.0)
    with pytest.raises(ValueError, match="initial_accumulator_value must be >= 0"):
        optim.Adagrad(m, initial_accumulator_value=-1.0)
    with pytest.raises(TypeError, match="dlbook Module"):
        optim.SGD([np.zeros(3)], 0.1)
    opt = optim.SGD(m, 0.1)
    with pytest.raises(ValueError, match="lr must be >= 0"):
        opt.lr = -0.5
    opt.lr = 0.0  # a schedule may reach zero
    assert opt.lr == 0.0


def test_a_gradient_never_written_is_zero():
    m = Params()
    w0, b0 = m.params["W"].copy(), m.params["b"].copy()
    m.grads["W"][...] = 1.0
    optim.SGD(m, 0.1).step()
    np.testing.assert_allclose(m.params["W"], w0 - 0.1)
    np.testing.assert_array_equal(m.params["b"], b0)


def test_a_shared_parameter_moves_once_per_step():
    lin = dl.layers.Linear(3, 3, rng=0)
    net = dl.Sequential(lin, lin)
    for make in (lambda m: optim.SGD(m, 0.1, momentum=0.9), lambda m: optim.AdamW(m, 0.01)):
        single = dl.layers.Linear(3, 3, rng=0)
        single.load_state_dict(lin.state_dict())
        opt_shared, opt_single = make(net), make(single)
        for step in range(3):
            g = np.random.default_rng(step).standard_normal((3, 3))
            net.grads["0.W"][...] = g
            single.grads["W"][...] = g
            opt_shared.step()
            opt_single.step()
        np.testing.assert_allclose(lin.params["W"], single.params["W"], rtol=1e-14)


@pytest.mark.parametrize("name,kwargs", [("SGD", {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.1}),
                                         ("AdamW", {"lr": 0.01, "weight_decay": 0.3}),
                                         ("Adam", {"lr": 0.01, "weight_decay": 0.1})])
def test_decay_filter_matches_torch_parameter_groups(name, kwargs, torch):
    """Weight decay on matrices only, as Transformer recipes do: torch's two parameter groups."""
    m = Params()
    ours = getattr(optim, name)(m, decay_filter=optim.matrices_only, **kwargs)
    assert ours.decays("W") and not ours.decays("b")
    tp = {k: torch.tensor(p.copy(), requires_grad=True) for k, p in m.params.items()}
    groups = [{"params": [tp["W"]]}, {"params": [tp["b"], tp["s"]], "weight_decay": 0.0}]
    theirs = getattr(torch.optim, name)(groups, **kwargs)
    for g in _grad_sequence(15):
        for k, v in g.items():
            m.grads[k][...] = v
            tp[k].grad = torch.tensor(v)
        ours.step()
        theirs.step()
    for k in SHAPES:
        np.testing.assert_allclose(m.params[k], tp[k].detach().numpy(), rtol=1e-10, atol=1e-12)


def test_decay_filter_must_be_callable():
    with pytest.raises(TypeError, match="decay_filter must be a function"):
        optim.AdamW(Params(), decay_filter="matrices")


def test_warmup_cosine_is_warmup_then_cosine():
    opt = optim.SGD(Params(), lr=1.0)
    sched = optim.warmup_cosine(opt, warmup_steps=10, total_steps=110, min_lr=0.1)
    lrs = sched.lrs(111)
    np.testing.assert_allclose(lrs[:10], np.arange(1, 11) / 10)
    assert lrs[10] == pytest.approx(1.0) and lrs[60] == pytest.approx(0.55) and lrs[110] == pytest.approx(0.1)
    with pytest.raises(ValueError, match="must exceed warmup_steps"):
        optim.warmup_cosine(opt, 10, 10)


def test_state_dict_round_trip_resumes_exactly():
    grads = _grad_sequence(10)

    def run(model, opt, seq):
        for g in seq:
            for k, v in g.items():
                model.grads[k][...] = v
            opt.step()

    a = Params()
    opt_a = optim.Adam(a, 0.01)
    run(a, opt_a, grads[:5])
    saved_params = {k: p.copy() for k, p in a.params.items()}
    saved = opt_a.state_dict()
    run(a, opt_a, grads[5:])

    b = Params()
    for k, p in b.params.items():
        p[...] = saved_params[k]
    opt_b = optim.Adam(b, 0.5)
    opt_b.load_state_dict(saved)
    assert opt_b.lr == 0.01 and opt_b.steps == 5
    run(b, opt_b, grads[5:])
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])


# -- clipping -------------------------------------------------------------------------


@pytest.mark.parametrize("factor", [0.1, 0.9, 1.1, 1e3])
def test_clip_grad_norm_matches_torch(factor):
    torch = pytest.importorskip("torch")
    m = Params()
    grads = _grad_sequence(1)[0]
    max_norm = factor * math.sqrt(sum(float((g**2).sum()) for g in grads.values()))
    tps = []
    for k, g in grads.items():
        m.grads[k][...] = g
        t = torch.zeros(g.shape, dtype=torch.float64, requires_grad=True)
        t.grad = torch.from_numpy(g.copy())
        tps.append(t)
    total = optim.clip_grad_norm(m, max_norm)
    ref = torch.nn.utils.clip_grad_norm_(tps, max_norm)
    assert isinstance(total, float)
    assert total == pytest.approx(ref.item(), rel=1e-14)
    assert total == pytest.approx(math.sqrt(sum(float((g**2).sum()) for g in grads.values())), rel=1e-14)
    for (k, g), t in zip(m.grads.items(), tps, strict=True):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-14)
        if max_norm > total:
            np.testing.assert_array_equal(g, grads[k])  # below the threshold nothing changes
    after = optim.grad_norm(m)
    assert after == pytest.approx(min(total, max_norm), rel=1e-5)


def test_grad_norm_float32_overflow_and_non_finite():
    m = Params(np.float32)
    for g in m.grads.values():
        g.fill(1e20)  # squares overflow float32, the norm itself does not
    n = sum(g.size for g in m.grads.values())
    assert optim.grad_norm(m) == pytest.approx(1e20 * math.sqrt(n), rel=1e-6)
    m.grads["b"][0] = np.inf
    assert optim.clip_grad_norm(m, 1.0) == math.inf
    with pytest.raises(FloatingPointError, match="norm is inf"):
        optim.clip_grad_norm(m, 1.0, error_if_nonfinite=True)
    with pytest.raises(ValueError, match="max_norm must be positive"):
        optim.clip_grad_norm(m, 0.0)


# -- schedules ------------------------------------------------------------------------


def _torch_lrs(torch, make, steps, lr):
    p = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([p], lr=lr)
    sched = make(opt)
    out = [opt.param_groups[0]["lr"]]
    for _ in range(steps):
        opt.step()
        sched.step()
        out.append(opt.param_groups[0]["lr"])
    return np.array(out)


def _our_lrs(make, steps, lr):
    opt = optim.SGD(Params(), lr)
    sched = make(opt)
    out = [opt.lr]
    for _ in range(steps):
        opt.step()
        sched.step()
        out.append(opt.lr)
    np.testing.assert_array_equal(out, sched.lrs(steps + 1))  # lr_at is the same sequence
    assert sched.lr == out[-1]
    return np.array(out)


SCHEDULES = [
    ("step", lambda o: optim.StepLR(o, step_size=3, gamma=0.5),
     lambda L, o: L.StepLR(o, step_size=3, gamma=0.5), 12),
    ("cosine", lambda o: optim.CosineLR(o, total_steps=10, min_lr=0.01),
     lambda L, o: L.CosineAnnealingLR(o, T_max=10, eta_min=0.01), 10),
    ("linear-up", lambda o: optim.LinearLR(o, start_factor=0.25, end_factor=1.0, total_steps=4),
     lambda L, o: L.LinearLR(o, start_factor=0.25, end_factor=1.0, total_iters=4), 8),
    ("linear-decay", lambda o: optim.LinearLR(o, start_factor=1.0, end_factor=0.0, total_steps=6),
     lambda L, o: L.LinearLR(o, start_factor=1.0, end_factor=0.0, total_iters=6), 8),
    ("warmup", lambda o: optim.LinearWarmup(o, 5),
     lambda L, o: L.LinearLR(o, start_factor=1 / 5, total_iters=4), 9),
    ("warmup+cosine", lambda o: optim.LinearWarmup(o, 4, after=optim.CosineLR(o, total_steps=6)),
     lambda L, o: L.SequentialLR(
         o, [L.LinearLR(o, start_factor=1 / 4, total_iters=3), L.CosineAnnealingLR(o, T_max=6)],
         milestones=[4]), 10),
]


@pytest.mark.parametrize("name, ours, theirs, steps", SCHEDULES, ids=[s[0] for s in SCHEDULES])
def test_schedules_match_torch(name, ours, theirs, steps):
    torch = pytest.importorskip("torch")
    from torch.optim import lr_scheduler

    mine = _our_lrs(ours, steps, 0.3)
    ref = _torch_lrs(torch, lambda o: theirs(lr_scheduler, o), steps, 0.3)
    np.testing.assert_allclose(mine, ref, rtol=1e-12, atol=1e-15)
    assert len(set(np.round(mine, 12))) > 1  # the rate actually changed


def test_schedule_formulas_and_lr_at_is_pure():
    opt = optim.SGD(Params(), 0.2)
    cos = optim.CosineLR(opt, total_steps=8, min_lr=0.02)
    assert cos.lr_at(4) == pytest.approx(0.02 + 0.18 * 0.5)  # halfway: the mean of the two rates
    assert cos.lr_at(8) == pytest.approx(0.02) and cos.lr_at(100) == pytest.approx(0.02)  # holds at min_lr
    assert opt.lr == 0.2 and cos.t == 0  # lr_at changed nothing
    warm = optim.LinearWarmup(optim.SGD(Params(), 1.0), 4)
    assert [warm.lr_at(t) for t in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    step = optim.StepLR(optim.SGD(Params(), 1.0), step_size=2, gamma=0.1)
    np.testing.assert_allclose(step.lrs(6), [1, 1, 0.1, 0.1, 0.01, 0.01])


def test_warmup_drives_its_follower():
    opt = optim.SGD(Params(), 0.4)
    after = optim.StepLR(opt, step_size=2, gamma=0.5)
    warm = optim.LinearWarmup(opt, 2, after=after)
    assert opt.lr == pytest.approx(0.2)
    seen = [warm.step() for _ in range(5)]
    np.testing.assert_allclose(seen, [0.4, 0.4, 0.4, 0.2, 0.2])
    assert after.t == 3 and opt.lr == pytest.approx(0.2)


def test_schedule_bad_arguments():
    opt = optim.SGD(Params(), 0.1)
    with pytest.raises(ValueError, match="step_size must be a positive integer"):
        optim.StepLR(opt, 0)
    with pytest.raises(ValueError, match="gamma must be positive"):
        optim.StepLR(opt, 2, gamma=0.0)
    with pytest.raises(ValueError, match="total_steps must be a positive integer"):
        optim.CosineLR(opt, 2.5)
    with pytest.raises(ValueError, match="min_lr must be >= 0"):
        optim.CosineLR(opt, 10, min_lr=-1.0)
    with pytest.raises(ValueError, match="start_factor must lie in"):
        optim.LinearLR(opt, start_factor=0.0)
    with pytest.raises(ValueError, match="warmup_steps must be a positive integer"):
        optim.LinearWarmup(opt, 0)
    other = optim.SGD(Params(), 0.1)
    with pytest.raises(ValueError, match="same optimizer"):
        optim.LinearWarmup(opt, 3, after=optim.CosineLR(other, 10))
    with pytest.raises(TypeError, match="dlbook Optimizer"):
        optim.StepLR(object(), 3)
    with pytest.raises(ValueError, match="non-negative integer"):
        optim.StepLR(opt, 3).lr_at(-1)
