"""Residual blocks, ResNets and residual MLPs (dlbook.resnet); rank and gradient probes.

Blocks and a whole small ResNet against the same networks built in PyTorch
(float64, training mode, copied weights): outputs, the input gradient and
every parameter gradient. Gradients by central differences; parameter
counts and depths; shared weights between a ResNet and its plain twin;
parameters and gradients linked to the layers; effective rank limits.
"""

import numpy as np
import pytest

import dlbook as dl
from dlbook.conv import Conv2d
from dlbook.layers import BatchNorm2d
from dlbook.resnet import (
    PadShortcut,
    Residual,
    basic_block,
    bottleneck_block,
    residual_mlp,
    resnet,
    resnet_depth,
)

BLOCK_CASES = [  # (in, out, stride, shortcut)
    (3, 3, 1, "projection"),
    (2, 4, 2, "projection"),
    (2, 4, 2, "pad"),
    (2, 3, 1, "projection"),
]


@pytest.mark.parametrize("preact", [False, True])
@pytest.mark.parametrize("c_in,c_out,stride,shortcut", BLOCK_CASES)
def test_basic_block_gradcheck(preact, c_in, c_out, stride, shortcut):
    block = basic_block(c_in, c_out, stride, preact=preact, shortcut=shortcut, rng=1)
    x = np.random.default_rng(2).standard_normal((3, c_in, 5, 4))
    errors = dl.gradcheck(block, x, rtol=1e-4, atol=1e-7)  # BatchNorm + ReLU: kinks loosen the check a little
    assert "x" in errors and any(k.endswith("W") for k in errors)


def test_residual_and_padshortcut_gradcheck():
    rng = np.random.default_rng(3)
    dl.gradcheck(PadShortcut(2, 5, 2), rng.standard_normal((2, 2, 5, 5)))
    branch = dl.Sequential(dl.layers.Linear(4, 4, rng=0), dl.activations.Activation("tanh"))
    dl.gradcheck(Residual(branch, post=dl.layers.LayerNorm(4)), rng.standard_normal((3, 4)))


@pytest.mark.parametrize("position", ["pre", "post", None])
def test_residual_mlp_gradcheck(position):
    model = residual_mlp(5, 6, 3, 4, norm_position=position, rng=0)
    dl.gradcheck(model, np.random.default_rng(4).standard_normal((4, 5)), rtol=1e-5, atol=1e-7)


def test_tiny_resnet_gradcheck():
    model = resnet(1, (2, 3), in_channels=1, num_classes=3, rng=0)
    dl.gradcheck(model, np.random.default_rng(5).standard_normal((4, 1, 4, 4)), rtol=1e-4, atol=1e-7)


# =============================================================================
# Against PyTorch
# =============================================================================
def _torch():
    return pytest.importorskip("torch", reason="PyTorch not installed: reference comparison skipped")


