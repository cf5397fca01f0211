# SPDX-License-Identifier: MIT
"""The dataset layer: records, the h5py reader and the crash-safe writer (docs/dataset.md).

Needs numpy, h5py and the compiled dataset module (``openmmmrl.dataset_core``, the C++ writer and the
layout table); it does not load OpenMM's platforms or the MRLForce plugin.
"""
from .reader import Dataset, format_version, layout
from .records import Record
from .writer import DatasetWriter

__all__ = ["Dataset", "DatasetWriter", "Record", "layout", "format_version"]
