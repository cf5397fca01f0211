# SPDX-License-Identifier: MIT
"""Loads the compiled MRLForce wrappers and checks that OpenMM loaded the kernel plugins.

Imported on first use of :class:`openmmmrl.MRLForce`, never by ``import openmmmrl`` itself, so that the
data and training layers work where the plugin is not built.
"""
import openmm


def check_plugin_loaded():
    """Raises ImportError naming each MRL kernel plugin that OpenMM could not load.

    The CUDA kernel plugin cannot load where there is no CUDA driver (libcuda.so.1), just like OpenMM's
    own CUDA platform: that is not an error, the platform is simply absent.
    """
    no_driver = ("libcuda.so", "libOpenMMCUDA.so")
    failures = [f for f in openmm.Platform.getPluginLoadFailures()
                if "MRL" in f and not any(name in f.split(":", 1)[-1] for name in no_driver)]
    if failures:
        raise ImportError("openmm-mrl: OpenMM could not load the MRLForce kernel plugin:\n  " +
                          "\n  ".join(failures) + "\nRebuild and reinstall with ./test.sh (or scripts/setup.sh).")


check_plugin_loaded()

from .mrlforce import MRLForce  # noqa: E402

__all__ = ["MRLForce"]
