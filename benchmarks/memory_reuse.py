# SPDX-License-Identifier: MIT
"""The ReuseMemory property: time of Context.getState(getForces=True) with ReuseMemory=true divided by
the time with ReuseMemory=false, each measured in a fresh subprocess (malloc settings are process-wide).

    .venv/bin/python benchmarks/memory_reuse.py [--sizes 1000 10000] [--repeats 7]
"""
import argparse
import json
import os
import subprocess
import sys

from common import emit, environment

CHILD = r"""
import json, sys, torch, warnings
warnings.filterwarnings("ignore")
sys.path.insert(0, {here!r})
from common import cluster, make_context, median_time
from openmmmrl import MRLForce
from openmmmrl.toy import GraphMessagePassing
n, reuse, repeats = {n}, {reuse!r}, {repeats}
force = MRLForce(torch.jit.script(GraphMessagePassing()))
force.setAtomicNumbers([6] * n)
force.setProperty("ReuseMemory", reuse)
context = make_context(force, n, "CPU")
context.setPositions(cluster(n)[0])
print(json.dumps(median_time(lambda: context.getState(getForces=True), repeats)))
"""


def run(n, reuse, repeats):
    code = CHILD.format(here=os.path.dirname(os.path.abspath(__file__)), n=n, reuse=reuse, repeats=repeats)
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000], help="numbers of atoms")
    parser.add_argument("--repeats", type=int, default=7, help="timed repetitions (the median is reported)")
    parser.add_argument("--json", help="also write the result to this file")
    args = parser.parse_args()
    rows = []
    for n in args.sizes:
        on, off = run(n, "true", args.repeats), run(n, "false", args.repeats)
        rows.append({"atoms": n, "reuse_ms": round(on * 1e3, 2), "no_reuse_ms": round(off * 1e3, 2),
                     "speedup": round(off / on, 2)})
    emit({"benchmark": "ReuseMemory=true vs false (getState(getForces), toy graph/1 network, CPU platform)",
          "environment": environment(), "results": rows}, args.json)


if __name__ == "__main__":
    main()