def _torch_block(torch, block_params, c_in, c_out, stride, preact, shortcut):
    """The same block in PyTorch, with the weights copied from ``block_params`` (in dlbook's order)."""
    nn = torch.nn
    F = torch.nn.functional
    convs = [k for k in block_params if k.endswith("W")]
    gammas = [k for k in block_params if k.endswith("gamma")]

    def conv(c_a, c_b, k, s, key):
        m = nn.Conv2d(c_a, c_b, k, stride=s, padding=k // 2, bias=False).double()
        m.weight.data = torch.tensor(block_params[key].copy())
        return m

    def bn(c, key):
        m = nn.BatchNorm2d(c).double()
        m.weight.data = torch.tensor(block_params[key].copy())
        m.bias.data = torch.tensor(block_params[key.replace("gamma", "beta")].copy())
        return m

    changes = stride != 1 or c_in != c_out
    main_convs = [k for k in convs if ".shortcut." not in f".{k}"]
    proj_convs = [k for k in convs if ".shortcut." in f".{k}"]
    main_bns = [k for k in gammas if ".shortcut." not in f".{k}"]
    proj_bns = [k for k in gammas if ".shortcut." in f".{k}"]
    c1 = conv(c_in, c_out, 3, stride, main_convs[0])
    c2 = conv(c_out, c_out, 3, 1, main_convs[1])
    bns = [bn(c_in if (preact and i == 0) else c_out, k) for i, k in enumerate(main_bns)]
    proj = None
    if changes and shortcut == "projection":
        proj = nn.Sequential(conv(c_in, c_out, 1, stride, proj_convs[0]), bn(c_out, proj_bns[0]))

    def short(x):
        if not changes:
            return x
        if proj is not None:
            return proj(x)
        sub = x[:, :, ::stride, ::stride]
        return F.pad(sub, (0, 0, 0, 0, 0, c_out - c_in))

    def forward(x):
        if preact:
            a = F.relu(bns[0](x))
            s = short(a) if changes else x
            return s + c2(F.relu(bns[1](c1(a))))
        return F.relu(short(x) + bns[1](c2(F.relu(bns[0](c1(x))))))

    modules = [c1, c2, *bns] + ([proj] if proj is not None else [])
    return forward, modules


@pytest.mark.parametrize("preact", [False, True])
@pytest.mark.parametrize("c_in,c_out,stride,shortcut", BLOCK_CASES)
def test_basic_block_against_torch(preact, c_in, c_out, stride, shortcut):
    torch = _torch()
    rng = np.random.default_rng(6)
    block = basic_block(c_in, c_out, stride, preact=preact, shortcut=shortcut, rng=7)
    for key, p in block.params.items():  # move gamma and beta away from 1 and 0
        if key.endswith("gamma"):
            p[:] = rng.uniform(0.5, 1.5, p.shape)
        elif key.endswith("beta"):
            p[:] = rng.standard_normal(p.shape)
    forward_t, modules = _torch_block(torch, block.params, c_in, c_out, stride, preact, shortcut)
    x = rng.standard_normal((4, c_in, 6, 5))
    y = block(x)
    dy = rng.standard_normal(y.shape)
    block.zero_grad()
    dx = block.backward(dy)
    xt = torch.tensor(x, requires_grad=True)
    yt = forward_t(xt)
    yt.backward(torch.tensor(dy))
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-9, atol=1e-11)
    ours = [g for k, g in block.grads.items() if k.endswith("W")]
    theirs = [p.grad.numpy() for m in modules for p in m.parameters() if p.dim() == 4]
    assert sorted(g.size for g in ours) == sorted(t.size for t in theirs)
    ours_sorted = sorted(ours, key=lambda g: (g.shape, float(np.abs(g).sum())))
    theirs_sorted = sorted(theirs, key=lambda g: (g.shape, float(np.abs(g).sum())))
    for a, b in zip(ours_sorted, theirs_sorted, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-11)


def test_small_resnet_against_torch():
    torch = _torch()
    nn = torch.nn
    F = torch.nn.functional
    rng = np.random.default_rng(8)
    model = resnet(1, (2, 4), in_channels=1, num_classes=3, shortcut="projection", rng=0)
    x = rng.standard_normal((5, 1, 6, 6))
    y = model(x)
    dy = rng.standard_normal(y.shape)
    model.zero_grad()
    dx = model.backward(dy)

    p = {k: torch.tensor(v.copy(), requires_grad=True) for k, v in model.params.items()}

    def bn(h, prefix):
        return F.batch_norm(h, None, None, p[prefix + "gamma"], p[prefix + "beta"], training=True)

    xt = torch.tensor(x, requires_grad=True)
    h = F.relu(bn(F.conv2d(xt, p["0.W"], padding=1), "1."))
    # block 3: 2 -> 2, stride 1, identity shortcut
    z = bn(F.conv2d(F.relu(bn(F.conv2d(h, p["3.branch.0.W"], padding=1), "3.branch.1.")),
                    p["3.branch.3.W"], padding=1), "3.branch.4.")
    h = F.relu(z + h)
    # block 4: 2 -> 4, stride 2, projection
    z = bn(F.conv2d(F.relu(bn(F.conv2d(h, p["4.branch.0.W"], stride=2, padding=1), "4.branch.1.")),
                    p["4.branch.3.W"], padding=1), "4.branch.4.")
    s = bn(F.conv2d(h, p["4.shortcut.0.W"], stride=2), "4.shortcut.1.")
    h = F.relu(z + s)
    out = h.mean(dim=(2, 3)) @ p["6.W"] + p["6.b"]
    out.backward(torch.tensor(dy))
    assert isinstance(model.layers[5], dl.conv.GlobalAvgPool2d) and len(model.layers) == 7
    np.testing.assert_allclose(y, out.detach().numpy(), rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-9, atol=1e-11)
    for k, t in p.items():
        np.testing.assert_allclose(model.grads[k], t.grad.numpy(), rtol=1e-9, atol=1e-11, err_msg=k)
    del nn


