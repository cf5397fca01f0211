# SPDX-License-Identifier: MIT
"""Pretrain the equivariant force head on openmm-mrl datasets, or fit the interaction head (Δ).

    python -m openmmmrl.train DATA.h5 [MORE.h5 ...] --output runs/head [options]
    python -m openmmmrl.train DATA.h5 --output runs/delta --model interaction --init runs/head/best.pt
    torchrun --nproc_per_node 2 -m openmmmrl.train DATA.h5 --output runs/head   # data parallel

Objectives, each with a weight (0 turns it off):
  --force         total forces (kJ/mol/nm), -dE/dx of the energy head (conservative)
  --interaction   interaction forces: -d(E(x) - E_intra(x))/dx, where E_intra is the same network
                  with the edges between molecules removed (the intermolecular part, as force groups
                  split it in the data)
  --energy        total and interaction energies per atom
  --direct-force  the direct (non-conservative) force head against the total forces (3DMRL)
  --contrastive   2D<->3D InfoNCE between the bond-graph encoder and the 3D trunk (3DMRL)
  --denoise       predict the Gaussian noise added to the coordinates (MoleculeSDE, MoleBLEND)
Each loss is normalized by the variance of its target over the training set, so weights are
comparable.

--model interaction fits the interaction head instead (the Δ objective): its energy, intermolecular by
construction (exactly 0 for a molecule alone), and its forces -dE/dx, against the frames' interaction
energies and forces, weighted by --energy and --interaction (the other objectives do not apply).
--init CHECKPOINT starts the trunk from a trained checkpoint's (pretrain, then fine-tune); the trunk
settings (features, layers, radial basis, cutoff) are then the checkpoint's, and the pair head is new.

Frames are split by central molecule (its SMILES): no validation or test solute is seen in training.
The output directory gets split.json, checkpoint.pt (every epoch), best.pt (lowest validation
force loss: total + interaction forces), history.json, and loss_curves.png and force_parity.png.  Rerunning the same command resumes
from checkpoint.pt (--overwrite starts again); the same seed gives the same weights.
Runs on the CPU unless --device says otherwise.  Under torchrun each process takes a share of every
batch and gradients are summed across processes (gloo), so the weights follow the same path as one
process with the same --batch-size (the contrastive loss uses each process's frames as negatives).
"""
import argparse
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.distributed as dist

from .batch import Batch, Frame, load_frames, make_batch, split_groups
from .export import with_pretrained_trunk
from .losses import OBJECTIVES, Statistics, delta_loss, normalizers, total_loss
from .model import HeadConfig, InteractionConfig, InteractionHead, InteractionModel, Model
from .plots import loss_curves, parity
from .predict import Prediction, predict


@dataclass
class TrainOptions:
    """Training settings (saved with checkpoints; a resumed run must use the same ones, epochs aside)."""
    epochs: int = 30
    batch_size: int = 16            #: frames per optimizer step (over all processes)
    learning_rate: float = 1e-3
    final_learning_rate: float = 5e-5   #: cosine decay to this value over all epochs
    weight_decay: float = 0.0
    gradient_clip: float = 10.0
    seed: int = 1
    validation_fraction: float = 0.1
    test_fraction: float = 0.15
    test_split: str = "molecule"    #: "molecule": test groups by central molecule; "scaffold": whole scaffolds
    noise_nm: float = 0.01          #: denoising noise width (nm)
    temperature: float = 0.1        #: InfoNCE temperature
    weights: Dict[str, float] = field(default_factory=lambda: {
        "force": 1.0, "interaction": 1.0, "energy": 0.05, "direct_force": 0.1, "contrastive": 0.05,
        "denoise": 0.05})


def learning_rate(options: TrainOptions, step: int, steps_per_epoch: int) -> float:
    """Linear warm-up over the first epoch, then cosine decay to final_learning_rate."""
    total = max(1, options.epochs * steps_per_epoch)
    if step < steps_per_epoch:
        return options.learning_rate * (step + 1) / steps_per_epoch
    progress = min(1.0, (step - steps_per_epoch) / max(1, total - steps_per_epoch))
    return options.final_learning_rate + 0.5 * (options.learning_rate - options.final_learning_rate) * (1 + math.cos(math.pi * progress))


