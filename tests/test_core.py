"""The layer protocol, gradcheck, Linear, losses, SGD, data, probes and models."""

import numpy as np
import pytest

import dlbook as dl
from dlbook import core
from dlbook.core import Module, numerical_gradient


class Square(Module):
    """y = x**2 with a deliberately configurable (possibly wrong) backward."""

    def __init__(self, factor=2.0):
        super().__init__()
        self.factor = factor

    def forward(self, x):
        self.x = x
        return x * x

    def backward(self, dout):
        return self.factor * self.x * dout


def test_gradcheck_passes_a_correct_backward():
    errors = dl.gradcheck(Square(2.0), np.random.default_rng(0).standard_normal((3, 4)))
    assert errors["x"] < 1e-8


def test_gradcheck_catches_a_wrong_backward():
    with pytest.raises(AssertionError, match="gradient of x wrong"):
        dl.gradcheck(Square(2.1), np.random.default_rng(0).standard_normal((3, 4)))


def test_gradcheck_refuses_float32():
    with pytest.raises(TypeError, match="float64"):
        dl.gradcheck(Square(), np.ones((2, 2), dtype=np.float32))


def test_numerical_gradient_of_a_quadratic_form():
    a = np.random.default_rng(1).standard_normal((4, 4))
    x = np.random.default_rng(2).standard_normal(4)
    g = numerical_gradient(lambda: float(x @ a @ x), x)
    np.testing.assert_allclose(g, (a + a.T) @ x, rtol=1e-7)


def test_rel_error_has_a_floor_and_checks_shapes():
    assert dl.rel_error(np.zeros(3), np.zeros(3)) == 0.0
    assert dl.rel_error(np.array([1.0]), np.array([1.0 + 1e-6])) == pytest.approx(5e-7, rel=1e-3)
    with pytest.raises(ValueError, match="shapes differ"):
        dl.rel_error(np.zeros(2), np.zeros(3))


def test_linear_gradcheck_and_accumulation():
    layer = dl.layers.Linear(5, 3, rng=0)
    x = np.random.default_rng(1).standard_normal((4, 5))
    errors = dl.gradcheck(layer, x)
    assert set(errors) == {"x", "W", "b"}
    layer.zero_grad()
    dout = np.ones((4, 3))
    layer(x)
    layer.backward(dout)
    once = layer.grads["W"].copy()
    layer(x)
    layer.backward(dout)
    np.testing.assert_allclose(layer.grads["W"], 2 * once)
    layer.zero_grad()
    assert not layer.grads["W"].any()


def test_sequential_exposes_the_layers_arrays():
    net = dl.Sequential(dl.layers.Linear(3, 4, rng=0), dl.activations.Activation("tanh"),
                        dl.layers.Linear(4, 2, rng=1))
    assert net.params["0.W"] is net[0].params["W"]
    assert set(net.grads) == set(net.params) == {"0.W", "0.b", "2.W", "2.b"}
    dl.gradcheck(net, np.random.default_rng(2).standard_normal((6, 3)))
    assert net.grads["2.W"] is net[2].grads["W"]


def test_sequential_refuses_non_modules():
    with pytest.raises(TypeError, match="layer 1 must be a dlbook Module"):
        dl.Sequential(dl.layers.Linear(2, 2, rng=0), np.tanh)


def test_linear_bad_input():
    layer = dl.layers.Linear(3, 2, rng=0)
    with pytest.raises(ValueError, match="expected 3 input features"):
        layer(np.ones((2, 4)))
    with pytest.raises(TypeError, match="dtype float32 or float64"):
        layer(np.ones((2, 3), dtype=np.int64))
    with pytest.raises(ValueError, match="2-D"):
        layer(np.ones(3))
    with pytest.raises(ValueError, match="positive integer"):
        dl.layers.Linear(0, 2, rng=0)
    with pytest.raises(ValueError, match="seed"):
        dl.layers.Linear(2, 2, rng=None)
    with pytest.raises(ValueError, match="unknown init"):
        dl.layers.Linear(2, 2, rng=0, init="orthogonal")


def test_linear_keeps_float32():
    layer = dl.layers.Linear(3, 2, rng=0, dtype=np.float32)
    y = layer(np.ones((2, 3), dtype=np.float32))
    assert y.dtype == np.float32
    assert layer.backward(np.ones_like(y)).dtype == np.float32


@pytest.mark.parametrize("method,var", [("lecun", 1 / 400), ("xavier", 2 / 500), ("he", 2 / 400),
                                        ("uniform", 1 / (3 * 400))])
