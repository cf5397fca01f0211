# SPDX-License-Identifier: MIT
"""openmm-mrl: run machine-learned potentials in OpenMM through ``MRLForce``.

>>> import openmm, torch
>>> from openmmmrl import MRLForce
>>> force = MRLForce("model.pt")          # or MRLForce(torch.jit.script(module)), or MRLForce(model_bytes)
>>> system.addForce(force)

The package is layered; ``import openmmmrl`` loads none of the layers:

- ``openmmmrl`` : :class:`MRLForce` (the compiled plugin, loaded on first use) and
  :class:`DatasetReporter` (records a Simulation into a dataset);
- ``openmmmrl.pt2`` : :func:`export_pt2`, AOTInductor packages (.pt2) of any model for MRLForce;
- ``openmmmrl.data`` : the dataset reader, the crash-safe writer and records (numpy and h5py only);
- ``openmmmrl.head`` : the equivariant force head: model, losses, training, export, evaluation, plots.
"""
import importlib

from ._version import __version__

# Public name -> the module that defines it, imported when the name is first used (PEP 562).
_LAZY = {
    "MRLForce": "._plugin",
    "export_pt2": ".pt2",
    "createMMFFSystem": ".mmff",
    "moleculesFromRecord": ".mmff",
    "DatasetReporter": ".reporter",
    "Dataset": ".data",
    "DatasetWriter": ".data",
    "Record": ".data",
}

__all__ = ["__version__"] + sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'openmmmrl' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