# =============================================================================
# Structure
# =============================================================================
@pytest.mark.parametrize("n,depth", [(1, 8), (3, 20), (7, 44)])
def test_depth_and_weighted_layers(n, depth):
    assert resnet_depth(n) == depth
    model = resnet(n, (4, 8, 16), in_channels=1, plain=True, rng=0)
    weighted = [k for k in model.params if k.endswith("W")]
    assert len(weighted) == depth


def test_parameter_counts_pad_projection_and_plain():
    plain = resnet(3, (16, 32, 64), in_channels=3, plain=True, rng=0)
    pad = resnet(3, (16, 32, 64), in_channels=3, shortcut="pad", rng=0)
    proj = resnet(3, (16, 32, 64), in_channels=3, shortcut="projection", rng=0)
    assert plain.num_parameters() == pad.num_parameters() == 269_722  # He et al.: "0.27M"
    # two 1x1 projections (16->32, 32->64) and their BatchNorms
    assert proj.num_parameters() - pad.num_parameters() == 16 * 32 + 32 * 64 + 2 * (32 + 64)


def test_plain_and_residual_share_every_branch_weight():
    for preact in (False, True):
        plain = resnet(2, (3, 5), in_channels=1, plain=True, preact=preact, rng=4)
        res = resnet(2, (3, 5), in_channels=1, shortcut="projection", preact=preact, rng=4)
        ours = [v for k, v in res.params.items() if ".shortcut." not in f".{k}"]
        theirs = list(plain.params.values())
        assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs, strict=True):
            np.testing.assert_array_equal(a, b)


def test_every_block_is_one_top_level_layer_and_shapes():
    model = resnet(2, (4, 8, 16), in_channels=1, num_classes=10, rng=0)
    x = np.random.default_rng(9).standard_normal((3, 1, 8, 8))
    outs = dl.probes.layer_outputs(model, x)
    shapes = [o.shape for o in outs]
    assert shapes[3] == (3, 4, 8, 8) and shapes[5] == (3, 8, 4, 4) and shapes[7] == (3, 16, 2, 2)
    assert shapes[-1] == (3, 10) and len(outs) == 3 + 6 + 2


def test_params_and_grads_are_linked_to_the_layers():
    model = resnet(1, (2, 4), in_channels=1, num_classes=3, rng=0)
    x = np.random.default_rng(10).standard_normal((4, 1, 4, 4))
    y = np.array([0, 1, 2, 0])
    opt = dl.optim.SGD(model, lr=0.1)
    conv = model.layers[3].branch.layers[0]
    before = conv.params["W"].copy()
    opt.zero_grad()
    _, dlogits = dl.losses.softmax_cross_entropy(model(x), y)
    model.backward(dlogits)
    assert model.grads["3.branch.0.W"] is conv.grads["W"]
    assert np.any(conv.grads["W"] != 0)
    opt.step()
    assert model.params["3.branch.0.W"] is conv.params["W"]
    np.testing.assert_allclose(conv.params["W"], before - 0.1 * conv.grads["W"])


def test_train_and_eval_propagate_into_blocks():
    model = resnet(1, (2,), in_channels=1, num_classes=2, rng=0)
    model.eval()
    bns = [m for m in model.layers[3].branch.layers if isinstance(m, BatchNorm2d)]
    assert bns and not any(b.training for b in bns)
    model.train()
    assert all(b.training for b in bns)


def test_zero_gamma_makes_original_blocks_identity():
    model = resnet(2, (3, 3), in_channels=1, shortcut="projection", rng=0)
    x = np.abs(np.random.default_rng(11).standard_normal((4, 3, 4, 4)))  # a ReLU output
    block = model.layers[3]
    block.branch.layers[-1].params["gamma"][:] = 0.0
    np.testing.assert_array_equal(block(x), x)


