# SPDX-License-Identifier: MIT
"""The openmm-mrl dataset file (docs/dataset.md): a reader and a crash-safe writer.

A dataset is one HDF5 file holding an append-only list of immutable *records*.  A record is one
interaction environment (a fixed set of ``N`` atoms with one topology) and the ``F`` frames recorded
for it.  Arrays are stored concatenated over records (a "ragged" layout with offsets); this module
hides that layout:

>>> from openmmmrl import Dataset
>>> with Dataset("run.h5") as ds:
...     rec = ds.record(0)                 # a Record: numpy arrays, per-frame arrays [F, N, 3]
...     for frame in ds.iter_frames():     # one dict per frame, for training
...         frame["positions"], frame["total_forces"]

Units are OpenMM's everywhere: positions and box in nm, time in ps, energies in kJ/mol, forces in
kJ/mol/nm, charges in elementary charges.

Writing goes through :class:`DatasetWriter`, which never edits the file in place: every record is
first written to a journal (``PATH.journal/NAME.h5``, atomically renamed from ``NAME.tmp``) and the
journal is folded into a copy of the file that is renamed over ``PATH``.  A process killed at any
moment leaves ``PATH`` at its last complete version and every finished record in the journal; the next
``DatasetWriter`` on the same path folds it.  One writer per path at a time.

This module only needs numpy and h5py (it does not import OpenMM).
"""
import dataclasses
import glob
import json
import os
import shutil
import sys
import warnings
import weakref
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

import h5py
import numpy as np

__all__ = ["Dataset", "DatasetWriter", "Record", "FORMAT", "FORMAT_VERSION"]

FORMAT = "openmm-mrl-dataset"
FORMAT_VERSION = 1

#: Root attributes a writer sets, with their defaults (``command_line`` defaults to ``sys.argv``).
ATTRIBUTE_DEFAULTS = {
    "tool": None,  # "openmmmrl <version>"
    "command_line": None,
    "options_json": "{}",
    "force_field": "",
    "temperature_K": float("nan"),
    "timestep_ps": float("nan"),
    "seed": -1,
    "interaction_forces": "none",
}

_STR = h5py.string_dtype("utf-8")

# The layout: group -> [(dataset, dtype, trailing shape, compressed)].  Offsets are chunked (they grow)
# but not compressed.  Every dataset's first axis grows.
_LAYOUT = {
    "records": [("key", _STR, (), True), ("pair_id", _STR, (), True), ("weight", np.float64, (), True),
                ("central_molecule", np.int32, (), True), ("atom_offset", np.int64, (), False),
                ("molecule_offset", np.int64, (), False), ("bond_offset", np.int64, (), False),
                ("frame_offset", np.int64, (), False)],
    "atoms": [("atomic_number", np.int32, (), True), ("formal_charge", np.int32, (), True),
              ("molecule_index", np.int32, (), True), ("anchor", np.int32, (), True)],
    "molecules": [("smiles", _STR, (), True), ("name", _STR, (), True), ("is_central", np.int8, (), True)],
    "bonds": [("index", np.int32, (2,), True), ("order", np.float32, (), True)],
    "frames": [("time", np.float64, (), True), ("box", np.float32, (3, 3), True),
               ("total_energy", np.float64, (), True), ("interaction_energy", np.float64, (), True),
               ("atom_offset", np.int64, (), False)],
    "frame_atoms": [("positions", np.float32, (3,), True), ("total_forces", np.float32, (3,), True),
                    ("interaction_forces", np.float32, (3,), True), ("direction_3dmrl", np.float32, (3,), True)],
    "skipped": [("key", _STR, (), True), ("pair_id", _STR, (), True), ("reason", _STR, (), True)],
}
_UNITS = {("records", "weight"): "1", ("atoms", "formal_charge"): "e", ("bonds", "order"): "1",
          ("frames", "time"): "ps", ("frames", "box"): "nm", ("frames", "total_energy"): "kJ/mol",
          ("frames", "interaction_energy"): "kJ/mol", ("frame_atoms", "positions"): "nm",
          ("frame_atoms", "total_forces"): "kJ/mol/nm", ("frame_atoms", "interaction_forces"): "kJ/mol/nm",
          ("frame_atoms", "direction_3dmrl"): "1"}
# Rows per chunk, by the size of a row: about 64 KiB per compressed chunk; offsets (uncompressed) 512 rows,
# so that a one-record journal entry stays small.
_CHUNK_BYTES = 1 << 16
_OFFSET_CHUNK_ROWS = 512
_OFFSETS = ("atom_offset", "molecule_offset", "bond_offset", "frame_offset")

_FOLD_MIN_BYTES = 16 << 20
_FOLD_BATCH_BYTES = 64 << 20


def _version():
    """The openmmmrl version when the package is imported (this module never imports it: it also works
    loaded on its own, e.g. in a subprocess)."""
    return getattr(sys.modules.get("openmmmrl"), "__version__", None) or "unknown"


# ----------------------------------------------------------------------------------------------------
# Records
# ----------------------------------------------------------------------------------------------------

