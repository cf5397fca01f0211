# SPDX-License-Identifier: MIT
"""MD of interaction environments with a head through ``MRLForce``, and the check that a trajectory kept
every environment intact (``intact``).  Units: nm, ps, K, kJ/mol, amu.

- A force head alone (``head_system``, ``md_stability``, ``nve_drift``): several environments share
  one System, far apart (``spacing_nm``), so that one MRLForce call evaluates all of them: the model
  sees one graph with no edges between environments, and each atom keeps its own thermostat, so the
  environments evolve independently at a fraction of the cost.
- MMFF94 + a correction (interaction) head (``mmff_head_system``, ``mmff_md_stability``,
  ``mmff_nve_drift``): each environment has its own System and Context, since the MMFF94 Systems of
  different environments cannot share one System without interacting.
"""
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
import openmm
import openmm.app as app

from .. import MRLForce


@dataclass
class Environment:
    """One environment: topology and a starting structure."""
    name: str
    atomic_numbers: np.ndarray   #: [N] int
    molecule_index: np.ndarray   #: [N] int (local)
    bonds: np.ndarray            #: [B, 2] int (local)
    positions: np.ndarray        #: [N, 3] nm
    box: Optional[np.ndarray] = None   #: [3, 3] nm (rows), None when not periodic

    @classmethod
    def from_record(cls, record, frame: int = 0) -> "Environment":
        """From an openmmmrl.Record (dataset record) and one of its frames."""
        box = None if record.box is None else np.asarray(record.box[frame], np.float64)
        return cls(record.key, np.asarray(record.atomic_numbers), np.asarray(record.molecule_index),
                   np.asarray(record.bonds).reshape(-1, 2), np.asarray(record.positions[frame], np.float64),
                   box if box is not None and np.any(box) else None)

    @property
    def radius_nm(self) -> float:
        return float(np.linalg.norm(self.positions - self.positions.mean(0), axis=1).max())


@dataclass
class PackedSystem:
    system: openmm.System
    positions: np.ndarray                 #: [N, 3] nm
    ranges: List[Tuple[int, int]]         #: atoms of each environment
    centers: np.ndarray                   #: [M, 3] nm, restraint centres
    radii: np.ndarray                     #: [M] nm, restraint radii
    offsets: np.ndarray                   #: [M, 3] nm, added to each environment's coordinates
    force: MRLForce


def cluster_restraint(restraint_k: float = 1000.0, force_group: int = 2) -> openmm.CustomExternalForce:
    """The flat-bottom restraint of ``mrl-envgen build``, without particles: each particle added with
    parameters (x0, y0, z0, r0) is pulled back, with constant ``restraint_k`` (kJ/mol/nm^2), once it is
    farther than r0 (nm) from (x0, y0, z0)."""
    restraint = openmm.CustomExternalForce(
        "0.5*k_restraint*step(r-r0)*(r-r0)^2; r=sqrt((x-x0)^2+(y-y0)^2+(z-z0)^2)")
    restraint.setName("flat-bottom cluster restraint")
    restraint.addGlobalParameter("k_restraint", restraint_k)
    for name in ("x0", "y0", "z0", "r0"):
        restraint.addPerParticleParameter(name)
    restraint.setForceGroup(force_group)
    return restraint


