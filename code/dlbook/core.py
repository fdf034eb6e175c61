"""The module protocol every part of the book builds on (version 2).

A layer is a :class:`Module`. Its contract, which chapter 3 explains and
chapter 6 needs in full:

- **forward and backward.** ``forward(*inputs, **options)`` computes the
  outputs; ``backward(*douts)`` takes one upstream gradient per output and
  returns one gradient per input: an array for a one-input module, always
  the same tuple for a module with several inputs. Integer inputs (token ids)
  get no gradient (``None`` in that position). ``__call__`` is ``forward``.
- **A tape, not a slot.** What ``forward`` keeps for ``backward`` is pushed
  on the module's own stack (:meth:`Module._save`) and popped by ``backward``
  (:meth:`Module._saved`), last in, first out. So one module can be applied
  many times in one forward pass (an RNN cell at every time step, a tied
  embedding, one activation used twice) and backpropagated as many times in
  reverse order. ``backward`` called more often than ``forward`` raises a
  ``RuntimeError``. A forward pass that is never backpropagated (a plot, a
  printout) leaves its entry at the bottom of the tape, where it does not
  disturb later pairs; :meth:`Module.clear_tape` drops such leftovers, and
  :func:`dlbook.train.train_step` does so before every step.
- **Inference mode.** Inside ``with inference_mode():`` (or
  ``model.inference()``) forward passes keep nothing: evaluation, decoding.
  It is separate from :meth:`Module.eval`, which switches how Dropout and
  BatchNorm behave.
- **Gradients accumulate** (``+=``), as PyTorch's ``.grad`` does. Call
  :meth:`Module.zero_grad` between steps.
- **A module tree.** A module's children are found from its attributes:
  modules, and lists, tuples or dicts of modules. ``params``, ``grads`` and
  ``buffers`` are read-only views of the whole tree, with dotted names
  (``"0.W"``, ``"branch.1.gamma"``), each array listed **once** even where
  modules share it. A module declares its *own* arrays in ``self.params =
  {...}`` / ``self.buffers = {...}`` in ``__init__``; its code reads them
  from ``self._params``. ``zero_grad``, ``train``, ``eval``,
  ``num_parameters``, ``state_dict`` and ``load_state_dict`` are written
  once, here, for every module.
- **Sharing rule.** An array has one owner module. A module that uses another
  module's array holds the owner as an attribute (so the tree finds it once)
  and accumulates into the owner's gradient, e.g. an output layer tied to an
  embedding adds to ``embedding._grads["W"]``.

``gradcheck`` compares a module's analytic gradients, for every float input
and every parameter, with central differences in float64; ``gradcheck_fn``
does the same for a function that returns its own gradient (the losses).

References
----------
- Karpathy, micrograd (2020): backward beside forward, gradients that accumulate.
- Saito, *Deep Learning from Scratch* 1 and 2 (2016, 2018): layer classes with
  forward/backward, one recurrent cell reused at every step.
- CS231n (Stanford), ``gradient_check.py``: centred differences with an upstream gradient.
- Paszke et al. (2019). PyTorch: An Imperative Style, High-Performance Deep
  Learning Library (the module tree, ``state_dict``, deduplicated parameters).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping

import numpy as np

__all__ = [
    "Module",
    "Sequential",
    "Parameters",
    "ArrayView",
    "inference_mode",
    "is_inference",
    "gradcheck",
    "gradcheck_fn",
    "numerical_gradient",
    "rel_error",
    "check_float_array",
    "check_dout",
    "check_positive_int",
    "check_dtype",
    "as_generator",
]


# ---------------------------------------------------------------------------
# Input checks shared by every module
# ---------------------------------------------------------------------------
def check_float_array(x, name: str = "x", ndim: int | None = None, min_ndim: int = 0) -> np.ndarray:
    """Return ``x`` as a floating-point ndarray, or raise a clear error.

    Integer, boolean, complex and object arrays are refused with ``TypeError``
    (an integer ``ReLU`` silently truncating a gradient is a bug waiting to
    happen); a wrong number of dimensions raises ``ValueError``.
    """
    if not isinstance(x, np.ndarray):
        if isinstance(x, (list, tuple, float, int)) and not isinstance(x, bool):
            x = np.asarray(x, dtype=np.float64)
        else:
            raise TypeError(f"{name} must be a NumPy array of floats, got {type(x).__name__}")
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(
            f"{name} must have dtype float32 or float64, got {x.dtype}; "
            f"convert with {name}.astype(np.float64)"
        )
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {x.shape}")
    if x.ndim < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dimension(s), got shape {x.shape}")
    return x


def check_dout(dout, shape: tuple, who: str, name: str = "dout") -> np.ndarray:
    """Return the upstream gradient ``dout`` if it is a float array of the output's ``shape``."""
    dout = check_float_array(dout, name)
    if dout.shape != tuple(shape):
        raise ValueError(
            f"{who}.backward: {name} must have the output's shape {tuple(shape)}, got {dout.shape}"
        )
    return dout


