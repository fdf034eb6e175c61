"""The training loop every chapter uses: ``fit``, ``evaluate`` and the run's ``History``.

One loop, written once (minGPT's trainer is the model): shuffle, take a
mini-batch, forward, loss, backward, optionally clip, step the optimiser and
the schedule, record. It never plots; it records a :class:`History` and calls
callbacks, and the chapters plot from the history.

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
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from .core import Module, as_generator, check_positive_int
from .data import batches, num_batches
from .optim import LRScheduler, Optimizer, clip_grad_norm

__all__ = ["History", "TrainingDiverged", "EarlyStopping", "fit", "evaluate"]

LossFn = Callable[[np.ndarray, np.ndarray], tuple[float, np.ndarray]]


class TrainingDiverged(FloatingPointError):
    """The loss, a gradient or a parameter stopped being finite during :func:`fit`.

    ``step`` (1-based, counted over the whole run), ``epoch`` and ``batch``
    (1-based) locate it; ``lr`` is the learning rate of that step.
    """

    def __init__(self, message: str, step: int, epoch: int, batch: int, lr: float) -> None:
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


def _n_correct(logits: np.ndarray, y: np.ndarray) -> int | None:
    """Correct predictions in a batch, or None when the task is not classification.

    Integer labels ``y (N,)`` with logits ``(N, K)``, ``K >= 2``: argmax.
    Integer 0/1 targets with logits of the same shape (one sigmoid output per
    target): the sign of the logit. Anything else (regression): None.
    """
    if not np.issubdtype(y.dtype, np.integer) or logits.ndim < 1:
        return None
    if y.ndim == 1 and logits.ndim == 2 and logits.shape[1] >= 2 and len(logits) == len(y):
        return int(np.count_nonzero(logits.argmax(axis=1) == y))
    if logits.shape == y.shape:
        return int(np.count_nonzero((logits > 0.0) == (y > 0)))
    return None


def _check_xy(X, y, name: str = "X") -> None:
    ylab = "y" if name == "X" else f"{name}'s y"
    if not isinstance(X, np.ndarray) or not isinstance(y, np.ndarray):
        raise TypeError(
            f"{name} and {ylab} must be NumPy arrays, got {type(X).__name__} and {type(y).__name__}"
        )
    if X.ndim < 1 or y.ndim < 1 or len(X) != len(y):
        raise ValueError(
            f"{name} and {ylab} must have the same number of rows, got shapes {X.shape} and {y.shape}"
        )
    if len(X) == 0:
        raise ValueError(f"{name} is empty (shape {X.shape})")


def _first_layer(model: Module) -> Module:
    while hasattr(model, "layers") and len(model.layers) > 0:
        model = model.layers[0]
    return model


def _check_model_fits(model: Module, X: np.ndarray, y: np.ndarray) -> None:
    """Wrong feature size or labels outside the model's outputs -> ValueError naming the shapes."""
    first = _first_layer(model)
    d_in = getattr(first, "in_features", None)
    if d_in is not None and X.ndim == 2 and X.shape[1] != d_in:
        raise ValueError(
            f"the model's first layer ({first!r}) expects {d_in} input features, "
            f"but X has shape {X.shape} ({X.shape[1]} features)"
        )
    if not (np.issubdtype(y.dtype, np.integer) and y.ndim == 1):
        return
    was_training = model.training
    model.eval()
    try:
        out = model.forward(X[:1])  # one sample tells the number of outputs
    finally:
        if was_training:
            model.train()
    if out.ndim == 2 and out.shape[1] >= 2:
        k = out.shape[1]
        lo, hi = int(y.min()), int(y.max())
        if lo < 0 or hi >= k:
            raise ValueError(
                f"labels must lie in [0, {k - 1}] for a model with {k} outputs (logits of shape "
                f"(N, {k})), but y (shape {y.shape}) has values in [{lo}, {hi}]"
            )


def _progress_wanted(progress) -> bool:
    if progress is None:
        return os.environ.get("DLBOOK_STATIC", "") in ("", "0")
    if isinstance(progress, bool):
        return progress
    raise TypeError(f"progress must be None, True or False, got {progress!r}")