class Distributed:
    """The process group under torchrun (gloo); a single process otherwise."""

    def __init__(self, single: bool = False):
        self.world = 1 if single else int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = 0 if single else int(os.environ.get("RANK", "0"))
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group("gloo")

    def sum_(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.world > 1:
            dist.all_reduce(tensor)
        return tensor

    def share(self, items: Sequence) -> List:
        return list(items[self.rank::self.world])

    def barrier(self):
        if self.world > 1:
            dist.barrier()

    def close(self):
        if self.world > 1 and dist.is_initialized():
            dist.destroy_process_group()


def _sum_gradients(model: torch.nn.Module, world: Distributed):
    if world.world == 1:
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in model.parameters()]
    flat = torch.cat([g.reshape(-1) for g in grads])
    world.sum_(flat)
    offset = 0
    for p in model.parameters():
        k = p.numel()
        p.grad = flat[offset:offset + k].view_as(p).clone()
        offset += k


def losses_of(model: Model, batch: Batch, options: TrainOptions, stats: Statistics, norm: Dict[str, float],
              generator: Optional[torch.Generator] = None, create_graph: bool = True):
    """``losses.total_loss`` with the weights and settings of ``options`` (``losses.delta_loss`` for an
    ``InteractionModel``): (losses, prediction)."""
    if isinstance(model.head, InteractionHead):
        return delta_loss(model, batch, options.weights, stats, norm, create_graph=create_graph)
    return total_loss(model, batch, options.weights, stats, norm, noise_nm=options.noise_nm,
                      temperature=options.temperature, generator=generator, create_graph=create_graph)


#: The forces each kind of model predicts (``force_columns``), with their names in plots.
FORCE_KINDS = {"force": "total forces", "interaction_force": "interaction forces", "direct_force": "direct force head"}


def force_kinds(model) -> List[str]:
    """The kinds of force (keys of ``FORCE_KINDS``) that ``model`` (a ``Model`` or ``InteractionModel``) predicts."""
    return ["interaction_force"] if isinstance(model.head, InteractionHead) else list(FORCE_KINDS)


def force_columns(model, p: Prediction, batch: Batch) -> List[Tuple[str, torch.Tensor, torch.Tensor]]:
    """(kind, predicted, reference) for each of ``force_kinds(model)``; interaction forces only over the
    frames that have them."""
    mask = batch.has_interaction[batch.graph_index]
    columns = {"force": (p.forces, batch.total_forces), "direct_force": (p.direct_forces, batch.total_forces),
               "interaction_force": (p.interaction_forces[mask], batch.interaction_forces[mask])}
    return [(kind, *columns[kind]) for kind in force_kinds(model)]


def force_parity_arrays(model: Model, frames: Sequence[Frame], batch_size: int = 32) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
    """(reference, predicted) force components over frames, for ``plots.parity``: total forces,
    interaction forces and the direct force head's forces (an interaction head: interaction forces)."""
    columns = {FORCE_KINDS[kind]: ([], []) for kind in force_kinds(model)}
    for start in range(0, len(frames), batch_size):
        batch = make_batch(frames[start:start + batch_size], model.head.cutoff_nm)
        p = predict(model.head, batch, interaction=True, direct=True)
        for kind, predicted, reference in force_columns(model, p, batch):
            name = FORCE_KINDS[kind]
            columns[name][0].append(reference.numpy())
            columns[name][1].append(predicted.numpy())
    return {name: (np.concatenate(a), np.concatenate(b)) for name, (a, b) in columns.items()}