@dataclass
class Record:
    """One interaction environment (``N`` atoms, ``M`` molecules, ``B`` bonds) and its ``F`` frames.

    Per-atom arrays have shape ``[N]``; per-frame arrays ``[F]``, ``[F, 3, 3]`` or ``[F, N, 3]``.
    Units: nm (positions, box), ps (time), kJ/mol (energies), kJ/mol/nm (forces).

    When a record is given to :meth:`DatasetWriter.add_record`, only ``key``, ``atomic_numbers`` and
    ``positions`` are required; the other fields default to: ``formal_charges`` 0, ``molecule_index`` 0
    (one molecule), ``anchor`` -1, ``smiles`` and ``molecule_names`` ``""``, ``is_central`` 0, no bonds,
    ``bond_orders`` 0 (unknown), ``box`` zero (not periodic), ``direction_3dmrl`` zero, and NaN for
    ``time``, energies and forces that are not known.
    """
    key: str                                   #: unique in a file, e.g. "p000012/c0"
    pair_id: str = ""                          #: the input's id (CSV ``id`` column, or a name)
    weight: float = 1.0                        #: sample weight
    central_molecule: int = 0                  #: local index of the central molecule (-1: none)
    atomic_numbers: Optional[np.ndarray] = None   #: [N] int32 (0 for virtual sites)
    formal_charges: Optional[np.ndarray] = None   #: [N] int32, elementary charges
    molecule_index: Optional[np.ndarray] = None   #: [N] int32, local molecule index
    anchor: Optional[np.ndarray] = None           #: [N] int32, 3DMRL anchor atom (local index) or -1
    smiles: Optional[List[str]] = None            #: [M] canonical SMILES, "" when unknown
    molecule_names: Optional[List[str]] = None    #: [M] e.g. "central", "partner", a residue name
    is_central: Optional[np.ndarray] = None       #: [M] int8, 1 for the central molecule(s)
    bonds: Optional[np.ndarray] = None            #: [B, 2] int32, local atom indices, each bond once
    bond_orders: Optional[np.ndarray] = None      #: [B] float32: 1, 1.5 (aromatic), 2, 3; 0 unknown
    time: Optional[np.ndarray] = None             #: [F] float64, ps
    box: Optional[np.ndarray] = None              #: [F, 3, 3] float32, nm, box vectors as rows
    total_energy: Optional[np.ndarray] = None     #: [F] float64, kJ/mol, of the whole System
    interaction_energy: Optional[np.ndarray] = None   #: [F] float64, kJ/mol, intermolecular part
    positions: Optional[np.ndarray] = None            #: [F, N, 3] float32, nm
    total_forces: Optional[np.ndarray] = None         #: [F, N, 3] float32, kJ/mol/nm
    interaction_forces: Optional[np.ndarray] = None   #: [F, N, 3] float32, kJ/mol/nm (NaN: unknown)
    direction_3dmrl: Optional[np.ndarray] = None      #: [F, N, 3] float32, unit vectors or zero

    @property
    def num_atoms(self) -> int:
        return len(self.atomic_numbers)

    @property
    def num_frames(self) -> int:
        return len(self.positions)

    @property
    def num_molecules(self) -> int:
        return len(self.smiles)

    def __repr__(self):
        def count(value):
            return "?" if value is None else len(value)
        return (f"Record(key={self.key!r}, pair_id={self.pair_id!r}, atoms={count(self.atomic_numbers)}, "
                f"molecules={count(self.smiles)}, bonds={count(self.bonds)}, frames={count(self.positions)})")

    @classmethod
    def from_dict(cls, values: dict) -> "Record":
        """A Record from a dict with the field names of this class (unknown names are an error)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"record fields {unknown} are unknown; the fields are {sorted(names)}")
        return cls(**values)

    def normalized(self) -> "Record":
        """A copy with defaults filled in and every array converted to the file's dtype and shape.

        Raises ValueError naming the field when a shape or an index is inconsistent.
        """
        if not isinstance(self.key, str) or not self.key or "\0" in self.key:
            raise ValueError(f"record key {self.key!r} must be a non-empty string")
        where = f"record {self.key!r}"
        if self.atomic_numbers is None or self.positions is None:
            raise ValueError(f"{where}: atomic_numbers and positions are required")
        z = _array(self.atomic_numbers, np.int32, where, "atomic_numbers", (None,))
        n = len(z)
        positions = np.asarray(self.positions, dtype=np.float32)
        if positions.ndim == 2 and positions.shape == (n, 3):  # a single frame
            positions = positions[None]
        positions = _array(positions, np.float32, where, "positions", (None, n, 3))
        f = len(positions)

        def per_atom(value, dtype, name, default):
            if value is None:
                return np.full(n, default, dtype)
            return _array(value, dtype, where, name, (n,))

        def per_frame(value, dtype, name, shape, default):
            if value is None:
                return np.full((f,) + shape, default, dtype)
            return _array(value, dtype, where, name, (f,) + shape)

        charges = per_atom(self.formal_charges, np.int32, "formal_charges", 0)
        mol = per_atom(self.molecule_index, np.int32, "molecule_index", 0)
        anchor = per_atom(self.anchor, np.int32, "anchor", -1)
        m = int(mol.max()) + 1 if n else 0
        if self.smiles is not None:
            m = len(self.smiles)
        elif self.molecule_names is not None:
            m = len(self.molecule_names)
        elif self.is_central is not None:
            m = len(self.is_central)
        smiles = _strings(self.smiles, m, where, "smiles")
        names = _strings(self.molecule_names, m, where, "molecule_names")
        is_central = (np.zeros(m, np.int8) if self.is_central is None
                      else _array(self.is_central, np.int8, where, "is_central", (m,)))
        if n and (mol.min() < 0 or mol.max() >= m):
            raise ValueError(f"{where}: molecule_index must lie in [0, {m}) (one entry per molecule in smiles)")
        if n and (anchor.min() < -1 or anchor.max() >= n):
            raise ValueError(f"{where}: anchor must be -1 or a local atom index in [0, {n})")
        central = int(self.central_molecule)
        if not -1 <= central < max(m, 0) and not (central == 0 and m == 0):
            raise ValueError(f"{where}: central_molecule {central} must be -1 or a molecule index in [0, {m})")
        bonds = (np.zeros((0, 2), np.int32) if self.bonds is None
                 else _array(np.asarray(self.bonds).reshape(-1, 2) if np.size(self.bonds) == 0 else self.bonds,
                             np.int32, where, "bonds", (None, 2)))
        if len(bonds) and (bonds.min() < 0 or bonds.max() >= n):
            raise ValueError(f"{where}: bonds must hold local atom indices in [0, {n})")
        orders = (np.zeros(len(bonds), np.float32) if self.bond_orders is None
                  else _array(self.bond_orders, np.float32, where, "bond_orders", (len(bonds),)))
        return Record(
            key=self.key, pair_id=str(self.pair_id), weight=float(self.weight), central_molecule=central,
            atomic_numbers=z, formal_charges=charges, molecule_index=mol, anchor=anchor, smiles=smiles,
            molecule_names=names, is_central=is_central, bonds=bonds, bond_orders=orders,
            time=per_frame(self.time, np.float64, "time", (), np.nan),
            box=per_frame(self.box, np.float32, "box", (3, 3), 0.0),
            total_energy=per_frame(self.total_energy, np.float64, "total_energy", (), np.nan),
            interaction_energy=per_frame(self.interaction_energy, np.float64, "interaction_energy", (), np.nan),
            positions=positions,
            total_forces=per_frame(self.total_forces, np.float32, "total_forces", (n, 3), np.nan),
            interaction_forces=per_frame(self.interaction_forces, np.float32, "interaction_forces", (n, 3), np.nan),
            direction_3dmrl=per_frame(self.direction_3dmrl, np.float32, "direction_3dmrl", (n, 3), 0.0))


def _array(value, dtype, where, name, shape):
    a = np.ascontiguousarray(value, dtype=dtype)
    if a.ndim != len(shape) or any(s is not None and s != t for s, t in zip(shape, a.shape)):
        want = "[" + ", ".join("*" if s is None else str(s) for s in shape) + "]"
        raise ValueError(f"{where}: {name} has shape {list(a.shape)}, expected {want}")
    return a


def _strings(values, m, where, name):
    if values is None:
        return [""] * m
    if isinstance(values, str) or len(values) != m:
        raise ValueError(f"{where}: {name} must be a list of {m} strings (one per molecule)")
    return [str(v) for v in values]


# ----------------------------------------------------------------------------------------------------
# Low-level HDF5 access, shared by the reader, the journal and the fold
# ----------------------------------------------------------------------------------------------------

def _to_python(value):
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value[()]
    if isinstance(value, np.bytes_):
        return bytes(value).decode("utf-8")
    if isinstance(value, np.generic):
        return value.item()
    return value


def _read_attributes(h5) -> dict:
    return {name: _to_python(value) for name, value in h5.attrs.items()}


def _check_format(h5, path):
    fmt = _to_python(h5.attrs.get("format", None))
    if fmt != FORMAT:
        raise ValueError(f"{path} is not an openmm-mrl dataset (its root attribute 'format' is {fmt!r}, "
                         f"expected {FORMAT!r}); give a file written by mrl-envgen or openmmmrl.DatasetReporter")
    version = _to_python(h5.attrs.get("format_version", None))
    if not isinstance(version, int) or version < 1:
        raise ValueError(f"{path}: root attribute 'format_version' is {version!r}, expected {FORMAT_VERSION}")
    if version > FORMAT_VERSION:
        raise ValueError(f"{path} has dataset format version {version}, this openmmmrl reads version "
                         f"{FORMAT_VERSION}; update openmm-mrl")
    missing = [f"/{g}/{d}" for g, spec in _LAYOUT.items() for d, *_ in spec if f"{g}/{d}" not in h5]
    if missing:
        raise ValueError(f"{path} is an incomplete openmm-mrl dataset: it lacks {', '.join(missing)}")


def _open_h5(path, mode="r"):
    """h5py.File(path), with a ValueError that names the file and the fix when it cannot be read."""
    if not os.path.exists(path):
        raise ValueError(f"dataset file {path} does not exist; give the path of an existing dataset "
                         f"(written by mrl-envgen or openmmmrl.DatasetReporter)")
    try:
        return h5py.File(path, mode)
    except OSError as e:
        raise ValueError(f"{path} is not an HDF5 file ({e}); give a dataset written by mrl-envgen or "
                         f"openmmmrl.DatasetReporter") from None


def _create_layout(h5, attributes: dict):
    """Writes the root attributes and every (empty) dataset of the layout into a new file."""
    h5.attrs["format"] = FORMAT
    h5.attrs["format_version"] = np.int64(FORMAT_VERSION)
    for name, value in attributes.items():
        if isinstance(value, str):
            h5.attrs[name] = value
        elif isinstance(value, (bool, np.bool_)):
            h5.attrs[name] = np.int64(value)
        elif isinstance(value, (int, np.integer)):
            h5.attrs[name] = np.int64(value)
        else:
            h5.attrs[name] = np.float64(value)
    for group, spec in _LAYOUT.items():
        g = h5.create_group(group)
        for name, dtype, shape, compressed in spec:
            row_bytes = (16 if dtype is _STR else np.dtype(dtype).itemsize) * int(np.prod(shape, dtype=np.int64))
            rows = max(256, _CHUNK_BYTES // row_bytes) if compressed else _OFFSET_CHUNK_ROWS
            chunk = (rows,) + shape
            kwargs = {"compression": "gzip", "compression_opts": 4} if compressed else {}
            initial = 1 if name in _OFFSETS or (group, name) == ("frames", "atom_offset") else 0
            d = g.create_dataset(name, shape=(initial,) + shape, maxshape=(None,) + shape, dtype=dtype,
                                 chunks=chunk, **kwargs)
            if initial:
                d[0] = 0
            if (group, name) in _UNITS:
                d.attrs["units"] = _UNITS[(group, name)]


def _extend(dataset, values):
    count = len(values)
    if count == 0:
        return
    start = dataset.shape[0]
    dataset.resize(start + count, axis=0)
    dataset[start:start + count] = values


def _append(h5, records: Sequence[Record] = (), skipped: Sequence[Tuple[str, str, str]] = ()):
    """Appends normalized records and skips to an open dataset file: the one write path of this module,
    used both to write a journal entry and to fold entries into the file.  Each dataset is extended
    once for all the given records."""
    if records:
        R = h5["records"]
        counts = {"atom_offset": [r.num_atoms for r in records],
                  "molecule_offset": [r.num_molecules for r in records],
                  "bond_offset": [len(r.bonds) for r in records],
                  "frame_offset": [r.num_frames for r in records]}
        for name, values in counts.items():
            _extend(R[name], int(R[name][-1]) + np.cumsum(values, dtype=np.int64))
        _extend(R["key"], [r.key for r in records])
        _extend(R["pair_id"], [r.pair_id for r in records])
        _extend(R["weight"], np.array([r.weight for r in records], np.float64))
        _extend(R["central_molecule"], np.array([r.central_molecule for r in records], np.int32))

        def cat(name, dtype, shape=()):
            return np.concatenate([np.asarray(getattr(r, name), dtype).reshape((-1,) + shape) for r in records])

        for dataset, name in (("atoms/atomic_number", "atomic_numbers"), ("atoms/formal_charge", "formal_charges"),
                              ("atoms/molecule_index", "molecule_index"), ("atoms/anchor", "anchor")):
            _extend(h5[dataset], cat(name, np.int32))
        _extend(h5["molecules/smiles"], [s for r in records for s in r.smiles])
        _extend(h5["molecules/name"], [s for r in records for s in r.molecule_names])
        _extend(h5["molecules/is_central"], cat("is_central", np.int8))
        _extend(h5["bonds/index"], cat("bonds", np.int32, (2,)))
        _extend(h5["bonds/order"], cat("bond_orders", np.float32))
        _extend(h5["frames/time"], cat("time", np.float64))
        _extend(h5["frames/box"], cat("box", np.float32, (3, 3)))
        _extend(h5["frames/total_energy"], cat("total_energy", np.float64))
        _extend(h5["frames/interaction_energy"], cat("interaction_energy", np.float64))
        atoms_per_frame = np.concatenate([np.full(r.num_frames, r.num_atoms, np.int64) for r in records])
        _extend(h5["frames/atom_offset"], int(h5["frames/atom_offset"][-1]) + np.cumsum(atoms_per_frame))
        for name in ("positions", "total_forces", "interaction_forces", "direction_3dmrl"):
            _extend(h5["frame_atoms/" + name], cat(name, np.float32, (3,)))
    if skipped:
        for column, name in enumerate(("key", "pair_id", "reason")):
            _extend(h5["skipped/" + name], [str(s[column]) for s in skipped])


def _read_strings(dataset, start=0, stop=None) -> List[str]:
    if stop is None:
        stop = dataset.shape[0]
    if stop <= start:
        return []
    return [_to_python(v) for v in dataset.asstr()[start:stop]]


def _read_record(h5, r: int, offsets: Optional[Dict[str, np.ndarray]] = None) -> Record:
    """Record r of an open dataset file (the one read path, used by Dataset and by the fold)."""
    if offsets is None:
        offsets = {name: h5["records/" + name][r:r + 2] for name in _OFFSETS}
        base = 0
    else:
        base = r
    a0, a1 = (int(x) for x in offsets["atom_offset"][base:base + 2])
    m0, m1 = (int(x) for x in offsets["molecule_offset"][base:base + 2])
    b0, b1 = (int(x) for x in offsets["bond_offset"][base:base + 2])
    f0, f1 = (int(x) for x in offsets["frame_offset"][base:base + 2])
    n, f = a1 - a0, f1 - f0
    fa0, fa1 = (int(x) for x in h5["frames/atom_offset"][[f0, f1]]) if f else (0, 0)
    if fa1 - fa0 != n * f:
        raise ValueError(f"{h5.filename}: record {r} has {f} frames of {n} atoms but {fa1 - fa0} frame-atom rows")

    def per_frame_atom(name):
        return h5["frame_atoms/" + name][fa0:fa1].reshape(f, n, 3)

    return Record(
        key=_read_strings(h5["records/key"], r, r + 1)[0],
        pair_id=_read_strings(h5["records/pair_id"], r, r + 1)[0],
        weight=float(h5["records/weight"][r]),
        central_molecule=int(h5["records/central_molecule"][r]),
        atomic_numbers=h5["atoms/atomic_number"][a0:a1],
        formal_charges=h5["atoms/formal_charge"][a0:a1],
        molecule_index=h5["atoms/molecule_index"][a0:a1],
        anchor=h5["atoms/anchor"][a0:a1],
        smiles=_read_strings(h5["molecules/smiles"], m0, m1),
        molecule_names=_read_strings(h5["molecules/name"], m0, m1),
        is_central=h5["molecules/is_central"][m0:m1],
        bonds=h5["bonds/index"][b0:b1].reshape(-1, 2),
        bond_orders=h5["bonds/order"][b0:b1],
        time=h5["frames/time"][f0:f1],
        box=h5["frames/box"][f0:f1].reshape(f, 3, 3),
        total_energy=h5["frames/total_energy"][f0:f1],
        interaction_energy=h5["frames/interaction_energy"][f0:f1],
        positions=per_frame_atom("positions"),
        total_forces=per_frame_atom("total_forces"),
        interaction_forces=per_frame_atom("interaction_forces"),
        direction_3dmrl=per_frame_atom("direction_3dmrl"))


def _read_skipped(h5) -> List[Tuple[str, str, str]]:
    columns = [_read_strings(h5["skipped/" + name]) for name in ("key", "pair_id", "reason")]
    return list(zip(*columns))


# ----------------------------------------------------------------------------------------------------
# Reader
# ----------------------------------------------------------------------------------------------------

class Dataset:
    """Read-only access to a dataset file (never to its journal).

    ``len(ds)`` is the number of records; ``ds.record(i)`` returns record ``i`` (or the record with a
    given key) as a :class:`Record`; ``ds.iter_frames()`` streams every frame.  Units: nm, ps, kJ/mol,
    kJ/mol/nm.  Use it as a context manager, or call :meth:`close`.

    Raises ValueError naming the file when it is missing, is not HDF5, or is not an openmm-mrl dataset.
    A leftover journal (``PATH.journal/``, records of an interrupted run not yet folded into the file)
    gives a warning: those records are not visible until a writer folds them.
    """

    def __init__(self, path: Union[str, os.PathLike]):
        self.path = os.fspath(path)
        self._h5 = _open_h5(self.path, "r")
        try:
            _check_format(self._h5, self.path)
            self.attributes: dict = _read_attributes(self._h5)
            self._offsets = {name: self._h5["records/" + name][:] for name in _OFFSETS}
            self._keys = _read_strings(self._h5["records/key"])
            if any(len(self._offsets[name]) != len(self._keys) + 1 for name in _OFFSETS):
                raise ValueError(f"{self.path}: /records/*_offset must have one row more than /records/key")
        except BaseException:
            self._h5.close()
            raise
        self._index = {key: r for r, key in enumerate(self._keys)}
        if glob.glob(os.path.join(glob.escape(self.path + ".journal"), "*.h5")):
            warnings.warn(f"{self.path} has an unfolded journal ({self.path}.journal/): records of an "
                          f"interrupted run are not in the file yet; open a DatasetWriter on it (or rerun the "
                          f"command, or mrl-envgen merge) to fold them", stacklevel=2)

    def __len__(self) -> int:
        return len(self._keys)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self._h5.close()

    def __repr__(self):
        return f"Dataset({self.path!r}: {len(self)} records, {self.num_frames()} frames)"

    def keys(self) -> List[str]:
        """The record keys, in file order."""
        return list(self._keys)

    def index(self, key: str) -> int:
        """The record number of a key (ValueError when absent)."""
        try:
            return self._index[key]
        except KeyError:
            raise ValueError(f"{self.path} has no record with key {key!r}") from None

    def __contains__(self, key) -> bool:
        return key in self._index

    def frame_counts(self) -> np.ndarray:
        """Frames per record, ``[R]`` int64."""
        return np.diff(self._offsets["frame_offset"])

    def atom_counts(self) -> np.ndarray:
        """Atoms per record, ``[R]`` int64."""
        return np.diff(self._offsets["atom_offset"])

    def num_frames(self) -> int:
        """Total number of frames over all records."""
        return int(self._offsets["frame_offset"][-1])

    def record(self, i: Union[int, str]) -> Record:
        """Record ``i`` (a record number, negative counts from the end, or a key) with all its frames."""
        if isinstance(i, str):
            i = self.index(i)
        i = int(i)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"record {i} out of range: {self.path} has {len(self)} records")
        return _read_record(self._h5, i, self._offsets)

    def records(self) -> Iterator[Record]:
        """Every record, in file order."""
        for r in range(len(self)):
            yield self.record(r)

    def skipped(self) -> List[Tuple[str, str, str]]:
        """The inputs that gave no record: a list of ``(key, pair_id, reason)``."""
        return _read_skipped(self._h5)

    def iter_frames(self, records: Optional[Sequence[int]] = None,
                    max_rows: int = 1 << 20) -> Iterator[dict]:
        """Yields one dict per frame, reading frame data in large contiguous blocks.

        Keys: ``record`` (record number), ``key``, ``pair_id``, ``weight``, ``frame`` (frame number in
        the file), ``time`` (ps), ``box`` ([3,3] nm), ``total_energy``, ``interaction_energy`` (kJ/mol),
        ``positions`` ([N,3] nm), ``total_forces``, ``interaction_forces`` ([N,3] kJ/mol/nm),
        ``direction_3dmrl`` ([N,3]), and the record's topology: ``atomic_numbers``,
        ``formal_charges``, ``molecule_index``, ``anchor``, ``is_central_atom`` (``[N]`` bool: the atom
        belongs to a central molecule), ``bonds``, ``bond_orders``.  Topology arrays are shared between
        the frames of a record: do not modify them in place.

        ``records``: record numbers to read (default all, in order).  ``max_rows``: the most
        frame-atom rows read at once (memory bound).
        """
        h5, off = self._h5, self._offsets
        for r in (range(len(self)) if records is None else records):
            a0, a1 = int(off["atom_offset"][r]), int(off["atom_offset"][r + 1])
            b0, b1 = int(off["bond_offset"][r]), int(off["bond_offset"][r + 1])
            m0, m1 = int(off["molecule_offset"][r]), int(off["molecule_offset"][r + 1])
            f0, f1 = int(off["frame_offset"][r]), int(off["frame_offset"][r + 1])
            n = a1 - a0
            mol = h5["atoms/molecule_index"][a0:a1]
            is_central = h5["molecules/is_central"][m0:m1].astype(bool)
            topology = {
                "record": r, "key": self._keys[r],
                "pair_id": _read_strings(h5["records/pair_id"], r, r + 1)[0],
                "weight": float(h5["records/weight"][r]),
                "atomic_numbers": h5["atoms/atomic_number"][a0:a1],
                "formal_charges": h5["atoms/formal_charge"][a0:a1],
                "molecule_index": mol, "anchor": h5["atoms/anchor"][a0:a1],
                "is_central_atom": is_central[mol] if n else np.zeros(0, bool),
                "bonds": h5["bonds/index"][b0:b1].reshape(-1, 2), "bond_orders": h5["bonds/order"][b0:b1],
            }
            step = max(1, max_rows // max(n, 1))
            for s0 in range(f0, f1, step):
                s1 = min(f1, s0 + step)
                k = s1 - s0
                fa0, fa1 = (int(x) for x in h5["frames/atom_offset"][[s0, s1]])
                if fa1 - fa0 != n * k:
                    raise ValueError(f"{self.path}: frames {s0}..{s1} of record {r} do not have {n} atoms each")
                block = {name: h5["frame_atoms/" + name][fa0:fa1].reshape(k, n, 3)
                         for name in ("positions", "total_forces", "interaction_forces", "direction_3dmrl")}
                time = h5["frames/time"][s0:s1]
                box = h5["frames/box"][s0:s1].reshape(k, 3, 3)
                total = h5["frames/total_energy"][s0:s1]
                inter = h5["frames/interaction_energy"][s0:s1]
                for j in range(k):
                    frame = dict(topology)
                    frame.update(frame=s0 + j, time=float(time[j]), box=box[j], total_energy=float(total[j]),
                                 interaction_energy=float(inter[j]),
                                 **{name: block[name][j] for name in block})
                    yield frame


# ----------------------------------------------------------------------------------------------------
# Writer
# ----------------------------------------------------------------------------------------------------

def _fsync_file(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path):
    try:
        fd = os.open(path or ".", os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems do not fsync directories
        pass
    finally:
        os.close(fd)


def _options_equal(a: str, b: str) -> bool:
    """Options JSON texts are equal when they parse to the same object (or, unparsable, are equal text)."""
    try:
        return json.loads(a) == json.loads(b)
    except (TypeError, ValueError):
        return a == b


def _remove(path):
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def _journal_name(key: str) -> str:
    return key.replace("/", "_")


def _fold(path: str, attributes: dict) -> set:
    """The fold of docs/dataset.md; returns every key (records and skips) of the folded file."""
    journal, tmp = path + ".journal", path + ".tmp"
    entries = sorted(glob.glob(os.path.join(glob.escape(journal), "*.h5")))
    exists = os.path.exists(path)
    if exists and not entries:
        with _open_h5(path) as h5:
            return set(_read_strings(h5["records/key"])) | {s[0] for s in _read_skipped(h5)}
    # Read every entry's keys first, so that entries are appended in key order.
    items = []  # (key, entry path, is_record)
    for entry in entries:
        with _open_h5(entry) as h5:
            _check_format(h5, entry)
            _check_options(_to_python(h5.attrs.get("options_json", "")), attributes["options_json"],
                           f"journal entry {entry}", path)
            items += [(k, entry, True) for k in _read_strings(h5["records/key"])]
            items += [(s[0], entry, False) for s in _read_skipped(h5)]
    items.sort(key=lambda item: (item[0], not item[2]))
    if exists:
        with _open_h5(path) as h5:
            _check_format(h5, path)
            done = set(_read_strings(h5["records/key"])) | {s[0] for s in _read_skipped(h5)}
        if all(key in done for key, _, _ in items):  # every entry was folded before: only delete them
            _delete_entries(journal, entries)
            return done
    _remove(tmp)
    if exists:
        shutil.copyfile(path, tmp)
    with h5py.File(tmp, "a" if exists else "w") as out:
        if not exists:
            _create_layout(out, attributes)
        done = set(_read_strings(out["records/key"])) | {s[0] for s in _read_skipped(out)}
        records, skipped, batch_bytes = [], [], 0
        for key, entry, is_record in items:
            if key in done:
                continue  # folded before: the entry's deletion was interrupted
            with h5py.File(entry, "r") as h5:
                if is_record:
                    r = _read_strings(h5["records/key"]).index(key)
                    records.append(_read_record(h5, r))
                    batch_bytes += records[-1].positions.nbytes * 4
                else:
                    skipped += [s for s in _read_skipped(h5) if s[0] == key][:1]
            done.add(key)
            if batch_bytes >= _FOLD_BATCH_BYTES:  # bound the memory: append in batches, in key order
                _append(out, records=records)
                records, batch_bytes = [], 0
        _append(out, records=records, skipped=skipped)
    _fsync_file(tmp)
    os.replace(tmp, path)
    _fsync_dir(os.path.dirname(path))
    _delete_entries(journal, entries)
    return done


def _delete_entries(journal, entries):
    """Deletes folded journal entries, and the journal directory when it is empty."""
    for entry in entries:
        _remove(entry)
    if entries:
        _fsync_dir(journal)
        try:
            os.rmdir(journal)
        except OSError:
            pass


def _check_options(existing: str, mine: str, where: str, path: str):
    if not _options_equal(existing, mine):
        raise ValueError(f"{where} was written with different options:\n  there: {existing}\n  now:   {mine}\n"
                         f"write to a new output file, or pass overwrite=True to replace {path}")


def _finalize_writer(state):
    if state["open"]:
        state["open"] = False
        try:
            _fold(state["path"], state["attributes"])
        except Exception as e:  # never raise at interpreter exit
            print(f"openmmmrl.DatasetWriter: could not fold {state['path']}: {e}", file=sys.stderr)


class DatasetWriter:
    """Appends records to a dataset file, crash-safely (docs/dataset.md, "Crash safety: the journal").

    ``DatasetWriter(path, attributes, overwrite=False)`` creates ``path`` or opens it for appending.
    ``attributes`` are the root attributes: ``tool``, ``command_line``, ``options_json`` (a JSON text or
    a dict), ``force_field``, ``temperature_K`` (K), ``timestep_ps`` (ps), ``seed``,
    ``interaction_forces``; missing ones take the defaults of ``ATTRIBUTE_DEFAULTS``.

    An existing file must have been made with the same ``options_json`` (compared as JSON objects):
    otherwise ValueError (write to a new file, or pass ``overwrite=True``).  Its other attributes are
    kept.  A journal left by an interrupted run is folded first; stale ``.tmp`` files are removed.

    Each :meth:`add_record` / :meth:`add_skipped` is durable when it returns (a journal entry).  The
    journal is folded into the file when it holds at least ``max(file size / 4, fold_bytes)`` bytes, on
    :meth:`fold`, on :meth:`close`, on leaving a ``with`` block and (best effort) at interpreter exit.
    Only one writer may use a path at a time.
    """

    def __init__(self, path: Union[str, os.PathLike], attributes: Optional[dict] = None, overwrite: bool = False,
                 fold_bytes: int = _FOLD_MIN_BYTES):
        self.path = os.path.abspath(os.fspath(path))
        self.journal = self.path + ".journal"
        self._tmp = self.path + ".tmp"
        self.fold_bytes = int(fold_bytes)
        self.attributes = self._complete_attributes(attributes or {})
        directory = os.path.dirname(self.path)
        if not os.path.isdir(directory):
            raise ValueError(f"cannot write dataset {self.path}: directory {directory} does not exist; create it")
        if overwrite:
            _remove(self.path)
            _remove(self._tmp)
            shutil.rmtree(self.journal, ignore_errors=True)
            _fsync_dir(directory)
        _remove(self._tmp)  # a fold that was interrupted before its rename: PATH is still complete
        if os.path.exists(self.path):
            with _open_h5(self.path) as h5:
                _check_format(h5, self.path)
                _check_options(_to_python(h5.attrs.get("options_json", "")), self.attributes["options_json"],
                               self.path, self.path)
        for stale in glob.glob(os.path.join(glob.escape(self.journal), "*.tmp")):
            _remove(stale)  # a journal entry whose write was interrupted: never complete
        self._closed = False
        self._journal_bytes = 0
        self.records_written = 0
        self.fold()  # folds a leftover journal; creates the file when missing
        # Fold at interpreter exit (or when the writer is garbage collected unclosed).
        self._state = {"open": True, "path": self.path, "attributes": self.attributes}
        self._finalizer = weakref.finalize(self, _finalize_writer, self._state)

    # -- attributes --------------------------------------------------------------------------------
    @staticmethod
    def _complete_attributes(attributes: dict) -> dict:
        unknown = sorted(set(attributes) - set(ATTRIBUTE_DEFAULTS))
        if unknown:
            raise ValueError(f"unknown dataset attributes {unknown}; the root attributes are "
                             f"{sorted(ATTRIBUTE_DEFAULTS)}")
        result = dict(ATTRIBUTE_DEFAULTS)
        result["tool"] = f"openmmmrl {_version()}"
        result["command_line"] = " ".join(sys.argv)
        result.update({k: v for k, v in attributes.items() if v is not None})
        if not isinstance(result["options_json"], str):
            result["options_json"] = json.dumps(result["options_json"], sort_keys=True)
        try:
            if not isinstance(json.loads(result["options_json"]), dict):
                raise ValueError
        except ValueError:
            raise ValueError(f"options_json must be a JSON object, got {result['options_json']!r}") from None
        for name in ("tool", "command_line", "force_field", "interaction_forces"):
            result[name] = str(result[name])
        for name in ("temperature_K", "timestep_ps"):
            result[name] = float(result[name])
        result["seed"] = int(result["seed"])
        return result

    # -- public API --------------------------------------------------------------------------------
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def contains(self, key: str) -> bool:
        """True when a record or a skip with this key is in the file or in the journal."""
        return key in self._done

    def __contains__(self, key) -> bool:
        return self.contains(key)

    def keys(self) -> set:
        """Every key (records and skips) in the file or the journal."""
        return set(self._done)

    def add_record(self, record: Union[Record, dict]):
        """Writes one record (a :class:`Record` or a dict of its fields) durably to the journal, and
        folds when the journal has grown enough.  ValueError when the key is already present."""
        self._check_open()
        if isinstance(record, dict):
            record = Record.from_dict(record)
        record = record.normalized()
        self._write_entry(record.key, records=[record])
        self.records_written += 1

    def add_skipped(self, key: str, pair_id: str, reason: str):
        """Records durably that the input ``key`` gave no record (and why)."""
        self._check_open()
        if not isinstance(key, str) or not key or "\0" in key:
            raise ValueError(f"skipped key {key!r} must be a non-empty string")
        self._write_entry(key, skipped=[(key, str(pair_id), str(reason))])

    def fold(self):
        """Appends every journal entry not yet in the file (in key order) to a copy of the file, fsyncs
        it, renames it over the file, then deletes the journal entries.  Creates the file if missing."""
        self._done = _fold(self.path, self.attributes)
        self._journal_bytes = 0

    def close(self):
        """Folds the journal into the file.  The writer cannot be used afterwards."""
        if self._closed:
            return
        self._closed = True
        self._state["open"] = False
        self.fold()

    @property
    def closed(self) -> bool:
        return self._closed

    # -- internals ---------------------------------------------------------------------------------
    def _check_open(self):
        if self._closed:
            raise ValueError(f"DatasetWriter for {self.path} is closed; open a new DatasetWriter to append")

    def _write_entry(self, key, records=(), skipped=()):
        if key in self._done:
            raise ValueError(f"key {key!r} is already in {self.path} (or its journal); check "
                             f"writer.contains(key) before adding, or use a unique key")
        os.makedirs(self.journal, exist_ok=True)
        name = _journal_name(key)
        final = os.path.join(self.journal, name + ".h5")
        if os.path.exists(final):
            raise ValueError(f"journal entry {final} exists for another key whose name maps to {name!r} "
                             f"('/' is written as '_'); use keys that differ in more than '/' vs '_'")
        tmp = os.path.join(self.journal, name + ".tmp")
        with h5py.File(tmp, "w") as h5:
            _create_layout(h5, self.attributes)
            _append(h5, records=records, skipped=skipped)
        _fsync_file(tmp)
        os.replace(tmp, final)
        _fsync_dir(self.journal)
        self._done.add(key)
        self._journal_bytes += os.path.getsize(final)
        if self._journal_bytes >= max(os.path.getsize(self.path) / 4, self.fold_bytes):
            self.fold()
