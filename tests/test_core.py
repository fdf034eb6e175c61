"""The module protocol (version 2): tape, tree, sharing, state, inference mode, gradcheck.

Each behaviour here failed on the version-1 core (one cache slot per module,
containers that copied their children's dicts, no buffers in the tree): a
module used twice gave a wrong gradient and moved twice per SGD step, and
EarlyStopping could not restore BatchNorm's statistics.
"""

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
        self._save(x)
        return x * x

    def backward(self, dout):
        (x,) = self._saved()
        return self.factor * x * dout


class Bilinear(Module):
    """A two-input, two-output module: (a, b) -> (a * b * w, a + w), float parameter w."""

    def __init__(self):
        super().__init__()
        self.params = {"w": np.array([0.7, -1.3])}

    def forward(self, a, b, scale=1.0):
        w = self._params["w"]
        self._save(a, b, scale)
        return scale * a * b * w, a + w

    def backward(self, dprod, dsum):
        a, b, scale = self._saved()
        w = self._params["w"]
        self._accumulate("w", (scale * dprod * a * b + dsum).sum(axis=0))
        return scale * dprod * b * w + dsum, scale * dprod * a * w


class Lookup(Module):
    """Rows of a table by integer index: an integer input gets no gradient."""

    def __init__(self):
        super().__init__()
        self.params = {"E": np.random.default_rng(0).standard_normal((5, 3))}

    def forward(self, ids, x):
        self._save(ids, x)
        return self._params["E"][ids] * x

    def backward(self, dout):
        ids, x = self._saved()
        dE = np.zeros_like(self._params["E"])
        np.add.at(dE, ids, dout * x)
        self._accumulate("E", dE)
        return None, dout * self._params["E"][ids]


class TiedHead(Module):
    """An output layer that shares an embedding's table: it holds the owner, not the array."""

    def __init__(self, embedding: Lookup):
        super().__init__()
        self.embedding = embedding

    def forward(self, h):
        self._save(h)
        return h @ self.embedding._params["E"].T

    def backward(self, dout):
        (h,) = self._saved()
        self.embedding._accumulate("E", dout.T @ h)
        return dout @ self.embedding._params["E"]


# -- gradcheck ---------------------------------------------------------------------


def test_gradcheck_passes_a_correct_backward():
    errors = dl.gradcheck(Square(2.0), np.random.default_rng(0).standard_normal((3, 4)))
    assert errors["x"] < 1e-8


def test_gradcheck_catches_a_wrong_backward():
    with pytest.raises(AssertionError, match="gradient of x wrong"):
        dl.gradcheck(Square(2.1), np.random.default_rng(0).standard_normal((3, 4)))


def test_gradcheck_refuses_float32():
    with pytest.raises(TypeError, match="float64"):
        dl.gradcheck(Square(), np.ones((2, 2), dtype=np.float32))


def test_gradcheck_several_inputs_outputs_and_options():
    gen = np.random.default_rng(1)
    a, b = gen.standard_normal((4, 2)), gen.standard_normal((4, 2))
    errors = dl.gradcheck(Bilinear(), a, b, options={"scale": 3.0})
    assert set(errors) == {"x0", "x1", "w"}


def test_gradcheck_catches_a_wrong_second_input_gradient():
    class Wrong(Bilinear):
        def backward(self, dprod, dsum):
            da, db = super().backward(dprod, dsum)
            return da, 1.01 * db

    gen = np.random.default_rng(1)
    with pytest.raises(AssertionError, match="gradient of x1 wrong"):
        dl.gradcheck(Wrong(), gen.standard_normal((4, 2)), gen.standard_normal((4, 2)))


def test_gradcheck_passes_integer_inputs_through():
    ids = np.array([0, 3, 3, 1])
    x = np.random.default_rng(2).standard_normal((4, 3))
    assert set(dl.gradcheck(Lookup(), ids, x)) == {"x1", "E"}


def test_gradcheck_fn_checks_a_loss():
    gen = np.random.default_rng(3)
    z, y = gen.standard_normal((6, 4)), gen.integers(0, 4, 6)
    errors = dl.core.gradcheck_fn(dl.losses.softmax_cross_entropy, z, y)
    assert set(errors) == {"x0"}

    def wrong(z, y):
        loss, dz = dl.losses.softmax_cross_entropy(z, y)
        return loss, 2 * dz

    with pytest.raises(AssertionError, match="gradient of x0 wrong"):
        dl.core.gradcheck_fn(wrong, z, y)


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


