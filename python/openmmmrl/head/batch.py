# SPDX-License-Identifier: MIT
"""Frames of openmm-mrl datasets in memory, split by molecule, and batched as graphs for the force head.

Units: nm, kJ/mol, kJ/mol/nm (the dataset's).
"""
import hashlib
import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from ..data import Dataset


@dataclass
class Frame:
    """One frame with its environment's topology (numpy arrays, shared between frames of a record)."""
    environment: int                 #: index of the environment (record) among all loaded files
    group: str                       #: split key (``split_key``): the central molecules' SMILES
    source: str                      #: "file:key"
    atomic_numbers: np.ndarray       #: [N] int64
    formal_charges: np.ndarray       #: [N] int64
    molecule_index: np.ndarray       #: [N] int64
    bonds: np.ndarray                #: [B, 2] int64
    bond_orders: np.ndarray          #: [B] float32
    positions: np.ndarray            #: [N, 3] float32, nm
    box: Optional[np.ndarray]        #: [3, 3] float32, nm (rows), None when not periodic
    total_energy: float              #: kJ/mol
    interaction_energy: float        #: kJ/mol (NaN: unknown)
    total_forces: np.ndarray         #: [N, 3] float32, kJ/mol/nm
    interaction_forces: np.ndarray   #: [N, 3] float32, kJ/mol/nm (NaN: unknown)

    @property
    def num_atoms(self) -> int:
        return len(self.atomic_numbers)

    @property
    def has_interaction(self) -> bool:
        return bool(np.isfinite(self.interaction_energy)) and bool(np.isfinite(self.interaction_forces).all())


def split_key(record, path: str) -> str:
    """The group of a dataset record (an ``openmmmrl.Record`` of the file ``path``) for the split into
    train, validation and test: its central molecules' SMILES, sorted and joined by ".", else its
    pair id, else "path:key"."""
    central = [s for s, c in zip(record.smiles or [], record.is_central) if c and s]
    return ".".join(sorted(central)) or record.pair_id or f"{path}:{record.key}"


def load_frames(paths: Sequence[str], delta_of: Optional[str] = None) -> List[Frame]:
    """Every frame of the given dataset files, in file and record order.

    ``delta_of``: the name of a label set (dataset format v2, e.g. "gfn2"): each frame's interaction energy
    and forces become that label set's minus the file's own (e.g. GFN2-xTB − MMFF94), the targets of a
    correction head; every file must carry the label set."""
    frames: List[Frame] = []
    environment = 0
    for path in paths:
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path}: no such dataset; make one with mrl-envgen build (see --help)")
        with Dataset(path) as data:
            if delta_of is not None and delta_of not in data.label_sets:
                raise ValueError(f"{path} has no label set {delta_of!r} (it has {sorted(data.label_sets) or 'none'}); "
                                 f"add one with python -m openmmmrl.relabel")
            records = {r.key: r for r in data.records()} if len(data) else {}
            last = None
            for f in data.iter_frames():
                if f["record"] != last:
                    last = f["record"]
                    environment += 1
                    group = split_key(records[f["key"]], path)
                    topology = dict(
                        atomic_numbers=f["atomic_numbers"].astype(np.int64),
                        formal_charges=f["formal_charges"].astype(np.int64),
                        molecule_index=f["molecule_index"].astype(np.int64),
                        bonds=f["bonds"].astype(np.int64).reshape(-1, 2),
                        bond_orders=f["bond_orders"].astype(np.float32))
                box = np.asarray(f["box"], np.float32)
                if delta_of is not None:
                    labels = f["labels"][delta_of]
                    f["interaction_energy"] = float(labels["interaction_energy"]) - float(f["interaction_energy"])
                    f["interaction_forces"] = (np.asarray(labels["interaction_forces"], np.float64)
                                               - np.asarray(f["interaction_forces"], np.float64))
                frames.append(Frame(environment=environment - 1, group=group, source=f"{path}:{f['key']}",
                                    positions=np.asarray(f["positions"], np.float32),
                                    box=box if np.any(box) else None,
                                    total_energy=float(f["total_energy"]),
                                    interaction_energy=float(f["interaction_energy"]),
                                    total_forces=np.asarray(f["total_forces"], np.float32),
                                    interaction_forces=np.asarray(f["interaction_forces"], np.float32),
                                    **topology))
    if not frames:
        raise ValueError(f"no frames in {', '.join(paths)}: the datasets are empty")
    return frames


