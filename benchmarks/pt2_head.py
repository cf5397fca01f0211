# SPDX-License-Identifier: MIT
"""The shipped head as a TorchScript model and as an AOTInductor package (.pt2): MD step time of each.

    .venv/bin/python benchmarks/pt2_head.py [--model models/mrl-head-xtb.pt] [--atoms 27 300 3000]
        [--threads 1 2] [--json out.json]

Each System holds water molecules at liquid density (a cluster, not periodic) and one MRLForce with the
head (CPU platform, float32, the force's and the platform's threads equal).  Ratios, in the same process:
  torchscript / pt2   median Verlet step with the TorchScript file, divided by the same with its .pt2
                      package compiled for that thread count (openmmmrl.head.export.cached_package: built
                      on first use, a few minutes each; a package's thread count is fixed when it is compiled)
  step / bare pt2     the .pt2 step divided by a bare call of the package's float32 model on the same
                      inputs (torch._inductor.package.load_package, the edges within the cutoff): what the
                      plugin and the integrator add (1.00: nothing)
The energies of the two formats are printed too (they agree to float32 round-off).
"""
import argparse
import os

import numpy as np
import openmm

import torch

from common import emit, environment, median_time
from openmmmrl import MRLForce
from openmmmrl.head.batch import neighbor_edges
from openmmmrl.head.export import cached_package

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def waters(atoms):
    """positions (nm) of atoms // 3 water molecules on a grid at about 1 g/cm^3, their atomic numbers and
    molecule indices."""
    count = max(2, atoms // 3)
    side = int(np.ceil(count ** (1 / 3)))
    grid = np.stack(np.meshgrid(*[np.arange(side)] * 3, indexing="ij"), -1).reshape(-1, 3)[:count] * 0.311
    rng = np.random.default_rng(1)
    shape = np.array([[0.0, 0.0, 0.0], [0.0757, 0.0586, 0.0], [-0.0757, 0.0586, 0.0]])
    positions = np.concatenate([o + shape @ _rotation(rng) for o in grid])
    return positions, [8, 1, 1] * count, list(np.repeat(np.arange(count), 3))


def _rotation(rng):
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    return q


def step_ms(model, positions, numbers, molecules, threads, repeats):
    force = MRLForce(model)
    force.setAtomicNumbers([int(z) for z in numbers])
    force.setMoleculeIndices([int(m) for m in molecules])
    force.setProperty("Threads", str(threads))
    system = openmm.System()
    for z in numbers:
        system.addParticle(16.0 if z == 8 else 1.008)
    system.addForce(force)
    context = openmm.Context(system, openmm.VerletIntegrator(0.0005), openmm.Platform.getPlatformByName("CPU"),
                             {"Threads": str(threads)})
    context.setPositions(positions)
    energy = context.getState(getEnergy=True).getPotentialEnergy()._value
    steps = 10
    return 1000 * median_time(lambda: context.getIntegrator().step(steps), repeats) / steps, energy


def bare_ms(runner, positions, numbers, molecules, cutoff_nm, repeats):
    """A bare call of the package's float32 model on the inputs MRLForce would pass (ms)."""
    x = torch.tensor(positions, dtype=torch.float32)
    edges, shifts = neighbor_edges(x, None, cutoff_nm)
    inputs = (x, torch.tensor(numbers), torch.tensor(np.asarray(molecules, np.int64)), edges, shifts.float())
    return 1000 * median_time(lambda: runner(*inputs), repeats)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=os.path.join(ROOT, "models", "mrl-head-xtb.pt"))
    parser.add_argument("--atoms", type=int, nargs="+", default=[27, 300, 3000], help="system sizes (atoms)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", help="also write the result here")
    args = parser.parse_args()
    from torch._inductor.package import load_package
    packages = {t: cached_package(args.model, threads=t) for t in args.threads}  # threads are compiled in
    cutoff_nm = float(MRLForce(packages[args.threads[0]]).getCutoff())
    rows = []
    for atoms in args.atoms:
        positions, numbers, molecules = waters(atoms)
        for threads in args.threads:
            repeats = args.repeats if atoms < 1000 else max(3, args.repeats // 2)
            script, e_script = step_ms(args.model, positions, numbers, molecules, threads, repeats)
            pt2, e_pt2 = step_ms(packages[threads], positions, numbers, molecules, threads, repeats)
            torch.set_num_threads(threads)
            bare = bare_ms(load_package(packages[threads], model_name="float32"), positions, numbers, molecules, cutoff_nm, repeats)
            rows.append({"atoms": len(numbers), "threads": threads, "torchscript_ms_per_step": round(script, 3),
                         "pt2_ms_per_step": round(pt2, 3), "torchscript_over_pt2": round(script / pt2, 2),
                         "bare_pt2_ms": round(bare, 3), "step_over_bare_pt2": round(pt2 / bare, 3),
                         "energy_torchscript_kj_mol": e_script, "energy_pt2_kj_mol": e_pt2})
            print(f"{len(numbers):5d} atoms, {threads} thread(s): TorchScript {script:8.2f} ms, .pt2 {pt2:8.2f} ms, "
                  f"ratio {script / pt2:.2f}; bare .pt2 {bare:8.2f} ms, step / bare {pt2 / bare:.2f}", flush=True)
    emit({"benchmark": "pt2_head", "model": os.path.relpath(args.model, ROOT), "packages": packages,
          "environment": environment(), "rows": rows}, args.json)


if __name__ == "__main__":
    main()
