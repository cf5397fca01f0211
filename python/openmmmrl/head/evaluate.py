# SPDX-License-Identifier: MIT
"""Evaluate an exported force head on the held-out (test) molecules of its training split.

    python -m openmmmrl.evaluate models/mrl-head-mmff94.pt --data out/head/envs.h5 \\
        --checkpoint out/head/run/best.pt --output out/head/evaluation

Parts, in this order (each can be skipped; metrics.json is updated after each, and every ps of MD):
  errors     force MAE and RMSE (kJ/mol/nm) of the exported model on every test frame, also relative to
             the RMS of the reference forces; the same for interaction forces, the derivative of
             E(x) - E_intra(x) (the model with the edges between molecules removed); energy MAE per atom
  nve        energy drift of velocity Verlet (0.5 fs, --nve-ps) with the head: the slope of a linear fit
             of the total energy, kJ/mol/ps per atom
  finetune   --finetune-frames frames of test molecules (records ending in /c0) fine-tune the
             pretrained head and a randomly initialised one with the same objectives (forces,
             interaction forces, energies) and steps; force MAE on the other test records; reports
             the reduction 1 - MAE(pretrained) / MAE(random)
  md         --md-environments held-out environments (test molecules, then validation ones when the
             test set has fewer), --md-ps of Langevin MD each (300 K, 1 fs, 1/ps) with
             the head through MRLForce (CPU platform) plus the flat-bottom restraint of mrl-envgen;
             checked every ps: intact = no bond stretched beyond 1.5x, no atom 0.5 nm beyond the
             restraint.  The environments share one System far apart (see openmmmrl.head.md)
Writes metrics.json, parity.png and md_energies.png in --output, and prints a summary.
"""
import argparse
import json
import os
import sys
import time
import warnings

import numpy as np
import torch

from ..data import Dataset
from .batch import load_frames, make_batch, split_key
from .losses import Statistics
from .model import HeadConfig, Model
from .plots import energy_trace, parity
from .predict import predict
from .train import TrainOptions, evaluate_frames, fit


