# SPDX-License-Identifier: MIT
"""Plugin overhead: time of Context.getState(getForces=True) with an MRLForce, divided by the time of
the bare LibTorch forward + backward of the same model on the same inputs, in the same process.

    .venv/bin/python benchmarks/overhead.py [--sizes 100 1000 10000] [--threads 1 2] [--json out.json]

The model is the toy graph/1 network of openmmmrl.toy (a stand-in for the head); the bare baseline
gets the same edges the plugin built, in the same precision (CPU platform: float32).  A ratio of 1.00
means the plugin adds nothing; the target is <= 1.05 for N >= 1000.
"""
import argparse

import numpy as np
import torch

from common import cluster, emit, environment, make_context, median_time
from openmmmrl import MRLForce
from openmmmrl.toy import GraphMessagePassing


def measure(n, repeats, platform):
    positions, _ = cluster(n)
    model = torch.jit.script(GraphMessagePassing())
    force = MRLForce(model)
    force.setAtomicNumbers([6] * n)
    context = make_context(force, n, platform)
    context.setPositions(positions)
    plugin = median_time(lambda: context.getState(getForces=True), repeats)

    # The bare model: the same edges the plugin passes (those within the cutoff, found by brute force here), same dtype.
    dtype = torch.float64 if platform == "Reference" else torch.float32
    bare = torch.jit.load(_to_bytes(model))
    bare.to(dtype)
    pos = torch.tensor(positions, dtype=dtype, requires_grad=True)
    edge_index = _edges(positions, model.cutoff_nm)
    z = torch.full((n,), 6, dtype=torch.int64)
    m = torch.zeros(n, dtype=torch.int64)
    shift = torch.zeros(edge_index.shape[1], 3, dtype=dtype)

    def forward_backward():
        energy = bare(pos, z, m, edge_index, shift)
        torch.autograd.grad([energy], [pos])

    baseline = median_time(forward_backward, repeats)
    return {"atoms": n, "edges": int(edge_index.shape[1]), "platform": platform,
            "plugin_ms": round(plugin * 1e3, 3), "bare_model_ms": round(baseline * 1e3, 3),
            "ratio": round(plugin / baseline, 3)}


def _to_bytes(module):
    import io
    buffer = io.BytesIO()
    torch.jit.save(module, buffer)
    buffer.seek(0)
    return buffer


def _edges(positions, reach):
    from scipy.spatial import cKDTree
    pairs = cKDTree(positions).query_pairs(reach, output_type="ndarray")
    pairs = np.concatenate([pairs, pairs[:, ::-1]])
    pairs = pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]
    return torch.tensor(pairs.T.copy(), dtype=torch.int64)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000], help="numbers of atoms")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="LibTorch intra-op threads")
    parser.add_argument("--platform", default="CPU", choices=["CPU", "Reference", "OpenCL"],
                        help="OpenMM platform (OpenCL: its default single precision, the model in float32)")
    parser.add_argument("--repeats", type=int, default=15, help="timed repetitions (the median is reported)")
    parser.add_argument("--json", help="also write the result to this file")
    args = parser.parse_args()
    rows = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        for n in args.sizes:
            row = measure(n, args.repeats, args.platform)
            row["threads"] = threads
            rows.append(row)
    emit({"benchmark": "plugin overhead: getState(getForces) / bare forward+backward",
          "environment": environment(), "results": rows}, args.json)


if __name__ == "__main__":
    main()
