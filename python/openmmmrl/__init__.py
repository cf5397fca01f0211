# SPDX-License-Identifier: MIT
"""openmm-mrl: run machine-learned (TorchScript) potentials in OpenMM through ``MRLForce``.

>>> import openmm, torch
>>> from openmmmrl import MRLForce
>>> force = MRLForce("model.pt")          # or MRLForce(torch.jit.script(module)), or MRLForce(model_bytes)
>>> system.addForce(force)
"""
import openmm as _openmm


def _check_plugin_loaded():
    # The CUDA kernel plugin cannot load where there is no CUDA driver (libcuda.so.1), just like OpenMM's
    # own CUDA platform: that is not an error, the platform is simply absent.
    no_driver = ("libcuda.so", "libOpenMMCUDA.so")
    failures = [f for f in _openmm.Platform.getPluginLoadFailures()
                if "MRL" in f and not any(name in f.split(":", 1)[-1] for name in no_driver)]
    if failures:
        raise ImportError("openmm-mrl: OpenMM could not load the MRLForce kernel plugin:\n  " +
                          "\n  ".join(failures) + "\nRebuild and reinstall with ./test.sh (or scripts/setup.sh).")


_check_plugin_loaded()

from .mrlforce import MRLForce  # noqa: E402

__version__ = "0.1.0"
__all__ = ["MRLForce"]

from .dataset import Dataset, DatasetWriter  # noqa: E402
from .reporter import DatasetReporter  # noqa: E402

__all__ += ["Dataset", "DatasetWriter", "DatasetReporter"]
