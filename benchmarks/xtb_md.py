# SPDX-License-Identifier: MIT
"""MMFF94 + correction head against GFN2-xTB in MD, on the same cluster, side by side in one run.

    .venv/bin/python benchmarks/xtb_md.py [--model models/mrl-head-xtb.pt] [--steps 200] [--xtb-steps 10]
        [--threads 1] [--json out.json]

The cluster is caffeine in four methanols (48 atoms), built by mrl-envgen (MMFF94-minimized, a frame
after a short MD).  Both run velocity-Verlet-type MD from the same positions at 0.5 fs:
  MMFF94 + head   OpenMM on the CPU platform: createMMFFSystem of the cluster plus MRLForce(head), a
                  Langevin step (LangevinMiddleIntegrator), --steps steps
  GFN2-xTB        a plain velocity Verlet loop over tblite's GFN2-xTB energy and gradient (one SCF per
                  step, started fresh), --xtb-steps steps
Printed: ms per step of each (medians over repeats) and the ratio xtb / (MMFF94 + head): how many times
faster the correction head's MD is than the method it corrects toward (target: >= 100).  Without a
--model (or when models/mrl-head-xtb.pt does not exist), an untrained interaction head of the default
size stands in: its cost is that of a trained one of the same size.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import openmm
import openmm.app

from common import emit, environment

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CENTRAL, PARTNER = "Cn1c(=O)c2c(ncn2C)n(C)c1=O", "CO"  # caffeine, methanol


def build_cluster(workdir):
    from openmmmrl.data import Dataset
    envgen = os.path.join(os.path.dirname(sys.executable), "mrl-envgen")
    pairs = os.path.join(workdir, "pairs.csv")
    with open(pairs, "w") as f:
        f.write(f"central,partner,id\n{CENTRAL},{PARTNER},caffeine-methanol\n")
    out = os.path.join(workdir, "cluster.h5")
    subprocess.run([envgen, "build", pairs, "--output", out, "--copies", "4", "--equilibration", "200",
                    "--steps", "100", "--interval", "100", "--seed", "3", "--quiet"], check=True,
                   capture_output=True)
    with Dataset(out) as ds:
        return ds.record(0)


def head_file(path, workdir):
    """The model file: --model, else the shipped correction head, else an untrained interaction head."""
    shipped = os.path.join(ROOT, "models", "mrl-head-xtb.pt")
    if path or os.path.exists(shipped):
        return path or shipped, "trained" if not path else "given"
    import json
    import torch
    from openmmmrl.head.export import head_metadata, save_module
    from openmmmrl.head.model import ExportedHead, InteractionConfig, InteractionHead
    config = InteractionConfig()
    torch.manual_seed(0)
    model = InteractionHead(config)
    out = os.path.join(workdir, "untrained-interaction-head.pt")
    save_module(ExportedHead(model, json.dumps(head_metadata(model, config.to_dict()))), out)
    return out, "untrained (same size as the default)"


def mmff_head_ms(record, model_path, steps, threads):
    from openmmmrl import MRLForce, createMMFFSystem, moleculesFromRecord
    system = createMMFFSystem(moleculesFromRecord(record, frame=0))
    force = MRLForce(model_path)
    force.setAtomicNumbers([int(z) for z in record.atomic_numbers])
    force.setMoleculeIndices([int(m) for m in record.molecule_index])
    force.setProperty("Threads", str(threads))
    force.setForceGroup(2)
    system.addForce(force)
    context = openmm.Context(system, openmm.LangevinMiddleIntegrator(300, 1, 0.0005),
                             openmm.Platform.getPlatformByName("CPU"), {"Threads": str(threads)})
    context.setPositions(record.positions[0].astype(float))
    context.getIntegrator().step(20)  # warm-up (the model's first calls are slower)
    times = []
    for _ in range(5):
        start = time.perf_counter()
        context.getIntegrator().step(steps)
        times.append((time.perf_counter() - start) / steps)
    return 1e3 * float(np.median(times))


def xtb_ms(record, steps):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from openmmmrl.labels.xtb import singlepoint
    z = record.atomic_numbers
    masses = np.array([openmm.app.Element.getByAtomicNumber(int(a)).mass.value_in_unit(openmm.unit.dalton)
                       for a in z])[:, None]
    x = record.positions[0].astype(float).copy()
    v = np.zeros_like(x)
    charge = int(record.formal_charges.sum())
    dt = 0.0005  # ps
    _, f = singlepoint(z, x, charge)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        v += 0.5 * dt * f / masses
        x += dt * v
        _, f = singlepoint(z, x, charge)
        v += 0.5 * dt * f / masses
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="the correction head (default: models/mrl-head-xtb.pt, or an untrained one)")
    parser.add_argument("--steps", type=int, default=200, help="MMFF94 + head steps per repeat (default 200)")
    parser.add_argument("--xtb-steps", type=int, default=10, help="GFN2-xTB velocity Verlet steps (default 10)")
    parser.add_argument("--threads", type=int, default=1, help="threads of both (default 1)")
    parser.add_argument("--json", help="also write the result here")
    args = parser.parse_args(argv)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    with tempfile.TemporaryDirectory() as workdir:
        record = build_cluster(workdir)
        model, which = head_file(args.model, workdir)
        head = mmff_head_ms(record, model, args.steps, args.threads)
    xtb = xtb_ms(record, args.xtb_steps)
    emit({"benchmark": "xtb_md", "cluster": f"{CENTRAL} + 4 {PARTNER}", "atoms": int(record.num_atoms),
          "model": os.path.relpath(model, ROOT) if model.startswith(ROOT) else os.path.basename(model),
          "model_kind": which, "threads": args.threads, "mmff94_plus_head_ms_per_step": round(head, 3),
          "gfn2_xtb_ms_per_step": round(xtb, 2), "xtb_over_mmff94_plus_head": round(xtb / head, 1),
          "environment": environment()}, args.json)


if __name__ == "__main__":
    main()