def head_system(model, environments: Sequence[Environment], spacing_nm: float = 50.0,
                restraint_margin_nm: float = 0.3, restraint_k: float = 1000.0,
                positions: Optional[Sequence[np.ndarray]] = None) -> PackedSystem:
    """A System of the environments, spaced ``spacing_nm`` apart along x, whose only interactions are the
    model (``MRLForce``, force group 0) and a flat-bottom restraint per environment (group 2) of
    radius = starting radius + ``restraint_margin_nm`` and constant ``restraint_k`` (kJ/mol/nm^2), as
    ``mrl-envgen build`` uses.  The restraint is centred on each environment's starting structure;
    ``positions`` (one [N,3] array per environment, its own frame, nm) start the System elsewhere,
    e.g. to go on with some environments of a running simulation."""
    system = openmm.System()
    coordinates, molecules, numbers, ranges, centers, radii = [], [], [], [], [], []
    restraint = cluster_restraint(restraint_k, force_group=2)
    molecule_offset = 0
    for k, env in enumerate(environments):
        start = len(numbers)
        offset = np.array([k * spacing_nm, 0.0, 0.0])
        center = env.positions.mean(0) + offset
        radius = env.radius_nm + restraint_margin_nm
        for z in env.atomic_numbers:
            index = system.addParticle(app.Element.getByAtomicNumber(int(z)).mass)
            restraint.addParticle(index, [*center, radius])
        coordinates.append((env.positions if positions is None else positions[k]) + offset)
        numbers.extend(int(z) for z in env.atomic_numbers)
        molecules.extend(int(m) + molecule_offset for m in env.molecule_index)
        molecule_offset += int(np.max(env.molecule_index)) + 1
        ranges.append((start, len(numbers)))
        centers.append(center)
        radii.append(radius)
    force = MRLForce(model)
    force.setAtomicNumbers(numbers)
    force.setMoleculeIndices(molecules)
    system.addForce(force)
    system.addForce(restraint)
    offsets = np.array([[k * spacing_nm, 0.0, 0.0] for k in range(len(environments))])
    return PackedSystem(system, np.concatenate(coordinates), ranges, np.array(centers), np.array(radii), offsets, force)


@dataclass(frozen=True)
class IntactCriteria:
    """When an environment counts as intact along a trajectory (``intact``); ``None`` turns a check off."""
    bond_stretch: float = 1.6               #: no bond longer than this times its starting length
    hydrogen_nm: Optional[float] = 0.25     #: no hydrogen farther than this from a bonded partner (nm)
    contact_nm: Optional[float] = 0.08      #: no two atoms closer than this (nm)
    escape_nm: Optional[float] = None       #: no atom farther than this beyond the restraint radius (nm)


#: The head-only runs (``md_stability``): bonds to 1.5x, atoms within 0.5 nm of the restraint.
HEAD_ONLY = IntactCriteria(bond_stretch=1.5, hydrogen_nm=None, contact_nm=None, escape_nm=0.5)
#: MMFF94 + head (``mmff_md_stability``), the issue's criteria: bonds to 1.6x, H within 0.25 nm of its
#: partner, no two atoms closer than 0.08 nm.
MMFF_HEAD = IntactCriteria()


def _minimum_image(d: np.ndarray, box: Optional[np.ndarray]) -> np.ndarray:
    """Displacements ``d`` ([..., 3] nm) to their nearest periodic image in ``box`` (rows, nm), if any."""
    if box is None:
        return d
    return d - np.round(d @ np.linalg.inv(box)) @ box


def _closest_pair(positions: np.ndarray, box: Optional[np.ndarray], chunk: int = 256) -> Tuple[float, int, int]:
    """The smallest distance (nm) between two atoms and the two atoms, in chunks of rows."""
    best = (np.inf, -1, -1)
    for start in range(0, len(positions), chunk):
        rows = positions[start:start + chunk]
        d = np.linalg.norm(_minimum_image(positions[None, :, :] - rows[:, None, :], box), axis=-1)
        d[np.arange(len(rows)), np.arange(start, start + len(rows))] = np.inf
        k = int(np.argmin(d))
        i, j = divmod(k, len(positions))
        if d[i, j] < best[0]:
            best = (float(d[i, j]), start + i, j)
    return best


