"""The training loop every chapter uses: ``fit``, ``evaluate`` and the run's ``History``.

One loop, written once (minGPT's trainer is the model): shuffle, take a
mini-batch, forward, loss, backward, optionally clip, step the optimiser and
the schedule, record. It never plots; it records a :class:`History` and calls
callbacks, and the chapters plot from the history. :func:`train_step` is one
step of it, public, for full-batch loops and experiments that need to watch
every step.

The data are a tuple of arrays with the same first axis, the target last:
``(X, y)``, or ``(source, decoder_input, target)`` for a sequence-to-sequence
model, which is then called as ``model(source, decoder_input)`` (d2l's
``training_step`` does the same). ``fit(model, loss, opt, X, y)`` is the
two-array form.

A diverging run stops with :class:`TrainingDiverged` at the first step whose
loss or gradient norm is not finite, or whose arithmetic overflows (NumPy's
floating-point errors are raised inside a step and converted), naming the
step, epoch, batch and learning rate.

The progress bar is tqdm's (``tqdm.auto``: a widget in a live Jupyter kernel,
text elsewhere). In the built book (environment variable ``DLBOOK_STATIC``
set and not ``"0"``) a widget would render as a dead box, so by default no bar
is shown there.

Chapter 3 builds this loop step by step.

References
----------
- Karpathy, minGPT ``trainer.py`` (2020): one loop, callbacks, no plotting inside.
- Bottou (2010). Large-Scale Machine Learning with Stochastic Gradient Descent
  (reshuffling the data every epoch).
"""

from __future__ import annotations

import math
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from .core import Module, as_generator, check_positive_int, inference_mode
from .data import as_arrays, batches, num_batches, stream_batches
from .optim import LRScheduler, Optimizer, clip_grad_norm

__all__ = [
    "History",
    "TrainingDiverged",
    "EarlyStopping",
    "StepResult",
    "train_step",
    "fit",
    "evaluate",
    "fit_stream",
    "evaluate_stream",
    "parallel_map",
]

LossFn = Callable[[np.ndarray, np.ndarray], tuple[float, np.ndarray]]


class TrainingDiverged(FloatingPointError):
    """The loss, a gradient or a parameter stopped being finite during :func:`fit`.

    ``step`` (1-based, counted over the whole run), ``epoch`` and ``batch``
    (1-based; ``None`` from :func:`train_step` alone) locate it; ``lr`` is
    the learning rate of that step.
    """

    def __init__(self, message: str, step: int, epoch: int | None, batch: int | None, lr: float) -> None:
        super().__init__(message)
        self.step, self.epoch, self.batch, self.lr = step, epoch, batch, lr


@dataclass
class History:
    """What one :func:`fit` run recorded.

    Per optimiser step: ``loss`` (the mini-batch loss), ``lr`` (the rate that
    step used) and ``grad_norm`` (the gradient norm before clipping; only when
    ``clip_norm`` is given). Per epoch: ``epoch_loss`` (the mean training loss,
    batches weighted by their size), ``epoch_accuracy`` (training accuracy
    during the epoch, classification only), ``val_loss`` and ``val_accuracy``
    (when ``val`` is given; accuracy for classification only) and
    ``epoch_time`` (seconds since the start, at the end of each epoch).
    ``stopped_early`` is True when a callback stopped the run.
    """

    loss: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)
    epoch_loss: list[float] = field(default_factory=list)
    epoch_accuracy: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    epoch_time: list[float] = field(default_factory=list)
    stopped_early: bool = False

    @property
    def epochs(self) -> int:
        """Number of completed epochs."""
        return len(self.epoch_loss)

    @property
    def steps(self) -> int:
        """Number of optimiser steps taken."""
        return len(self.loss)

    def summary(self) -> str:
        """One line on the last epoch, e.g. for printing after a run in a chapter."""
        if not self.epoch_loss:
            return "no epoch completed"
        parts = [f"epoch {self.epochs}", f"loss {self.epoch_loss[-1]:.4f}"]
        if self.epoch_accuracy:
            parts.append(f"acc {self.epoch_accuracy[-1]:.3f}")
        if self.val_loss:
            parts.append(f"val_loss {self.val_loss[-1]:.4f}")
        if self.val_accuracy:
            parts.append(f"val_acc {self.val_accuracy[-1]:.3f}")
        return ", ".join(parts)


