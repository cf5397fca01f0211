# SPDX-License-Identifier: MIT
"""Evaluate an exported head on the held-out (test) molecules of its training split.

    python -m openmmmrl.evaluate models/mrl-head-mmff94.pt --data out/head/envs.h5 \\
        --checkpoint out/head/run/best.pt --output out/head/evaluation
    python -m openmmmrl.evaluate delta.pt --data xtb.h5 --output evaluation --md-ps 100   # a correction head

A force head: parts, in this order (each can be skipped; metrics.json is updated after each, and every
ps of MD):
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

A correction (interaction) head, an exported file or its training checkpoint (python -m openmmmrl.train
--model interaction --delta-of gfn2), evaluated on frames of load_frames(--data, delta_of=gfn2), whose
targets are GFN2-xTB - MMFF94:
  errors     interaction energy (kJ/mol per environment) and force (kJ/mol/nm) MAE of MMFF94 alone
             (|target|) and of MMFF94 + head (|target - head|) and their ratio (goal <= 0.25), overall and
             per central molecule (worst first)
  nve        drift of MMFF94 + head (each environment its own System and Context), velocity Verlet 0.5 fs
  curve      the pretraining benefit: fine-tunes on --curve-sizes training frames from the --init trunk
             and from random weights (same settings, seed and epochs), held-out force and energy MAE;
             curve.json and curve.png
  md         Langevin MD of MMFF94 + head (300 K, 1 fs) of --md-environments held-out environments and of
             the periodic boxes of --box-data (md_box), checked every --md-check-ps: intact = no bond
             beyond 1.6x its length, no H farther than 0.25 nm from its partner, no atoms closer than
             0.08 nm; failures listed with time and reason; resumable (md_state.json)
"""
import argparse
import json
import os
import sys
import time
import zipfile
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from ..data import Dataset
from .batch import Frame, load_frames, make_batch, split_key
from .export import export, load_script, model_metadata, read_checkpoint, with_pretrained_trunk
from .losses import Statistics
from .model import HeadConfig, InteractionConfig, InteractionModel, Model
from .plots import energy_trace, learning_curve, parity
from .predict import predict
from .train import TrainOptions, evaluate_frames, fit


def load_model(path: str) -> torch.jit.ScriptModule:
    """An exported model file (float64), without torch's deprecation warning for ``torch.jit.load``."""
    return load_script(path).double()


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


def held_out_records(data_paths, group_lists, count) -> list:
    """Up to ``count`` dataset records (with frames) whose central molecule is in the first group list,
    then the next (test molecules first, then validation ones: none of them was trained on)."""
    found = [[] for _ in group_lists]
    for path in data_paths:
        with Dataset(path) as data:
            for record in data.records():
                group = split_key(record, path)
                for k, groups in enumerate(group_lists):
                    if group in groups and record.num_frames:
                        found[k].append(record)
    return [record for records in found for record in records][:count]


def _environments(data_paths, group_lists, count):
    """``held_out_records`` as ``md.Environment`` (first frames)."""
    from .md import Environment
    return [Environment.from_record(record) for record in held_out_records(data_paths, group_lists, count)]


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


