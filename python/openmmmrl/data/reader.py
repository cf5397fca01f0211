# SPDX-License-Identifier: MIT
"""Reading openmm-mrl dataset files (docs/dataset.md) with h5py.

>>> from openmmmrl.data import Dataset
>>> with Dataset("run.h5") as ds:
...     rec = ds.record(0)                 # a Record: numpy arrays, per-frame arrays [F, N, 3]
...     for frame in ds.iter_frames():     # one dict per frame, for training
...         frame["positions"], frame["total_forces"]

Units are OpenMM's everywhere: positions and box in nm, time in ps, energies in kJ/mol, forces in
kJ/mol/nm, charges in elementary charges.  Only numpy and h5py are needed (not OpenMM).
"""
import contextlib
import glob
import os
import warnings
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

import h5py
import numpy as np

from . import _core
from .records import LABEL_FIELDS, Record

__all__ = ["Dataset", "layout", "format_version"]

_OFFSETS = ("atom_offset", "molecule_offset", "bond_offset", "frame_offset")
#: The column whose rows each record offset counts.
_OFFSET_ROWS = {"atom_offset": "atoms/atomic_number", "molecule_offset": "molecules/smiles",
                "bond_offset": "bonds/index", "frame_offset": "frames/time"}
#: What h5py and numpy raise on a file whose bytes were changed (a failed filter, a missing object, a wrong type,
#: an index beyond an array): turned into the ValueError that names the file.
_DAMAGE_ERRORS = (OSError, KeyError, RuntimeError, IndexError, TypeError, OverflowError, AttributeError)


@contextlib.contextmanager
def _damaged(path):
    """Reading a dataset file: h5py's and numpy's errors on damaged bytes become a ValueError naming the file."""
    try:
        yield
    except _DAMAGE_ERRORS as e:
        raise ValueError(f"{path} is a damaged openmm-mrl dataset ({type(e).__name__}: {e}); it cannot be read "
                         f"as written: rebuild it, or restore a copy") from e


def _check_offsets(h5, offsets: Dict[str, np.ndarray], path):
    """Every record offset column runs from 0, never decreases, and stays within the rows it counts."""
    for name, column in _OFFSET_ROWS.items():
        o, rows = offsets[name], h5[column].shape[0]
        if len(o) == 0 or o[0] != 0 or np.any(np.diff(o) < 0) or o[-1] > rows:
            raise ValueError(f"{path} is a damaged openmm-mrl dataset: /records/{name} does not run from 0 upwards "
                             f"to at most the {rows} rows of /{column}; rebuild it, or restore a copy")


def layout(label_set: Optional[str] = None) -> List[Tuple[str, str, str, tuple, bool, str]]:
    """The dataset layout (docs/dataset.md), from its one definition in C++ (``MRLDatasetLayout.h``):
    one ``(group, name, dtype, row shape, is_offset, units)`` per HDF5 dataset; dtype is a numpy dtype
    name or ``"str"``, units ``""`` for none.  With ``label_set``: the datasets of that label set
    (group ``labels/<label_set>``, format version 2)."""
    if label_set is None:
        return [tuple(row) for row in _core.core().layout(False)]
    return [(f"labels/{label_set}",) + tuple(row)[1:] for row in _core.core().layout(True)]


def label_set_names(h5) -> List[str]:
    """The label sets of an open file, in order (root attribute ``label_sets``; none in version 1)."""
    text = _to_python(h5.attrs.get("label_sets", ""))
    return [name for name in text.split(",") if name] if isinstance(text, str) else []


def format_version() -> int:
    """The dataset format version this release writes and reads."""
    return _core.core().formatVersion()


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


def _claims_more_than_it_stores(d) -> bool:
    """Deflate expands at most 1032:1 and the writer writes every chunk, so a column stores at least 1/1032 of what
    it holds (1 MiB of slack); a damaged shape (10^12 rows over a few bytes) is refused before anything is read.
    The same rule as the C++ reader's."""
    logical, slack = d.size * d.dtype.itemsize, 1 << 20
    return logical > slack and logical // 1032 > d.id.get_storage_size() + slack