def test_init_variances(method, var):
    w = dl.layers.init_weight(400, 100, np.random.default_rng(0), method)
    assert w.shape == (400, 100)
    assert w.var() == pytest.approx(var, rel=0.03)
    assert abs(w.mean()) < 0.01 * np.sqrt(var) * 10


# -- losses -------------------------------------------------------------------

def test_softmax_cross_entropy_value_and_gradient():
    gen = np.random.default_rng(0)
    z = gen.standard_normal((6, 4))
    y = gen.integers(0, 4, 6)
    loss, dz = dl.losses.softmax_cross_entropy(z, y)
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    assert loss == pytest.approx(-np.mean(np.log(p[np.arange(6), y])), rel=1e-12)
    num = numerical_gradient(lambda: dl.losses.softmax_cross_entropy(z, y)[0], z)
    np.testing.assert_allclose(dz, num, rtol=1e-6, atol=1e-9)


def test_softmax_cross_entropy_is_stable_for_huge_logits():
    z = np.array([[1e4, 0.0, -1e4], [-1e4, 1e4, 0.0]])
    loss, dz = dl.losses.softmax_cross_entropy(z, np.array([2, 1]))
    assert np.isfinite(loss) and loss == pytest.approx(1e4, rel=1e-12)
    assert np.all(np.isfinite(dz))


def test_binary_cross_entropy_value_gradient_and_stability():
    gen = np.random.default_rng(1)
    z = gen.standard_normal(7) * 3
    t = (gen.random(7) > 0.5).astype(float)
    loss, dz = dl.losses.binary_cross_entropy(z, t)
    s = 1 / (1 + np.exp(-z))
    assert loss == pytest.approx(-np.mean(t * np.log(s) + (1 - t) * np.log(1 - s)), rel=1e-12)
    np.testing.assert_allclose(dz, numerical_gradient(lambda: dl.losses.binary_cross_entropy(z, t)[0], z),
                               rtol=1e-6, atol=1e-10)
    big, dbig = dl.losses.binary_cross_entropy(np.array([1e4, -1e4]), np.array([0.0, 1.0]))
    assert big == pytest.approx(1e4) and np.all(np.isfinite(dbig))


def test_mse_gradient():
    p, t = np.random.default_rng(2).standard_normal((2, 3, 4))
    loss, dp = dl.losses.mse(p, t)
    assert loss == pytest.approx(np.mean((p - t) ** 2))
    np.testing.assert_allclose(dp, numerical_gradient(lambda: dl.losses.mse(p, t)[0], p), rtol=1e-6)


def test_loss_bad_input():
    z = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\]"):
        dl.losses.softmax_cross_entropy(z, np.array([0, 1, 4]))
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        dl.losses.softmax_cross_entropy(z, np.array([0, 1]))
    with pytest.raises(TypeError, match="integers"):
        dl.losses.softmax_cross_entropy(z, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match="shapes differ"):
        dl.losses.mse(np.zeros(3), np.zeros(4))


def test_losses_against_torch():
    torch = pytest.importorskip("torch", reason="PyTorch not installed: reference comparison skipped")
    gen = np.random.default_rng(3)
    z = gen.standard_normal((8, 5))
    y = gen.integers(0, 5, 8)
    zt = torch.tensor(z, requires_grad=True)
    ref = torch.nn.functional.cross_entropy(zt, torch.tensor(y))
    ref.backward()
    loss, dz = dl.losses.softmax_cross_entropy(z, y)
    assert loss == pytest.approx(ref.item(), abs=1e-12)
    np.testing.assert_allclose(dz, zt.grad.numpy(), atol=1e-12)
    t = (gen.random((8, 5)) > 0.5).astype(float)
    zt.grad = None
    ref = torch.nn.functional.binary_cross_entropy_with_logits(zt, torch.tensor(t))
    ref.backward()
    loss, dz = dl.losses.binary_cross_entropy(z, t)
    assert loss == pytest.approx(ref.item(), abs=1e-12)
    np.testing.assert_allclose(dz, zt.grad.numpy(), atol=1e-12)


# -- SGD, models, data, probes ----------------------------------------------------