def check_optional_dout(dout, shape: tuple, dtype, who: str, name: str = "dout") -> np.ndarray | None:
    """``None`` (a zero gradient, for an output the loss does not use) or :func:`check_dout`'s
    array in the forward pass's ``dtype``. Modules with several outputs (a recurrent layer's
    outputs and final state, attention's context and weights) take each gradient this way."""
    if dout is None:
        return None
    return check_dout(dout, shape, who, name).astype(dtype, copy=False)


def check_dtype(dtype) -> np.dtype:
    """``dtype`` as a NumPy dtype if it is float32 or float64, else ``TypeError``."""
    dt = np.dtype(dtype)
    if dt not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dt}")
    return dt


def check_positive_int(value, name: str, minimum: int = 1) -> int:
    """Return ``value`` as an ``int`` if it is an integer ``>= minimum``, else raise ``ValueError``.

    Booleans are refused (``True`` is an ``int`` in Python but never a size).
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        expected = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    return int(value)


def as_generator(rng: np.random.Generator | int | None) -> np.random.Generator:
    """Return ``rng`` itself if it is a Generator, else ``np.random.default_rng(rng)``.

    ``None`` is refused: the book's numbers must be reproducible, so every
    random draw names its seed or Generator (no hidden global RNG), and two
    layers never share a silent default seed (two ``Linear(4, 4)`` with the
    same default would start with identical weights: a symmetry trap).
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        raise ValueError("pass a seed (int) or a np.random.Generator: dlbook has no hidden global RNG")
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise TypeError(f"rng must be an int seed or a np.random.Generator, got {type(rng).__name__}")


# ---------------------------------------------------------------------------
# Inference mode
# ---------------------------------------------------------------------------
_inference_depth = 0


@contextlib.contextmanager
def inference_mode():
    """Inside this block, forward passes keep nothing for a backward pass.

    Use it to evaluate or decode (no tape grows, no memory is held); calling
    ``backward`` for such a forward raises. Independent of ``eval()``.
    PyTorch's ``torch.inference_mode`` plays the same role.
    """
    global _inference_depth
    _inference_depth += 1
    try:
        yield
    finally:
        _inference_depth -= 1


def is_inference() -> bool:
    """True inside :func:`inference_mode`."""
    return _inference_depth > 0


class ArrayView(Mapping):
    """A read-only name -> array mapping of a module tree (``params``, ``grads``, ``buffers``).

    The arrays are the live ones: change them in place (``view["W"][...] = 0``,
    ``view["W"] += g``). Binding a name to a *new* array would silently
    detach it from its module, so it raises ``TypeError``; an in-place
    ``+=`` rebinds the same array and is allowed.
    """

    __slots__ = ("_items", "_what")

    def __init__(self, items: dict[str, np.ndarray], what: str) -> None:
        self._items = items
        self._what = what

    def __getitem__(self, name: str) -> np.ndarray:
        return self._items[name]

    def __iter__(self):
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __setitem__(self, name: str, value) -> None:
        if self._items.get(name) is not value:
            raise TypeError(
                f"{self._what}[{name!r}] is a view of the module's array: write into it "
                f"({self._what}[{name!r}][...] = value) or use load_state_dict; to declare a "
                f"module's own arrays, assign self.params = {{...}} in its __init__"
            )

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k!r}: {tuple(v.shape)}" for k, v in self._items.items())
        return f"{self._what}({{{shapes}}})"


def _is_module_collection(value) -> bool:
    if isinstance(value, (list, tuple)):
        return len(value) > 0 and all(isinstance(v, Module) for v in value)
    if isinstance(value, dict):
        return len(value) > 0 and all(isinstance(v, Module) for v in value.values())
    return False


