"""Optimisers that update a model's ``params`` in place from its ``grads``.

Chapter 1 needs only plain stochastic gradient descent; chapter 3 adds
momentum, Adam, AdamW, schedules and clipping.
"""

from __future__ import annotations

from .core import Module

__all__ = ["SGD"]


class SGD:
    """Plain stochastic gradient descent: ``p <- p - lr * dp`` for every parameter.

    .. math:: \\theta_{t+1} = \\theta_t - \\eta \\nabla_\\theta L(\\theta_t)

    Reads ``model.params`` and ``model.grads`` at every step, so layers added
    or replaced between steps are picked up.
    """

    def __init__(self, model: Module, lr: float) -> None:
        if not isinstance(model, Module):
            raise TypeError(f"model must be a dlbook Module, got {type(model).__name__}")
        if not lr > 0:
            raise ValueError(f"lr must be positive, got {lr}")
        self.model, self.lr = model, float(lr)

    def zero_grad(self) -> None:
        self.model.zero_grad()

    def step(self) -> None:
        grads = self.model.grads
        for k, p in self.model.params.items():
            p -= self.lr * grads[k]
