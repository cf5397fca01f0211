# SPDX-License-Identifier: MIT
"""DatasetReporter: record frames of your own OpenMM Simulation into an openmm-mrl dataset.

>>> from openmmmrl import DatasetReporter
>>> for force in system.getForces():                      # put the intermolecular terms in group 1
...     force.setForceGroup(1 if isinstance(force, openmm.NonbondedForce) else 0)
>>> simulation = app.Simulation(topology, system, integrator)
>>> simulation.reporters.append(DatasetReporter("run.h5", 100, interactionGroups={1}))
>>> simulation.step(100000)
>>> simulation.reporters[-1].close()                       # or let the interpreter exit normally

The file follows docs/dataset.md.  Every ``segmentFrames`` frames are written as one record
("segment000000", "segment000001", ...) through the crash-safe :class:`~openmmmrl.data.DatasetWriter`:
a killed run keeps every finished segment.  A new reporter on the same file (same settings) continues
the numbering after the segments already there.

What a frame holds (units nm, ps, kJ/mol, kJ/mol/nm):

* ``positions`` of the selected atoms as OpenMM has them with ``enforcePeriodicBox=False``: molecules
  are never split across the box (coordinates are not wrapped).
* ``total_energy`` / ``total_forces``: the whole System, all force groups (also when the integrator
  integrates only some groups).
* ``interaction_energy`` / ``interaction_forces``: the sum of the force groups ``interactionGroups``
  (root attribute ``interaction_forces = "force_groups:1"``, or ``"force_groups:1,2"``); without
  ``interactionGroups`` they are NaN and the attribute is ``"none"``.
* ``box``: the periodic box vectors as rows, zero when the System is not periodic.
* ``direction_3dmrl`` is zero and ``anchor`` is -1: a user's simulation has no 3DMRL partner copies.

The topology of each record: atomic numbers from the Topology's elements (0 for virtual sites and
other particles without element), molecules from the System's connectivity (bonds and constraints,
as ``Context.getMolecules()`` gives them) unless ``molecules`` is given, molecule names from residue
names, SMILES ``""`` and formal charges 0 (OpenMM does not know them), bonds from
``Topology.bonds()`` between selected atoms with ``bond.order`` (1.5 for aromatic bonds without
order, 0 when unknown).
"""
import json
import math
import os
import sys
import weakref
from typing import Iterable, Optional, Sequence

import numpy as np

from .data import DatasetWriter, Record
from ._version import __version__

__all__ = ["DatasetReporter"]

_ALL_GROUPS = 0xFFFFFFFF


def _close_sink(sink):
    try:
        sink.close()
    except Exception as e:  # never raise at interpreter exit
        print(f"openmmmrl.DatasetReporter: could not write {sink.path}: {e}", file=sys.stderr)


class _Sink:
    """The reporter's buffer and writer (no reference to the reporter, so that a finalizer can close it)."""

    def __init__(self, path):
        self.path = path
        self.writer = None
        self.template = None  # Record without frames
        self.frames = []
        self.next_segment = 0
        self.closed = False

    def flush(self):
        if not self.frames:
            return
        frames, self.frames = self.frames, []
        record = Record(**self.template)
        record.key = f"segment{self.next_segment:06d}"
        for name in ("time", "box", "total_energy", "interaction_energy", "positions", "total_forces",
                     "interaction_forces", "direction_3dmrl"):
            setattr(record, name, np.stack([frame[name] for frame in frames]))
        self.writer.add_record(record)
        self.next_segment += 1

    def close(self):
        if self.closed:
            return
        self.closed = True
        if self.writer is not None:
            try:
                self.flush()
            finally:
                self.writer.close()