def evaluate(
    model: Module, loss_fn: LossFn, X: np.ndarray, y: np.ndarray, batch_size: int = 512
) -> tuple[float, float | None]:
    """Mean loss and accuracy of ``model`` on ``(X, y)``, in evaluation mode.

    .. math:: L = \\frac{1}{N}\\sum_b N_b L_b, \\qquad
              \\text{acc} = \\frac{1}{N}\\sum_n [\\hat y_n = y_n]

    The data go through in order in batches of ``batch_size`` (no gradients
    are kept); each batch's mean loss is weighted by its size. Accuracy is the
    argmax's for integer labels ``y (N,)`` and logits ``(N, K)``, the logit's
    sign for integer 0/1 targets shaped like the logits, and ``None`` for
    anything else (regression). The model's train/eval mode is restored
    afterwards. Chapter 3.
    """
    _check_xy(X, y)
    was_training = model.training
    model.eval()
    total_loss, correct, n = 0.0, 0, len(X)
    try:
        for xb, yb in batches(X, y, batch_size, shuffle=False):
            logits = model.forward(xb)
            loss, _ = loss_fn(logits, yb)
            total_loss += float(loss) * len(xb)
            c = _n_correct(logits, yb)
            correct = None if c is None or correct is None else correct + c
    finally:
        if was_training:
            model.train()
    return total_loss / n, (None if correct is None else correct / n)