def scaffold_of(group: str) -> str:
    """The Bemis-Murcko scaffold of a group's central molecules (a split key: SMILES joined by "."); a group
    without ring systems, or whose key is not SMILES, is a scaffold of its own."""
    from rdkit import Chem, RDLogger
    from rdkit.Chem.Scaffolds import MurckoScaffold
    RDLogger.DisableLog("rdApp.*")
    mol = Chem.MolFromSmiles(group)
    scaffold = MurckoScaffold.MurckoScaffoldSmiles(mol=mol) if mol is not None else ""
    return scaffold or f"acyclic:{group}"


def split_groups(groups: Sequence[str], seed: int, validation: float, test: float,
                 by_scaffold: bool = False) -> Dict[str, List[str]]:
    """Assigns each group (central molecule) to train, validation or test, deterministically for a seed.

    Groups are ordered by a hash of (seed, group) and cut at the fractions; validation and test get at
    least one group each when there are three or more groups.  With ``by_scaffold``, the test set is
    made of whole scaffolds (``scaffold_of``; ordered by a hash of (seed, scaffold) and taken until they
    hold the test fraction of the groups), so that no test molecule shares its ring system with a
    training molecule; validation is then cut from the other groups as before.
    """
    unique = sorted(set(groups))
    n = len(unique)
    n_test = max(1 if n >= 3 and test > 0 else 0, int(round(test * n)))
    n_val = max(1 if n >= 3 and validation > 0 else 0, int(round(validation * n)))
    if n_test + n_val >= n:
        raise ValueError(f"{n} molecule groups cannot be split into train, validation ({validation}) and test "
                         f"({test}) with at least one training group; use more pairs or smaller fractions")

    def order(items, salt=""):
        return sorted(items, key=lambda g: hashlib.sha256(f"{seed}:{salt}{g}".encode()).hexdigest())

    if by_scaffold:
        members: Dict[str, List[str]] = {}
        for group in unique:
            members.setdefault(scaffold_of(group), []).append(group)
        test_groups: List[str] = []
        for scaffold in order(members, "scaffold:"):
            if len(test_groups) >= n_test:
                break
            test_groups += members[scaffold]
        rest = order([g for g in unique if g not in set(test_groups)])
        if n_val >= len(rest):
            raise ValueError(f"the scaffold split leaves {len(rest)} groups for training and validation; use more "
                             f"pairs or smaller fractions")
        return {"test": sorted(test_groups), "validation": sorted(rest[:n_val]), "train": sorted(rest[n_val:])}
    ordered = order(unique)
    return {"test": sorted(ordered[:n_test]), "validation": sorted(ordered[n_test:n_test + n_val]),
            "train": sorted(ordered[n_test + n_val:])}


def neighbor_edges(positions: torch.Tensor, box: Optional[torch.Tensor], cutoff_nm: float):
    """Directed edges (i, j), i != j, with |r_j - r_i + shift| < cutoff_nm: ([2,E] int64, [E,3] shifts in nm).

    Periodic boxes are searched over the 27 nearest images, which finds every pair when the box's
    smallest width is at least twice the cutoff (checked)."""
    n = positions.shape[0]
    if box is None:
        d = torch.cdist(positions, positions)
        d.fill_diagonal_(float("inf"))
        i, j = torch.nonzero(d < cutoff_nm, as_tuple=True)
        return torch.stack([i, j]), torch.zeros(len(i), 3, dtype=positions.dtype)
    box = box.to(positions.dtype)
    volume = abs(float(torch.det(box)))
    widths = [volume / float(torch.linalg.norm(torch.linalg.cross(box[(k + 1) % 3], box[(k + 2) % 3])))
              for k in range(3)]
    if min(widths) < 2 * cutoff_nm:
        raise ValueError(f"a periodic box of width {min(widths):.3f} nm is narrower than twice the force head's "
                         f"cutoff ({cutoff_nm} nm)")
    edges, shifts = [], []
    for a in (-1, 0, 1):
        for b in (-1, 0, 1):
            for c in (-1, 0, 1):
                shift = a * box[0] + b * box[1] + c * box[2]
                d = torch.cdist(positions, positions + shift)
                if a == b == c == 0:
                    d.fill_diagonal_(float("inf"))
                i, j = torch.nonzero(d < cutoff_nm, as_tuple=True)
                edges.append(torch.stack([i, j]))
                shifts.append(shift.expand(len(i), 3))
    edge_index = torch.cat(edges, 1)
    order = torch.argsort(edge_index[0] * n + edge_index[1], stable=True)
    return edge_index[:, order], torch.cat(shifts)[order]


