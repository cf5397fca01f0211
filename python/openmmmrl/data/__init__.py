# SPDX-License-Identifier: MIT
"""The dataset layer: records, the h5py reader and the crash-safe writer (docs/dataset.md).

Needs numpy and h5py only; it does not load OpenMM or the MRLForce plugin.
"""
from .reader import FORMAT, FORMAT_VERSION, Dataset
from .records import Record
from .writer import DatasetWriter

__all__ = ["Dataset", "DatasetWriter", "Record", "FORMAT", "FORMAT_VERSION"]
