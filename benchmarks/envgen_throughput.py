# SPDX-License-Identifier: MIT
"""mrl-envgen build speed against bare OpenMM, measured in the same process.

For each environment, `mrl-envgen build --baseline` times its MD with frame recording (one force
evaluation per frame, split into groups 0 and 1; HDF5 journal writes) and then the same number of Langevin steps of the same
System on a fresh Context with nothing recorded. The ratio of the two rates is the tool's overhead
(1.0 means none; target >= 0.9). Setup (ETKDG conformers, MMFF94 relaxation, placement, the OpenMM
System and Context, minimization) is reported per molecule separately: it is paid once per environment.

    .venv/bin/python benchmarks/envgen_throughput.py [--pairs 12] [--interval 100] [--platform Reference]
"""
import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENVGEN = Path(sys.executable).parent / "mrl-envgen"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=12, help="first N pairs of examples/pairs.csv")
    parser.add_argument("--interval", type=int, nargs="+", default=[20, 100], help="steps between frames")
    parser.add_argument("--steps", type=int, default=2000, help="MD steps per environment after equilibration")
    parser.add_argument("--platform", default="Reference", help="OpenMM platform")
    parser.add_argument("--copies", type=int, default=5)
    args = parser.parse_args()
    results = []
    for interval in args.interval:
        with tempfile.TemporaryDirectory() as directory:
            command = [str(ENVGEN), "build", str(ROOT / "examples" / "pairs.csv"), "--output", f"{directory}/b.h5",
                       "--limit", str(args.pairs), "--steps", str(args.steps), "--interval", str(interval),
                       "--equilibration", "200", "--copies", str(args.copies), "--platform", args.platform,
                       "--baseline", "--quiet"]
            summary = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
        row = {"interval_steps": interval, "records": summary["records_written"],
               "build_steps_per_s": round(summary["md_steps_per_second"], 1),
               "bare_openmm_steps_per_s": round(summary["bare_openmm_steps_per_second"], 1),
               "ratio": round(summary["speed_ratio_vs_bare_openmm"], 3),
               "setup_s_per_molecule": round(summary["setup_seconds_per_record"] / 2, 3),
               "frames_per_s_overall": round(summary["frames_per_second"], 2)}
        results.append(row)
        print(f"interval {interval:4d} steps: build {row['build_steps_per_s']:8.1f} steps/s, bare OpenMM "
              f"{row['bare_openmm_steps_per_s']:8.1f} steps/s, ratio {row['ratio']:.3f}; setup "
              f"{row['setup_s_per_molecule']:.3f} s per molecule ({args.platform}, {args.pairs} pairs, "
              f"{args.copies} copies)", flush=True)
    print(json.dumps({"benchmark": "envgen_throughput", "platform": args.platform, "results": results}, indent=1))


if __name__ == "__main__":
    main()