def correction_errors(model, frames: Sequence[Frame]) -> dict:
    """How much of the baseline's interaction error a correction head removes, on ``frames`` from
    ``load_frames(paths, delta_of=...)`` (their interaction energy and forces are the targets, e.g.
    GFN2-xTB − MMFF94).  ``model``: an ``InteractionHead`` or an exported file's module, run by ``predict``.

    For the interaction energy (per environment, kJ/mol) and forces (per component, kJ/mol/nm): the MAE of
    the baseline alone (|target|, the baseline's own error against the label), of baseline + head
    (|target − head|) and their ratio (≤ 0.25: the head removes ≥ 75 % of the error).  The same per central
    molecule, worst corrected force error first (``per_molecule``).  Frames without targets are left out.
    Returns (the errors, (target, head) interaction force components for a parity plot)."""
    dtype = next(model.parameters()).dtype
    sums: Dict[str, Dict[str, float]] = {}
    targets, heads = [], []
    for frame in frames:
        if not frame.has_interaction:
            continue
        p = predict(model, make_batch([frame], model.cutoff_nm, dtype=dtype), interaction=True)
        target_f = frame.interaction_forces.astype(np.float64)
        head_f = p.interaction_forces.double().numpy()
        head_e = float(p.interaction_energy[0])
        for key in ("all", frame.group):
            entry = sums.setdefault(key, dict.fromkeys(("frames", "components", "energy_baseline", "energy_corrected",
                                                        "forces_baseline", "forces_corrected"), 0.0))
            entry["frames"] += 1
            entry["components"] += target_f.size
            entry["energy_baseline"] += abs(frame.interaction_energy)
            entry["energy_corrected"] += abs(frame.interaction_energy - head_e)
            entry["forces_baseline"] += float(np.abs(target_f).sum())
            entry["forces_corrected"] += float(np.abs(target_f - head_f).sum())
        targets.append(target_f)
        heads.append(head_f)
    if not sums:
        raise ValueError("no frames with interaction targets to evaluate the correction on")

    def errors(entry):
        out = {"frames": int(entry["frames"])}
        for name, count, unit in (("energy", entry["frames"], "kj_mol"), ("forces", entry["components"], "kj_mol_nm")):
            baseline, corrected = entry[f"{name}_baseline"] / count, entry[f"{name}_corrected"] / count
            out[f"interaction_{name}"] = {f"baseline_mae_{unit}": baseline, f"corrected_mae_{unit}": corrected,
                                          "ratio": corrected / baseline if baseline else float("nan")}
        return out

    result = errors(sums.pop("all"))
    per_molecule = [{"molecule": group, **errors(entry)} for group, entry in sums.items()]
    result["per_molecule"] = sorted(per_molecule, key=lambda m: -m["interaction_forces"]["corrected_mae_kj_mol_nm"])
    return result, (np.concatenate(targets), np.concatenate(heads))


def curve_frames(train: Sequence[Frame], sizes: Sequence[Optional[int]], seed: int) -> List[List[Frame]]:
    """Nested subsets of the training frames, one per size (``None``: all), in an order fixed by ``seed``."""
    order = np.random.default_rng(seed).permutation(len(train))
    return [[train[i] for i in order[:len(train) if size is None else min(size, len(train))]] for size in sizes]


def pretraining_curve(train: Sequence[Frame], test: Sequence[Frame], config: InteractionConfig,
                      options: TrainOptions, init: str, sizes: Sequence[Optional[int]],
                      progress: bool = True) -> dict:
    """The pretraining benefit: for each size (frames; ``None``: all of ``train``), a correction head
    fine-tuned on that many training frames from the trunk of the checkpoint ``init`` and one from random
    weights (the same settings, seed, epochs and so steps: ``options``; ``head.train.fit``), and their
    held-out interaction energy and force MAE (``correction_errors`` on ``test``).  Returns the table:
    ``rows`` (one per size and start; a size that gives as many frames as an earlier one is left out), and
    per number of frames the reduction of the force error,
    1 − MAE(pretrained) / MAE(random)."""
    _, settings = with_pretrained_trunk(InteractionModel, config, init)
    rows, reductions = [], {}
    subsets = curve_frames(train, sizes, options.seed)
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=2 * len({len(s) for s in subsets}), desc="pretraining curve", unit="fit", file=sys.stderr)
    for size, subset in zip(sizes, subsets):
        if str(len(subset)) in reductions:  # e.g. 1000 and "all" of fewer training frames
            continue
        mae = {}
        for start in ("pretrained", "random"):
            model = (with_pretrained_trunk(InteractionModel, config, init)[0] if start == "pretrained"
                     else InteractionModel(settings))
            stats = Statistics(subset, settings.max_atomic_number)
            stats.initialize_interaction(model.head)
            began = time.perf_counter()
            fit(model, subset, [], options, stats, quiet=True)
            errors = correction_errors(model.head.double().eval(), test)[0]
            mae[start] = errors["interaction_forces"]["corrected_mae_kj_mol_nm"]
            rows.append({"requested": "all" if size is None else size, "frames": len(subset), "start": start,
                         "epochs": options.epochs, "interaction_force_mae_kj_mol_nm": mae[start],
                         "interaction_energy_mae_kj_mol": errors["interaction_energy"]["corrected_mae_kj_mol"],
                         "seconds": time.perf_counter() - began})
            if bar is not None:
                bar.update(1)
        reductions[str(len(subset))] = 1.0 - mae["pretrained"] / mae["random"]
    if bar is not None:
        bar.close()
    baseline = correction_errors(InteractionModel(settings).head.double().eval(), test)[0]
    return {"init": os.path.abspath(init), "train_frames": len(train), "test_frames": len(test),
            "options": dict(options.__dict__), "rows": rows, "force_error_reduction": reductions,
            "baseline_force_mae_kj_mol_nm": baseline["interaction_forces"]["baseline_mae_kj_mol_nm"],
            "baseline_energy_mae_kj_mol": baseline["interaction_energy"]["baseline_mae_kj_mol"]}


