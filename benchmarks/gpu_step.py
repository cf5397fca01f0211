# SPDX-License-Identifier: MIT
"""MRLForce on a GPU: the cost of an MD step with the shipped force head against the bare model on the same
device, and ns/day for an all-ML water box and for a water box with a small ML region.

    python benchmarks/gpu_step.py [--platform CUDA] [--all-ml-atoms 3000] [--mixed-atoms 5000]
        [--ml-atoms 100] [--steps 100] [--repeats 5] [--json out.json]

Measured, each against a baseline taken in the same process on the same device:
  step / bare model   an MD step of a water box whose only force is MRLForce (the head on every atom),
                      divided by the head's bare forward + backward in LibTorch on the same atoms (the
                      same precision, the edges within cutoff + skin, as the plugin's device list holds
                      them), eager and with CUDA graphs (UseCUDAGraphs; the bare model captured too).
                      1.00 means the plugin, its neighbor list and the integrator add nothing; target <= 1.05
  ns/day              the all-ML box, and a TIP3P water box (PME) whose --ml-atoms atoms nearest the centre
                      are also given to the head, against the same box without MRLForce
Runs on the CUDA platform (OpenCL works too, for checking this script where there is no GPU: the model then
runs on the host).
"""
import argparse
import os

import numpy as np
import openmm
import openmm.app as app
import openmm.unit as unit
import torch

from common import emit, environment, median_time
from openmmmrl import MRLForce

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WATERS_PER_NM3 = 33.4
OH_NM, HOH_DEG = 0.09572, 104.52