def _n_correct(logits: np.ndarray, y: np.ndarray) -> tuple[int, int] | None:
    """``(correct, counted)`` predictions in a batch, or None when the task is not classification.

    Integer labels ``y (N, ...)`` with logits ``(N, ..., K)``, ``K >= 2``:
    argmax over the last axis, positions with a negative label (an
    ``ignore_index`` such as -100, padding) not counted. Integer 0/1 targets
    with logits of the same shape (one sigmoid output per target): the sign
    of the logit. Anything else (regression): None.
    """
    if not np.issubdtype(y.dtype, np.integer) or logits.ndim < 1:
        return None
    if logits.ndim == y.ndim + 1 and logits.shape[:-1] == y.shape and logits.shape[-1] >= 2:
        kept = y >= 0
        hits = (logits.argmax(axis=-1) == y) & kept
        return int(np.count_nonzero(hits)), int(np.count_nonzero(kept))
    if logits.shape == y.shape:
        return int(np.count_nonzero((logits > 0.0) == (y > 0))), y.size
    return None


def _first_leaf(model: Module) -> Module:
    """The first module without children, in the tree's order (the first layer of a Sequential)."""
    for m in model.modules():
        if next(m.children(), None) is None:
            return m
    return model


def _check_model_fits(model: Module, data: tuple[np.ndarray, ...]) -> None:
    """Wrong feature size or labels outside the model's outputs -> ValueError naming the shapes."""
    *inputs, y = data
    first = _first_leaf(model)
    d_in = getattr(first, "in_features", None)
    X = inputs[0]
    if len(inputs) == 1 and d_in is not None and X.ndim == 2 and X.shape[1] != d_in:
        raise ValueError(
            f"the model's first layer ({first!r}) expects {d_in} input features, "
            f"but X has shape {X.shape} ({X.shape[1]} features)"
        )
    if not np.issubdtype(y.dtype, np.integer):
        return
    was_training = model.training
    model.eval()
    try:
        with inference_mode():
            out = model.forward(*(a[:1] for a in inputs))  # one sample tells the number of outputs
    finally:
        model.train(was_training)
    if isinstance(out, np.ndarray) and out.ndim == y.ndim + 1 and out.shape[-1] >= 2:
        k = out.shape[-1]
        labels = y[y >= 0] if y.ndim > 1 else y
        if labels.size == 0:
            return
        lo, hi = int(labels.min()), int(labels.max())
        if (y.ndim == 1 and lo < 0) or hi >= k:
            raise ValueError(
                f"labels must lie in [0, {k - 1}] for a model with {k} outputs (logits of shape "
                f"(..., {k})), but y (shape {y.shape}) has values in [{lo}, {hi}]"
            )


def _progress_wanted(progress) -> bool:
    if progress is None:
        return os.environ.get("DLBOOK_STATIC", "") in ("", "0")
    if isinstance(progress, bool):
        return progress
    raise TypeError(f"progress must be None, True or False, got {progress!r}")


def evaluate(
    model: Module, loss_fn: LossFn, X, y: np.ndarray | None = None, batch_size: int = 512
) -> tuple[float, float | None]:
    """Mean loss and accuracy of ``model`` on ``(X, y)`` (or a tuple, target last), in evaluation mode.

    .. math:: L = \\frac{1}{N}\\sum_b N_b L_b, \\qquad
              \\text{acc} = \\frac{\\#\\text{correct}}{\\#\\text{counted}}

    The data go through in order in batches of ``batch_size`` under
    :func:`~dlbook.core.inference_mode` (nothing is kept for a backward pass);
    each batch's mean loss is weighted by its size. Accuracy is the argmax's
    for integer labels ``y (N, ...)`` and logits ``(N, ..., K)`` (negative
    labels, i.e. padding, not counted), the logit's sign for integer 0/1
    targets shaped like the logits, and ``None`` otherwise (regression). The
    model's train/eval mode is restored afterwards. Chapter 3.
    """
    data = as_arrays(X, y)
    *inputs, target = data
    was_training = model.training
    model.eval()
    total_loss, correct, counted, n = 0.0, 0, 0, len(target)
    try:
        with inference_mode():
            for batch in batches(data, batch_size, shuffle=False):
                *xb, yb = batch
                logits = model.forward(*xb)
                loss, _ = loss_fn(logits, yb)
                total_loss += float(loss) * len(yb)
                c = _n_correct(logits, yb)
                if c is None or correct is None:
                    correct = None
                else:
                    correct, counted = correct + c[0], counted + c[1]
    finally:
        model.train(was_training)
    return total_loss / n, (None if correct is None or counted == 0 else correct / counted)