def evaluate_frames(model: Model, frames: Sequence[Frame], options: TrainOptions, stats: Statistics,
                    world: Optional[Distributed] = None, batch_size: int = 32) -> Dict[str, float]:
    """Losses and force/energy errors over frames (each process takes a share; sums are combined).

    Returns mean losses per objective and force MAE/RMSE (kJ/mol/nm), also relative to the RMS of the
    reference forces, for total, interaction and direct forces (an interaction model: interaction forces
    only), and energy MAE per atom (kJ/mol)."""
    world = world or Distributed(single=True)
    mine = world.share(frames)
    losses = list(OBJECTIVES) + ["total"]
    # Error sums, named: (MAE sum, squared-error sum, reference squared sum) per kind of force.
    errors = force_kinds(model)
    names = ([f"loss_{k}" for k in losses] + [f"{k}_{s}" for k in errors for s in ("abs", "sq", "ref")]
             + ["energy_abs", "interaction_energy_abs"])
    sums = dict.fromkeys(names, 0.0)
    norm_all = normalizers(frames)
    generator = torch.Generator().manual_seed(options.seed + 7919)
    model.eval()
    for start in range(0, len(mine), batch_size):
        batch = make_batch(mine[start:start + batch_size], model.head.cutoff_nm)
        out, p = losses_of(model, batch, options, stats, norm_all, generator, create_graph=False)
        for k in losses:
            sums[f"loss_{k}"] += float(out[k].detach())
        for kind, predicted, reference in force_columns(model, p, batch):
            sums[f"{kind}_abs"] += float((predicted - reference).abs().sum())
            sums[f"{kind}_sq"] += float(((predicted - reference) ** 2).sum())
            sums[f"{kind}_ref"] += float((reference ** 2).sum())
        sums["energy_abs"] += float(((p.energy - batch.total_energy).abs() / batch.atom_counts).sum())
        inter = (p.interaction_energy - batch.interaction_energy).abs() / batch.atom_counts
        sums["interaction_energy_abs"] += float(inter[batch.has_interaction].sum())
    model.train()
    totals = world.sum_(torch.tensor([sums[n] for n in names], dtype=torch.float64)).tolist()
    sums = dict(zip(names, totals))
    result = {f"loss_{k}": sums[f"loss_{k}"] for k in losses}
    for kind in errors:
        components = max(3 * norm_all["interaction_atoms" if kind == "interaction_force" else "atoms"], 1)
        result[f"{kind}_mae"] = sums[f"{kind}_abs"] / components
        result[f"{kind}_rmse"] = math.sqrt(sums[f"{kind}_sq"] / components)
        if kind != "direct_force":
            result[f"{kind}_rms_reference"] = math.sqrt(sums[f"{kind}_ref"] / components)
            result[f"{kind}_rmse_relative"] = result[f"{kind}_rmse"] / max(result[f"{kind}_rms_reference"], 1e-12)
    if "force" in errors:
        result["energy_mae_per_atom"] = sums["energy_abs"] / norm_all["frames"]
    result["interaction_energy_mae_per_atom"] = sums["interaction_energy_abs"] / max(norm_all["interaction_frames"], 1)
    return result