def water_box(atoms, seed=0):
    """Rigid-geometry waters on a jittered grid at liquid density: positions (nm), atomic numbers, molecule
    indices and the cubic box edge (nm)."""
    waters = max(1, atoms // 3)
    edge = (waters / WATERS_PER_NM3) ** (1.0 / 3.0)
    side = int(np.ceil(waters ** (1.0 / 3.0)))
    grid = np.stack(np.meshgrid(*[np.arange(side)] * 3, indexing="ij"), -1).reshape(-1, 3)[:waters]
    rng = np.random.default_rng(seed)
    centers = (grid + 0.5) * (edge / side) + rng.uniform(-0.02, 0.02, grid.shape)
    half = np.radians(HOH_DEG) / 2
    local = np.array([[0, 0, 0], [OH_NM * np.sin(half), OH_NM * np.cos(half), 0],
                      [-OH_NM * np.sin(half), OH_NM * np.cos(half), 0]])
    positions = []
    for center in centers:
        rotation, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        positions.extend(center + local @ rotation.T)
    z = [8, 1, 1] * waters
    molecules = np.repeat(np.arange(waters), 3).tolist()
    return np.array(positions), z, molecules, edge


def head_force(model, z, molecules, particles=None, periodic=True, graphs=False):
    force = MRLForce(model)
    if particles is not None:
        force.setParticles(list(particles))
    force.setAtomicNumbers(list(z))
    force.setMoleculeIndices(list(molecules))
    force.setUsesPeriodicBoundaryConditions(periodic)
    force.setProperty("UseCUDAGraphs", "true" if graphs else "false")
    return force


def seconds_per_step(context, integrator, steps, repeats):
    def run():
        integrator.step(steps)
        context.getState(getEnergy=True)  # waits for the device
    return median_time(run, repeats, warmup=1) / steps


def ns_per_day(step_seconds, dt_fs):
    return dt_fs * 1e-6 * 86400.0 / step_seconds


def bare_model_seconds(model_path, positions, z, molecules, edge, device, dtype, cutoff_nm, skin_nm, graphs,
                       repeats):
    """The head's forward + backward on the device, alone: the same atoms, the edges within cutoff + skin."""
    module = torch.jit.load(model_path, map_location=device).to(dtype)
    pos = torch.tensor(positions, dtype=dtype, device=device, requires_grad=True)
    with torch.no_grad():
        delta = pos[None, :, :] - pos[:, None, :]
        delta -= torch.round(delta / edge) * edge
        pairs = ((delta * delta).sum(-1) < (cutoff_nm + skin_nm) ** 2).nonzero()
        pairs = pairs[pairs[:, 0] != pairs[:, 1]]
        shift = (delta[pairs[:, 0], pairs[:, 1]] - (pos[pairs[:, 1]] - pos[pairs[:, 0]]))
    edge_index = pairs.t().contiguous()
    zt = torch.tensor(z, dtype=torch.int64, device=device)
    mt = torch.tensor(molecules, dtype=torch.int64, device=device)

    def step():
        energy = module(pos, zt, mt, edge_index, shift)
        return torch.autograd.grad([energy], [pos])[0]

    if device.type == "cuda" and graphs:
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(3):
                step()
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            step()
        call = graph.replay
    else:
        call = step

    def timed():
        for _ in range(20):
            call()
        if device.type == "cuda":
            torch.cuda.synchronize()
    return median_time(timed, repeats) / 20, int(edge_index.shape[1])


def all_ml(args, platform, dtype_name):
    positions, z, molecules, edge = water_box(args.all_ml_atoms)
    cutoff_nm = torch.jit.load(args.model).cutoff_nm
    results = {"atoms": len(z)}
    for graphs in ([False, True] if args.platform == "CUDA" else [False]):
        system = openmm.System()
        for number in z:
            system.addParticle(16.0 if number == 8 else 1.008)
        system.setDefaultPeriodicBoxVectors(*(openmm.Vec3(*row) for row in np.eye(3) * edge))
        system.addForce(head_force(args.model, z, molecules, graphs=graphs))
        integrator = openmm.LangevinMiddleIntegrator(300, 1, args.dt_fs * 1e-3)
        context = openmm.Context(system, integrator, platform, {"Precision": args.precision})
        context.setPositions(positions)
        context.setVelocitiesToTemperature(300)
        step = seconds_per_step(context, integrator, args.steps, args.repeats)
        key = "graphs" if graphs else "eager"
        results[f"{key}_step_ms"] = round(step * 1e3, 3)
        results[f"{key}_ns_per_day"] = round(ns_per_day(step, args.dt_fs), 2)
        if args.platform == "CUDA":
            bare, edges = bare_model_seconds(args.model, context.getState(getPositions=True).getPositions(
                asNumpy=True).value_in_unit(unit.nanometer), z, molecules, edge, torch.device("cuda"),
                torch.float64 if dtype_name == "double" else torch.float32, cutoff_nm, 0.05, graphs,
                args.repeats)
            results[f"{key}_bare_model_ms"] = round(bare * 1e3, 3)
            results[f"{key}_step_over_bare"] = round(step / bare, 3)
            results["edges_within_reach"] = edges
        del context
    return results


def mixed(args, platform):
    forcefield = app.ForceField("amber14/tip3p.xml")
    modeller = app.Modeller(app.Topology(), [])
    edge_nm = (args.mixed_atoms / 3 / WATERS_PER_NM3) ** (1.0 / 3.0)
    modeller.addSolvent(forcefield, boxSize=openmm.Vec3(edge_nm, edge_nm, edge_nm) * unit.nanometer)
    positions = np.array(modeller.positions.value_in_unit(unit.nanometer))
    atoms = list(modeller.topology.atoms())
    results = {"atoms": len(atoms)}
    center = positions.mean(axis=0)
    residues = sorted(modeller.topology.residues(),
                      key=lambda r: np.linalg.norm(positions[[a.index for a in r.atoms()]].mean(0) - center))
    ml = [a.index for r in residues[:max(1, args.ml_atoms // 3)] for a in r.atoms()]
    results["ml_atoms"] = len(ml)
    for label in ["mm_only", "eager", "graphs"] if args.platform == "CUDA" else ["mm_only", "eager"]:
        system = forcefield.createSystem(modeller.topology, nonbondedMethod=app.PME, nonbondedCutoff=0.9,
                                         constraints=app.HBonds)
        if label != "mm_only":
            z = [atoms[i].element.atomic_number for i in ml]
            molecules = [atoms[i].residue.index for i in ml]
            system.addForce(head_force(args.model, z, molecules, particles=ml, graphs=label == "graphs"))
        integrator = openmm.LangevinMiddleIntegrator(300, 1, 0.002)
        context = openmm.Context(system, integrator, platform, {"Precision": args.precision})
        context.setPositions(modeller.positions)
        context.setVelocitiesToTemperature(300)
        step = seconds_per_step(context, integrator, args.steps, args.repeats)
        results[f"{label}_step_ms"] = round(step * 1e3, 3)
        results[f"{label}_ns_per_day"] = round(ns_per_day(step, 2.0), 2)
        del context
    results["eager_over_mm_only"] = round(results["eager_step_ms"] / results["mm_only_step_ms"], 3)
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--platform", default="CUDA", help="OpenMM platform (CUDA; OpenCL to check the script)")
    parser.add_argument("--precision", default="mixed", choices=["single", "mixed", "double"])
    parser.add_argument("--model", default=os.path.join(ROOT, "models", "mrl-head-mmff94.pt"))
    parser.add_argument("--all-ml-atoms", type=int, default=3000, help="atoms of the all-ML water box")
    parser.add_argument("--mixed-atoms", type=int, default=5000, help="atoms of the TIP3P water box")
    parser.add_argument("--ml-atoms", type=int, default=100, help="atoms of its ML region (whole waters)")
    parser.add_argument("--dt-fs", type=float, default=0.5, help="time step of the all-ML box, fs (no constraints)")
    parser.add_argument("--steps", type=int, default=100, help="MD steps per timing sample")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json")
    args = parser.parse_args()
    platform = openmm.Platform.getPlatformByName(args.platform)
    result = {"benchmark": "gpu_step", "platform": args.platform, "precision": args.precision,
              "environment": environment()}
    if args.platform == "CUDA":
        result["gpu"] = torch.cuda.get_device_name(0)
    result["all_ml"] = all_ml(args, platform, "double" if args.precision == "double" else "single")
    result["mixed"] = mixed(args, platform)
    emit(result, args.json)


if __name__ == "__main__":
    main()
