# SPDX-License-Identifier: MIT
"""Writing openmm-mrl dataset files crash-safely (docs/dataset.md, "Crash safety: the journal")."""
import glob
import json
import os
import shutil
import sys
import weakref
from typing import Optional, Sequence, Tuple, Union

import h5py
import numpy as np

from .reader import (FORMAT, FORMAT_VERSION, _LAYOUT, _UNITS, _CHUNK_BYTES, _OFFSET_CHUNK_ROWS, _OFFSETS, _STR,
                     _check_format, _open_h5, _read_record, _read_skipped, _read_strings, _to_python)
from .._version import __version__
from .records import Record

__all__ = ["DatasetWriter", "ATTRIBUTE_DEFAULTS"]

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

_FOLD_MIN_BYTES = 16 << 20
_FOLD_BATCH_BYTES = 64 << 20



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