def _atomic_save(obj, path: str):
    tmp = path + ".tmp"
    torch.save(obj, tmp)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def fit(model: Model, train: Sequence[Frame], validation: Sequence[Frame], options: TrainOptions, stats: Statistics,
        output: Optional[str] = None, state: Optional[dict] = None, quiet: bool = False,
        extra: Optional[dict] = None, stop_after: int = 0) -> List[dict]:
    """Trains ``model`` in place; returns the history (one dict per epoch).  With ``output``, writes
    checkpoint.pt every epoch and best.pt at the lowest validation loss; ``state`` resumes a checkpoint."""
    world = Distributed()
    torch.manual_seed(options.seed)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=options.learning_rate, weight_decay=options.weight_decay)
    history: List[dict] = []
    best = math.inf
    start_epoch = 0
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        history, best, start_epoch = state["history"], state["best"], state["epoch"]
    steps_per_epoch = max(1, math.ceil(len(train) / options.batch_size))
    show = world.rank == 0 and not quiet
    for epoch in range(start_epoch, min(options.epochs, stop_after or options.epochs)):
        began = time.perf_counter()
        order = np.random.default_rng([options.seed, epoch]).permutation(len(train))
        generator = torch.Generator().manual_seed(options.seed * 1000003 + epoch)
        sums = {k: 0.0 for k in list(OBJECTIVES) + ["total"]}
        progress = None
        if show:
            from tqdm import tqdm
            progress = tqdm(total=steps_per_epoch, desc=f"epoch {epoch + 1}/{options.epochs}", unit="batch",
                            file=sys.stderr, leave=False)
        for step in range(steps_per_epoch):
            global_batch = [train[i] for i in order[step * options.batch_size:(step + 1) * options.batch_size]]
            norm = normalizers(global_batch)
            mine = world.share(global_batch)
            lr = learning_rate(options, epoch * steps_per_epoch + step, steps_per_epoch)
            for group in optimizer.param_groups:
                group["lr"] = lr
            optimizer.zero_grad(set_to_none=False)
            if mine:
                out, _ = losses_of(model, make_batch(mine, model.head.cutoff_nm), options, stats, norm, generator)
                out["total"].backward()
                values = torch.tensor([float(out[k].detach()) for k in sums], dtype=torch.float64)
            else:
                values = torch.zeros(len(sums), dtype=torch.float64)
            _sum_gradients(model, world)
            world.sum_(values)
            torch.nn.utils.clip_grad_norm_(params, options.gradient_clip)
            optimizer.step()
            for k, value in zip(sums, values.tolist()):
                sums[k] += value / steps_per_epoch
            if progress is not None:
                progress.update(1)
                progress.set_postfix(loss=f"{sums['total'] * steps_per_epoch / (step + 1):.4f}", lr=f"{lr:.1e}")
        if progress is not None:
            progress.close()
        val = evaluate_frames(model, validation, options, stats, world) if validation else {}
        record = {"epoch": epoch + 1, "seconds": time.perf_counter() - began,
                  **{f"train_{k}": v for k, v in sums.items()}, **{f"val_{k}": v for k, v in val.items()}}
        history.append(record)
        # best.pt: the lowest validation force error (total + interaction objectives), what the head is for;
        # the auxiliary objectives (contrastive, denoising, direct forces) only shape the representation.
        score = (val["loss_force"] + val["loss_interaction"]) if val else sums["total"]
        improved = score < best
        best = min(best, score)
        if show:
            print(f"epoch {epoch + 1}/{options.epochs}: train loss {sums['total']:.4f}"
                  + (f", validation loss {val['loss_total']:.4f}, force MAE {val.get('force_mae', math.nan):.1f} "
                     f"kJ/mol/nm (interaction {val['interaction_force_mae']:.2f})" if val else "")
                  + f", {record['seconds']:.1f} s", file=sys.stderr, flush=True)
        if output and world.rank == 0:
            checkpoint = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "history": history,
                          "best": best, "epoch": epoch + 1, **(extra or {})}
            if improved:
                _atomic_save(checkpoint, os.path.join(output, "best.pt"))
            _atomic_save(checkpoint, os.path.join(output, "checkpoint.pt"))
            with open(os.path.join(output, "history.json"), "w") as f:
                json.dump(history, f, indent=1)
        world.barrier()
    return history


