# SPDX-License-Identifier: MIT
"""OpenMM Systems of interaction environments computed entirely by a "graph/1" force head, checks that
a trajectory kept every environment intact, and the two MD runs of ``mrl-evaluate``: ``md_stability``
(Langevin) and ``nve_drift``.  Units: nm, ps, K, kJ/mol, amu.

Several environments can share one System, far apart (``spacing_nm``), so that one MRLForce call
evaluates all of them: the model sees one graph with no edges between environments, and each atom
keeps its own thermostat, so the environments evolve independently at a fraction of the cost.
"""
import sys
import time
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

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

    @classmethod
    def from_record(cls, record, frame: int = 0) -> "Environment":
        """From an openmmmrl.Record (dataset record) and one of its frames."""
        return cls(record.key, np.asarray(record.atomic_numbers), np.asarray(record.molecule_index),
                   np.asarray(record.bonds).reshape(-1, 2), np.asarray(record.positions[frame], np.float64))

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
    restraint = openmm.CustomExternalForce(
        "0.5*k_restraint*step(r-r0)*(r-r0)^2; r=sqrt((x-x0)^2+(y-y0)^2+(z-z0)^2)")
    restraint.setName("flat-bottom cluster restraint")
    restraint.addGlobalParameter("k_restraint", restraint_k)
    for name in ("x0", "y0", "z0", "r0"):
        restraint.addPerParticleParameter(name)
    restraint.setForceGroup(2)
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


def intact(environment: Environment, positions: np.ndarray, center: np.ndarray, radius_nm: float,
           bond_stretch: float = 1.5, escape_nm: float = 0.5) -> str:
    """'' when the environment is intact at ``positions`` ([N,3] nm, its own atoms), else the reason:
    a bond longer than ``bond_stretch`` times its starting length, an atom more than ``escape_nm``
    beyond the restraint radius, or non-finite coordinates."""
    if not np.isfinite(positions).all():
        return "non-finite coordinates"
    for a, b in environment.bonds:
        start = np.linalg.norm(environment.positions[a] - environment.positions[b])
        now = np.linalg.norm(positions[a] - positions[b])
        if now > bond_stretch * start:
            return f"bond {a}-{b} stretched from {start:.3f} to {now:.3f} nm"
    distance = np.linalg.norm(positions - center, axis=1)
    if distance.max() > radius_nm + escape_nm:
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
            reason = intact(envs[k], x[a:b] - offset, packed.centers[slot] - offset, packed.radii[slot])
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


def nve_drift(model_path, envs, picoseconds, seed, threads):
    packed = head_system(model_path, envs)
    packed.force.setProperty("Threads", str(threads))
    dt = 0.0005
    integrator = openmm.VerletIntegrator(dt)
    context = openmm.Context(packed.system, integrator, openmm.Platform.getPlatformByName("CPU"),
                             {"Threads": str(threads)})
    context.setPositions(packed.positions)
    openmm.LocalEnergyMinimizer.minimize(context, 10.0, 200)
    context.setVelocitiesToTemperature(300.0, seed)
    times, totals = [], []
    per_sample = 100
    for k in range(int(round(picoseconds / dt / per_sample))):
        integrator.step(per_sample)
        s = context.getState(getEnergy=True)
        times.append((k + 1) * per_sample * dt)
        totals.append((s.getPotentialEnergy() + s.getKineticEnergy()).value_in_unit(openmm.unit.kilojoule_per_mole))
    slope = float(np.polyfit(times, totals, 1)[0]) if len(times) > 1 else float("nan")
    atoms = packed.system.getNumParticles()
    return {"picoseconds": picoseconds, "timestep_ps": dt, "atoms": atoms, "environments": len(envs),
            "drift_kj_mol_ps_per_atom": slope / atoms,
            "total_energy_std_kj_mol": float(np.std(totals)) if totals else float("nan")}