# ---------------------------------------------------------------------------
# Module
# ---------------------------------------------------------------------------
class Module:
    """Base class of every layer and model; see the module docstring for the protocol.

    A subclass calls ``super().__init__()`` first, then declares its own
    parameters (``self.params = {"W": W, "b": b}``) and buffers (state that
    is not trained, e.g. BatchNorm's running statistics); child modules are
    plain attributes. ``forward`` saves what ``backward`` needs with
    ``self._save(...)``; ``backward`` gets it back with ``self._saved()``.
    """

    def __init__(self) -> None:
        self._params: dict[str, np.ndarray] = {}
        self._grads: dict[str, np.ndarray] = {}
        self._buffers: dict[str, np.ndarray] = {}
        self._tape: list[tuple] = []
        self._spent: tuple | None = None  # the last popped entry (see _saved)
        self.training = True

    # -- the protocol -------------------------------------------------------
    def forward(self, *inputs, **options):  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, *douts):  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, *inputs, **options):
        return self.forward(*inputs, **options)

    # -- the tape -----------------------------------------------------------
    def _save(self, *values) -> None:
        """Push what ``backward`` will need (nothing in inference mode)."""
        if _inference_depth == 0:
            self._tape.append(values)
            self._spent = None

    def _saved(self) -> tuple:
        """Pop what the matching ``forward`` saved (last in, first out)."""
        if not self._tape:
            raise RuntimeError(
                f"{type(self).__name__}.backward called more often than forward: every backward "
                "needs its own forward, and forward passes under inference_mode() keep nothing"
            )
        # The popped arrays live on until the next _save: the next forward then
        # allocates its arrays before these are freed, so the allocator reuses
        # memory instead of returning it to the system and faulting it back in
        # (measured: a small CNN step 26-31 ms -> 21.5 ms, as with the old one-slot cache).
        self._spent = self._tape.pop()
        return self._spent

    def clear_tape(self) -> Module:
        """Forget what every forward pass of the tree saved."""
        for _, m in self.named_modules():
            m._tape.clear()
            m._spent = None
        return self

    def inference(self):
        """``with model.inference():`` is :func:`inference_mode`."""
        return inference_mode()

    # -- the tree -----------------------------------------------------------
    def named_children(self) -> Iterator[tuple[str, Module]]:
        """Direct children: attributes that are modules, or lists/tuples/dicts of modules."""
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value
            elif _is_module_collection(value):
                items = value.items() if isinstance(value, dict) else enumerate(value)
                for key, child in items:
                    yield f"{name}.{key}", child

    def children(self) -> Iterator[Module]:
        for _, child in self.named_children():
            yield child

    def named_modules(self, prefix: str = "", _seen: set | None = None) -> Iterator[tuple[str, Module]]:
        """This module and every module below it, each once (by identity), depth first."""
        seen = set() if _seen is None else _seen
        if id(self) in seen:
            return
        seen.add(id(self))
        yield prefix, self
        for name, child in self.named_children():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name, seen)

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def _walk(self, attr: str) -> Iterator[tuple[str, Module, str, np.ndarray]]:
        """``(dotted name, owner, key, array)`` for every array of ``attr``, each array once."""
        seen: set[int] = set()
        for prefix, m in self.named_modules():
            for key, arr in getattr(m, attr).items():
                if id(arr) not in seen:
                    seen.add(id(arr))
                    yield (f"{prefix}.{key}" if prefix else key), m, key, arr

    def named_parameters(self) -> Iterator[tuple[str, np.ndarray]]:
        """``(name, array)`` for every parameter of the tree, each array once."""
        for name, _, _, p in self._walk("_params"):
            yield name, p

    def named_buffers(self) -> Iterator[tuple[str, np.ndarray]]:
        for name, _, _, b in self._walk("_buffers"):
            yield name, b

    def parameter_slots(self) -> Iterator[tuple[str, Module, str]]:
        """``(name, owner, key)`` for every parameter: where it lives, for optimisers."""
        for name, owner, key, _ in self._walk("_params"):
            yield name, owner, key

    def _grad(self, key: str) -> np.ndarray:
        """The gradient array of own parameter ``key``, created (zero) if missing."""
        p = self._params[key]
        g = self._grads.get(key)
        if g is None or g.shape != p.shape or g.dtype != p.dtype:
            g = self._grads[key] = np.zeros_like(p)
        return g

    @property
    def params(self):
        """Every parameter of the tree by dotted name (read-only view; the arrays are live)."""
        return ArrayView(dict(self.named_parameters()), "params")

    @params.setter
    def params(self, value: dict) -> None:
        self._params = dict(value)

    @property
    def grads(self):
        """The gradient of every parameter, same names as :attr:`params` (read-only view)."""
        return ArrayView({name: owner._grad(key) for name, owner, key, _ in self._walk("_params")}, "grads")

    @property
    def buffers(self):
        """Every buffer of the tree (state that is saved but not trained), read-only view."""
        return ArrayView(dict(self.named_buffers()), "buffers")

    @buffers.setter
    def buffers(self, value: dict) -> None:
        self._buffers = dict(value)

    # -- what every module can do ------------------------------------------
    def _accumulate(self, key: str, value: np.ndarray) -> None:
        """Add ``value`` to the gradient of own parameter ``key`` in place."""
        self._grad(key)[...] += value

    def zero_grad(self) -> Module:
        """Set every gradient of the tree to zero (the tapes are left alone)."""
        for m in self.modules():
            for key in m._params:
                m._grad(key).fill(0.0)
        return self

    def train(self, mode: bool = True) -> Module:
        """Training behaviour (Dropout drops, BatchNorm uses batch statistics) for the whole tree."""
        for m in self.modules():
            m.training = bool(mode)
        return self

    def eval(self) -> Module:
        """Evaluation behaviour for the whole tree (``train(False)``)."""
        return self.train(False)

    def num_parameters(self) -> int:
        """Number of trainable values, each shared array counted once."""
        return sum(p.size for _, p in self.named_parameters())

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of every parameter and buffer, by dotted name."""
        state = {name: p.copy() for name, p in self.named_parameters()}
        state.update({name: b.copy() for name, b in self.named_buffers()})
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> Module:
        """Copy ``state`` (from :meth:`state_dict`) into the arrays in place; names and shapes must match."""
        targets = dict(self.named_parameters())
        targets.update(self.named_buffers())
        missing = sorted(set(targets) - set(state))
        unexpected = sorted(set(state) - set(targets))
        if missing or unexpected:
            raise KeyError(f"load_state_dict: missing {missing}, unexpected {unexpected}")
        for name, arr in targets.items():
            value = np.asarray(state[name])
            if value.shape != arr.shape:
                raise ValueError(f"load_state_dict: {name} has shape {value.shape}, the model {arr.shape}")
            arr[...] = value
        return self

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}={tuple(v.shape)}" for k, v in self._params.items())
        return f"{type(self).__name__}({shapes})"


class Parameters(Module):
    """A module that is only named arrays to optimise, e.g. a point on a loss surface.

    ``Parameters(w=np.zeros(2))``: ``params["w"]`` is the array; write the
    gradient into ``grads["w"]`` and let an optimiser step. Chapter 3.
    """

    def __init__(self, **arrays: np.ndarray) -> None:
        super().__init__()
        self.params = {k: check_float_array(np.array(v, dtype=float), k).copy() for k, v in arrays.items()}


class Sequential(Module):
    """Layers applied one after another; ``backward`` runs them in reverse.

    A one-input, one-output chain. Its parameters are named ``"i.name"`` after
    the layer's position; it keeps no copies (they are walked from the
    layers). The same layer may appear twice: its tape holds both calls.
    """

    def __init__(self, *layers: Module) -> None:
        super().__init__()
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise TypeError(f"layer {i} must be a dlbook Module, got {type(layer).__name__}")
        self.layers = list(layers)

    def named_children(self) -> Iterator[tuple[str, Module]]:
        for i, layer in enumerate(self.layers):
            yield str(i), layer

    def forward(self, x: np.ndarray) -> np.ndarray:
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dout: np.ndarray) -> np.ndarray:
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout

    def __getitem__(self, i: int) -> Module:
        return self.layers[i]

    def __len__(self) -> int:
        return len(self.layers)

    def __repr__(self) -> str:
        inner = "\n".join(f"  ({i}) " + repr(l).replace("\n", "\n  ") for i, l in enumerate(self.layers))
        return f"Sequential(\n{inner}\n)"


# ---------------------------------------------------------------------------
# Gradient checking
# ---------------------------------------------------------------------------
def rel_error(a: np.ndarray, b: np.ndarray, floor: float = 1e-8) -> float:
    """Largest elementwise relative error ``|a-b| / max(|a|+|b|, floor)``."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), floor)))