def build_parser() -> argparse.ArgumentParser:
    d, c = TrainOptions(), HeadConfig()
    p = argparse.ArgumentParser(prog="python -m openmmmrl.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", nargs="+", help="dataset files (HDF5, from mrl-envgen build/carve or DatasetReporter)")
    p.add_argument("--output", required=True, help="output directory (created; resumed when it has a checkpoint)")
    p.add_argument("--overwrite", action="store_true", help="start again instead of resuming")
    p.add_argument("--epochs", type=int, default=d.epochs, help=f"epochs (default {d.epochs})")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help=f"frames per step over all processes (default {d.batch_size})")
    p.add_argument("--lr", type=float, default=d.learning_rate, help=f"peak learning rate (default {d.learning_rate})")
    p.add_argument("--final-lr", type=float, default=d.final_learning_rate, help=f"learning rate at the end (default {d.final_learning_rate})")
    p.add_argument("--seed", type=int, default=d.seed, help=f"seed of weights, split and batches (default {d.seed})")
    p.add_argument("--validation-fraction", type=float, default=d.validation_fraction, help="fraction of central molecules held out for validation")
    p.add_argument("--test-fraction", type=float, default=d.test_fraction, help="fraction of central molecules held out for testing")
    p.add_argument("--noise-nm", type=float, default=d.noise_nm, help=f"denoising noise width, nm (default {d.noise_nm})")
    for name in OBJECTIVES:
        p.add_argument("--" + name.replace("_", "-"), type=float, default=d.weights[name], metavar="WEIGHT",
                       help=f"weight of the {name.replace('_', ' ')} objective (default {d.weights[name]})")
    p.add_argument("--features", type=int, default=c.features, help=f"feature channels (default {c.features})")
    p.add_argument("--layers", type=int, default=c.layers, help=f"message-passing layers (default {c.layers})")
    p.add_argument("--cutoff-nm", type=float, default=c.cutoff_nm, help=f"interaction cutoff, nm (default {c.cutoff_nm})")
    p.add_argument("--radial-basis", type=int, default=c.radial_basis, help=f"radial basis functions (default {c.radial_basis})")
    p.add_argument("--model", choices=("force", "interaction"), default="force",
                   help="force: the force head (default); interaction: the interaction head, the Δ objective")
    p.add_argument("--init", metavar="CHECKPOINT", help="start the trunk from this checkpoint of python -m openmmmrl.train "
                   "(its trunk settings replace --features, --layers, --radial-basis, --cutoff-nm)")
    p.add_argument("--test-split", choices=["molecule", "scaffold"], default="molecule",
                   help="the held-out test set: whole central molecules (default), or whole Bemis-Murcko "
                        "scaffolds (no test molecule shares its ring system with a training one)")
    p.add_argument("--split", default=None, metavar="SPLIT_JSON",
                   help="take the test and validation molecules from another run's split.json (e.g. the "
                        "pretraining run's, so that fine-tuning never trains on a molecule that pretraining held "
                        "out); molecules it does not name go to training")
    p.add_argument("--delta-of", default=None, metavar="LABEL_SET",
                   help="--model interaction: learn the label set's interaction energies and forces minus the "
                        "dataset's own (e.g. gfn2: GFN2-xTB minus MMFF94); the model file's label set becomes "
                        "LABEL_SET-minus-<force field>")
    p.add_argument("--label-set", default=InteractionConfig.label_set,
                   help=f"--model interaction: the name of the labels it learns, kept in the model file "
                        f"(default {InteractionConfig.label_set})")
    p.add_argument("--onset-nm", type=float, nargs=2, default=(0.0, 0.0), metavar=("START", "END"),
                   help="--model interaction: pair terms are 0 below START nm and switch on smoothly to full at END "
                        "nm (e.g. 0.1 0.14: below the shortest intermolecular contacts of the labels the correction "
                        "vanishes and the force field's repulsion rules); default 0 0: no switch")
    p.add_argument("--stop-after", type=int, default=0, metavar="EPOCHS",
                   help="stop after this many epochs in total (the schedule still spans --epochs); rerun to go on, "
                        "e.g. on a time-limited queue")
    p.add_argument("--threads", type=int, default=0, help="torch threads per process (default: torch's choice)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu); only cpu is supported by this version")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def split_from_file(path: str, groups) -> Dict[str, List[str]]:
    """The split of `groups` that follows another run's split.json: its test and validation groups (those
    present here) stay test and validation, every other group is training."""
    try:
        with open(path) as f:
            named = json.load(f)["groups"]
        test, validation = set(named["test"]), set(named["validation"])
    except (OSError, KeyError, TypeError, ValueError) as error:
        raise ValueError(f"--split {path}: not a split.json of python -m openmmmrl.train ({error})") from None
    present = sorted(set(groups))
    split = {"test": [g for g in present if g in test], "validation": [g for g in present if g in validation],
             "train": [g for g in present if g not in test and g not in validation]}
    if not split["train"] or not split["validation"]:
        raise ValueError(f"--split {path}: only {len(split['train'])} training and {len(split['validation'])} "
                         f"validation molecules of these data remain; use a split that leaves some of each")
    return split