def plot_curve(table: dict, path: str):
    """``plots.learning_curve`` of a ``pretraining_curve`` table."""
    frames = sorted({row["frames"] for row in table["rows"]})
    panels = {}
    for title, column in (("interaction forces (kJ/mol/nm)", "interaction_force_mae_kj_mol_nm"),
                          ("interaction energy (kJ/mol)", "interaction_energy_mae_kj_mol")):
        panels[title] = {label: [next(r[column] for r in table["rows"] if r["frames"] == n and r["start"] == start)
                                 for n in frames]
                         for start, label in (("pretrained", "from the pretrained trunk"), ("random", "from random weights"))}
    learning_curve(frames, panels, path, baselines={"interaction forces (kJ/mol/nm)": table["baseline_force_mae_kj_mol_nm"],
                                                    "interaction energy (kJ/mol)": table["baseline_energy_mae_kj_mol"]})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m openmmmrl.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="an exported head (python -m openmmmrl.export), or the training checkpoint "
                                      "of an interaction (correction) head")
    parser.add_argument("--data", nargs="+", required=True, help="the dataset(s) the head was trained on")
    parser.add_argument("--checkpoint", help="the training checkpoint (for the split and fine-tuning); default: "
                                             "the one recorded in the model file")
    parser.add_argument("--output", required=True, help="directory for metrics.json and the plots")
    parser.add_argument("--skip", nargs="*", default=[], choices=["errors", "md", "nve", "finetune", "curve"],
                        help="parts to leave out")
    parser.add_argument("--md-environments", type=int, default=20, help="held-out environments simulated (default 20)")
    parser.add_argument("--md-ps", type=float, default=50, help="Langevin MD per environment, ps (default 50)")
    parser.add_argument("--nve-ps", type=float, default=5.0, help="NVE length, ps (default 5)")
    parser.add_argument("--nve-environments", type=int, default=4, help="environments in the NVE run (default 4)")
    parser.add_argument("--finetune-frames", type=int, default=100, help="frames to fine-tune on (default 100)")
    parser.add_argument("--finetune-epochs", type=int, default=30, help="fine-tuning epochs (default 30)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for MD (default 2)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (velocities, fine-tuning)")
    correction = parser.add_argument_group("correction (interaction) heads")
    correction.add_argument("--delta-of", metavar="LABEL_SET",
                            help="the label set the head corrects toward (default: from the model's label set, "
                                 "e.g. gfn2 for gfn2-minus-mmff94)")
    correction.add_argument("--md-check-ps", type=float, default=1.0,
                            help="MD: check every environment (and save the state to resume) every this many ps "
                                 "(default 1)")
    correction.add_argument("--box-data", nargs="+", default=[],
                            help="MD: periodic datasets (mrl-envgen build --periodic) whose first --box-environments "
                                 "records are also run for --md-ps, reported as md_box")
    correction.add_argument("--box-environments", type=int, default=1, help="periodic boxes simulated (default 1)")
    correction.add_argument("--init", metavar="CHECKPOINT",
                            help="curve: the pretrained checkpoint whose trunk starts the fine-tuning (default: "
                                 "the --init the head was trained with)")
    correction.add_argument("--curve-sizes", nargs="+", default=["100", "300", "1000", "all"],
                            help="curve: training frames of each fine-tuning (numbers or 'all'; default 100 300 1000 all)")
    correction.add_argument("--curve-epochs", type=int, default=30,
                            help="curve: epochs of every fine-tuning, from either start (default 30)")
    return parser