def _check_format(h5, path):
    """Checks the root attributes and every dataset of the layout (presence, element kind, row shape)."""
    core = _core.core()
    name, version_read, oldest = core.formatName(), core.formatVersion(), core.oldestFormatVersion()
    fmt = _to_python(h5.attrs.get("format", None))
    if fmt != name:
        raise ValueError(f"{path} is not an openmm-mrl dataset (its root attribute 'format' is {fmt!r}, "
                         f"expected {name!r}); give a file written by mrl-envgen or openmmmrl.DatasetReporter")
    version = _to_python(h5.attrs.get("format_version", None))
    if not isinstance(version, int) or version < oldest:
        raise ValueError(f"{path}: root attribute 'format_version' is {version!r}, expected {oldest} to {version_read}")
    if version > version_read:
        raise ValueError(f"{path} has dataset format version {version}, this openmmmrl reads versions "
                         f"{oldest} to {version_read}; update openmm-mrl")
    missing, wrong = [], []
    columns = layout() + [row for name in label_set_names(h5) for row in layout(name)]
    for group, dataset, dtype, shape, _, _ in columns:
        where = f"/{group}/{dataset}"
        if f"{group}/{dataset}" not in h5:
            missing.append(where)
            continue
        d = h5[f"{group}/{dataset}"]
        kind_ok = (h5py.check_string_dtype(d.dtype) is not None if dtype == "str"
                   else d.dtype.kind == np.dtype(dtype).kind)
        if not kind_ok or tuple(d.shape[1:]) != tuple(shape):
            wrong.append(f"{where} is {d.dtype}{list(d.shape)}, expected {dtype}[*{''.join(f', {n}' for n in shape)}]")
        elif _claims_more_than_it_stores(d):
            wrong.append(f"{where} says it holds {d.size * d.dtype.itemsize} bytes but stores only "
                         f"{d.id.get_storage_size()}")
    if missing:
        raise ValueError(f"{path} is an incomplete openmm-mrl dataset: it lacks {', '.join(missing)}")
    if wrong:
        raise ValueError(f"{path} is a damaged openmm-mrl dataset: {'; '.join(wrong)}")


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
        direction_3dmrl=per_frame_atom("direction_3dmrl"),
        labels={name: {field: (h5[f"labels/{name}/{field}"][fa0:fa1].reshape(f, n, 3) if field.endswith("forces")
                               else h5[f"labels/{name}/{field}"][f0:f1]) for field in LABEL_FIELDS}
                for name in label_set_names(h5)})


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

    Raises ValueError naming the file when it is missing, is not HDF5, or is not an openmm-mrl dataset, and
    (every method) when its bytes are damaged.
    A leftover journal (``PATH.journal/``, records of an interrupted run not yet folded into the file)
    gives a warning: those records are not visible until a writer folds them.
    """

    def __init__(self, path: Union[str, os.PathLike]):
        self.path = os.fspath(path)
        self._h5 = _open_h5(self.path, "r")
        try:
            with _damaged(self.path):
                _check_format(self._h5, self.path)
                self.attributes: dict = _read_attributes(self._h5)
                #: the label sets (format version 2): {name: method}
                self.label_sets: Dict[str, str] = {
                    name: _to_python(self._h5[f"labels/{name}"].attrs.get("method", ""))
                    for name in label_set_names(self._h5)}
                self._offsets = {name: np.asarray(self._h5["records/" + name][:], np.int64) for name in _OFFSETS}
                self._keys = _read_strings(self._h5["records/key"])
                if any(len(self._offsets[name]) != len(self._keys) + 1 for name in _OFFSETS):
                    raise ValueError(f"{self.path}: /records/*_offset must have one row more than /records/key")
                _check_offsets(self._h5, self._offsets, self.path)
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
        with _damaged(self.path):
            return _read_record(self._h5, i, self._offsets)

    def records(self) -> Iterator[Record]:
        """Every record, in file order."""
        for r in range(len(self)):
            yield self.record(r)

    def skipped(self) -> List[Tuple[str, str, str]]:
        """The inputs that gave no record: a list of ``(key, pair_id, reason)``."""
        with _damaged(self.path):
            return _read_skipped(self._h5)

    def iter_frames(self, records: Optional[Sequence[int]] = None,
                    max_rows: int = 1 << 20) -> Iterator[dict]:
        """Yields one dict per frame, reading frame data in large contiguous blocks.

        Keys: ``record`` (record number), ``key``, ``pair_id``, ``weight``, ``frame`` (frame number in
        the file), ``time`` (ps), ``box`` ([3,3] nm), ``total_energy``, ``interaction_energy`` (kJ/mol),
        ``positions`` ([N,3] nm), ``total_forces``, ``interaction_forces`` ([N,3] kJ/mol/nm),
        ``direction_3dmrl`` ([N,3]), ``labels`` ({label set: {``total_energy``, ``interaction_energy`` (kJ/mol),
        ``total_forces``, ``interaction_forces`` ([N,3] kJ/mol/nm)}}, empty for files without label sets), and the record's topology: ``atomic_numbers``,
        ``formal_charges``, ``molecule_index``, ``anchor``, ``is_central_atom`` (``[N]`` bool: the atom
        belongs to a central molecule), ``bonds``, ``bond_orders``.  Topology arrays are shared between
        the frames of a record: do not modify them in place.

        ``records``: record numbers to read (default all, in order).  ``max_rows``: the most
        frame-atom rows read at once (memory bound).
        """
        records = range(len(self)) if records is None else [int(r) for r in records]
        for r in records:
            if not 0 <= r < len(self):
                raise IndexError(f"record {r} out of range: {self.path} has {len(self)} records")
        with _damaged(self.path):
            yield from self._frames(records, max_rows)

    def _frames(self, records, max_rows: int) -> Iterator[dict]:
        h5, off = self._h5, self._offsets
        for r in records:
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
                labels = {name: {field: (h5[f"labels/{name}/{field}"][fa0:fa1].reshape(k, n, 3)
                                         if field.endswith("forces") else h5[f"labels/{name}/{field}"][s0:s1])
                                 for field in LABEL_FIELDS} for name in self.label_sets}
                for j in range(k):
                    frame = dict(topology)
                    frame.update(frame=s0 + j, time=float(time[j]), box=box[j], total_energy=float(total[j]),
                                 interaction_energy=float(inter[j]),
                                 labels={name: {field: values[field][j] for field in values}
                                         for name, values in labels.items()},
                                 **{name: block[name][j] for name in block})
                    yield frame

