# SPDX-License-Identifier: MIT
"""Run OpenMM MD of a water box with an ML region computed by a TorchScript model through MRLForce.

    python examples/run_md.py                      # the small default: 1.8 nm TIP3P-FB box, 20 ML waters
    python examples/run_md.py --model my_model.pt  # any "positions" (openmm-torch) or "graph/1" model
    python examples/run_md.py --steps 2000 --ml-molecules 40 --platform Reference

The ML region is the water molecules nearest the box centre; the model's energy is added to the MM
force field (force group 1, so its energy is reported separately).  Without --model the toy graph/1
message-passing network of openmmmrl.toy is used with random weights scaled to a small energy: a
stand-in for the pretrained head, good for plumbing and speed, not for physics.  Prints energies as it
runs, then a JSON summary with ns/day with and without the ML term (measured in the same run).
"""
import argparse
import json
import sys
import time
import warnings

import numpy as np
import openmm
import openmm.app as app
import openmm.unit as unit
import torch

from openmmmrl import MRLForce
from openmmmrl.toy import GraphMessagePassing, ToyConfig

warnings.filterwarnings("ignore", category=FutureWarning)


def build_water_box(box_nm):
    forcefield = app.ForceField("amber14/tip3pfb.xml")
    modeller = app.Modeller(app.Topology(), [])
    modeller.addSolvent(forcefield, boxSize=openmm.Vec3(box_nm, box_nm, box_nm) * unit.nanometer)
    system = forcefield.createSystem(modeller.topology, nonbondedMethod=app.PME,
                                     nonbondedCutoff=0.8 * unit.nanometer, constraints=app.HBonds)
    return modeller.topology, modeller.positions, system


def central_molecules(topology, positions, box_nm, count):
    """The `count` residues whose first atom is nearest the box centre."""
    xyz = np.array(positions.value_in_unit(unit.nanometer))
    residues = list(topology.residues())
    distance = [np.linalg.norm(xyz[next(r.atoms()).index] - box_nm / 2) for r in residues]
    return [residues[i] for i in np.argsort(distance)[:count]]


def make_force(args, topology, residues):
    if args.model:
        force = MRLForce(args.model)
    else:
        force = MRLForce(torch.jit.script(GraphMessagePassing(ToyConfig(energy_scale=0.05, seed=args.seed))))
    atoms = [atom for residue in residues for atom in residue.atoms()]
    force.setParticles([atom.index for atom in atoms])
    force.setAtomicNumbers([atom.element.atomic_number for atom in atoms])
    force.setMoleculeIndices([i for i, residue in enumerate(residues) for _ in residue.atoms()])
    force.setUsesPeriodicBoundaryConditions(force.getInterface() == "graph/1")
    force.setForceGroup(1)
    if args.cuda_graphs:
        force.setProperty("UseCUDAGraphs", "true")
    return force, len(atoms)


def ns_per_day(simulation, steps, dt_ps):
    start = time.perf_counter()
    simulation.step(steps)
    seconds = time.perf_counter() - start
    return steps * dt_ps / 1000.0 / (seconds / 86400.0)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="a TorchScript model file (default: the toy graph/1 network)")
    parser.add_argument("--box-nm", type=float, default=1.8, help="edge of the cubic water box, nm")
    parser.add_argument("--ml-molecules", type=int, default=20, help="water molecules in the ML region")
    parser.add_argument("--steps", type=int, default=500, help="MD steps with the ML term")
    parser.add_argument("--timestep-fs", type=float, default=2.0, help="time step, fs")
    parser.add_argument("--temperature", type=float, default=300.0, help="Langevin temperature, K")
    parser.add_argument("--platform", default="CPU", help="OpenMM platform (Reference, CPU, OpenCL, CUDA)")
    parser.add_argument("--cuda-graphs", action="store_true",
                        help="on CUDA, replay the model as a CUDA graph (the UseCUDAGraphs property)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (velocities, thermostat, toy weights)")
    parser.add_argument("--report-interval", type=int, default=100, help="steps between energy reports")
    args = parser.parse_args()

    topology, positions, system = build_water_box(args.box_nm)
    residues = central_molecules(topology, positions, args.box_nm, args.ml_molecules)
    force, num_ml = make_force(args, topology, residues)
    mm_system = openmm.XmlSerializer.clone(system)
    system.addForce(force)
    dt = args.timestep_fs * unit.femtosecond
    platform = openmm.Platform.getPlatformByName(args.platform)

    def simulation_of(sys_):
        integrator = openmm.LangevinMiddleIntegrator(args.temperature * unit.kelvin, 1 / unit.picosecond, dt)
        integrator.setRandomNumberSeed(args.seed)
        simulation = app.Simulation(topology, sys_, integrator, platform)
        simulation.context.setPositions(positions)
        simulation.minimizeEnergy(maxIterations=100)
        simulation.context.setVelocitiesToTemperature(args.temperature * unit.kelvin, args.seed)
        return simulation

    print(f"water box {args.box_nm} nm: {system.getNumParticles()} atoms, ML region {num_ml} atoms "
          f"({force.getInterface()} model{'' if args.model else ': toy network, random weights'}), "
          f"platform {args.platform}", flush=True)
    simulation = simulation_of(system)
    simulation.reporters.append(app.StateDataReporter(sys.stdout, args.report_interval, step=True,
                                                      potentialEnergy=True, temperature=True, speed=True))
    start = time.perf_counter()
    simulation.step(args.steps)
    with_ml = args.steps * dt.value_in_unit(unit.picosecond) / 1000.0 / ((time.perf_counter() - start) / 86400.0)
    ml_energy = simulation.context.getState(getEnergy=True, groups={1}).getPotentialEnergy()
    total = simulation.context.getState(getEnergy=True).getPotentialEnergy()
    mm_only = ns_per_day(simulation_of(mm_system), max(50, args.steps // 5), dt.value_in_unit(unit.picosecond))
    summary = {"atoms": system.getNumParticles(), "ml_atoms": num_ml, "steps": args.steps,
               "platform": args.platform, "potential_energy_kj_per_mol": round(total.value_in_unit(unit.kilojoule_per_mole), 3),
               "ml_energy_kj_per_mol": round(ml_energy.value_in_unit(unit.kilojoule_per_mole), 4),
               "ns_per_day_with_ml": round(with_ml, 2), "ns_per_day_mm_only": round(mm_only, 2),
               "ml_cost_ratio": round(mm_only / with_ml, 2)}
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
