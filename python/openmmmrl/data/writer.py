# SPDX-License-Identifier: MIT
"""Writing openmm-mrl dataset files crash-safely (docs/dataset.md, "Crash safety: the journal").

There is one writer: the C++ one of ``mrl-envgen`` (``tools/src/Dataset.cpp``), reached through the
compiled module ``openmmmrl.dataset_core``.  This module turns Python records into its records; the
journal, the fold and resuming are the C++ writer's.
"""
import json
import os
import sys
import weakref
from typing import Optional, Union

import numpy as np

from .._version import __version__
from . import _core
from .reader import _check_format, _open_h5, _to_python
from .records import Record

__all__ = ["DatasetWriter", "ATTRIBUTE_DEFAULTS"]

#: Root attributes a writer sets, with their defaults (``tool`` and ``command_line`` default to this
#: package and ``sys.argv``).
ATTRIBUTE_DEFAULTS = {
    "tool": None,
    "command_line": None,
    "options_json": "{}",
    "force_field": "",
    "temperature_K": float("nan"),
    "timestep_ps": float("nan"),
    "seed": -1,
    "interaction_forces": "none",
    "label_sets": None,  # format version 2: {name: method}, e.g. {"gfn2": "GFN2-xTB (tblite 0.8.0)"}
}

# Python names -> the C++ DatasetAttributes / DatasetRecord fields.
_ATTRIBUTE_FIELDS = {"tool": "tool", "command_line": "commandLine", "options_json": "optionsJson",
                     "force_field": "forceField", "temperature_K": "temperatureK", "timestep_ps": "timestepPs",
                     "seed": "seed", "interaction_forces": "interactionForces"}
_ARRAY_FIELDS = {"atomic_numbers": "atomicNumbers", "formal_charges": "formalCharges",
                 "molecule_index": "moleculeIndex", "anchor": "anchor", "is_central": "isCentral", "bonds": "bonds",
                 "bond_orders": "bondOrders", "time": "timePs", "box": "boxNm", "total_energy": "totalEnergyKJPerMol",
                 "interaction_energy": "interactionEnergyKJPerMol", "positions": "positionsNm",
                 "total_forces": "totalForcesKJPerMolNm", "interaction_forces": "interactionForcesKJPerMolNm",
                 "direction_3dmrl": "direction3DMRL"}
# The C++ record's element types (is_central is int8 in the file and int in the C++ record).
_CPP_DTYPES = {"atomicNumbers": np.int32, "formalCharges": np.int32, "moleculeIndex": np.int32, "anchor": np.int32,
               "isCentral": np.int32, "bonds": np.int32, "timePs": np.float64, "totalEnergyKJPerMol": np.float64,
               "interactionEnergyKJPerMol": np.float64}


def _complete_attributes(attributes: dict) -> dict:
    unknown = sorted(set(attributes) - set(ATTRIBUTE_DEFAULTS))
    if unknown:
        raise ValueError(f"unknown dataset attributes {unknown}; the root attributes are {sorted(ATTRIBUTE_DEFAULTS)}")
    result = dict(ATTRIBUTE_DEFAULTS)
    result["tool"] = f"openmmmrl {__version__}"
    result["command_line"] = " ".join(sys.argv)
    result.update({k: v for k, v in attributes.items() if v is not None})
    if not isinstance(result["options_json"], str):
        result["options_json"] = json.dumps(result["options_json"], sort_keys=True)
    try:
        if not isinstance(json.loads(result["options_json"]), dict):
            raise ValueError
    except ValueError:
        raise ValueError(f"options_json must be a JSON object, got {result['options_json']!r}") from None
    result["label_sets"] = {str(k): str(v) for k, v in dict(result["label_sets"] or {}).items()}
    for name in ("tool", "command_line", "force_field", "interaction_forces"):
        result[name] = str(result[name])
    for name in ("temperature_K", "timestep_ps"):
        result[name] = float(result[name])
    result["seed"] = int(result["seed"])
    return result


def _existing_options(path: str, mine: str) -> str:
    """The options text of an existing file when it is the same JSON object as ``mine`` (the C++ writer
    compares texts; files written with other JSON spacing stay resumable), else ``mine``."""
    if not os.path.exists(path):
        return mine
    with _open_h5(path) as h5:
        _check_format(h5, path)
        existing = _to_python(h5.attrs.get("options_json", ""))
    try:
        return existing if json.loads(existing) == json.loads(mine) else mine
    except (TypeError, ValueError):
        return mine


def _cpp_record(core, record: Record):
    """The C++ DatasetRecord of a normalized Record (arrays passed through the buffer protocol, one copy)."""
    out = core.DatasetRecord()
    out.key, out.pairId, out.weight, out.centralMolecule = record.key, record.pair_id, record.weight, \
        record.central_molecule
    out.smiles = core.StringVector(record.smiles)
    out.moleculeNames = core.StringVector(record.molecule_names)
    for name, field in _ARRAY_FIELDS.items():
        array = np.ascontiguousarray(getattr(record, name), dtype=_CPP_DTYPES.get(field, np.float32))
        out.setArray(field, array)
    for name, values in record.labels.items():
        for field, array in values.items():
            out.setArray(f"labels/{name}/{field}", array)
    return out