def _is_model_file(path: str) -> bool:
    """True for a TorchScript file (an exported model), False for anything else (e.g. a checkpoint)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("/constants.pkl") for name in archive.namelist())


def main(argv=None):
    args = build_parser().parse_args(argv)
    if not os.path.exists(args.model):
        raise SystemExit(f"{args.model}: no such model file or checkpoint")
    os.makedirs(args.output, exist_ok=True)
    model_path = args.model
    if not _is_model_file(model_path):
        try:
            kind = read_checkpoint(model_path).get("kind", "force")
        except ValueError as error:
            raise SystemExit(f"error: {error}")
        if kind != "interaction":
            raise SystemExit(f"{model_path} is a force head's checkpoint: export it first (python -m openmmmrl.export)")
        model_path = os.path.join(args.output, "model.pt")
        export(args.model, model_path)
    module = load_model(model_path)
    meta = model_metadata(module)
    metrics_path = os.path.join(args.output, "metrics.json")
    metrics = json.load(open(metrics_path)) if os.path.exists(metrics_path) else {}
    metrics["model"] = os.path.abspath(args.model)

    def save():
        with open(metrics_path, "w") as f:
            json.dump(metrics, f, indent=1)

    if meta.get("energy") == "intermolecular":
        evaluate_correction(args, model_path, module, meta, metrics, save)
    else:
        evaluate_force_head(args, module, meta, metrics, save)
    print(json.dumps(metrics, indent=1))


def _split(args, meta: dict) -> dict:
    """The training split of the model: from --checkpoint, the checkpoint recorded in the model, or the
    model's metadata."""
    checkpoint = args.checkpoint or meta.get("checkpoint")
    split = meta.get("split")
    if checkpoint and os.path.exists(checkpoint):
        split = torch.load(checkpoint, weights_only=False, map_location="cpu")["split"]
    if not split:
        raise SystemExit(f"{args.model} records no training split and no --checkpoint was given; pass the "
                         f"checkpoint of python -m openmmmrl.train")
    return split


