"""dlbook: the tested NumPy code behind *From Activations to Transformers*.

Every layer has an explicit ``forward`` and ``backward``; chapters import this
package (``import dlbook as dl``) instead of defining model code themselves.
Importing it has no side effects: no printing, no seeding, no backend switch.
The matplotlib and ipywidgets helpers (``dl.plot``, ``dl.widgets``) and the
glossary load on first use.
"""

import importlib

from . import (
    activations,
    conv,
    core,
    data,
    init,
    layers,
    losses,
    models,
    optim,
    probes,
    regions,
    resnet,
    train,
)
from .core import Module, Sequential, gradcheck, rel_error

__version__ = "0.1.0"

_LAZY = ("plot", "widgets", "glossary")

__all__ = [
    "Module",
    "Sequential",
    "activations",
    "conv",
    "core",
    "data",
    "glossary",
    "gradcheck",
    "init",
    "layers",
    "losses",
    "models",
    "optim",
    "plot",
    "probes",
    "regions",
    "resnet",
    "rel_error",
    "train",
    "widgets",
]


def __getattr__(name):
    if name in _LAZY:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'dlbook' has no attribute {name!r}")