def numerical_gradient(f: Callable[[], float], x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central-difference gradient of the scalar ``f()`` with respect to ``x``.

    ``x`` is perturbed in place, one entry at a time, and restored.

    .. math:: \\partial f / \\partial x_i \\approx (f(x + h e_i) - f(x - h e_i)) / 2h
    """
    grad = np.zeros_like(x, dtype=np.float64)
    it = np.nditer(x, flags=["multi_index"], op_flags=[["readwrite"]])
    for _ in it:
        i = it.multi_index
        old = x[i].item()
        x[i] = old + eps
        f_plus = f()
        x[i] = old - eps
        f_minus = f()
        x[i] = old
        grad[i] = (f_plus - f_minus) / (2 * eps)
    return grad


def _is_float(a) -> bool:
    return isinstance(a, np.ndarray) and a.dtype.kind == "f"


def _compare(who: str, analytic: dict, numeric: dict, rtol: float, atol: float) -> dict[str, float]:
    errors = {}
    for k, num in numeric.items():
        ana = analytic.get(k)
        if ana is None:
            raise AssertionError(f"{who}: no gradient returned for {k}")
        ana = np.asarray(ana)
        if ana.shape != num.shape:
            raise AssertionError(f"{who}: gradient of {k} has shape {ana.shape}, expected {num.shape}")
        errors[k] = rel_error(ana, num)
        bad = np.abs(ana - num) > atol + rtol * np.abs(num)
        if np.any(bad):
            i = tuple(int(j) for j in np.argwhere(bad)[0])
            raise AssertionError(
                f"{who}: gradient of {k} wrong at {i}: "
                f"analytic {ana[i]:.10g}, numeric {num[i]:.10g} (rel. error {errors[k]:.2e})"
            )
    return errors


def _input_names(inputs: tuple) -> list[str]:
    return ["x"] if len(inputs) == 1 else [f"x{i}" for i in range(len(inputs))]


def _leaves(obj, name: str) -> list[tuple[str, object]]:
    """``(name, leaf)`` of an array or a tuple of them (an LSTM state), names ``"x1.0"``, ``"x1.1"``."""
    if isinstance(obj, tuple):
        return [leaf for i, part in enumerate(obj) for leaf in _leaves(part, f"{name}.{i}")]
    return [(name, obj)]


def _flat(obj) -> list:
    return [leaf for _, leaf in _leaves(obj, "")]


def _rebuild(like, values: list):
    """``values`` (flat) in the nesting of ``like``; consumes them from the front."""
    if isinstance(like, tuple):
        return tuple(_rebuild(part, values) for part in like)
    return values.pop(0)


def gradcheck(
    module: Module,
    *inputs: np.ndarray,
    douts=None,
    options: dict | None = None,
    eps: float = 1e-6,
    rng: np.random.Generator | int = 0,
    rtol: float = 1e-6,
    atol: float = 1e-8,
    forward: Callable | None = None,
) -> dict[str, float]:
    """Check ``module.backward`` for every float input and every parameter by central differences.

    The scalar tested is :math:`\\sum_k \\langle \\text{out}_k, \\delta_k \\rangle`
    over the float outputs, with random upstream gradients :math:`\\delta_k`
    (seeded), so every output element is weighted differently. ``options``
    are passed to ``forward`` as keywords (masks); integer inputs (token
    ids) are passed through and must get ``None`` as their gradient. An input
    or output may be a tuple of arrays (an LSTM state ``(h, c)``); its
    gradient is then the same tuple. Runs in float64: float inputs and
    parameters must be float64. ``forward`` replaces ``module.forward`` when
    the forward pass needs a fixed random state (e.g. RReLU in training,
    re-seeded on every call).

    Returns the relative errors by name (``"x"`` for one input, ``"x0"``,
    ``"x1"``, ... for several, ``"x1.0"`` for the first array of a tuple
    input, and the dotted parameter names); raises ``AssertionError`` naming
    the first gradient that fails ``|analytic - numeric| <= atol + rtol *
    |numeric|``.
    """
    if not inputs:
        raise TypeError("gradcheck needs at least one input")
    inputs = tuple(
        tuple(p.copy() for p in x) if isinstance(x, tuple) else x.copy() if isinstance(x, np.ndarray) else x
        for x in inputs
    )
    leaves = [leaf for name, x in zip(_input_names(inputs), inputs, strict=True) for leaf in _leaves(x, name)]
    for name, x in leaves:
        if not isinstance(x, np.ndarray):
            raise TypeError(f"gradcheck inputs must be NumPy arrays; {name} is {type(x).__name__}")
        if _is_float(x) and x.dtype != np.float64:
            raise TypeError(
                "gradcheck needs float64 input (finite differences lose float32 precision); "
                f"{name} is {x.dtype}"
            )
    params = dict(module.named_parameters())
    for k, p in params.items():
        if p.dtype != np.float64:
            raise TypeError(f"gradcheck needs float64 parameters; {k} is {p.dtype}")
    options = dict(options or {})
    fwd = forward or module.forward

    def outputs() -> tuple:
        out = fwd(*inputs, **options)
        return out if isinstance(out, tuple) else (out,)

    with inference_mode():
        outs = outputs()
    flat_outs = _flat(outs)
    if douts is None:
        gen = as_generator(rng)
        flat_douts = [gen.standard_normal(o.shape) if _is_float(o) else None for o in flat_outs]
    else:
        if not isinstance(douts, tuple):
            douts = (douts,)
        if len(douts) != len(outs):
            raise ValueError(f"gradcheck: {len(outs)} outputs but {len(douts)} upstream gradients")
        flat_douts = _flat(douts)
        if len(flat_douts) != len(flat_outs):
            raise ValueError("gradcheck: the upstream gradients must nest like the outputs")

    module.zero_grad()
    outputs()
    dins = module.backward(*_rebuild(outs, [d.copy() if d is not None else None for d in flat_douts]))
    if not isinstance(dins, tuple) or (len(inputs) == 1 and isinstance(inputs[0], tuple)):
        dins = (dins,)
    if len(dins) > len(inputs):
        dins = dins[: len(inputs)]  # optional inputs left out (an RNN's initial state)
    if len(dins) != len(inputs):
        raise AssertionError(
            f"{type(module).__name__}.backward must return a tuple of {len(inputs)} gradients"
        )
    analytic = {}
    for name, x, d in zip(_input_names(inputs), inputs, dins, strict=True):
        if isinstance(x, tuple):
            if not (isinstance(d, tuple) and len(d) == len(x)):
                raise AssertionError(
                    f"{type(module).__name__}: the gradient of {name} must be a {len(x)}-tuple"
                )
        for (leaf_name, leaf), dleaf in zip(
            _leaves(x, name), _flat(d) if isinstance(x, tuple) else [d], strict=True
        ):
            if _is_float(leaf):
                analytic[leaf_name] = dleaf
            elif dleaf is not None:
                raise AssertionError(
                    f"{type(module).__name__}: integer input {leaf_name} must get None as its gradient"
                )
    analytic.update({name: g.copy() for name, g in module.grads.items()})

    def loss() -> float:
        with inference_mode():
            flat = _flat(outputs())
            return float(sum(np.sum(o * d) for o, d in zip(flat, flat_douts, strict=True) if d is not None))

    numeric = {name: numerical_gradient(loss, x, eps) for name, x in leaves if _is_float(x)}
    for k, p in params.items():
        numeric[k] = numerical_gradient(loss, p, eps)
    return _compare(type(module).__name__, analytic, numeric, rtol, atol)


def gradcheck_fn(
    f: Callable,
    *inputs: np.ndarray,
    eps: float = 1e-6,
    rtol: float = 1e-6,
    atol: float = 1e-8,
    **kwargs,
) -> dict[str, float]:
    """Check a function that returns its value and its gradient, e.g. a loss.

    ``f(*inputs, **kwargs)`` must return ``(value, grad)``: a scalar value and
    the gradient with respect to the float inputs (an array when there is one
    float input, else a tuple with one entry per float input). Integer inputs
    (class labels) are passed through. Float inputs must be float64.
    """
    inputs = tuple(x.copy() if isinstance(x, np.ndarray) else x for x in inputs)
    names = _input_names(inputs)
    floats = [n for n, x in zip(names, inputs, strict=True) if _is_float(x)]
    for n, x in zip(names, inputs, strict=True):
        if _is_float(x) and x.dtype != np.float64:
            raise TypeError(f"gradcheck_fn needs float64 input; {n} is {x.dtype}")
    if not floats:
        raise TypeError("gradcheck_fn needs at least one float input")
    _, grads = f(*inputs, **kwargs)
    if len(floats) == 1:
        grads = (grads,)
    if len(grads) != len(floats):
        raise AssertionError(f"f returned {len(grads)} gradients for {len(floats)} float inputs")
    analytic = dict(zip(floats, grads, strict=True))

    def value() -> float:
        return float(f(*inputs, **kwargs)[0])

    numeric = {
        n: numerical_gradient(value, x, eps) for n, x in zip(names, inputs, strict=True) if _is_float(x)
    }
    return _compare(getattr(f, "__name__", "f"), analytic, numeric, rtol, atol)
