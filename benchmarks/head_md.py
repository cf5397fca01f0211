# SPDX-License-Identifier: MIT
"""The force head in MD: cost of an MD step with MRLForce against the bare model, and what packing
several environments into one System saves.

    .venv/bin/python benchmarks/head_md.py [--model models/mrl-head-mmff94.pt] [--data out/head/envs.h5]
        [--environments 20] [--threads 1] [--json out.json]

Ratios, each against a baseline measured in the same process:
  step / bare model   Langevin step of an environment whose only force is MRLForce (CPU platform, float32),
                      divided by the bare TorchScript forward + backward of the head on the same inputs
                      (float32, the same edges): the plugin and integrator overhead (1.00: none)
  packed / separate   one step of --environments environments in one System (openmmmrl.head.md), divided by
                      the sum of their steps as separate Systems: the saving evaluate's MD stability uses
Without --data, the environments come from a small mrl-envgen build of the shipped example pairs.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import openmm
import torch

from common import emit, environment, median_time
from openmmmrl import Dataset
from openmmmrl.head.batch import neighbor_edges
from openmmmrl.head.md import Environment, head_system

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def contexts(model, envs, threads):
    packed = head_system(model, envs)
    packed.force.setProperty("Threads", str(threads))
    context = openmm.Context(packed.system, openmm.LangevinMiddleIntegrator(300, 1, 0.001),
                             openmm.Platform.getPlatformByName("CPU"), {"Threads": str(threads)})
    context.setPositions(packed.positions)
    return context


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=os.path.join(ROOT, "models", "mrl-head-mmff94.pt"))
    parser.add_argument("--data", help="a dataset to take environments from (first frames)")
    parser.add_argument("--environments", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=50, help="steps per timing sample")
    parser.add_argument("--json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        if data is None:
            data = os.path.join(tmp, "envs.h5")
            subprocess.run([os.path.join(os.path.dirname(sys.executable), "mrl-envgen"), "build",
                            os.path.join(ROOT, "examples", "pairs.csv"), "--output", data, "--limit",
                            str(args.environments), "--equilibration", "0", "--steps", "1", "--interval", "1",
                            "--quiet"], check=True)
        with Dataset(data) as d:
            envs = [Environment.from_record(d.record(i)) for i in range(min(args.environments, len(d)))]
    steps = args.steps

    # 1. One environment: MD step vs bare model.
    env = envs[0]
    single = contexts(args.model, [env], args.threads)
    step_time = median_time(lambda: single.getIntegrator().step(steps), 5) / steps
    module = torch.jit.load(args.model).float()
    pos = torch.tensor(single.getState(getPositions=True).getPositions(asNumpy=True)._value, dtype=torch.float32)
    z, mol = torch.tensor(env.atomic_numbers, dtype=torch.int64), torch.tensor(env.molecule_index, dtype=torch.int64)
    edges, shifts = neighbor_edges(pos, None, module.cutoff_nm)

    def bare():
        p = pos.clone().requires_grad_(True)
        torch.autograd.grad(module(p, z, mol, edges, shifts), p)

    bare_time = median_time(lambda: [bare() for _ in range(steps)], 5) / steps

    # 2. Packed vs separate.
    packed = contexts(args.model, envs, args.threads)
    packed_time = median_time(lambda: packed.getIntegrator().step(steps // 5 or 1), 5) / (steps // 5 or 1)
    separate = 0.0
    for e in envs:
        c = contexts(args.model, [e], args.threads)
        separate += median_time(lambda: c.getIntegrator().step(steps // 5 or 1), 3) / (steps // 5 or 1)
    result = {
        "environment": environment(), "threads": args.threads, "model": args.model,
        "single_atoms": int(len(env.atomic_numbers)), "single_edges": int(edges.shape[1]),
        "md_step_ms": 1e3 * step_time, "bare_model_ms": 1e3 * bare_time, "ratio_step_over_bare": step_time / bare_time,
        "environments": len(envs), "packed_atoms": int(sum(len(e.atomic_numbers) for e in envs)),
        "packed_step_ms": 1e3 * packed_time, "separate_steps_ms": 1e3 * separate,
        "ratio_packed_over_separate": packed_time / separate,
        "packed_ns_per_day_per_environment_1fs": 0.001 / 1000 * 86400 / packed_time,
    }
    emit(result, args.json)


if __name__ == "__main__":
    main()