class DatasetReporter:
    """An ``openmm.app`` reporter that writes frames into an openmm-mrl dataset (docs/dataset.md).

    Parameters
    ----------
    file : str
        The dataset file (HDF5).  Created, or appended to when it exists and was written with the same
        settings (else ValueError: use another file or ``overwrite=True``).
    reportInterval : int
        Steps between frames (> 0).
    atoms : sequence of int, optional
        Indices of the atoms to record, in this order (default all).  Energies are always those of
        the whole System.
    centralAtoms : sequence of int, optional
        Atoms (among ``atoms``) whose molecules are marked central (``is_central``; the record's
        ``central_molecule`` is the first of them).  Default: no central molecule
        (``central_molecule`` -1).
    interactionGroups : set of int, optional
        Force groups (0..31) whose summed energy and forces are the interaction energy and forces.
        Each must hold at least one Force of the System.  Default: none (NaN arrays).
    molecules : sequence, optional
        The molecules, overriding the System's connectivity: a list whose items are lists of atom
        indices, or dicts ``{"atoms": [...], "name": str, "smiles": str, "formal_charges": [...]}``
        (name, smiles and formal charges optional).  Every selected atom must be in exactly one.
    segmentFrames : int
        Frames per record (segment); a partial segment is written on :meth:`close`.
    pairId : str
        The ``pair_id`` of the records (default ``"trajectory"``).
    weight : float
        The records' weight (default 1).
    overwrite : bool
        Replace an existing file (and its journal) instead of appending.

    Call :meth:`close` (or use the reporter as a context manager) when the simulation is done; at a
    normal interpreter exit, buffered frames are written as well.  A killed process loses only the
    frames of its unfinished segment.
    """

    def __init__(self, file, reportInterval: int, atoms: Optional[Sequence[int]] = None,
                 centralAtoms: Optional[Iterable[int]] = None, interactionGroups: Optional[Iterable[int]] = None,
                 molecules: Optional[Sequence] = None, segmentFrames: int = 100, pairId: str = "trajectory",
                 weight: float = 1.0, overwrite: bool = False):
        self._path = os.fspath(file)
        self._interval = _positive_int(reportInterval, "reportInterval")
        self._segment_frames = _positive_int(segmentFrames, "segmentFrames")
        self._atoms = None if atoms is None else _index_list(atoms, "atoms")
        if self._atoms is not None and len(set(self._atoms)) != len(self._atoms):
            raise ValueError("atoms lists an atom more than once; give each atom index once")
        if self._atoms is not None and not self._atoms:
            raise ValueError("atoms is empty; give at least one atom index, or None for all atoms")
        self._central = None if centralAtoms is None else sorted(set(_index_list(centralAtoms, "centralAtoms")))
        if self._central is not None and self._atoms is not None:
            outside = sorted(set(self._central) - set(self._atoms))
            if outside:
                raise ValueError(f"centralAtoms {outside[:10]} are not among the recorded atoms; "
                                 f"add them to atoms or remove them from centralAtoms")
        if interactionGroups is None:
            self._groups = None
        else:
            if isinstance(interactionGroups, (int, np.integer)):
                interactionGroups = [interactionGroups]
            self._groups = sorted(set(_index_list(interactionGroups, "interactionGroups")))
            if not self._groups or self._groups[-1] > 31:
                raise ValueError(f"interactionGroups {self._groups} must be a non-empty set of force groups "
                                 f"in 0..31")
        self._molecules = None if molecules is None else _molecule_specs(molecules)
        self._pair_id = str(pairId)
        self._weight = float(weight)
        self._overwrite = bool(overwrite)
        self._sink = _Sink(self._path)
        self._finalizer = weakref.finalize(self, _close_sink, self._sink)
        self._selection = None  # np.ndarray of atom indices, once set up
        self._system_particles = None

    # -- openmm.app reporter API --------------------------------------------------------------------
    def describeNextReport(self, simulation):
        """The next report: after ``steps`` steps, unwrapped positions, forces and energies."""
        if self._sink.closed:
            raise ValueError(f"this DatasetReporter ({self._path}) is closed; remove it from simulation.reporters, "
                             f"or add a new DatasetReporter on the same file to continue it")
        if self._sink.writer is None:
            self._setup(simulation)
        steps = self._interval - simulation.currentStep % self._interval
        return {"steps": steps, "periodic": False, "include": ["positions", "forces", "energy"]}

    def report(self, simulation, state):
        """Buffers one frame; writes a segment every ``segmentFrames`` frames."""
        import openmm.unit as unit
        if self._sink.closed:
            raise ValueError(f"this DatasetReporter ({self._path}) is closed; remove it from simulation.reporters, "
                             f"or add a new DatasetReporter on the same file to continue it")
        if self._sink.writer is None:
            self._setup(simulation)
        if simulation.system.getNumParticles() != self._system_particles:
            raise ValueError(f"this DatasetReporter was set up for a System of {self._system_particles} particles, "
                             f"got {simulation.system.getNumParticles()}; use one reporter per System")
        context = simulation.context
        if simulation.integrator.getIntegrationForceGroups() & _ALL_GROUPS != _ALL_GROUPS:
            # The state Simulation made holds only the integrated groups: take the whole System's.
            state = context.getState(getPositions=True, getForces=True, getEnergy=True, enforcePeriodicBox=False)
        sel = self._selection
        kj, nm = unit.kilojoule_per_mole, unit.nanometer
        positions = state.getPositions(asNumpy=True).value_in_unit(nm)[sel]
        forces = state.getForces(asNumpy=True).value_in_unit(kj / nm)[sel]
        if self._groups is not None:
            inter = context.getState(getForces=True, getEnergy=True, groups=set(self._groups))
            inter_energy = inter.getPotentialEnergy().value_in_unit(kj)
            inter_forces = inter.getForces(asNumpy=True).value_in_unit(kj / nm)[sel]
        else:
            inter_energy, inter_forces = math.nan, np.full((len(sel), 3), np.nan)
        if simulation.system.usesPeriodicBoundaryConditions():
            box = state.getPeriodicBoxVectors(asNumpy=True).value_in_unit(nm)
        else:
            box = np.zeros((3, 3))
        self._sink.frames.append({
            "time": state.getTime().value_in_unit(unit.picosecond), "box": np.asarray(box, np.float32),
            "total_energy": state.getPotentialEnergy().value_in_unit(kj),
            "interaction_energy": inter_energy,
            "positions": np.asarray(positions, np.float32), "total_forces": np.asarray(forces, np.float32),
            "interaction_forces": np.asarray(inter_forces, np.float32),
            "direction_3dmrl": np.zeros((len(sel), 3), np.float32)})
        if len(self._sink.frames) >= self._segment_frames:
            self._sink.flush()

    # -- lifetime -------------------------------------------------------------------------------------
    def flush(self):
        """Writes the buffered frames now, as a (shorter) segment."""
        if self._sink.writer is not None and not self._sink.closed:
            self._sink.flush()

    def close(self):
        """Writes the buffered frames and folds the file.  The reporter cannot report afterwards."""
        self._finalizer()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def path(self) -> str:
        return self._path

    # -- setup ------------------------------------------------------------------------------------------
    def _setup(self, simulation):
        import openmm.app as app
        import openmm.unit as unit
        system, topology = simulation.system, simulation.topology
        n = system.getNumParticles()
        if topology.getNumAtoms() != n:
            raise ValueError(f"the Topology has {topology.getNumAtoms()} atoms but the System {n} particles; "
                             f"give the Simulation a matching Topology")
        sel = np.arange(n) if self._atoms is None else np.asarray(self._atoms)
        bad = sel[sel >= n]
        if len(bad):
            raise ValueError(f"atoms {bad[:10].tolist()} are out of range: the System has {n} particles "
                             f"(indices 0..{n - 1}); fix the atoms argument")
        if self._central is not None and self._central[-1] >= n:
            raise ValueError(f"centralAtoms {[i for i in self._central if i >= n][:10]} are out of range: the "
                             f"System has {n} particles; fix the centralAtoms argument")
        if self._groups is not None:
            present = {force.getForceGroup() for force in system.getForces()}
            missing = [g for g in self._groups if g not in present]
            if missing:
                raise ValueError(f"interactionGroups {missing} hold no Force of the System (its forces are in "
                                 f"groups {sorted(present)}); set the intermolecular forces' group with "
                                 f"force.setForceGroup(g) before creating the Simulation, or fix interactionGroups")
        local = np.full(n, -1, np.int64)
        local[sel] = np.arange(len(sel))
        atoms = list(topology.atoms())

        # Molecules: given, or the System's connectivity; keep those with selected atoms, in order of
        # their first selected atom.
        if self._molecules is not None:
            specs = self._molecules
            owner = np.full(n, -1, np.int64)
            for m, spec in enumerate(specs):
                idx = np.asarray(spec["atoms"], np.int64)
                if len(idx) and idx.max() >= n:
                    raise ValueError(f"molecules[{m}] lists atoms out of range (the System has {n} particles)")
                if np.any(owner[idx] >= 0):
                    raise ValueError(f"molecules[{m}] shares atoms with another molecule; give each atom once")
                owner[idx] = m
            if np.any(owner[sel] < 0):
                raise ValueError(f"atoms {sel[owner[sel] < 0][:10].tolist()} are in none of the given molecules; "
                                 f"add them to molecules")
        else:
            specs = [{"atoms": list(mol)} for mol in simulation.context.getMolecules()]
            owner = np.full(n, -1, np.int64)
            for m, spec in enumerate(specs):
                owner[np.asarray(spec["atoms"], np.int64)] = m
        order = list(dict.fromkeys(int(owner[i]) for i in sel))
        mol_local = {m: k for k, m in enumerate(order)}
        molecule_index = np.array([mol_local[int(owner[i])] for i in sel], np.int32)
        names, smiles, charges = [], [], np.zeros(len(sel), np.int32)
        for m in order:
            spec = specs[m]
            names.append(spec.get("name") if spec.get("name") is not None
                         else _molecule_name([atoms[i] for i in spec["atoms"]]))
            smiles.append(spec.get("smiles") or "")
            if spec.get("formal_charges") is not None:
                for i, q in zip(spec["atoms"], spec["formal_charges"]):
                    if local[i] >= 0:
                        charges[local[i]] = q
        is_central = np.zeros(len(order), np.int8)
        if self._central is not None:
            for i in self._central:
                is_central[mol_local[int(owner[i])]] = 1
            central_molecule = int(np.flatnonzero(is_central)[0])
        else:
            central_molecule = -1

        bonds, orders = [], []
        for bond in topology.bonds():
            i, j = local[bond.atom1.index], local[bond.atom2.index]
            if i >= 0 and j >= 0:
                bonds.append((min(i, j), max(i, j)))
                if bond.order is not None:
                    orders.append(float(bond.order))
                elif bond.type is app.Aromatic:
                    orders.append(1.5)
                else:
                    orders.append(0.0)

        self._sink.template = dict(
            key="", pair_id=self._pair_id, weight=self._weight, central_molecule=central_molecule,
            atomic_numbers=np.array([0 if atoms[i].element is None else atoms[i].element.atomic_number
                                     for i in sel], np.int32),
            formal_charges=charges, molecule_index=molecule_index, anchor=np.full(len(sel), -1, np.int32),
            smiles=smiles, molecule_names=names, is_central=is_central,
            bonds=np.array(bonds, np.int32).reshape(-1, 2), bond_orders=np.array(orders, np.float32))

        integrator = simulation.integrator
        temperature = _in_unit(integrator.getTemperature(), unit.kelvin) if hasattr(integrator, "getTemperature") \
            else math.nan
        timestep = _in_unit(integrator.getStepSize(), unit.picosecond)
        interaction = "none" if self._groups is None else "force_groups:" + ",".join(map(str, self._groups))
        options = {
            "reporter": "DatasetReporter", "reportInterval": self._interval, "segmentFrames": self._segment_frames,
            "atoms": self._atoms, "centralAtoms": self._central, "interactionGroups": self._groups,
            "molecules": self._molecules, "pairId": self._pair_id, "weight": self._weight,
            "numParticles": n, "temperature_K": None if math.isnan(temperature) else temperature,
            "timestep_ps": timestep, "integrator": type(integrator).__name__}
        attributes = {
            "tool": f"openmmmrl.DatasetReporter {__version__}", "command_line": " ".join(sys.argv),
            "options_json": json.dumps(options, sort_keys=True), "force_field": "user System",
            "temperature_K": temperature, "timestep_ps": timestep, "seed": -1, "interaction_forces": interaction}
        writer = DatasetWriter(self._path, attributes, overwrite=self._overwrite)
        segments = [int(k[7:]) for k in writer.keys() if k.startswith("segment") and k[7:].isdigit()]
        self._sink.next_segment = max(segments) + 1 if segments else 0
        self._sink.writer = writer
        self._selection = sel
        self._system_particles = n