def load_model(path: str) -> torch.jit.ScriptModule:
    """An exported model file (float64), without torch's deprecation warning for ``torch.jit.load``."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*torch.jit.load.*", category=FutureWarning)
        return torch.jit.load(path).double()


def force_errors(module, frames):
    """Errors of a "graph/1" module (float64) on frames: force MAE and RMSE (kJ/mol/nm), also relative to
    the RMS of the reference, for total and interaction forces; energy MAE per atom; per central
    molecule.  Returns (the errors, the (reference, predicted) force rows for a parity plot)."""
    rows = {"total": [[], []], "interaction": [[], []]}
    energy_errors, inter_energy_errors = [], []
    per_molecule = {}
    for frame in frames:
        p = predict(module, make_batch([frame], module.cutoff_nm, dtype=torch.float64))
        e, f, ei, fi = float(p.energy[0]), p.forces.numpy(), float(p.interaction_energy[0]), p.interaction_forces.numpy()
        entry = per_molecule.setdefault(frame.group, [0.0, 0.0, 0])
        entry[0] += float(np.abs(f - frame.total_forces).sum())
        entry[1] += float((frame.total_forces.astype(np.float64) ** 2).sum())
        entry[2] += frame.total_forces.size
        rows["total"][0].append(frame.total_forces)
        rows["total"][1].append(f)
        energy_errors.append(abs(e - frame.total_energy) / frame.num_atoms)
        if frame.has_interaction:
            rows["interaction"][0].append(frame.interaction_forces)
            rows["interaction"][1].append(fi)
            inter_energy_errors.append(abs(ei - frame.interaction_energy) / frame.num_atoms)
    result = {"frames": len(frames)}
    for name, (ref, pred) in rows.items():
        if not ref:
            continue
        ref, pred = np.concatenate(ref).astype(np.float64), np.concatenate(pred)
        rms = float(np.sqrt(np.mean(ref ** 2)))
        mae, rmse = float(np.mean(np.abs(pred - ref))), float(np.sqrt(np.mean((pred - ref) ** 2)))
        result[name] = {"mae_kj_mol_nm": mae, "rmse_kj_mol_nm": rmse, "reference_rms_kj_mol_nm": rms,
                        "mae_relative_to_rms": mae / rms, "rmse_relative_to_rms": rmse / rms}
    result["energy_mae_kj_mol_per_atom"] = float(np.mean(energy_errors))
    result["per_central_molecule"] = {g: {"mae_kj_mol_nm": a / n, "reference_rms_kj_mol_nm": float(np.sqrt(b / n))}
                                      for g, (a, b, n) in sorted(per_molecule.items())}
    if inter_energy_errors:
        result["interaction_energy_mae_kj_mol_per_atom"] = float(np.mean(inter_energy_errors))
    return result, rows


def _environments(data_paths, group_lists, count):
    """Up to ``count`` environments (first frames) whose central molecule is in the first group list,
    then the next (test molecules first, then validation ones: none of them was trained on)."""
    from .md import Environment
    found = [[] for _ in group_lists]
    for path in data_paths:
        with Dataset(path) as data:
            for record in data.records():
                group = split_key(record, path)
                for k, groups in enumerate(group_lists):
                    if group in groups and record.num_frames:
                        found[k].append(Environment.from_record(record))
    return [env for envs in found for env in envs][:count]


def finetune_benefit(checkpoint_path, frames_tune, frames_eval, epochs, seed):
    """Fine-tunes the checkpoint's head and a freshly initialised one on ``frames_tune`` with the same
    objectives and steps; their force MAE on ``frames_eval`` before and after, and the reduction."""
    state = torch.load(checkpoint_path, weights_only=False, map_location="cpu")
    config = HeadConfig.from_dict(state["config"])
    options = TrainOptions(epochs=epochs, batch_size=10, learning_rate=5e-4, final_learning_rate=5e-5, seed=seed,
                           weights={"force": 1.0, "interaction": 1.0, "energy": 0.05})
    results = {}
    for name in ("pretrained", "random"):
        model = Model(config)
        if name == "pretrained":
            model.load_state_dict(state["model"])
            stats = Statistics.from_dict(state["statistics"])
        else:
            stats = Statistics(frames_tune, config.max_atomic_number)
            stats.initialize(model.head)
        before = evaluate_frames(model, frames_eval, options, stats)["force_mae"]
        began = time.perf_counter()
        fit(model, frames_tune, [], options, stats, quiet=True)
        after = evaluate_frames(model, frames_eval, options, stats)
        results[name] = {"force_mae_before_kj_mol_nm": before, "force_mae_kj_mol_nm": after["force_mae"],
                         "interaction_force_mae_kj_mol_nm": after["interaction_force_mae"],
                         "seconds": time.perf_counter() - began}
    results["force_mae_reduction"] = 1.0 - results["pretrained"]["force_mae_kj_mol_nm"] / results["random"]["force_mae_kj_mol_nm"]
    results["interaction_force_mae_reduction"] = 1.0 - (results["pretrained"]["interaction_force_mae_kj_mol_nm"] /
                                                        results["random"]["interaction_force_mae_kj_mol_nm"])
    results.update(tune_frames=len(frames_tune), eval_frames=len(frames_eval), epochs=epochs)
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m openmmmrl.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="an exported force head (python -m openmmmrl.export)")
    parser.add_argument("--data", nargs="+", required=True, help="the dataset(s) the head was trained on")
    parser.add_argument("--checkpoint", help="the training checkpoint (for the split and fine-tuning); default: "
                                             "the one recorded in the model file")
    parser.add_argument("--output", required=True, help="directory for metrics.json and the plots")
    parser.add_argument("--skip", nargs="*", default=[], choices=["errors", "md", "nve", "finetune"],
                        help="parts to leave out")
    parser.add_argument("--md-environments", type=int, default=20, help="held-out environments simulated (default 20)")
    parser.add_argument("--md-ps", type=int, default=50, help="Langevin MD per environment, ps (default 50)")
    parser.add_argument("--nve-ps", type=float, default=5.0, help="NVE length, ps (default 5)")
    parser.add_argument("--nve-environments", type=int, default=4, help="environments in the NVE run (default 4)")
    parser.add_argument("--finetune-frames", type=int, default=100, help="frames to fine-tune on (default 100)")
    parser.add_argument("--finetune-epochs", type=int, default=30, help="fine-tuning epochs (default 30)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for MD (default 2)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (velocities, fine-tuning)")
    args = parser.parse_args(argv)

    module = load_model(args.model)
    meta = json.loads(module.mrl_metadata) if hasattr(module, "mrl_metadata") else {}
    checkpoint = args.checkpoint or meta.get("checkpoint")
    split = meta.get("split")
    if checkpoint and os.path.exists(checkpoint):
        split = torch.load(checkpoint, weights_only=False, map_location="cpu")["split"]
    if not split:
        raise SystemExit(f"{args.model} records no training split and no --checkpoint was given; pass the "
                         f"checkpoint of python -m openmmmrl.train")
    os.makedirs(args.output, exist_ok=True)
    metrics_path = os.path.join(args.output, "metrics.json")
    metrics = json.load(open(metrics_path)) if os.path.exists(metrics_path) else {}
    metrics["model"] = os.path.abspath(args.model)
    test_groups = set(split["test"])
    frames = [f for f in load_frames(args.data) if f.group in test_groups]
    if not frames:
        raise SystemExit(f"no frames of the test molecules {sorted(test_groups)} in {args.data}")

    def save():
        with open(metrics_path, "w") as f:
            json.dump(metrics, f, indent=1)

    if "errors" not in args.skip:
        result, rows = force_errors(module, frames)
        metrics["errors"] = result
        parity({f"{k} forces (test)": (np.concatenate(v[0]), np.concatenate(v[1])) for k, v in rows.items() if v[0]},
               os.path.join(args.output, "parity.png"))
        save()
        print(f"test forces: MAE {result['total']['mae_kj_mol_nm']:.1f} kJ/mol/nm "
              f"({100 * result['total']['mae_relative_to_rms']:.1f}% of RMS), interaction MAE "
              f"{result['interaction']['mae_kj_mol_nm']:.2f} ({100 * result['interaction']['mae_relative_to_rms']:.1f}%)",
              file=sys.stderr)
    if "nve" not in args.skip or "md" not in args.skip:
        from .md import md_stability, nve_drift  # loads the compiled plugin
    if "nve" not in args.skip:
        envs = _environments(args.data, [test_groups], args.nve_environments)
        metrics["nve"] = nve_drift(args.model, envs, args.nve_ps, args.seed, args.threads)
        save()
        print(f"NVE drift {metrics['nve']['drift_kj_mol_ps_per_atom']:.2e} kJ/mol/ps per atom", file=sys.stderr)
    if "finetune" not in args.skip:
        if not checkpoint or not os.path.exists(checkpoint):
            raise SystemExit("fine-tuning needs the training checkpoint: pass --checkpoint")
        tune_pool = [f for f in frames if f.source.endswith("/c0")]
        eval_frames = [f for f in frames if not f.source.endswith("/c0")]
        step = max(1, len(tune_pool) // args.finetune_frames)
        tune = tune_pool[::step][:args.finetune_frames]
        metrics["finetune"] = finetune_benefit(checkpoint, tune, eval_frames, args.finetune_epochs, args.seed)
        save()
        print(f"fine-tuning on {len(tune)} frames: force MAE reduction {100 * metrics['finetune']['force_mae_reduction']:.1f}% "
              f"(pretrained vs random initialisation)", file=sys.stderr)
    if "md" not in args.skip:
        envs = _environments(args.data, [test_groups, set(split["validation"])], args.md_environments)

        def report(partial):
            metrics["md"] = partial
            save()

        result, trace = md_stability(args.model, envs, args.md_ps, args.seed, args.threads, report=report)
        metrics["md"] = result
        energy_trace(trace[0], {"potential energy, all environments": trace[1]},
                     os.path.join(args.output, "md_energies.png"), "Langevin MD with the force head")
        save()
        print(f"MD: {result['intact']}/{result['environments']} environments intact after {args.md_ps} ps", file=sys.stderr)
    print(json.dumps(metrics, indent=1))


if __name__ == "__main__":
    main()