class EarlyStopping:
    """A callback that stops :func:`fit` when the validation loss stops improving.

    After each epoch it compares ``history.val_loss[-1]`` with the best so far;
    an epoch improves when the loss drops by more than ``min_delta``. After
    ``patience`` epochs without improvement it stops the run, and with
    ``restore_best=True`` it first loads the best epoch's full state back
    into the model: parameters *and* buffers (BatchNorm's running statistics),
    via :meth:`~dlbook.core.Module.state_dict`. ``best_epoch`` (0-based) and
    ``best_loss`` tell what was kept. Prechelt (1998), *Early Stopping - But
    When?*. Chapter 3 (learning curves).
    """

    def __init__(
        self, model: Module, patience: int = 5, min_delta: float = 0.0, restore_best: bool = True
    ) -> None:
        if not isinstance(model, Module):
            raise TypeError(f"model must be a dlbook Module, got {type(model).__name__}")
        patience = check_positive_int(patience, "patience")
        if not min_delta >= 0:
            raise ValueError(f"min_delta must be >= 0, got {min_delta}")
        self.model, self.patience, self.min_delta = model, int(patience), float(min_delta)
        self.restore_best = restore_best
        self.best_loss = math.inf
        self.best_epoch = -1
        self._best: dict[str, np.ndarray] | None = None

    def __call__(self, history: History, epoch: int) -> bool:
        if not history.val_loss:
            raise ValueError("EarlyStopping watches the validation loss: pass val=(X_val, y_val) to fit")
        loss = history.val_loss[-1]
        if loss < self.best_loss - self.min_delta:
            self.best_loss, self.best_epoch = loss, epoch
            if self.restore_best:
                self._best = self.model.state_dict()
            return False
        if epoch - self.best_epoch < self.patience:
            return False
        if self.restore_best and self._best is not None:
            self.model.load_state_dict(self._best)
        return True


@dataclass
class StepResult:
    """What one :func:`train_step` did: the loss, the gradient norm (if clipped) and the model's output."""

    loss: float
    grad_norm: float | None
    output: np.ndarray


def train_step(
    model: Module,
    loss_fn: LossFn,
    optimizer: Optimizer,
    *batch: np.ndarray,
    clip_norm: float | None = None,
) -> StepResult:
    """One step of gradient descent on one batch ``(inputs..., target)``.

    .. math:: L, \\delta = \\text{loss\\_fn}(f_\\theta(x), y), \\quad
              \\nabla_\\theta L = \\text{backward}(\\delta), \\quad
              \\theta \\leftarrow \\text{optimizer.step}()

    In order: ``model.clear_tape()``, ``optimizer.zero_grad()``, ``output = model(*inputs)``,
    ``loss, dout = loss_fn(output, target)``, ``model.backward(dout)``,
    ``clip_grad_norm(model, clip_norm)`` when given, ``optimizer.step()``.
    Overflow or an invalid value anywhere in the step, a non-finite loss or a
    non-finite gradient norm raises :class:`TrainingDiverged` before the
    parameters move. The model's train/eval mode is left as it is (a
    full-batch loop in chapter 1 calls this with the whole data set).
    Chapters 1 and 2 use it directly; :func:`fit` calls it for every batch.
    """
    if len(batch) < 2:
        raise TypeError("train_step needs a batch of at least two arrays: inputs..., target")
    *inputs, target = batch
    lr = optimizer.lr
    step = optimizer.steps + 1
    problem, cause, norm = None, None, None
    try:
        # overflow or an invalid value anywhere in the step is an error, not a warning
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            model.clear_tape()  # drop what forward-only calls left behind
            optimizer.zero_grad()
            output = model.forward(*inputs)
            loss, dout = loss_fn(output, target)
            loss = float(loss)
            if not math.isfinite(loss):
                problem = f"the loss is {loss}"
            else:
                model.backward(dout)
                if clip_norm is not None:
                    norm = clip_grad_norm(model, clip_norm)
                if norm is not None and not math.isfinite(norm):
                    problem = f"the gradient norm is {norm}"
                else:
                    optimizer.step()
    except (FloatingPointError, RuntimeWarning) as err:
        problem, cause = f"floating-point error ({err})", err
    if problem is not None:
        model.clear_tape()
        clip_hint = "clip_norm=1.0" if clip_norm is None else f"a smaller clip_norm than {clip_norm:g}"
        raise TrainingDiverged(
            f"training diverged at step {step}: {problem}. Lower the learning rate "
            f"(now lr={lr:g}) or clip gradients ({clip_hint}).",
            step=step,
            epoch=None,
            batch=None,
            lr=lr,
        ) from cause
    return StepResult(loss, norm, output)