def intact(environment: Environment, positions: np.ndarray, center: Optional[np.ndarray] = None,
           radius_nm: Optional[float] = None, criteria: IntactCriteria = HEAD_ONLY) -> str:
    """'' when the environment is intact at ``positions`` ([N,3] nm, its own atoms), else the reason, by
    ``criteria``: non-finite coordinates, a bond longer than ``bond_stretch`` times its starting length
    (in ``environment.positions``), a hydrogen farther than ``hydrogen_nm`` from a bonded partner, two
    atoms closer than ``contact_nm``, or an atom more than ``escape_nm`` beyond the restraint
    (``center``, ``radius_nm``).  Distances are to the nearest image in a periodic ``environment.box``."""
    if not np.isfinite(positions).all():
        return "non-finite coordinates"
    box, bonds = environment.box, environment.bonds
    if len(bonds):
        start = np.linalg.norm(_minimum_image(environment.positions[bonds[:, 1]] - environment.positions[bonds[:, 0]], box), axis=1)
        now = np.linalg.norm(_minimum_image(positions[bonds[:, 1]] - positions[bonds[:, 0]], box), axis=1)
        stretched = np.flatnonzero(now > criteria.bond_stretch * start)
        if len(stretched):
            k = stretched[0]
            return f"bond {bonds[k, 0]}-{bonds[k, 1]} stretched from {start[k]:.3f} to {now[k]:.3f} nm"
        if criteria.hydrogen_nm is not None:
            z = environment.atomic_numbers
            far = np.flatnonzero(((z[bonds[:, 0]] == 1) | (z[bonds[:, 1]] == 1)) & (now > criteria.hydrogen_nm))
            if len(far):
                a, b = bonds[far[0]]
                h, partner = (a, b) if z[a] == 1 else (b, a)
                return f"hydrogen {h} {now[far[0]]:.3f} nm from its partner {partner}"
    if criteria.contact_nm is not None and len(positions) > 1:
        distance, i, j = _closest_pair(positions, box)
        if distance < criteria.contact_nm:
            return f"atoms {min(i, j)} and {max(i, j)} {distance:.3f} nm apart"
    if criteria.escape_nm is not None and center is not None:
        distance = np.linalg.norm(positions - center, axis=1)
        if distance.max() > radius_nm + criteria.escape_nm:
            return f"atom {int(distance.argmax())} flung {distance.max():.2f} nm from the centre"
    return ""


def md_stability(model_path, envs, picoseconds, seed, threads, progress=True, report=None):
    """Langevin MD of the environments packed in one System; every ps, checks each one with ``intact``.
    A failed environment leaves the simulation (the others go on with their positions and velocities in
    a System without it), so that its exploding atoms cost nothing.  ``report(result)`` is called after
    every ps with the result so far (``completed_ps``)."""
    nm, nm_ps = openmm.unit.nanometer, openmm.unit.nanometer / openmm.unit.picosecond

    def start(alive, positions=None, velocities=None):
        packed = head_system(model_path, [envs[k] for k in alive], positions=positions)
        packed.force.setProperty("Threads", str(threads))
        integrator = openmm.LangevinMiddleIntegrator(300.0, 1.0, 0.001)
        integrator.setRandomNumberSeed(seed + len(times))
        context = openmm.Context(packed.system, integrator, openmm.Platform.getPlatformByName("CPU"),
                                 {"Threads": str(threads)})
        context.setPositions(packed.positions)
        if velocities is None:
            context.setVelocitiesToTemperature(300.0, seed)
        else:
            context.setVelocities(np.concatenate(velocities))
        return packed, context

    failed, times, energies, steps = {}, [], [], 0
    alive = list(range(len(envs)))
    packed, context = start(alive)
    per_ps = 1000
    began = time.perf_counter()
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=picoseconds, desc="MD stability", unit="ps", file=sys.stderr)

    def result():
        seconds = time.perf_counter() - began
        return {"environments": len(envs), "intact": len(envs) - len(failed), "picoseconds_each": picoseconds,
                "completed_ps": len(times), "timestep_fs": 1.0, "temperature_k": 300.0, "failures": dict(failed),
                "atoms_total": int(sum(len(e.atomic_numbers) for e in envs)), "seconds": seconds,
                "ms_per_step": 1e3 * seconds / max(steps, 1), "names": [e.name for e in envs]}

    for ps in range(1, picoseconds + 1):
        if not alive:
            break
        try:
            context.getIntegrator().step(per_ps)
            steps += per_ps
            state = context.getState(getPositions=True, getVelocities=True, getEnergy=True)
            x = state.getPositions(asNumpy=True).value_in_unit(nm)
            v = state.getVelocities(asNumpy=True).value_in_unit(nm_ps)
        except openmm.OpenMMException as error:
            for k in alive:
                failed[envs[k].name] = f"{ps} ps: simulation stopped: {error}"
            alive = []
            break
        times.append(ps)
        energies.append(state.getPotentialEnergy().value_in_unit(openmm.unit.kilojoule_per_mole))
        survivors, positions, velocities = [], [], []
        for slot, k in enumerate(alive):
            a, b = packed.ranges[slot]
            offset = packed.offsets[slot]
            reason = intact(envs[k], x[a:b] - offset, packed.centers[slot] - offset, packed.radii[slot], HEAD_ONLY)
            if reason:
                failed[envs[k].name] = f"{ps} ps: {reason}"
            else:
                survivors.append(k)
                positions.append(x[a:b] - offset)
                velocities.append(v[a:b])
        if survivors != alive and survivors:
            packed, context = start(survivors, positions, velocities)
        alive = survivors
        if bar is not None:
            bar.update(1)
            bar.set_postfix(intact=len(envs) - len(failed))
        if report is not None:
            report(result())
    if bar is not None:
        bar.close()
    return result(), (times, energies)