def _in_unit(value, target) -> float:
    """A Quantity (or a plain number, taken to be in OpenMM's units) as a float in `target`."""
    return float(value.value_in_unit(target) if hasattr(value, "value_in_unit") else value)


def _molecule_name(atoms) -> str:
    """The residue name of a one-residue molecule; else the first and last residue names and the count."""
    residues = list(dict.fromkeys(atom.residue for atom in atoms))
    if len(residues) == 1:
        return residues[0].name
    return f"{residues[0].name}..{residues[-1].name} ({len(residues)} residues)"


def _positive_int(value, name) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _index_list(values, name) -> list:
    try:
        result = [int(v) for v in values]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a sequence of integer indices, got {values!r}") from None
    if any(isinstance(v, (float, np.floating)) and v != int(v) for v in values):
        raise ValueError(f"{name} must hold integers, got {values!r}")
    negative = [v for v in result if v < 0]
    if negative:
        raise ValueError(f"{name} holds negative indices {negative[:10]}; give indices from 0")
    return result


def _molecule_specs(molecules) -> list:
    specs = []
    for m, item in enumerate(molecules):
        if isinstance(item, dict):
            unknown = sorted(set(item) - {"atoms", "name", "smiles", "formal_charges"})
            if unknown or "atoms" not in item:
                raise ValueError(f"molecules[{m}] must be a list of atom indices or a dict with 'atoms' (and "
                                 f"optional 'name', 'smiles', 'formal_charges'); got keys {sorted(item)}")
            spec = {"atoms": _index_list(item["atoms"], f"molecules[{m}]['atoms']")}
            for key in ("name", "smiles"):
                if item.get(key) is not None:
                    spec[key] = str(item[key])
            if item.get("formal_charges") is not None:
                spec["formal_charges"] = [int(q) for q in item["formal_charges"]]
                if len(spec["formal_charges"]) != len(spec["atoms"]):
                    raise ValueError(f"molecules[{m}]: formal_charges needs one value per atom")
        else:
            spec = {"atoms": _index_list(item, f"molecules[{m}]")}
        if not spec["atoms"]:
            raise ValueError(f"molecules[{m}] has no atoms")
        specs.append(spec)
    return specs