# -- the tape ----------------------------------------------------------------------


def test_tape_is_last_in_first_out():
    sq = Square()
    x1, x2 = np.array([1.0, 2.0]), np.array([3.0, 5.0])
    sq(x1)
    sq(x2)
    np.testing.assert_array_equal(sq.backward(np.ones(2)), 2 * x2)
    np.testing.assert_array_equal(sq.backward(np.ones(2)), 2 * x1)
    with pytest.raises(RuntimeError, match="Square.backward called more often than forward"):
        sq.backward(np.ones(2))


def test_one_module_applied_at_every_step_like_an_rnn_cell():
    """h_t = tanh(h_{t-1} W + x_t): one Linear and one Activation reused T times."""
    gen = np.random.default_rng(4)
    lin = dl.layers.Linear(3, 3, bias=False, rng=5)
    act = dl.activations.Activation("tanh")

    class Unrolled(Module):
        def __init__(self):
            super().__init__()
            self.lin, self.act = lin, act

        def forward(self, xs):
            h = np.zeros(xs.shape[1:])
            for x in xs:
                h = self.act(self.lin(h) + x)
            return h

        def backward(self, dh):
            dxs = []
            for _ in range(4):
                dz = self.act.backward(dh)
                dxs.append(dz)
                dh = self.lin.backward(dz)
            return np.stack(dxs[::-1])

    assert set(dl.gradcheck(Unrolled(), gen.standard_normal((4, 2, 3)))) == {"x", "lin.W"}


def test_leftover_forwards_do_not_disturb_later_pairs_and_clear_tape_drops_them():
    net = dl.Sequential(Square(), Square())
    net(np.full(2, 5.0))  # a forward-only call, e.g. for a plot
    x = np.array([1.0, 2.0])
    net(x)
    net.zero_grad()  # between forward and backward, as PyTorch allows
    np.testing.assert_array_equal(net.backward(np.ones(2)), 4 * x**3)
    assert len(net[0]._tape) == 1
    net.clear_tape()
    assert not net[0]._tape
    with pytest.raises(RuntimeError, match="more often than forward"):
        net.backward(np.ones(2))


def test_inference_mode_is_separate_from_eval():
    sq = Square()
    with dl.core.inference_mode():
        assert dl.core.is_inference()
        sq(np.ones(2))
    assert not dl.core.is_inference() and not sq._tape
    sq.eval()
    sq(np.ones(2))  # eval() alone still records: gradcheck runs in eval mode
    assert len(sq._tape) == 1


# -- the tree, sharing, state ----------------------------------------------------------


def test_shared_linear_in_a_sequential():
    """The review's demonstration on the version-1 core: wrong gradient, double step, double count."""
    lin = dl.layers.Linear(4, 4, rng=0)
    net = dl.Sequential(lin, dl.activations.Activation("tanh"), lin)
    assert net.num_parameters() == 20
    assert list(net.params) == ["0.W", "0.b"]
    dl.gradcheck(net, np.random.default_rng(1).standard_normal((3, 4)))
    before = lin.params["W"].copy()
    opt = dl.optim.SGD(net, lr=0.1)
    grad = net.grads["0.W"].copy()
    opt.step()
    np.testing.assert_allclose(lin.params["W"], before - 0.1 * grad)


def test_parameters_are_walked_not_copied():
    lin = dl.layers.Linear(3, 2, rng=0)
    net = dl.Sequential(lin, dl.layers.Linear(2, 2, rng=1))
    assert net.params["0.W"] is lin.params["W"]
    assert net.grads["1.b"] is net[1].grads["b"]
    with pytest.raises(TypeError):
        net.params["0.W"] = np.zeros((3, 2))  # a read-only view: write into the array instead


def test_nested_names_and_dict_and_list_children():
    class Block(Module):
        def __init__(self):
            super().__init__()
            self.heads = [dl.layers.Linear(2, 2, rng=0), dl.layers.Linear(2, 2, rng=1)]
            self.norms = {"pre": dl.layers.LayerNorm(2)}
            self.params = {"scale": np.ones(2)}

    names = list(Block().params)
    assert names == [
        "scale",
        "heads.0.W",
        "heads.0.b",
        "heads.1.W",
        "heads.1.b",
        "norms.pre.gamma",
        "norms.pre.beta",
    ]


