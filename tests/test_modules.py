"""Generic properties of every layer in the zoo (``tests/conftest.py``).

For each module class of the package: gradcheck of every input and every
parameter in float64; gradients accumulate; one instance applied twice in one
forward pass backpropagates correctly (the tape); ``state_dict`` round trip;
nothing kept in inference mode; float32 in -> float32 out; inputs and
upstream gradients not mutated; clear errors for integer input and for a
backward without its forward. Parameter tests run only over layers that have
parameters, so a parameter-free layer cannot pass them vacuously.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import numpy as np
import pytest

import dlbook as dl
from conftest import LAYER_ZOO, OWN_TESTS, zoo_input
from dlbook.core import Module

NAMES = sorted(LAYER_ZOO)
WITH_PARAMS = [n for n in NAMES if LAYER_ZOO[n].make(0, np.float64).num_parameters() > 0]
SAME_SHAPE = [n for n in NAMES if LAYER_ZOO[n].same_shape]


def _make(name, dtype=np.float64, rng=0):
    entry = LAYER_ZOO[name]
    layer = entry.make(rng, dtype)
    if entry.random:
        layer.eval()  # a fixed function: no fresh draw at every call
    return entry, layer


def _all_module_classes():
    classes = set()
    for mod in (
        dl.core,
        dl.layers,
        dl.conv,
        dl.activations,
        dl.resnet,
        dl.recurrent,
        dl.models,
        dl.attention,
        dl.transformer,
    ):
        for _, obj in inspect.getmembers(mod, inspect.isclass):
            if (
                issubclass(obj, Module)
                and obj.__module__ == mod.__name__
                and not obj.__name__.startswith("_")
            ):
                classes.add(obj)
    return classes - {Module, dl.core.Parameters}


def test_every_module_class_is_in_the_zoo():
    """Every Module class of the package is in LAYER_ZOO, or in OWN_TESTS if its call does not fit."""
    in_zoo = {type(e.make(0, np.float64)) for e in LAYER_ZOO.values()}
    missing = sorted(c.__name__ for c in _all_module_classes() - in_zoo if c.__name__ not in OWN_TESTS)
    assert not missing, (
        f"add these layers to LAYER_ZOO in tests/conftest.py (or to OWN_TESTS if their call has "
        f"another form than one float array in, one array out): {missing}"
    )


def test_classes_outside_the_zoo_have_their_own_tests():
    """Every class listed in OWN_TESTS exists, is not also in the zoo, and is named in its test file."""
    root = Path(__file__).resolve().parent.parent
    classes = {c.__name__: c for c in _all_module_classes()}
    in_zoo = {type(e.make(0, np.float64)).__name__ for e in LAYER_ZOO.values()}
    for name, path in OWN_TESTS.items():
        assert name in classes, f"OWN_TESTS lists {name}, which is not a Module class of the package"
        assert name not in in_zoo, f"{name} is in LAYER_ZOO: remove it from OWN_TESTS"
        text = (root / path).read_text(encoding="utf-8")
        assert re.search(rf"\b{name}\b", text), f"{path} never mentions {name}"


def test_the_parameter_list_is_not_empty():
    assert {"Linear", "Conv2d", "BatchNorm1d", "PReLU", "GLU"} <= set(WITH_PARAMS)
    assert "Identity" not in WITH_PARAMS and "MaxPool2d" not in WITH_PARAMS


@pytest.mark.parametrize("name", NAMES)
def test_gradcheck(name):
    entry, layer = _make(name)
    errors = dl.gradcheck(layer, zoo_input(entry, 1))
    assert set(errors) == {"x"} | set(layer.params)


@pytest.mark.parametrize("name", SAME_SHAPE)
def test_one_instance_applied_twice_backpropagates_correctly(name):
    """The same module twice in a row: the tape keeps both calls (it had one slot before)."""
    entry, layer = _make(name)
    twice = dl.Sequential(layer, layer)
    assert twice.num_parameters() == layer.num_parameters()  # counted once
    dl.gradcheck(twice, zoo_input(entry, 2) * 0.5)


@pytest.mark.parametrize("name", NAMES)
def test_gradients_accumulate_and_dx_repeats(name):
    entry, layer = _make(name)
    x = zoo_input(entry, 3)
    layer.zero_grad()
    out = layer(x)
    dout = np.random.default_rng(4).standard_normal(out.shape)
    dx1 = layer.backward(dout)
    once = {k: g.copy() for k, g in layer.grads.items()}
    layer(x)
    dx2 = layer.backward(dout)
    np.testing.assert_allclose(dx1, dx2, rtol=1e-12, atol=1e-14)
    assert np.any(dx1 != 0)
    for k, g in layer.grads.items():
        np.testing.assert_allclose(g, 2 * once[k], rtol=1e-12, atol=1e-14)
    layer.zero_grad()
    assert all(not g.any() for g in layer.grads.values())


@pytest.mark.parametrize("name", WITH_PARAMS)
def test_parameter_gradients_are_not_zero(name):
    entry, layer = _make(name)
    out = layer(zoo_input(entry, 5))
    layer.backward(np.ones_like(out) + np.random.default_rng(6).standard_normal(out.shape))
    for k, g in layer.grads.items():
        assert np.any(g != 0), f"{name}: gradient of {k} is all zero"


@pytest.mark.parametrize("name", NAMES)
def test_backward_without_forward_raises(name):
    entry, layer = _make(name)
    out = layer(zoo_input(entry, 7))
    layer.backward(np.ones_like(out))
    with pytest.raises(RuntimeError, match="called more often than forward"):
        layer.backward(np.ones_like(out))


@pytest.mark.parametrize("name", NAMES)
def test_inference_mode_keeps_nothing(name):
    entry, layer = _make(name)
    x = zoo_input(entry, 8)
    with dl.core.inference_mode():
        out = layer(x)
    assert all(not m._tape for m in layer.modules())
    with pytest.raises(RuntimeError, match="called more often than forward"):
        layer.backward(np.ones_like(out))
    with layer.inference():
        np.testing.assert_allclose(layer(x), out)


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_round_trip(name):
    entry, layer = _make(name)
    if name.startswith("BatchNorm"):  # move the running statistics away from their start
        layer.train()
        layer(zoo_input(entry, 9))
    state = layer.state_dict()
    assert set(state) == set(layer.params) | set(layer.buffers)
    for arr in list(layer.params.values()) + list(layer.buffers.values()):
        arr += 1.0
    layer.load_state_dict(state)
    for k, v in layer.state_dict().items():
        np.testing.assert_array_equal(v, state[k])
    if state:
        key = next(iter(state))
        with pytest.raises(ValueError, match="shape"):
            layer.load_state_dict({**state, key: np.zeros(state[key].shape + (1,))})
        with pytest.raises(KeyError, match="missing"):
            layer.load_state_dict({k: v for k, v in state.items() if k != key})


@pytest.mark.parametrize("name", NAMES)
def test_float32_in_float32_out(name):
    entry, layer = _make(name, np.float32)
    x = zoo_input(entry, 10, np.float32)
    out = layer(x)
    assert out.dtype == np.float32
    assert layer.backward(np.ones_like(out)).dtype == np.float32


@pytest.mark.parametrize("name", NAMES)
def test_input_and_dout_are_not_mutated(name):
    entry, layer = _make(name)
    x = zoo_input(entry, 11)
    x0 = x.copy()
    out = layer(x)
    dout = np.random.default_rng(12).standard_normal(out.shape)
    d0 = dout.copy()
    layer.backward(dout)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(dout, d0)


@pytest.mark.parametrize("name", NAMES)
def test_integer_input_is_refused(name):
    entry, layer = _make(name)
    with pytest.raises(TypeError, match="float32 or float64"):
        layer(np.ones(entry.shape, dtype=np.int64))


@pytest.mark.parametrize("name", [n for n in NAMES if n not in ("Sequential", "Residual", "Identity")])
def test_repr_names_the_class(name):
    _, layer = _make(name)
    assert type(layer).__name__ in repr(layer)