class EarlyStopping:
    """A callback that stops :func:`fit` when the validation loss stops improving.

    After each epoch it compares ``history.val_loss[-1]`` with the best so far;
    an epoch improves when the loss drops by more than ``min_delta``. After
    ``patience`` epochs without improvement it stops the run, and with
    ``restore_best=True`` it first copies the best epoch's parameters back into
    the model (in place). ``best_epoch`` (0-based) and ``best_loss`` tell what
    was kept. Prechelt (1998), *Early Stopping - But When?*. Chapter 3 (learning curves).
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
                self._best = {k: p.copy() for k, p in self.model.params.items()}
            return False
        if epoch - self.best_epoch < self.patience:
            return False
        if self.restore_best and self._best is not None:
            for k, p in self.model.params.items():
                p[...] = self._best[k]
        return True


def fit(
    model: Module,
    loss_fn: LossFn,
    optimizer: Optimizer,
    X: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    rng: np.random.Generator | int,
    val: tuple[np.ndarray, np.ndarray] | None = None,
    scheduler: LRScheduler | None = None,
    clip_norm: float | None = None,
    callbacks: Sequence[Callable[[History, int], bool | None]] = (),
    progress: bool | None = None,
    drop_last: bool = False,
) -> History:
    """Train ``model`` on ``(X, y)`` with mini-batch gradient descent; return the :class:`History`.

    Each epoch shuffles the data with ``rng`` (one Generator for the whole run,
    so a seed fixes every epoch's order) and, for each mini-batch ``(X_b, y_b)``:

    .. math:: L_b, \\delta = \\text{loss\\_fn}(f_\\theta(X_b), y_b), \\quad
              \\nabla_\\theta L_b = \\text{backward}(\\delta), \\quad
              \\theta \\leftarrow \\text{optimizer.step}()

    with ``clip_grad_norm(model, clip_norm)`` before the step when ``clip_norm``
    is given, and ``scheduler.step()`` after it (schedules count optimiser
    steps). The model is in training mode for the steps and in evaluation
    mode while ``val = (X_val, y_val)`` is scored after each epoch; it is left
    in training mode.

    ``loss_fn(logits, y) -> (loss, dlogits)`` is a :mod:`dlbook.losses`
    function. Shapes: ``X (N, ...)``, ``y (N, ...)`` with the same ``N``.
    ``callbacks``: callables ``callback(history, epoch)`` run after each epoch
    (``epoch`` 0-based, so ``history.val_loss[epoch]`` is that epoch's);
    returning True stops training (``history.stopped_early``).
    ``progress``: a tqdm bar with the running loss; ``None`` shows it unless
    ``DLBOOK_STATIC`` is set (the book build), True/False force it.

    Raises :class:`TrainingDiverged` when a step's loss or gradient norm is
    not finite or its arithmetic overflows (or the validation loss is not
    finite); ``ValueError`` when X and y
    disagree in length, X does not fit the first layer, or labels exceed the
    model's outputs. Chapter 3.
    """
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
    callbacks = tuple(callbacks)
    for cb in callbacks:
        if not callable(cb):
            raise TypeError(f"each callback must be callable as callback(history, epoch), got {cb!r}")
    _check_xy(X, y)
    if val is not None:
        if not isinstance(val, (tuple, list)) or len(val) != 2:
            raise TypeError("val must be a pair (X_val, y_val)")
        _check_xy(val[0], val[1], "X_val")
        if val[0].shape[1:] != X.shape[1:]:
            raise ValueError(f"X_val has shape {val[0].shape}, not matching X's {X.shape}")
    epochs, batch_size = int(epochs), int(batch_size)
    if drop_last and batch_size > len(X):
        raise ValueError(f"batch_size {batch_size} > {len(X)} samples with drop_last=True: no batch")
    gen = as_generator(rng)
    _check_model_fits(model, X, y)
    show = _progress_wanted(progress)

    per_epoch = num_batches(len(X), batch_size, drop_last)
    history = History()
    bar = None
    if show:
        from tqdm.auto import tqdm

        bar = tqdm(total=epochs * per_epoch, desc="fit", unit="step", dynamic_ncols=True)
    clip_hint = "clip_norm=1.0" if clip_norm is None else f"a smaller clip_norm than {clip_norm:g}"

    def diverged(problem: str, epoch: int, b: int, lr: float) -> TrainingDiverged:
        return TrainingDiverged(
            f"training diverged at step {step} (epoch {epoch + 1}/{epochs}, batch {b + 1}/{per_epoch}): "
            f"{problem}. Lower the learning rate (now lr={lr:g}) or clip gradients ({clip_hint}).",
            step=step, epoch=epoch + 1, batch=b + 1, lr=lr,
        )

    t_start = time.perf_counter()
    step = 0
    model.train()
    try:
        for epoch in range(epochs):
            loss_sum, seen, correct = 0.0, 0, 0
            for b, (xb, yb) in enumerate(batches(X, y, batch_size, gen, drop_last=drop_last)):
                step += 1
                lr = optimizer.lr
                problem, cause, loss, norm = None, None, math.nan, None
                try:
                    # overflow or an invalid value anywhere in the step is an error, not a warning
                    with np.errstate(over="raise", invalid="raise", divide="raise"):
                        optimizer.zero_grad()
                        logits = model.forward(xb)
                        loss, dlogits = loss_fn(logits, yb)
                        loss = float(loss)
                        if math.isfinite(loss):
                            model.backward(dlogits)
                            if clip_norm is not None:
                                norm = clip_grad_norm(model, clip_norm)
                            if norm is None or math.isfinite(norm):
                                optimizer.step()
                            else:
                                problem = f"the gradient norm is {norm}"
                        else:
                            problem = f"the loss is {loss}"
                except (FloatingPointError, RuntimeWarning) as err:
                    problem, cause = f"floating-point error ({err})", err
                if problem is not None:
                    raise diverged(problem, epoch, b, lr) from cause
                if scheduler is not None:
                    scheduler.step()
                history.loss.append(loss)
                history.lr.append(lr)
                if norm is not None:
                    history.grad_norm.append(norm)
                loss_sum += loss * len(xb)
                seen += len(xb)
                if correct is not None:
                    c = _n_correct(logits, yb)
                    correct = None if c is None else correct + c
                if bar is not None:
                    bar.set_postfix(epoch=epoch + 1, loss=f"{loss_sum / seen:.4f}", refresh=False)
                    bar.update(1)
            history.epoch_loss.append(loss_sum / seen)
            if correct is not None:
                history.epoch_accuracy.append(correct / seen)
            if val is not None:
                try:
                    with np.errstate(over="raise", invalid="raise", divide="raise"):
                        v_loss, v_acc = evaluate(model, loss_fn, val[0], val[1], batch_size)
                except (FloatingPointError, RuntimeWarning) as err:
                    raise diverged(f"validation after the epoch failed ({err})", epoch, b, lr) from err
                if not math.isfinite(v_loss):
                    raise diverged(f"the validation loss after the epoch is {v_loss}", epoch, b, lr)
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