def _check_fit_args(model, loss_fn, optimizer, epochs, batch_size, scheduler, clip_norm, callbacks):
    if not isinstance(model, Module):
        raise TypeError(f"model must be a dlbook Module, got {type(model).__name__}")
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable as loss_fn(logits, y) -> (loss, dlogits), got {loss_fn!r}")
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer must be a dlbook Optimizer, got {type(optimizer).__name__}")
    if optimizer.model is not model:
        raise ValueError("optimizer was made for a different model: build it with this model's parameters")
    epochs = check_positive_int(epochs, "epochs")
    batch_size = check_positive_int(batch_size, "batch_size")
    if scheduler is not None and not (
        isinstance(scheduler, LRScheduler) and scheduler.optimizer is optimizer
    ):
        raise ValueError("scheduler must be a dlbook schedule (LRScheduler) of this optimizer")
    if clip_norm is not None and not (
        isinstance(clip_norm, (int, float)) and not isinstance(clip_norm, bool) and 0 < clip_norm < math.inf
    ):
        raise ValueError(f"clip_norm must be a positive number or None, got {clip_norm!r}")
    for cb in callbacks:
        if not callable(cb):
            raise TypeError(f"each callback must be callable as callback(history, epoch), got {cb!r}")
    return epochs, batch_size


