"""Model builders: ``mlp``, ``conv_bn_relu``, ``small_cnn``."""

import numpy as np
import pytest

import dlbook as dl


def test_mlp_shapes_and_seed():
    a = dl.models.mlp([3, 5, 2], "relu", rng=7)
    b = dl.models.mlp([3, 5, 2], "gelu", rng=7)
    assert [type(l).__name__ for l in a.layers] == ["Linear", "Activation", "Linear"]
    np.testing.assert_array_equal(a.params["0.W"], b.params["0.W"])
    with pytest.raises(ValueError, match="at least"):
        dl.models.mlp([3], rng=0)


def test_mlp_trains_with_sgd():
    net = dl.models.mlp([2, 8, 1], "tanh", rng=0)
    x = np.random.default_rng(1).standard_normal((32, 2))
    y = np.sin(x[:, :1])
    opt = dl.optim.SGD(net, lr=0.1)
    w_before = net.params["0.W"].copy()
    first = dl.train.train_step(net, dl.losses.mse, opt, x, y)
    np.testing.assert_allclose(net[0].params["W"], w_before - 0.1 * net.grads["0.W"])
    for _ in range(200):
        last = dl.train.train_step(net, dl.losses.mse, opt, x, y)
    assert last.loss < first.loss / 5


def test_small_cnn_is_chapter_4s_network():
    cnn = dl.models.small_cnn(rng=0)
    assert cnn.num_parameters() == 8474
    x = np.random.default_rng(0).standard_normal((5, 1, 8, 8))
    assert cnn(x).shape == (5, 10)
    names = [type(l).__name__ for l in cnn.layers]
    assert names.count("Conv2d") == 3 and names.count("MaxPool2d") == 2 and names[-1] == "Linear"
    same = dl.models.small_cnn(rng=0)
    for (k, p), q in zip(cnn.params.items(), same.params.values(), strict=True):
        np.testing.assert_array_equal(p, q, err_msg=k)


def test_small_cnn_gradcheck():
    cnn = dl.models.small_cnn(widths=(2, 2, 3), rng=1)
    dl.gradcheck(cnn, np.random.default_rng(2).standard_normal((3, 1, 8, 8)), rtol=1e-5, atol=1e-7)


def test_conv_bn_relu_keeps_the_size():
    stage = dl.Sequential(dl.models.conv_bn_relu(2, 3, rng=0))
    assert stage(np.ones((2, 2, 5, 5)) + np.arange(25.0).reshape(5, 5)).shape == (2, 3, 5, 5)
    assert "b" not in stage[0].params


@pytest.mark.parametrize("size,pool,act", [(28, "avg", "tanh"), (16, "max", "relu")])
def test_lenet_against_torch(size, pool, act):
    torch = pytest.importorskip("torch")
    nn = torch.nn
    net = dl.models.lenet(size, pool=pool, activation=act, rng=0)
    P = net.params
    A = nn.Tanh if act == "tanh" else nn.ReLU
    Pool = nn.AvgPool2d if pool == "avg" else nn.MaxPool2d
    q = (size // 2 - 4) // 2
    ref = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), A(), Pool(2), nn.Conv2d(6, 16, 5), A(), Pool(2),
                        nn.Flatten(), nn.Linear(16 * q * q, 120), A(), nn.Linear(120, 84), A(),
                        nn.Linear(84, 10)).double()
    for i, m in enumerate(ref):
        if isinstance(m, nn.Conv2d):
            m.weight.data, m.bias.data = torch.tensor(P[f"{i}.W"]), torch.tensor(P[f"{i}.b"])
        elif isinstance(m, nn.Linear):  # dlbook's Linear stores W as (in, out)
            m.weight.data, m.bias.data = torch.tensor(P[f"{i}.W"].T.copy()), torch.tensor(P[f"{i}.b"])
    x = np.random.default_rng(1).standard_normal((3, 1, size, size))
    y = net(x)
    dy = np.random.default_rng(2).standard_normal(y.shape)
    net.zero_grad()
    dx = net.backward(dy)
    xt = torch.tensor(x, requires_grad=True)
    yt = ref(xt)
    yt.backward(torch.tensor(dy))
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(net.grads["3.W"], ref[3].weight.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_lenet_sizes_and_parameter_count():
    assert sum(p.size for p in dl.models.lenet(rng=0).params.values()) == 61_706  # the classic count
    for s in (12, 16, 20, 32):
        assert dl.models.lenet(s, in_channels=3, num_classes=4, rng=0)(np.zeros((2, 3, s, s))).shape == (2, 4)
    for bad in (14, 18, 10, 27):
        with pytest.raises(ValueError, match="image_size"):
            dl.models.lenet(bad, rng=0)
    with pytest.raises(ValueError, match="pool"):
        dl.models.lenet(pool="median", rng=0)