# =============================================================================
# The bottleneck block and zero-initialised residual branches
# =============================================================================
@pytest.mark.parametrize("c_in,mid,c_out,stride", [(8, 2, None, 1), (4, 2, 8, 2), (6, 3, 6, 1)])
def test_bottleneck_block_against_torch(c_in, mid, c_out, stride):
    torch = _torch()
    nn, F = torch.nn, torch.nn.functional
    rng = np.random.default_rng(3)
    block = bottleneck_block(c_in, mid, c_out, stride, rng=4)
    c_out = 4 * mid if c_out is None else c_out
    for key, p in block.params.items():
        if key.endswith("gamma"):
            p[:] = rng.uniform(0.5, 1.5, p.shape)
        elif key.endswith("beta"):
            p[:] = rng.standard_normal(p.shape)
    P = block.params

    def conv(key, k, s):
        w = P[key]
        m = nn.Conv2d(w.shape[1], w.shape[0], k, stride=s, padding=k // 2, bias=False).double()
        m.weight.data = torch.tensor(w.copy())
        return m

    def bn(prefix):
        m = nn.BatchNorm2d(P[prefix + "gamma"].size).double()
        m.weight.data = torch.tensor(P[prefix + "gamma"].copy())
        m.bias.data = torch.tensor(P[prefix + "beta"].copy())
        return m

    c1, c2, c3 = conv("branch.0.W", 1, 1), conv("branch.3.W", 3, stride), conv("branch.6.W", 1, 1)
    b1, b2, b3 = bn("branch.1."), bn("branch.4."), bn("branch.7.")
    changes = stride != 1 or c_in != c_out
    proj = nn.Sequential(conv("shortcut.0.W", 1, stride), bn("shortcut.1.")) if changes else None

    def forward(x):
        s = proj(x) if proj is not None else x
        return F.relu(s + b3(c3(F.relu(b2(c2(F.relu(b1(c1(x)))))))))

    x = rng.standard_normal((3, c_in, 5, 6))
    y = block(x)
    assert y.shape == (3, c_out, -(-5 // stride), -(-6 // stride))
    dy = rng.standard_normal(y.shape)
    block.zero_grad()
    dx = block.backward(dy)
    xt = torch.tensor(x, requires_grad=True)
    yt = forward(xt)
    yt.backward(torch.tensor(dy))
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-9, atol=1e-11)
    mods = {"branch.0": c1, "branch.3": c2, "branch.6": c3}
    if proj is not None:
        mods["shortcut.0"] = proj[0]
    for name, m in mods.items():
        np.testing.assert_allclose(block.grads[name + ".W"], m.weight.grad.numpy(), rtol=1e-9, atol=1e-11)


def test_bottleneck_gradcheck_and_parameter_count():
    block = bottleneck_block(4, 2, 8, 2, rng=0)
    errors = dl.gradcheck(block, np.random.default_rng(1).standard_normal((3, 4, 5, 5)))
    assert any(k.endswith("W") for k in errors)
    big = bottleneck_block(256, 64, rng=0)  # ResNet-50's block at 256 channels
    conv_weights = sum(p.size for k, p in big.params.items() if k.endswith("W"))
    assert conv_weights == 256 * 64 + 9 * 64 * 64 + 64 * 256 == 69_632
    assert conv_weights * 16 < 2 * 9 * 256 * 256  # two 3x3 convolutions at 256: 1,179,648


@pytest.mark.parametrize("make", [
    lambda: basic_block(3, 3, zero_init=True, rng=0),
    lambda: basic_block(3, 5, 2, zero_init=True, rng=0),
    lambda: bottleneck_block(8, 2, zero_init=True, rng=0),
])
def test_zero_init_blocks_start_as_relu_of_the_shortcut(make):
    block = make()
    x = np.random.default_rng(2).standard_normal((4, block.branch.layers[0].in_channels, 6, 6))
    s = x if block.shortcut is None else block.shortcut(x)
    np.testing.assert_array_equal(block(x), np.maximum(s, 0.0))
    block.zero_grad()
    block.backward(np.ones_like(block(x)))  # the zero gamma still learns
    gamma_key = [k for k in block.params if k.startswith("branch.") and k.endswith("gamma")][-1]
    assert np.abs(block.grads[gamma_key]).max() > 0


def test_zero_init_residual_resnet_starts_with_identity_blocks():
    x = np.random.default_rng(5).standard_normal((2, 1, 8, 8))
    ref = resnet(2, (3, 4), in_channels=1, rng=0)
    zero = resnet(2, (3, 4), in_channels=1, zero_init_residual=True, rng=0)
    gammas = [p for k, p in zero.params.items() if k.endswith("gamma")]
    assert sum(np.all(g == 0) for g in gammas) == 4  # one per block, none elsewhere
    h = dl.Sequential(ref.layers[:3])(x)  # the stem: conv, BN, ReLU
    np.testing.assert_array_equal(zero.layers[3](h), h)  # an identity block on a ReLU output
    assert not np.allclose(ref(x), zero(x))


def test_bad_arguments():
    with pytest.raises(ValueError, match="post-activation"):
        basic_block(2, 2, preact=True, zero_init=True, rng=0)
    with pytest.raises(ValueError, match="post-activation"):
        resnet(1, (2,), in_channels=1, plain=True, zero_init_residual=True, rng=0)
    with pytest.raises(TypeError, match="zero_init must be True or False"):
        bottleneck_block(4, 1, zero_init=1, rng=0)
    with pytest.raises(ValueError):
        bottleneck_block(4, 0, rng=0)
    with pytest.raises(ValueError, match="shortcut"):
        basic_block(2, 4, 2, shortcut="zeros", rng=0)
    with pytest.raises(ValueError, match="norm_position"):
        residual_mlp(4, 4, 2, 2, norm_position="middle", rng=0)
    with pytest.raises(ValueError, match="at least in_channels"):
        PadShortcut(4, 2)
    with pytest.raises(TypeError, match="Module"):
        Residual(lambda x: x)
    res = Residual(Conv2d(2, 3, 3, padding=1, rng=0))
    with pytest.raises(ValueError, match="shortcut"):
        res(np.zeros((1, 2, 4, 4)))
    with pytest.raises(ValueError):
        resnet(0, rng=0)


# =============================================================================
# Probes
# =============================================================================
def test_effective_rank_limits_and_scale_invariance():
    rng = np.random.default_rng(12)
    u = rng.standard_normal((50, 1))
    rank_one = u @ rng.standard_normal((1, 20))
    assert dl.probes.effective_rank(rank_one) == pytest.approx(1.0, abs=1e-6)
    q, _ = np.linalg.qr(rng.standard_normal((40, 40)))
    equal = q[:, :7] * 3.0  # seven equal singular values, uncentred
    assert dl.probes.effective_rank(equal, center=False) == pytest.approx(7.0, rel=1e-9)
    h = rng.standard_normal((30, 6, 2))
    assert dl.probes.effective_rank(h) == pytest.approx(dl.probes.effective_rank(1e-3 * h), rel=1e-9)
    assert 1.0 < dl.probes.effective_rank(h) <= 12.0
    assert dl.probes.effective_rank(np.ones((5, 3))) == 0.0  # constant rows: nothing left after centring
    s = dl.probes.singular_values(h)
    assert s.shape == (12,) and np.all(np.diff(s) <= 0)


def test_weight_grad_norms_order_and_values():
    model = resnet(1, (2, 4), in_channels=1, num_classes=3, shortcut="projection", rng=0)
    x = np.random.default_rng(13).standard_normal((4, 1, 4, 4))
    y = np.array([0, 1, 2, 1])
    names, norms = dl.probes.weight_grad_norms(model, x, y, dl.losses.softmax_cross_entropy)
    assert names == ["0.W", "3.branch.0.W", "3.branch.3.W", "4.branch.0.W", "4.branch.3.W", "6.W"]
    model.zero_grad()
    _, d = dl.losses.softmax_cross_entropy(model(x), y)
    model.backward(d)
    np.testing.assert_allclose(norms, [np.linalg.norm(model.grads[k]) for k in names], rtol=1e-12)