NVE_TIMESTEP_PS = 0.0005        #: velocity Verlet step of the NVE runs (ps)
LANGEVIN_TIMESTEP_PS = 0.001   #: Langevin step of the stability runs (ps)


def _cpu_context(system: openmm.System, integrator: openmm.Integrator, threads: int) -> openmm.Context:
    return openmm.Context(system, integrator, openmm.Platform.getPlatformByName("CPU"), {"Threads": str(threads)})


def _nve_energies(contexts: Sequence[openmm.Context], picoseconds: float, seed: int,
                  per_sample: int = 100) -> Tuple[List[float], np.ndarray]:
    """Minimizes each context briefly, draws 300 K velocities and runs its (Verlet) integrator; the times
    (ps) and total energies (kJ/mol, [samples, contexts]) every ``per_sample`` steps."""
    for context in contexts:
        openmm.LocalEnergyMinimizer.minimize(context, 10.0, 200)
        context.setVelocitiesToTemperature(300.0, seed)
    times, totals = [], []
    dt = contexts[0].getIntegrator().getStepSize().value_in_unit(openmm.unit.picosecond)
    for k in range(int(round(picoseconds / dt / per_sample))):
        row = []
        for context in contexts:
            context.getIntegrator().step(per_sample)
            s = context.getState(getEnergy=True)
            row.append((s.getPotentialEnergy() + s.getKineticEnergy()).value_in_unit(openmm.unit.kilojoule_per_mole))
        times.append((k + 1) * per_sample * dt)
        totals.append(row)
    return times, np.array(totals).reshape(len(times), len(contexts))


def _slope(times: Sequence[float], values: np.ndarray) -> float:
    """The slope of a least-squares line through (times, values)."""
    return float(np.polyfit(times, values, 1)[0]) if len(times) > 1 else float("nan")


def nve_drift(model_path, envs, picoseconds, seed, threads):
    packed = head_system(model_path, envs)
    packed.force.setProperty("Threads", str(threads))
    context = _cpu_context(packed.system, openmm.VerletIntegrator(NVE_TIMESTEP_PS), threads)
    context.setPositions(packed.positions)
    times, totals = _nve_energies([context], picoseconds, seed)
    atoms = packed.system.getNumParticles()
    return {"picoseconds": picoseconds, "timestep_ps": NVE_TIMESTEP_PS, "atoms": atoms, "environments": len(envs),
            "drift_kj_mol_ps_per_atom": _slope(times, totals[:, 0]) / atoms,
            "total_energy_std_kj_mol": float(np.std(totals)) if len(times) else float("nan")}


# MMFF94 + a correction head ---------------------------------------------------------------------------


@dataclass
class MMFFHeadSystem:
    """An environment's MMFF94 System with the head's ``MRLForce`` added (``mmff_head_system``)."""
    system: openmm.System
    environment: Environment       #: topology, starting structure (the intact check's reference) and box
    force: MRLForce


