# SPDX-License-Identifier: MIT
"""The cost of rebuilding the "graph/1" neighbor list: the device list of the GPU kernel (all-pairs search,
OpenCL or CUDA) against the host cell list of the CPU platform, measured in the same process.

    .venv/bin/python benchmarks/device_list.py [--platform OpenCL] [--sizes 300 1000 3000] [--json out.json]

A cheap pair model (a smooth pair term summed over the edges) keeps the model's share small.  Each size is
timed twice per platform with getState(getForces): once with every atom moved by 0.6 x skin between calls
(the list is rebuilt every time) and once with moves of 0.1 x skin (never rebuilt).  The difference is the
rebuild's cost.  The ratio device / host rebuild shows where the O(N^2) device search starts to cost more
than the host's O(N) cell list (on a GPU, a rebuild is microseconds up to a few thousand ML atoms; under
PoCL it runs on this CPU).
"""
import argparse

import numpy as np
import openmm
import torch

from common import cluster, emit, environment, make_context, median_time
from openmmmrl import MRLForce

SKIN_NM = 0.05


class CheapPair(torch.nn.Module):
    """E = sum over edges of (1 - (r/rc)^2)^2 for r < rc: almost free next to the list."""

    def __init__(self, cutoff_nm: float = 0.5):
        super().__init__()
        self.mrl_interface = "graph/1"
        self.cutoff_nm = cutoff_nm

    def forward(self, positions: torch.Tensor, atomic_numbers: torch.Tensor, molecule_index: torch.Tensor,
                edge_index: torch.Tensor, edge_shift: torch.Tensor) -> torch.Tensor:
        delta = positions[edge_index[1]] - positions[edge_index[0]] + edge_shift
        x = (delta * delta).sum(-1) / (self.cutoff_nm * self.cutoff_nm)
        return torch.where(x < 1.0, (1.0 - x) ** 2, torch.zeros_like(x)).sum()


def evaluation_time(platform, n, move_fraction, repeats):
    positions, _ = cluster(n)
    force = MRLForce(torch.jit.script(CheapPair()))
    force.setAtomicNumbers([6] * n)
    force.setProperty("NeighborListSkin", str(SKIN_NM))
    context = make_context(force, n, platform)
    rng = np.random.default_rng(0)
    state = {"positions": positions, "sign": 1.0}

    def evaluate():
        # Every atom moves by move_fraction x skin along x, back and forth.
        state["sign"] = -state["sign"]
        moved = state["positions"] + np.array([state["sign"] * move_fraction * SKIN_NM, 0.0, 0.0])
        context.setPositions(moved + rng.normal(0, 1e-6, moved.shape))
        context.getState(getForces=True)

    return median_time(evaluate, repeats)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--platform", default="OpenCL", help="the device platform (OpenCL or CUDA)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[300, 1000, 3000])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--json")
    args = parser.parse_args()
    results = []
    for n in args.sizes:
        row = {"atoms": n}
        for name, platform in [("device", args.platform), ("host", "CPU")]:
            rebuilt = evaluation_time(platform, n, 0.6, args.repeats)
            kept = evaluation_time(platform, n, 0.1, args.repeats)
            row[f"{name}_ms_rebuild"] = round(rebuilt * 1e3, 3)
            row[f"{name}_ms_no_rebuild"] = round(kept * 1e3, 3)
            row[f"{name}_rebuild_cost_ms"] = round((rebuilt - kept) * 1e3, 3)
        host_cost = max(row["host_rebuild_cost_ms"], 1e-3)
        row["rebuild_cost_device_over_host"] = round(row["device_rebuild_cost_ms"] / host_cost, 2)
        results.append(row)
    emit({"benchmark": "device_list", "platform": args.platform, "skin_nm": SKIN_NM,
          "environment": environment(), "results": results}, args.json)


if __name__ == "__main__":
    main()