def fit(
    model: Module,
    loss_fn: LossFn,
    optimizer: Optimizer,
    X,
    y: np.ndarray | None = None,
    *,
    epochs: int,
    batch_size: int,
    rng: np.random.Generator | int,
    val: tuple[np.ndarray, ...] | None = None,
    scheduler: LRScheduler | None = None,
    clip_norm: float | None = None,
    callbacks: Sequence[Callable[[History, int], bool | None]] = (),
    progress: bool | None = None,
    drop_last: bool = False,
) -> History:
    """Train ``model`` with mini-batch gradient descent; return the :class:`History`.

    The data are ``X, y`` or one tuple ``X = (inputs..., target)`` with
    ``y=None``; ``val`` has the same form. Each epoch shuffles the data with
    ``rng`` (one Generator for the whole run, so a seed fixes every epoch's
    order) and runs :func:`train_step` on each mini-batch:

    .. math:: L_b, \\delta = \\text{loss\\_fn}(f_\\theta(X_b), y_b), \\quad
              \\nabla_\\theta L_b = \\text{backward}(\\delta), \\quad
              \\theta \\leftarrow \\text{optimizer.step}()

    with ``clip_grad_norm(model, clip_norm)`` before the step when ``clip_norm``
    is given, and ``scheduler.step()`` after it (schedules count optimiser
    steps). The model is in training mode for the steps and in evaluation
    mode while ``val`` is scored after each epoch; it is left in training mode.

    ``loss_fn(output, target) -> (loss, doutput)`` is a :mod:`dlbook.losses`
    function. Shapes: every array ``(N, ...)`` with the same ``N``.
    ``callbacks``: callables ``callback(history, epoch)`` run after each epoch
    (``epoch`` 0-based, so ``history.val_loss[epoch]`` is that epoch's);
    returning True stops training (``history.stopped_early``).
    ``progress``: a tqdm bar with the running loss; ``None`` shows it unless
    ``DLBOOK_STATIC`` is set (the book build), True/False force it.

    Raises :class:`TrainingDiverged` when a step's loss or gradient norm is
    not finite or its arithmetic overflows (or the validation loss is not
    finite), naming step, epoch and batch; ``ValueError`` when the arrays
    disagree in length, X does not fit the first layer, or labels exceed the
    model's outputs. Chapter 3.
    """
    callbacks = tuple(callbacks)
    epochs, batch_size = _check_fit_args(
        model, loss_fn, optimizer, epochs, batch_size, scheduler, clip_norm, callbacks
    )
    data = as_arrays(X, y)
    val_data = None
    if val is not None:
        if not isinstance(val, tuple) or len(val) != len(data):
            raise TypeError(f"val must be a tuple of {len(data)} arrays like the training data")
        val_data = as_arrays(tuple(val), name="val")
        for a, b in zip(data, val_data, strict=True):
            if a.shape[1:] != b.shape[1:] and a.ndim <= 2:
                raise ValueError(f"val has an array of shape {b.shape}, not matching {a.shape}")
    n = len(data[0])
    if drop_last and batch_size > n:
        raise ValueError(f"batch_size {batch_size} > {n} samples with drop_last=True: no batch")
    gen = as_generator(rng)
    _check_model_fits(model, data)

    per_epoch = num_batches(n, batch_size, drop_last)
    history = History()
    bar = None
    if _progress_wanted(progress):
        from tqdm.auto import tqdm

        bar = tqdm(total=epochs * per_epoch, desc="fit", unit="step", dynamic_ncols=True)

    def located(err: TrainingDiverged, epoch: int, b: int) -> TrainingDiverged:
        where = f"step {err.step} (epoch {epoch + 1}/{epochs}, batch {b + 1}/{per_epoch})"
        return TrainingDiverged(
            str(err).replace(f"step {err.step}", where, 1), err.step, epoch + 1, b + 1, err.lr
        )

    t_start = time.perf_counter()
    model.train()
    try:
        for epoch in range(epochs):
            loss_sum, seen, correct, counted = 0.0, 0, 0, 0
            for b, batch in enumerate(batches(data, batch_size, gen, drop_last=drop_last)):
                lr = optimizer.lr
                try:
                    result = train_step(model, loss_fn, optimizer, *batch, clip_norm=clip_norm)
                except TrainingDiverged as err:
                    raise located(err, epoch, b) from err.__cause__
                if scheduler is not None:
                    scheduler.step()
                history.loss.append(result.loss)
                history.lr.append(lr)
                if result.grad_norm is not None:
                    history.grad_norm.append(result.grad_norm)
                size = len(batch[-1])
                loss_sum += result.loss * size
                seen += size
                if correct is not None:
                    c = _n_correct(result.output, batch[-1])
                    correct, counted = (None, 0) if c is None else (correct + c[0], counted + c[1])
                if bar is not None:
                    bar.set_postfix(epoch=epoch + 1, loss=f"{loss_sum / seen:.4f}", refresh=False)
                    bar.update(1)
            history.epoch_loss.append(loss_sum / seen)
            if correct is not None and counted:
                history.epoch_accuracy.append(correct / counted)
            if val_data is not None:
                problem, cause = None, None
                try:
                    with np.errstate(over="raise", invalid="raise", divide="raise"):
                        v_loss, v_acc = evaluate(model, loss_fn, val_data, batch_size=batch_size)
                    if not math.isfinite(v_loss):
                        problem = f"the validation loss after the epoch is {v_loss}"
                except (FloatingPointError, RuntimeWarning) as err:
                    problem, cause = f"validation after the epoch failed ({err})", err
                if problem is not None:
                    err = TrainingDiverged(
                        f"training diverged at step {optimizer.steps}: {problem}",
                        optimizer.steps, None, None, lr,
                    )  # fmt: skip
                    raise located(err, epoch, b) from cause
                history.val_loss.append(v_loss)
                if v_acc is not None:
                    history.val_accuracy.append(v_acc)
                if bar is not None:
                    bar.set_postfix(
                        epoch=epoch + 1, loss=f"{history.epoch_loss[-1]:.4f}", val_loss=f"{v_loss:.4f}"
                    )
            history.epoch_time.append(time.perf_counter() - t_start)
            stop = False
            for cb in callbacks:
                stop = bool(cb(history, epoch)) or stop
            if stop:
                history.stopped_early = True
                break
    finally:
        model.train()
        if bar is not None:
            bar.close()
    return history


def _reset(model: Module) -> None:
    reset = getattr(model, "reset_state", None)
    if reset is None:
        raise TypeError(
            f"{type(model).__name__} has no reset_state(): fit_stream needs a model that carries its "
            "state across windows (e.g. dlbook.models.CharLM)"
        )
    reset()


def evaluate_stream(
    model: Module, loss_fn: LossFn, ids: np.ndarray, *, batch_size: int, seq_len: int
) -> float:
    """Mean loss per token of a state-carrying model over a token stream, in evaluation mode.

    .. math:: L = \\frac{1}{\\sum_k M_k} \\sum_k M_k L_k

    (window ``k`` has ``M_k`` tokens and mean loss ``L_k``). The state is
    reset first and carried from window to window (:func:`dlbook.data.stream_batches`),
    as in training; nothing is kept for a backward pass. With the natural
    logarithm the result is in nats per token (divide by ``ln 2`` for bits).
    The state is reset again afterwards. Chapter 6.
    """
    was_training = model.training
    model.eval()
    _reset(model)
    total, count = 0.0, 0
    try:
        with inference_mode():
            for x, y in stream_batches(ids, batch_size, seq_len):
                loss, _ = loss_fn(model.forward(x), y)
                total += float(loss) * y.size
                count += y.size
    finally:
        _reset(model)
        model.train(was_training)
    return total / count