@dataclass
class Batch:
    """Frames concatenated into one graph (torch tensors; positions and labels in the batch dtype)."""
    frames: int
    positions: torch.Tensor          #: [N, 3]
    atomic_numbers: torch.Tensor     #: [N]
    molecule_index: torch.Tensor     #: [N] (unique across frames)
    graph_index: torch.Tensor        #: [N] frame of each atom
    edge_index: torch.Tensor         #: [2, E]
    edge_shift: torch.Tensor         #: [E, 3]
    boxes: List[Optional[torch.Tensor]]
    atom_counts: torch.Tensor        #: [frames]
    total_energy: torch.Tensor       #: [frames]
    interaction_energy: torch.Tensor  #: [frames] (NaN: unknown)
    total_forces: torch.Tensor       #: [N, 3]
    interaction_forces: torch.Tensor  #: [N, 3]
    has_interaction: torch.Tensor    #: [frames] bool
    environment: torch.Tensor        #: [frames]
    formal_charges: torch.Tensor     #: [N]
    bonds: torch.Tensor              #: [2, 2B] both directions
    bond_orders: torch.Tensor        #: [2B]

    def intra_edges(self) -> torch.Tensor:
        """A mask over edges: both atoms in the same molecule."""
        return self.molecule_index[self.edge_index[0]] == self.molecule_index[self.edge_index[1]]

    def edges_for(self, positions: torch.Tensor, cutoff_nm: float):
        """Edges of this batch's frames at other positions (e.g. noisy ones)."""
        return _batch_edges(positions.detach(), self.atom_counts.tolist(), self.boxes, cutoff_nm)


def _batch_edges(positions, counts, boxes, cutoff_nm):
    edges, shifts, start = [], [], 0
    for n, box in zip(counts, boxes):
        e, s = neighbor_edges(positions[start:start + n], box, cutoff_nm)
        edges.append(e + start)
        shifts.append(s)
        start += n
    return torch.cat(edges, 1), torch.cat(shifts)


def make_batch(frames: Sequence[Frame], cutoff_nm: float, dtype=torch.float32) -> Batch:
    counts = [f.num_atoms for f in frames]
    positions = torch.as_tensor(np.concatenate([f.positions for f in frames]), dtype=dtype)
    boxes = [None if f.box is None else torch.as_tensor(f.box, dtype=dtype) for f in frames]
    molecule, bonds, start, molecules = [], [], 0, 0
    for f in frames:
        molecule.append(f.molecule_index + molecules)
        molecules += int(f.molecule_index.max()) + 1 if f.num_atoms else 0
        bonds.append(f.bonds + start)
        start += f.num_atoms
    bonds = torch.as_tensor(np.concatenate(bonds), dtype=torch.int64).reshape(-1, 2).t()
    orders = torch.as_tensor(np.concatenate([f.bond_orders for f in frames]))
    edge_index, edge_shift = _batch_edges(positions, counts, boxes, cutoff_nm)
    return Batch(
        frames=len(frames), positions=positions,
        atomic_numbers=torch.as_tensor(np.concatenate([f.atomic_numbers for f in frames])),
        molecule_index=torch.as_tensor(np.concatenate(molecule)),
        graph_index=torch.repeat_interleave(torch.arange(len(frames)), torch.tensor(counts)),
        edge_index=edge_index, edge_shift=edge_shift, boxes=boxes,
        atom_counts=torch.tensor(counts),
        total_energy=torch.tensor([f.total_energy for f in frames], dtype=dtype),
        interaction_energy=torch.tensor([f.interaction_energy for f in frames], dtype=dtype),
        total_forces=torch.as_tensor(np.concatenate([f.total_forces for f in frames]), dtype=dtype),
        interaction_forces=torch.as_tensor(np.concatenate([f.interaction_forces for f in frames]), dtype=dtype),
        has_interaction=torch.tensor([f.has_interaction for f in frames]),
        environment=torch.tensor([f.environment for f in frames]),
        formal_charges=torch.as_tensor(np.concatenate([f.formal_charges for f in frames])),
        bonds=torch.cat([bonds, bonds.flip(0)], 1), bond_orders=torch.cat([orders, orders]))