def _fold_quietly(holder: list):
    """The finalizer of an unclosed writer (garbage collected, or at interpreter exit): folds the journal
    and reports errors on stderr, never raising.  The writer stays usable (another finalizer may still add
    a record; its close() folds again)."""
    if holder:
        try:
            holder[0].fold()
        except Exception as e:
            print(f"openmmmrl.DatasetWriter: could not fold the journal of {holder[0].getPath()}: {e} "
                  f"(open a DatasetWriter on it again to fold it)", file=sys.stderr)


class DatasetWriter:
    """Appends records to a dataset file, crash-safely (docs/dataset.md, "Crash safety: the journal").

    ``DatasetWriter(path, attributes, overwrite=False)`` creates ``path`` or opens it for appending.
    ``attributes`` are the root attributes: ``tool``, ``command_line``, ``options_json`` (a JSON text or
    a dict), ``force_field``, ``temperature_K`` (K), ``timestep_ps`` (ps), ``seed``,
    ``interaction_forces``, ``label_sets`` (``{name: method}``: label sets that every record carries in
    its ``labels``); missing ones take the defaults of ``ATTRIBUTE_DEFAULTS``.

    An existing file must have been made with the same ``options_json`` (compared as JSON objects):
    otherwise ValueError (write to a new file, or pass ``overwrite=True``).  Its other attributes are
    kept.  A journal left by an interrupted run is folded first; stale ``.tmp`` files are removed.

    Each :meth:`add_record` / :meth:`add_skipped` is durable when it returns (a journal entry).  The
    journal is folded into the file when it holds at least ``max(file size / 4, fold_bytes)`` bytes
    (default 16 MiB), on :meth:`fold`, on :meth:`close`, on leaving a ``with`` block and (best effort) at
    interpreter exit.  Only one writer may use a path at a time.  This is the C++ writer of
    ``mrl-envgen``; its errors arrive as ValueError.
    """

    def __init__(self, path: Union[str, os.PathLike], attributes: Optional[dict] = None, overwrite: bool = False,
                 fold_bytes: Optional[int] = None):
        core = _core.core()
        self.path = os.path.abspath(os.fspath(path))
        self.attributes = _complete_attributes(attributes or {})
        if not overwrite:
            self.attributes["options_json"] = _existing_options(self.path, self.attributes["options_json"])
        cpp = core.DatasetAttributes()
        for name, field in _ATTRIBUTE_FIELDS.items():
            setattr(cpp, field, self.attributes[name])
        for name, method in self.attributes["label_sets"].items():
            cpp.addLabelSet(name, method)
        fold_bytes = core.foldMinBytes() if fold_bytes is None else int(fold_bytes)
        self._core = core
        self._holder = [core.DatasetWriter(self.path, cpp, bool(overwrite), fold_bytes)]
        self.records_written = 0
        # Fold at interpreter exit (or when the writer is garbage collected unclosed).
        self._finalizer = weakref.finalize(self, _fold_quietly, self._holder)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return f"DatasetWriter({self.path!r}{', closed' if self.closed else ''})"

    @property
    def closed(self) -> bool:
        return not self._holder

    def _writer(self):
        if not self._holder:
            raise ValueError(f"DatasetWriter for {self.path} is closed; open a new DatasetWriter to append")
        return self._holder[0]

    def contains(self, key: str) -> bool:
        """True when a record or a skip with this key is in the file or in the journal."""
        return self._writer().contains(key)

    def __contains__(self, key) -> bool:
        return self.contains(key)

    def keys(self) -> set:
        """Every key (records and skips) in the file or the journal."""
        return set(self._writer().getKeys())

    def add_record(self, record: Union[Record, dict]):
        """Writes one record (a :class:`Record` or a dict of its fields) durably to the journal, and
        folds when the journal has grown enough.  ValueError when the key is already present."""
        writer = self._writer()
        if isinstance(record, dict):
            record = Record.from_dict(record)
        writer.addRecord(_cpp_record(self._core, record.normalized()))
        self.records_written += 1

    def add_skipped(self, key: str, pair_id: str, reason: str):
        """Records durably that the input ``key`` gave no record (and why); ValueError when the key is
        already present."""
        writer = self._writer()
        if not isinstance(key, str) or not key or "\0" in key:
            raise ValueError(f"skipped key {key!r} must be a non-empty string")
        skipped = self._core.SkippedInput()
        skipped.key, skipped.pairId, skipped.reason = key, str(pair_id), str(reason)
        writer.addSkipped(skipped)

    def fold(self):
        """Appends every journal entry not yet in the file (in key order) to a copy of the file, fsyncs
        it, renames it over the file, then deletes the journal entries."""
        self._writer().fold()

    def close(self):
        """Folds the journal into the file.  The writer cannot be used afterwards."""
        if self.closed:
            return
        self.fold()
        self._finalizer.detach()
        self._holder.clear()  # the C++ destructor removes the (empty) journal