def fit_stream(
    model: Module,
    loss_fn: LossFn,
    optimizer: Optimizer,
    ids: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    seq_len: int,
    val_ids: np.ndarray | None = None,
    clip_norm: float | None = None,
    scheduler: LRScheduler | None = None,
    progress: bool | None = None,
) -> History:
    """Train a state-carrying sequence model by truncated backpropagation through time.

    Each epoch resets the model's state (``model.reset_state()``) and runs
    :func:`train_step` on the windows of :func:`dlbook.data.stream_batches`
    in order, so each window starts from the state the previous one ended
    in, while gradients stop at the window's edge (``seq_len`` steps back at
    most). ``history.loss`` has one entry per step, ``epoch_loss`` the mean
    per token of each epoch, ``val_loss`` the :func:`evaluate_stream` of
    ``val_ids`` after each epoch. Williams & Peng (1990), *An Efficient
    Gradient-Based Algorithm for On-Line Training of Recurrent Network
    Trajectories*; chapter 6.
    """
    _check_fit_args(model, loss_fn, optimizer, epochs, batch_size, scheduler, clip_norm, ())
    epochs = check_positive_int(epochs, "epochs")
    n_windows = sum(1 for _ in stream_batches(ids, batch_size, seq_len))
    history = History()
    bar = None
    if _progress_wanted(progress):
        from tqdm.auto import tqdm

        bar = tqdm(total=epochs * n_windows, desc="fit_stream", unit="step", dynamic_ncols=True)
    t_start = time.perf_counter()
    model.train()
    try:
        for epoch in range(epochs):
            _reset(model)
            total, count = 0.0, 0
            for b, (x, y) in enumerate(stream_batches(ids, batch_size, seq_len)):
                lr = optimizer.lr
                try:
                    result = train_step(model, loss_fn, optimizer, x, y, clip_norm=clip_norm)
                except TrainingDiverged as err:
                    raise TrainingDiverged(
                        f"{err} (epoch {epoch + 1}, window {b + 1})", err.step, epoch + 1, b + 1, err.lr
                    ) from err.__cause__
                if scheduler is not None:
                    scheduler.step()
                history.loss.append(result.loss)
                history.lr.append(lr)
                if result.grad_norm is not None:
                    history.grad_norm.append(result.grad_norm)
                total += result.loss * y.size
                count += y.size
                if bar is not None:
                    bar.set_postfix(epoch=epoch + 1, loss=f"{total / count:.3f}", refresh=False)
                    bar.update(1)
            history.epoch_loss.append(total / count)
            if val_ids is not None:
                history.val_loss.append(
                    evaluate_stream(model, loss_fn, val_ids, batch_size=batch_size, seq_len=seq_len)
                )
            history.epoch_time.append(time.perf_counter() - t_start)
    finally:
        _reset(model)
        model.train()
        if bar is not None:
            bar.close()
    return history


def _quiet_worker() -> None:
    os.environ["DLBOOK_STATIC"] = "1"  # no progress bars from worker processes
    # One BLAS thread per worker: two workers that each start OpenBLAS's threads on two cores
    # oversubscribe them, and the spinning threads made a chapter's runs several times slower.
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


def parallel_map(fn: Callable, items: Sequence, processes: int = 2) -> list:
    """``[fn(item) for item in items]``, run on up to ``processes`` worker processes.

    Independent training runs (several seeds, several depths) keep one core
    busy each, so on the book's two-core machine two workers halve the wall
    time. The workers are forked from the current process, so ``fn`` may be
    a function defined in a notebook and sees the notebook's variables; what
    it returns travels back by pickling, so return numbers, histories and
    ``model.state_dict()``, not models. Results come back in the order of
    ``items``. Where the platform cannot fork safely (anything but Linux) or
    ``processes == 1``, the calls run one after another in this process, with
    the same results. Workers show no progress bars and use one BLAS thread
    each. Chapter 5.
    """
    processes = check_positive_int(processes, "processes")
    items = list(items)
    if processes == 1 or len(items) < 2 or sys.platform != "linux":
        return [fn(item) for item in items]
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(min(processes, len(items)), initializer=_quiet_worker) as pool:
        return pool.map(fn, items, chunksize=1)