def evaluate_correction(args, model_path: str, module, meta: dict, metrics: dict, save):
    """The parts of ``mrl-evaluate`` for a correction (interaction) head: errors against the label set,
    NVE drift and MD stability of MMFF94 + head, and the pretraining curve."""
    from .md import mmff_md_stability, mmff_nve_drift  # loads the compiled plugin
    split = _split(args, meta)
    label_set = meta.get("label_set", "")
    delta_of = args.delta_of or (label_set.split("-minus-")[0] if "-minus-" in label_set else None)
    metrics.update(kind="correction", label_set=label_set, delta_of=delta_of)
    try:
        frames = load_frames(args.data, delta_of=delta_of)
    except (OSError, ValueError) as error:
        raise SystemExit(f"error: {error}")
    test_groups = set(split["test"])
    test = [f for f in frames if f.group in test_groups and f.has_interaction]
    if not test:
        raise SystemExit(f"no frames with {delta_of or 'interaction'} targets of the test molecules "
                         f"{sorted(test_groups)} in {args.data}")
    if "errors" not in args.skip:
        result, (target, head) = correction_errors(module, test)
        metrics["errors"] = result
        parity({"interaction force correction (test)": (target, head)}, os.path.join(args.output, "parity.png"))
        save()
        e, f = result["interaction_energy"], result["interaction_forces"]
        print(f"test interaction energy MAE {e['baseline_mae_kj_mol']:.2f} -> {e['corrected_mae_kj_mol']:.2f} kJ/mol "
              f"(ratio {e['ratio']:.2f}), forces {f['baseline_mae_kj_mol_nm']:.2f} -> {f['corrected_mae_kj_mol_nm']:.2f} "
              f"kJ/mol/nm (ratio {f['ratio']:.2f}); target ratio <= 0.25", file=sys.stderr)
    held_out = [test_groups, set(split["validation"])]
    if "nve" not in args.skip:
        records = held_out_records(args.data, held_out, args.nve_environments)
        metrics["nve"] = mmff_nve_drift(model_path, records, args.nve_ps, args.seed, args.threads,
                                        cutoff_nm=dataset_cutoff_nm(args.data[0]))
        save()
        print(f"NVE drift of MMFF94 + head {metrics['nve']['drift_kj_mol_ps_per_atom']:.2e} kJ/mol/ps per atom",
              file=sys.stderr)
    if "curve" not in args.skip:
        init = args.init or meta.get("init")
        if not init or not os.path.exists(init):
            raise SystemExit("the pretraining curve needs the pretrained checkpoint: pass --init (or --skip curve)")
        sizes = [None if size == "all" else int(size) for size in args.curve_sizes]
        options = TrainOptions(**{**(meta.get("options") or {}), "epochs": args.curve_epochs})
        train = [f for f in frames if f.group in set(split["train"]) and f.has_interaction]
        table = pretraining_curve(train, test, InteractionConfig.from_dict(meta["config"]), options, init, sizes)
        metrics["curve"] = table
        with open(os.path.join(args.output, "curve.json"), "w") as f:
            json.dump(table, f, indent=1)
        plot_curve(table, os.path.join(args.output, "curve.png"))
        save()
        print("force error reduction from pretraining: " + ", ".join(
            f"{n} frames {100 * r:.0f}%" for n, r in table["force_error_reduction"].items()), file=sys.stderr)
    if "md" not in args.skip:
        runs = [("md", held_out_records(args.data, held_out, args.md_environments), dataset_cutoff_nm(args.data[0]))]
        if args.box_data:
            boxes = [r for path in args.box_data for r in _records(path)][:args.box_environments]
            runs.append(("md_box", boxes, dataset_cutoff_nm(args.box_data[0])))
        for name, records, cutoff_nm in runs:
            def report(partial, name=name):
                metrics[name] = partial
                save()

            result, trace = mmff_md_stability(model_path, records, args.md_ps, args.seed, args.threads,
                                              check_ps=args.md_check_ps, report=report,
                                              resume=os.path.join(args.output, f"{name}_state.json"),
                                              cutoff_nm=cutoff_nm)
            metrics[name] = result
            energy_trace(trace[0], {"potential energy, all environments": trace[1]},
                         os.path.join(args.output, f"{name}_energies.png"), "Langevin MD, MMFF94 + head")
            save()
            print(f"{name}: {result['intact']}/{result['environments']} environments intact after {args.md_ps} ps",
                  file=sys.stderr)


def _records(path: str) -> list:
    """The records (with frames) of a dataset file."""
    with Dataset(path) as data:
        return [record for record in data.records() if record.num_frames]


def dataset_cutoff_nm(path: str, default: float = 0.9) -> float:
    """The intermolecular cutoff (nm) of periodic MMFF94 that ``mrl-envgen build`` used for a dataset (also
    through ``relabel``'s ``input_options``), else ``default``."""
    with Dataset(path) as data:
        options = data.attributes.get("options_json") or {}
    if isinstance(options, str):
        options = json.loads(options)
    return float(options.get("cutoff_nm", (options.get("input_options") or {}).get("cutoff_nm", default)))


def evaluate_force_head(args, module, meta: dict, metrics: dict, save):
    """The parts of ``mrl-evaluate`` for a force head: errors, NVE drift, fine-tuning benefit, MD stability."""
    checkpoint = args.checkpoint or meta.get("checkpoint")
    split = _split(args, meta)
    test_groups = set(split["test"])
    frames = [f for f in load_frames(args.data) if f.group in test_groups]
    if not frames:
        raise SystemExit(f"no frames of the test molecules {sorted(test_groups)} in {args.data}")

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

        result, trace = md_stability(args.model, envs, int(args.md_ps), args.seed, args.threads, report=report)
        metrics["md"] = result
        energy_trace(trace[0], {"potential energy, all environments": trace[1]},
                     os.path.join(args.output, "md_energies.png"), "Langevin MD with the force head")
        save()
        print(f"MD: {result['intact']}/{result['environments']} environments intact after {args.md_ps} ps", file=sys.stderr)


if __name__ == "__main__":
    main()
