# SPDX-License-Identifier: MIT
"""Training speed of the force head: frames per second of one optimizer step (all objectives, forces by
double backward), divided by frames per second of evaluating forces alone on the same batch.

    .venv/bin/python benchmarks/train_step.py [--data out/head/envs.h5] [--batch-size 16] [--threads 1 2]

Ratios against the evaluation measured in the same process:
  step / forces only           the full training step: all six objectives and the backward pass
  force objectives / forces    only force, interaction and energy matching (what the head needs)
Without --data, a small dataset is built with mrl-envgen from the shipped example pairs.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import torch

from common import emit, environment, median_time
from openmmmrl.head.batch import load_frames, make_batch
from openmmmrl.head.losses import Statistics, normalizers
from openmmmrl.head.model import HeadConfig, Model
from openmmmrl.head.predict import predict
from openmmmrl.head.train import TrainOptions, losses_of

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="a dataset (default: a small one built now)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--features", type=int, default=48)
    parser.add_argument("--json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        if data is None:
            data = os.path.join(tmp, "envs.h5")
            subprocess.run([os.path.join(os.path.dirname(sys.executable), "mrl-envgen"), "build",
                            os.path.join(ROOT, "examples", "pairs.csv"), "--output", data, "--limit", "8",
                            "--equilibration", "50", "--steps", "200", "--interval", "50", "--quiet"], check=True)
        frames = load_frames([data])[:args.batch_size]
    config = HeadConfig(features=args.features, cutoff_nm=0.45)
    model = Model(config)
    stats = Statistics(frames, config.max_atomic_number)
    stats.initialize(model.head)
    batch = make_batch(frames, config.cutoff_nm)
    norm = normalizers(frames)
    full = TrainOptions()
    forces_only = TrainOptions(weights={"force": 1.0, "interaction": 1.0, "energy": 0.05})
    generator = torch.Generator().manual_seed(0)
    rows = []
    for threads in args.threads:
        torch.set_num_threads(threads)

        def step(options):
            model.zero_grad()
            losses_of(model, batch, options, stats, norm, generator)[0]["total"].backward()

        def evaluate():
            predict(model.head, batch, interaction=False)

        t_full = median_time(lambda: step(full), 7)
        t_forces = median_time(lambda: step(forces_only), 7)
        t_eval = median_time(evaluate, 7)
        rows.append({"threads": threads, "frames": len(frames), "atoms": int(batch.positions.shape[0]),
                     "edges": int(batch.edge_index.shape[1]), "step_ms": 1e3 * t_full,
                     "force_objectives_step_ms": 1e3 * t_forces, "forces_only_ms": 1e3 * t_eval,
                     "frames_per_second_training": len(frames) / t_full,
                     "ratio_step_over_forces": t_full / t_eval,
                     "ratio_force_objectives_over_forces": t_forces / t_eval})
    emit({"environment": environment(), "rows": rows}, args.json)


if __name__ == "__main__":
    main()