def test_sgd_step_and_descent():
    net = dl.models.mlp([2, 8, 1], "tanh", rng=0)
    x = np.random.default_rng(1).standard_normal((32, 2))
    y = np.sin(x[:, :1])
    opt = dl.optim.SGD(net, lr=0.1)
    w_before = net.params["0.W"].copy()
    opt.zero_grad()
    loss0, d = dl.losses.mse(net(x), y)
    net.backward(d)
    expected = w_before - 0.1 * net.grads["0.W"]
    opt.step()
    np.testing.assert_allclose(net[0].params["W"], expected)
    for _ in range(200):
        opt.zero_grad()
        loss, d = dl.losses.mse(net(x), y)
        net.backward(d)
        opt.step()
    assert loss < loss0 / 5
    with pytest.raises(ValueError, match="lr must be positive"):
        dl.optim.SGD(net, lr=0)


def test_mlp_shapes_and_seed():
    a = dl.models.mlp([3, 5, 2], "relu", rng=7)
    b = dl.models.mlp([3, 5, 2], "gelu", rng=7)
    assert [type(l).__name__ for l in a.layers] == ["Linear", "Activation", "Linear"]
    np.testing.assert_array_equal(a.params["0.W"], b.params["0.W"])
    with pytest.raises(ValueError, match="at least"):
        dl.models.mlp([3])


@pytest.mark.parametrize("maker", [dl.data.spirals, dl.data.moons, dl.data.circles])
def test_data_sets_are_deterministic(maker):
    X1, y1 = maker(rng=3)
    X2, y2 = maker(rng=3)
    X3, _ = maker(rng=4)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(X1, X3)
    assert X1.shape == (len(y1), 2) and y1.dtype == np.int64


def test_split_is_a_seeded_partition():
    X = np.arange(100.0)[:, None]
    y = np.arange(100)
    parts = dl.data.split(X, y, (0.6, 0.2, 0.2), rng=0)
    assert [len(p[1]) for p in parts] == [60, 20, 20]
    assert sorted(np.concatenate([p[1] for p in parts])) == list(range(100))
    again = dl.data.split(X, y, (0.6, 0.2, 0.2), rng=0)
    np.testing.assert_array_equal(parts[0][1], again[0][1])
    with pytest.raises(ValueError, match="sum to 1"):
        dl.data.split(X, y, (0.5, 0.2))
    with pytest.raises(ValueError, match="lengths differ"):
        dl.data.split(X, y[:5])


def test_dead_fraction_and_probes():
    z = np.array([[-1.0, 2.0, -3.0], [-0.5, -1.0, -2.0]])
    assert dl.probes.dead_fraction(z) == pytest.approx(2 / 3)
    net = dl.models.mlp([4, 4, 4, 4], "identity", rng=0)
    x = np.random.default_rng(0).standard_normal((10, 4))
    outs = dl.probes.layer_outputs(net, x)
    np.testing.assert_allclose(outs[-1], net(x))
    stats = dl.probes.forward_stats(net, x)
    assert stats["mean"].shape == (5,)
    assert stats["var"][-1] == pytest.approx(outs[-1].var())
    norms = dl.probes.input_grad_norms(net, x, rng=1)
    assert norms.shape == (5,) and np.all(norms > 0)
    assert not net.grads["0.W"].any()  # zeroed afterwards


def test_grad_norms_vanish_through_sigmoid_stack():
    x = np.random.default_rng(0).standard_normal((64, 32))
    net = dl.models.mlp([32] * 11, "sigmoid", init="xavier", rng=0)
    norms = dl.probes.input_grad_norms(net, x, rng=0, every=dl.activations.Activation)
    assert norms[0] < 1e-3 * norms[-1]


@pytest.mark.parametrize("make", [
    lambda rng: dl.layers.Linear(2, 2, rng=rng),
    lambda rng: dl.activations.RReLU(rng=rng),
    lambda rng: dl.activations.GLU(2, 2, rng=rng),
    lambda rng: dl.data.spirals(rng=rng),
])
def test_every_random_draw_names_its_seed(make):
    with pytest.raises(ValueError, match="no hidden global RNG"):
        make(None)
    with pytest.raises(TypeError, match="int seed or a np.random.Generator"):
        make(1.5)
    make(np.random.default_rng(0))


@pytest.mark.parametrize("bad", [0, -2, 1.5, True, "3", None])
def test_check_positive_int_refuses_what_is_not_a_size(bad):
    with pytest.raises(ValueError, match="width must be a positive integer"):
        core.check_positive_int(bad, "width")


def test_check_positive_int_minimum():
    assert core.check_positive_int(np.int64(3), "n", minimum=3) == 3
    assert type(core.check_positive_int(np.int64(3), "n")) is int
    with pytest.raises(ValueError, match="n must be an integer >= 3, got 2"):
        core.check_positive_int(2, "n", minimum=3)
