"""Probes: layer outputs, forward statistics, gradient norms, dead units, effective rank."""

import numpy as np
import pytest

import dlbook as dl


def test_dead_fraction_and_probes():
    z = np.array([[-1.0, 2.0, -3.0], [-0.5, -1.0, -2.0]])
    assert dl.probes.dead_fraction(z) == pytest.approx(2 / 3)
    net = dl.models.mlp([4, 4, 4, 4], "identity", rng=0)
    x = np.random.default_rng(0).standard_normal((10, 4))
    outs = dl.probes.layer_outputs(net, x)
    assert all(not m._tape for m in net.modules())  # inference mode: nothing kept
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