def _force_field(paths) -> str:
    """The force field of the datasets' own labels, lowercase without spaces (e.g. "mmff94")."""
    from ..data import Dataset
    with Dataset(paths[0]) as data:
        return (data.attributes.get("force_field") or "own").lower().replace(" ", "-")


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.device != "cpu":
        raise SystemExit(f"--device {args.device}: this version trains on the CPU only; use --device cpu")
    if args.threads:
        torch.set_num_threads(args.threads)
    for name in ("epochs", "batch_size"):
        if getattr(args, name) < 1:
            raise SystemExit(f"--{name.replace('_', '-')} must be at least 1 (got {getattr(args, name)})")
    options = TrainOptions(epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr,
                           final_learning_rate=args.final_lr, seed=args.seed,
                           validation_fraction=args.validation_fraction, test_fraction=args.test_fraction,
                           test_split=args.test_split,
                           noise_nm=args.noise_nm, weights={k: getattr(args, k) for k in OBJECTIVES})
    trunk = dict(features=args.features, layers=args.layers, cutoff_nm=args.cutoff_nm, radial_basis=args.radial_basis,
                 seed=args.seed)
    model_class = InteractionModel if args.model == "interaction" else Model
    start, end = args.onset_nm
    if not (0.0 <= start and (end == 0.0 or start < end < args.cutoff_nm)):
        raise SystemExit(f"--onset-nm {start} {end}: give 0 <= START < END < the cutoff ({args.cutoff_nm} nm), or 0 0")
    if args.delta_of is not None and args.model != "interaction":
        raise SystemExit("--delta-of trains a correction: use it with --model interaction")
    label_set = args.label_set if args.delta_of is None else f"{args.delta_of}-minus-{_force_field(args.data)}"
    config = (InteractionConfig(**trunk, pair_hidden=args.features, label_set=label_set,
                                onset_start_nm=args.onset_nm[0], onset_end_nm=args.onset_nm[1])
              if args.model == "interaction" else HeadConfig(**trunk))
    model = None
    if args.init:
        try:
            model, config = with_pretrained_trunk(model_class, config, args.init)
        except (FileNotFoundError, ValueError, RuntimeError) as error:
            raise SystemExit(f"--init: {error}")
    world = Distributed()
    os.makedirs(args.output, exist_ok=True)
    checkpoint_path = os.path.join(args.output, "checkpoint.pt")
    state = None
    if os.path.exists(checkpoint_path) and not args.overwrite:
        state = torch.load(checkpoint_path, weights_only=False)
        mine = dict(options.__dict__, epochs=None)
        theirs = dict(state["options"], epochs=None)
        if (mine != theirs or state["config"] != config.to_dict() or state.get("kind", "force") != args.model
                or state["data"] != [os.path.abspath(p) for p in args.data]):
            raise SystemExit(f"{checkpoint_path} was written with other data or settings; rerun with the same "
                             f"ones to resume, or add --overwrite to start again")
        if world.rank == 0:
            print(f"resuming {checkpoint_path} after epoch {state['epoch']}", file=sys.stderr)
    elif args.overwrite and world.rank == 0:
        for name in ("checkpoint.pt", "best.pt", "history.json"):
            if os.path.exists(os.path.join(args.output, name)):
                os.remove(os.path.join(args.output, name))
    world.barrier()
    try:
        frames = load_frames(args.data, delta_of=args.delta_of)
        if args.split is not None:
            split = split_from_file(args.split, [f.group for f in frames])
        else:
            split = split_groups([f.group for f in frames], options.seed, options.validation_fraction,
                                 options.test_fraction, by_scaffold=options.test_split == "scaffold")
    except (OSError, ValueError) as error:
        raise SystemExit(f"error: {error}")
    parts = {name: [f for f in frames if f.group in set(groups)] for name, groups in split.items()}
    stats = Statistics(parts["train"], config.max_atomic_number)
    if world.rank == 0:
        with open(os.path.join(args.output, "split.json"), "w") as f:
            json.dump({"data": [os.path.abspath(p) for p in args.data], "seed": options.seed, "groups": split,
                       "frames": {k: len(v) for k, v in parts.items()}}, f, indent=1)
        print(f"{len(frames)} frames: {len(parts['train'])} train, {len(parts['validation'])} validation, "
              f"{len(parts['test'])} test ({len(split['train'])}/{len(split['validation'])}/{len(split['test'])} "
              f"central molecules); {world.world} process(es)", file=sys.stderr)
    model = model or model_class(config)
    if args.model == "interaction":
        stats.initialize_interaction(model.head)
    else:
        stats.initialize(model.head)
    extra = {"kind": args.model, "options": dict(options.__dict__), "config": config.to_dict(),
             "statistics": stats.to_dict(), "split": split, "data": [os.path.abspath(p) for p in args.data],
             "init": os.path.abspath(args.init) if args.init else None}
    history = fit(model, parts["train"], parts["validation"], options, stats, args.output, state, args.quiet, extra,
                  args.stop_after)
    if world.rank == 0 and history and history[-1]["epoch"] == options.epochs:
        loss_curves(history, os.path.join(args.output, "loss_curves.png"))
        best = torch.load(os.path.join(args.output, "best.pt"), weights_only=False)
        model.load_state_dict(best["model"])
        parity(force_parity_arrays(model, parts["validation"] or parts["train"]),
               os.path.join(args.output, "force_parity.png"))
        print(f"best validation force loss {best['best']:.4f} after epoch {best['epoch']}; "
              f"{os.path.join(args.output, 'best.pt')} (export with python -m openmmmrl.export)", file=sys.stderr)
    world.close()


if __name__ == "__main__":
    main()
