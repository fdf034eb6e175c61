"""dlbook: the tested NumPy code behind *From Activations to Transformers*.

Every layer has an explicit ``forward`` and ``backward``; chapters import this
package (``import dlbook as dl``) instead of defining model code themselves.
Importing it has no side effects: no printing, no seeding, no backend switch.
"""

from . import activations, core, data, layers, losses, optim
from .core import Module, Sequential, gradcheck, rel_error

__version__ = "0.1.0"

__all__ = [
    "Module",
    "Sequential",
    "activations",
    "core",
    "data",
    "gradcheck",
    "layers",
    "losses",
    "optim",
    "rel_error",
]