def test_tied_embedding_accumulates_into_its_owner():
    emb = Lookup()
    head = TiedHead(emb)

    class Model(Module):
        def __init__(self):
            super().__init__()
            self.emb, self.head = emb, head

        def forward(self, ids, x):
            return self.head(self.emb(ids, x))

        def backward(self, dout):
            return self.emb.backward(self.head.backward(dout))

    model = Model()
    assert list(model.params) == ["emb.E"] and model.num_parameters() == 15
    errors = dl.gradcheck(model, np.array([1, 4, 4]), np.random.default_rng(6).standard_normal((3, 3)))
    assert set(errors) == {"x1", "emb.E"}


def test_train_and_eval_reach_every_module():
    net = dl.models.mlp([3, 4, 2], rng=0, dropout=0.5, norm="batch")
    net.eval()
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())


def test_state_dict_holds_parameters_and_buffers():
    net = dl.models.mlp([3, 4, 2], rng=0, norm="batch")
    net(np.random.default_rng(0).standard_normal((8, 3)))
    state = net.state_dict()
    assert {"1.running_mean", "1.running_var", "0.W", "1.gamma"} <= set(state)
    assert state["1.running_mean"] is not net[1].buffers["running_mean"]  # a copy
    net(np.random.default_rng(1).standard_normal((8, 3)) + 5)
    net.load_state_dict(state)
    np.testing.assert_array_equal(net[1].buffers["running_mean"], state["1.running_mean"])
    with pytest.raises(KeyError, match="unexpected"):
        net.load_state_dict({**state, "9.W": np.zeros(1)})


def test_parameters_module_and_its_gradient():
    point = dl.core.Parameters(w=[1.0, 2.0])
    point.grads["w"][...] = [0.5, -1.0]
    dl.optim.SGD(point, lr=0.1).step()
    np.testing.assert_allclose(point.params["w"], [0.95, 2.1])


def test_sequential_refuses_non_modules():
    with pytest.raises(TypeError, match="layer 1 must be a dlbook Module"):
        dl.Sequential(dl.layers.Linear(2, 2, rng=0), np.tanh)


def test_sequential_does_not_touch_existing_gradients():
    lin = dl.layers.Linear(2, 2, rng=0)
    lin.grads["W"][...] = 1.0
    dl.Sequential(lin)
    assert np.all(lin.grads["W"] == 1.0)


# -- checks ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda rng: dl.layers.Linear(2, 2, rng=rng),
        lambda rng: dl.layers.Dropout(0.5, rng=rng),
        lambda rng: dl.conv.Conv2d(1, 1, 3, rng=rng),
        lambda rng: dl.activations.RReLU(rng=rng),
        lambda rng: dl.activations.GLU(2, 2, rng=rng),
        lambda rng: dl.models.mlp([2, 2], rng=rng),
        lambda rng: dl.data.spirals(rng=rng),
    ],
)
def test_every_random_draw_names_its_seed(make):
    with pytest.raises(ValueError, match="no hidden global RNG"):
        make(None)
    with pytest.raises(TypeError, match="int seed or a np.random.Generator"):
        make(1.5)
    make(np.random.default_rng(0))


@pytest.mark.parametrize(
    "make",
    [
        lambda: dl.layers.Linear(4, 4),
        lambda: dl.layers.Dropout(0.5),
        lambda: dl.conv.Conv2d(1, 1, 3),
        lambda: dl.activations.Maxout(2, 2),
        lambda: dl.activations.SwiGLU(2, 2),
    ],
)
def test_random_layers_have_no_default_seed(make):
    """Two Linear(4, 4) with a default seed started identical: a silent symmetry trap."""
    with pytest.raises((TypeError, ValueError)):
        make()


@pytest.mark.parametrize("bad", [0, -2, 1.5, True, "3", None])
def test_check_positive_int_refuses_what_is_not_a_size(bad):
    with pytest.raises(ValueError, match="width must be a positive integer"):
        core.check_positive_int(bad, "width")


def test_check_positive_int_minimum():
    assert core.check_positive_int(np.int64(3), "n", minimum=3) == 3
    assert type(core.check_positive_int(np.int64(3), "n")) is int
    with pytest.raises(ValueError, match="n must be an integer >= 3, got 2"):
        core.check_positive_int(2, "n", minimum=3)


def test_check_dout_and_dtype():
    with pytest.raises(ValueError, match=r"Foo.backward: dout must have the output's shape \(2, 3\)"):
        core.check_dout(np.zeros((3, 2)), (2, 3), "Foo")
    with pytest.raises(TypeError, match="float32 or float64"):
        core.check_dtype(np.int32)
