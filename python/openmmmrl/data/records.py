# SPDX-License-Identifier: MIT
"""Records of the openmm-mrl dataset (docs/dataset.md): one interaction environment and its frames.

Units are OpenMM's: nm, ps, kJ/mol, kJ/mol/nm, elementary charges.  Only numpy is needed.
"""
import dataclasses
from dataclasses import dataclass
from typing import Dict, List, Optional

import numpy as np

__all__ = ["Record"]


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
    #: label sets (format version 2): {name: {"total_energy": [F] kJ/mol, "interaction_energy": [F] kJ/mol,
    #: "total_forces": [F, N, 3] kJ/mol/nm, "interaction_forces": [F, N, 3] kJ/mol/nm}}
    labels: Optional[Dict[str, Dict[str, np.ndarray]]] = None

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
            direction_3dmrl=per_frame(self.direction_3dmrl, np.float32, "direction_3dmrl", (n, 3), 0.0),
            labels={name: _label_set(values, f, n, f"{where}: label set {name!r}")
                    for name, values in (self.labels or {}).items()})


LABEL_FIELDS = {"total_energy": (np.float64, ()), "interaction_energy": (np.float64, ()),
                "total_forces": (np.float32, (3,)), "interaction_forces": (np.float32, (3,))}


def _label_set(values: dict, f: int, n: int, where: str) -> Dict[str, np.ndarray]:
    """A label set's arrays, checked: every field of LABEL_FIELDS, one row per frame (forces per atom)."""
    if not isinstance(values, dict) or set(values) != set(LABEL_FIELDS):
        raise ValueError(f"{where} needs exactly the arrays {sorted(LABEL_FIELDS)}")
    return {name: _array(values[name], dtype, where, name, (f,) + ((n,) + tail if tail else ()))
            for name, (dtype, tail) in LABEL_FIELDS.items()}


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

