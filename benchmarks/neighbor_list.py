# SPDX-License-Identifier: MIT
"""Engine neighbor list versus in-model neighbor search: time per MD step of the same message-passing
network written as "graph/1" (the plugin builds a cell list with a skin) and as "positions" (all N x N
distances inside the model, as openmm-torch users write it), in the same process.

    .venv/bin/python benchmarks/neighbor_list.py [--graph-sizes 1000 3000 10000 30000]
                                                 [--all-pairs-sizes 1000 3000 10000] [--json out.json]

Prints, per size, ms per step (median over blocks of steps of a VerletIntegrator at 300 K on the CPU
platform), the speed-up of graph/1, and graph/1's time per step per atom relative to the smallest size
(about 1.0 means linear growth).  Targets: speed-up >= 5 at 10000 atoms, per-atom cost not growing.
"""
import argparse

import torch

from common import cluster, emit, environment, make_context, median_time
from openmmmrl import MRLForce
from openmmmrl.toy import AllPairsMessagePassing, GraphMessagePassing


def step_time(model, n, steps, blocks, atomic_numbers=None):
    positions, _ = cluster(n)
    force = MRLForce(torch.jit.script(model))
    if atomic_numbers is not None:
        force.setAtomicNumbers(atomic_numbers)
    context = make_context(force, n, "CPU")
    context.setPositions(positions)
    context.setVelocitiesToTemperature(300, 1)
    integrator = context.getIntegrator()
    return median_time(lambda: integrator.step(steps), blocks, warmup=1) / steps


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--graph-sizes", type=int, nargs="+", default=[1000, 3000, 10000, 30000])
    parser.add_argument("--all-pairs-sizes", type=int, nargs="+", default=[1000, 3000, 10000])
    parser.add_argument("--steps", type=int, default=5, help="steps per timed block")
    parser.add_argument("--blocks", type=int, default=3, help="timed blocks (the median is reported)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="LibTorch intra-op threads")
    parser.add_argument("--json", help="also write the result to this file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = {}
    for n in args.graph_sizes:
        rows[n] = {"atoms": n, "graph_ms_per_step": 1e3 * step_time(GraphMessagePassing(), n, args.steps, args.blocks,
                                                                     [6] * n)}
    for n in args.all_pairs_sizes:
        rows.setdefault(n, {"atoms": n})["all_pairs_ms_per_step"] = 1e3 * step_time(
            AllPairsMessagePassing([6] * n), n, args.steps, args.blocks)
    smallest = min(args.graph_sizes)
    for n, row in sorted(rows.items()):
        if "graph_ms_per_step" in row and "all_pairs_ms_per_step" in row:
            row["graph_speedup"] = round(row["all_pairs_ms_per_step"] / row["graph_ms_per_step"], 2)
        if "graph_ms_per_step" in row:
            per_atom = row["graph_ms_per_step"] / n
            row["graph_per_atom_vs_smallest"] = round(per_atom / (rows[smallest]["graph_ms_per_step"] / smallest), 3)
        for key in ("graph_ms_per_step", "all_pairs_ms_per_step"):
            if key in row:
                row[key] = round(row[key], 2)
    emit({"benchmark": "engine neighbor list (graph/1) vs in-model all-pairs search (positions)",
          "environment": environment(), "results": [rows[n] for n in sorted(rows)]}, args.json)


if __name__ == "__main__":
    main()
