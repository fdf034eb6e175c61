"""dlbook: the tested NumPy code behind *From Activations to Transformers*.

Every layer has an explicit ``forward`` and ``backward``; chapters import this
package (``import dlbook as dl``) instead of defining model code themselves.
Importing it has no side effects: no printing, no seeding, no backend switch.
The matplotlib and ipywidgets helpers (``dl.plot``, ``dl.widgets``) and the
glossary and the errata load on first use.
"""

import importlib
import importlib.metadata

from . import (
    activations,
    attention,
    conv,
    core,
    data,
    init,
    layers,
    losses,
    models,
    numbers,
    numerics,
    optim,
    probes,
    recurrent,
    regions,
    resnet,
    seq2seq,
    train,
    transformer,
)
from .core import Module, Sequential, gradcheck, inference_mode, rel_error

__version__ = importlib.metadata.version("dlbook")  # from pyproject.toml

_LAZY = ("plot", "widgets", "glossary", "errata")

__all__ = [
    "Module",
    "Sequential",
    "activations",
    "attention",
    "conv",
    "core",
    "data",
    "errata",
    "glossary",
    "gradcheck",
    "inference_mode",
    "init",
    "layers",
    "losses",
    "models",
    "numbers",
    "numerics",
    "optim",
    "plot",
    "probes",
    "recurrent",
    "regions",
    "resnet",
    "rel_error",
    "seq2seq",
    "train",
    "transformer",
    "widgets",
]


def __getattr__(name):
    if name in _LAZY:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'dlbook' has no attribute {name!r}")