def mmff_head_system(record, model, frame: int = 0, threads: int = 1, force_group: int = 2,
                     restraint: bool = True, restraint_margin_nm: float = 0.3, restraint_k: float = 1000.0,
                     cutoff_nm: float = 0.9) -> MMFFHeadSystem:
    """The MMFF94 System of a dataset record (``createMMFFSystem(moleculesFromRecord(record, frame))``,
    periodic with the intermolecular cutoff ``cutoff_nm`` when the frame has a box: use the dataset's,
    ``mrl-envgen build --cutoff``, 0.9 by default) plus ``MRLForce(model)`` in ``force_group``, with the record's
    atomic numbers and molecule indices and ``threads`` CPU threads.  A cluster (no box) also gets
    ``mrl-envgen build``'s flat-bottom restraint (group 3; radius = starting radius +
    ``restraint_margin_nm``, constant ``restraint_k`` kJ/mol/nm^2) unless ``restraint`` is False.
    ``model``: a model file path, TorchScript module or bytes, as ``MRLForce`` takes them."""
    from .. import createMMFFSystem, moleculesFromRecord
    environment = Environment.from_record(record, frame)
    periodic = environment.box is not None
    system = createMMFFSystem(moleculesFromRecord(record, frame), periodic=periodic, cutoff=cutoff_nm)
    if periodic:
        system.setDefaultPeriodicBoxVectors(*(openmm.Vec3(*row) for row in environment.box))
    force = MRLForce(model)
    force.setAtomicNumbers([int(z) for z in environment.atomic_numbers])
    force.setMoleculeIndices([int(m) for m in environment.molecule_index])
    force.setUsesPeriodicBoundaryConditions(periodic)
    force.setForceGroup(force_group)
    force.setProperty("Threads", str(threads))
    system.addForce(force)
    if restraint and not periodic:
        pull = cluster_restraint(restraint_k, force_group=3)
        center, radius = environment.positions.mean(0), environment.radius_nm + restraint_margin_nm
        for atom in range(system.getNumParticles()):
            pull.addParticle(atom, [*center, radius])
        system.addForce(pull)
    return MMFFHeadSystem(system, environment, force)


def _start(built: MMFFHeadSystem, integrator: openmm.Integrator, threads: int) -> openmm.Context:
    context = _cpu_context(built.system, integrator, threads)
    if built.environment.box is not None:
        context.setPeriodicBoxVectors(*(openmm.Vec3(*row) for row in built.environment.box))
    context.setPositions(built.environment.positions)
    return context


def mmff_md_stability(model, records: Sequence, picoseconds: float, seed: int = 1, threads: int = 1,
                      frames: Optional[Sequence[int]] = None, check_ps: float = 1.0,
                      criteria: IntactCriteria = MMFF_HEAD, progress: bool = True,
                      report: Optional[Callable[[dict], None]] = None,
                      resume: Optional[str] = None, cutoff_nm: float = 0.9) -> Tuple[dict, Tuple[List[float], List[float]]]:
    """Langevin MD (300 K, 1 fs, 1/ps, CPU platform) of MMFF94 + head for each record (its frame
    ``frames[k]``, default 0), each environment in its own Context (``mmff_head_system``), checked with
    ``intact(criteria)`` at the start and every ``check_ps``.  A failed environment stops; the others go
    on.  Returns the summary (``failures``: environment, time in ps and reason) and the potential-energy
    trace summed over the environments still running ((times ps, kJ/mol)).

    ``report(summary)`` is called after every check.  With ``resume`` (a file path), the state of every
    environment (positions, velocities, box, time) and the failures are saved there after every check,
    atomically, and a rerun with the same environments goes on from it.  ``cutoff_nm``: periodic MMFF94's
    intermolecular cutoff (``mmff_head_system``)."""
    frames = list(frames) if frames is not None else [0] * len(records)
    runs = [mmff_head_system(record, model, frame, threads, cutoff_nm=cutoff_nm) for record, frame in zip(records, frames)]
    names = [built.environment.name for built in runs]
    steps_per_check = max(1, int(round(check_ps / LANGEVIN_TIMESTEP_PS)))
    checks = int(round(picoseconds / check_ps))
    saved = None
    if resume and os.path.exists(resume):
        with open(resume) as f:
            saved = json.load(f)
        if saved["names"] != names or saved["check_ps"] != check_ps:
            raise ValueError(f"{resume} holds a run of other environments or another check interval; remove it to "
                             f"start again")
    contexts = []
    for k, built in enumerate(runs):
        integrator = openmm.LangevinMiddleIntegrator(300.0, 1.0, LANGEVIN_TIMESTEP_PS)
        integrator.setRandomNumberSeed(seed + k + 1)
        context = _start(built, integrator, threads)
        if saved:
            context.setState(openmm.XmlSerializer.deserialize(saved["states"][k]))
        else:
            context.setVelocitiesToTemperature(300.0, seed + k + 1)
        contexts.append(context)
    done = saved["completed_checks"] if saved else 0
    failures: List[dict] = saved["failures"] if saved else []
    if not saved:
        for built in runs:
            reason = intact(built.environment, built.environment.positions, criteria=criteria)
            if reason:
                failures.append({"environment": built.environment.name, "time_ps": 0.0, "reason": reason})
    failed = {f["environment"] for f in failures}
    times, energies, steps = [], [], 0
    began = time.perf_counter()
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=(checks - done) * len(runs), desc="MD MMFF94 + head", unit="env-check", file=sys.stderr)

    def summary():
        seconds = time.perf_counter() - began
        return {"environments": len(runs), "intact": len(runs) - len(failed), "picoseconds_each": picoseconds,
                "completed_ps": done * check_ps, "check_ps": check_ps, "timestep_fs": 1000 * LANGEVIN_TIMESTEP_PS,
                "temperature_k": 300.0, "criteria": asdict(criteria), "failures": list(failures), "names": names,
                "atoms": [b.system.getNumParticles() for b in runs],
                "periodic": [b.environment.box is not None for b in runs], "seconds": seconds,
                "ms_per_step": 1e3 * seconds / max(steps, 1)}

    for check in range(done, checks):
        now_ps, total = (check + 1) * check_ps, 0.0
        for name, built, context in zip(names, runs, contexts):
            if name not in failed:
                try:
                    context.getIntegrator().step(steps_per_check)
                    steps += steps_per_check
                    state = context.getState(getPositions=True, getEnergy=True)
                    x = state.getPositions(asNumpy=True).value_in_unit(openmm.unit.nanometer)
                    reason = intact(built.environment, np.asarray(x), criteria=criteria)
                except openmm.OpenMMException as error:
                    reason = f"simulation stopped: {error}"
                if reason:
                    failures.append({"environment": name, "time_ps": now_ps, "reason": reason})
                    failed.add(name)
                else:
                    total += state.getPotentialEnergy().value_in_unit(openmm.unit.kilojoule_per_mole)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(intact=len(runs) - len(failed))
        done = check + 1
        times.append(now_ps)
        energies.append(total)
        if resume:
            states = [openmm.XmlSerializer.serialize(c.getState(getPositions=True, getVelocities=True)) for c in contexts]
            _write_json(resume, {"names": names, "check_ps": check_ps, "completed_checks": done,
                                 "failures": failures, "states": states})
        if report is not None:
            report(summary())
    if bar is not None:
        bar.close()
    return summary(), (times, energies)


def mmff_nve_drift(model, records: Sequence, picoseconds: float, seed: int = 1, threads: int = 1,
                   frames: Optional[Sequence[int]] = None, cutoff_nm: float = 0.9) -> dict:
    """NVE energy drift of MMFF94 + head: for each record (its frame ``frames[k]``, default 0), its own
    Context (``mmff_head_system``), a short minimization, 300 K velocities and velocity Verlet at 0.5 fs
    for ``picoseconds``.  The drift is the slope of a linear fit of the total energy against time, per
    atom (kJ/mol/ps per atom): of all environments together and of each."""
    frames = list(frames) if frames is not None else [0] * len(records)
    runs = [mmff_head_system(record, model, frame, threads, cutoff_nm=cutoff_nm) for record, frame in zip(records, frames)]
    contexts = [_start(built, openmm.VerletIntegrator(NVE_TIMESTEP_PS), threads) for built in runs]
    times, totals = _nve_energies(contexts, picoseconds, seed)
    atoms = [built.system.getNumParticles() for built in runs]
    each = {b.environment.name: _slope(times, totals[:, k]) / atoms[k] for k, b in enumerate(runs)}
    return {"picoseconds": picoseconds, "timestep_ps": NVE_TIMESTEP_PS, "environments": len(runs), "atoms": sum(atoms),
            "drift_kj_mol_ps_per_atom": _slope(times, totals.sum(1)) / sum(atoms),
            "max_abs_drift_kj_mol_ps_per_atom": max((abs(v) for v in each.values()), default=float("nan")),
            "per_environment": each,
            "total_energy_std_kj_mol": [float(v) for v in totals.std(0)] if len(times) else []}


def _write_json(path: str, value) -> None:
    """Writes ``value`` as JSON to ``path`` atomically (a temporary file, then a rename)."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(value, f)
    os.replace(tmp, path)
