# SPDX-License-Identifier: MIT
"""The training objectives of the force head, one loss function each (``force_loss``, ...,
``denoise_loss``; ``python -m openmmmrl.train --help`` describes them), and ``total_loss``, their
weighted sum, and ``delta_loss`` for the interaction head (the Δ objective).

Each loss is a sum over the batch divided by the global normalizers ``norm`` (``normalizers``: atoms,
frames, ... of the whole global batch), so that sums over processes give global means, and by the
variance of its target over the training set (``Statistics``), so that weights are comparable.
"""
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import torch

from .batch import Batch, Frame
from .model import ForceHead, InteractionHead, InteractionModel, Model
from .predict import Prediction, predict

OBJECTIVES = ("force", "interaction", "energy", "direct_force", "contrastive", "denoise")


class Statistics:
    """Normalizers and per-element reference energies, from the training frames."""

    def __init__(self, frames: Sequence[Frame], max_atomic_number: int):
        forces = np.concatenate([f.total_forces for f in frames])
        self.force_rms = float(np.sqrt(np.mean(forces.astype(np.float64) ** 2)))
        inter = [f.interaction_forces for f in frames if f.has_interaction]
        self.interaction_rms = float(np.sqrt(np.mean(np.concatenate(inter).astype(np.float64) ** 2))) if inter else 1.0
        counts = np.zeros((len(frames), max_atomic_number + 1))
        for k, f in enumerate(frames):
            if f.atomic_numbers.max() > max_atomic_number or f.atomic_numbers.min() < 1:
                raise ValueError(f"{f.source}: atomic numbers must be 1..{max_atomic_number} for the force head "
                                 f"(found {f.atomic_numbers.min()}..{f.atomic_numbers.max()})")
            np.add.at(counts[k], f.atomic_numbers, 1)
        energies = np.array([f.total_energy for f in frames])
        present = counts.sum(0) > 0
        reference = np.zeros(max_atomic_number + 1)
        solution, *_ = np.linalg.lstsq(counts[:, present], energies, rcond=None)
        reference[present] = solution
        natoms = counts.sum(1)
        residual = (energies - counts @ reference) / natoms
        self.atom_reference = reference
        self.energy_rms_per_atom = float(max(np.sqrt(np.mean(residual ** 2)), 1e-3))
        inter_e = np.array([f.interaction_energy / f.num_atoms for f in frames if f.has_interaction])
        self.interaction_energy_rms_per_atom = float(max(np.sqrt(np.mean(inter_e ** 2)), 1e-3)) if len(inter_e) else 1.0

    def to_dict(self) -> dict:
        return {"force_rms": self.force_rms, "interaction_rms": self.interaction_rms,
                "energy_rms_per_atom": self.energy_rms_per_atom,
                "interaction_energy_rms_per_atom": self.interaction_energy_rms_per_atom}

    @classmethod
    def from_dict(cls, values: dict) -> "Statistics":
        """Normalizers from a dict (as ``to_dict`` saves them in checkpoints); without reference energies."""
        stats = cls.__new__(cls)
        stats.__dict__.update(values)
        return stats

    def initialize(self, head: ForceHead):
        """Sets the head's reference energies and output scales from these statistics."""
        head.atom_reference.copy_(torch.as_tensor(self.atom_reference))
        head.energy_scale.fill_(self.force_rms * 0.1)   # network output O(1) over ~0.1 nm
        head.force_scale.fill_(self.force_rms)

    def initialize_interaction(self, head: InteractionHead):
        """Sets the interaction head's output scale from these statistics."""
        head.energy_scale.fill_(self.interaction_rms * 0.1)   # network output O(1) over ~0.1 nm


def normalizers(frames: Sequence[Frame]) -> Dict[str, float]:
    """The counts the losses of a (global) batch are divided by: atoms and frames, all and with interactions."""
    inter = [f for f in frames if f.has_interaction]
    return {"atoms": float(sum(f.num_atoms for f in frames)), "frames": float(len(frames)),
            "interaction_atoms": float(sum(f.num_atoms for f in inter)), "interaction_frames": float(len(inter))}


def _squared_error(predicted: torch.Tensor, reference: torch.Tensor, count: float, scale: float) -> torch.Tensor:
    """Sum of squared differences divided by count * scale^2."""
    return ((predicted - reference) ** 2).sum() / (count * scale ** 2)


def force_loss(prediction: Prediction, batch: Batch, stats: Statistics, norm: Dict[str, float]) -> torch.Tensor:
    """Total forces (-dE/dx) against the reference."""
    return _squared_error(prediction.forces, batch.total_forces, 3 * norm["atoms"], stats.force_rms)


def interaction_loss(prediction: Prediction, batch: Batch, stats: Statistics, norm: Dict[str, float]) -> torch.Tensor:
    """Interaction forces against the reference, over the frames that have them."""
    atoms = batch.has_interaction[batch.graph_index]
    return _squared_error(prediction.interaction_forces[atoms], torch.nan_to_num(batch.interaction_forces)[atoms],
                          3 * max(norm["interaction_atoms"], 1), stats.interaction_rms)


def interaction_energy_loss(prediction: Prediction, batch: Batch, stats: Statistics,
                            norm: Dict[str, float]) -> torch.Tensor:
    """Interaction energies per atom, over the frames that have them."""
    natoms = batch.atom_counts.to(prediction.forces.dtype)
    frames = batch.has_interaction
    return (((prediction.interaction_energy - torch.nan_to_num(batch.interaction_energy)) / natoms)[frames]
            ** 2).sum() / (max(norm["interaction_frames"], 1) * stats.interaction_energy_rms_per_atom ** 2)


def energy_loss(prediction: Prediction, batch: Batch, stats: Statistics, norm: Dict[str, float]) -> torch.Tensor:
    """Total energies per atom, plus interaction energies per atom over the frames that have them."""
    natoms = batch.atom_counts.to(prediction.forces.dtype)
    total = (((prediction.energy - batch.total_energy) / natoms) ** 2).sum() / (
        norm["frames"] * stats.energy_rms_per_atom ** 2)
    return total + interaction_energy_loss(prediction, batch, stats, norm)


def direct_force_loss(prediction: Prediction, batch: Batch, stats: Statistics, norm: Dict[str, float]) -> torch.Tensor:
    """The direct force head's forces against the total forces."""
    return _squared_error(prediction.direct_forces, batch.total_forces, 3 * norm["atoms"], stats.force_rms)


def contrastive_loss(model: Model, prediction: Prediction, batch: Batch, temperature: float,
                     norm: Dict[str, float]) -> torch.Tensor:
    """Symmetric InfoNCE between the 3D embedding (pooled trunk features) and the 2D one (bond graph);
    the frames of one environment are each other's positives."""
    b = batch.frames
    z3 = torch.nn.functional.normalize(model.projection3d(prediction.features, batch.graph_index, b), dim=-1)
    z2 = torch.nn.functional.normalize(model.encoder2d(batch.atomic_numbers, batch.formal_charges, batch.bonds,
                                                       batch.bond_orders, batch.graph_index, b), dim=-1)
    logits = z3 @ z2.t() / temperature
    positive = (batch.environment.unsqueeze(0) == batch.environment.unsqueeze(1)).to(logits.dtype)
    target = positive / positive.sum(1, keepdim=True)
    # Cross-entropy minus the targets' entropy (a KL divergence: 0 when every frame finds its own
    # environment's graph), so the value does not depend on how many frames of one environment share a batch.
    entropy = -(target * torch.log(target.clamp(min=1e-30))).sum(1)
    loss = (-(target * torch.log_softmax(logits, 1)).sum(1) - entropy
            - (target * torch.log_softmax(logits.t(), 1)).sum(1) - entropy)
    return 0.5 * loss.sum() / norm["frames"]


def denoise_loss(head: ForceHead, batch: Batch, noise_nm: float, norm: Dict[str, float],
                 generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """The denoising head's estimate of Gaussian noise of width ``noise_nm`` added to the positions,
    in units of that width."""
    noise = torch.randn(batch.positions.shape, generator=generator, dtype=batch.positions.dtype)
    noisy = batch.positions + noise_nm * noise
    edges, shifts = batch.edges_for(noisy, head.cutoff_nm)
    s, v = head.trunk(noisy, batch.atomic_numbers, batch.molecule_index, edges, shifts)
    return ((head.denoiser(s, v) - noise) ** 2).sum() / (3 * norm["atoms"])


def total_loss(model: Model, batch: Batch, weights: Dict[str, float], stats: Statistics, norm: Dict[str, float],
               noise_nm: float, temperature: float, generator: Optional[torch.Generator] = None,
               create_graph: bool = True) -> Tuple[Dict[str, torch.Tensor], Prediction]:
    """Each objective's loss (0 for those of weight 0) and ``"total"``, their weighted sum, with the
    prediction they came from.  Without ``create_graph`` (validation) the force objectives are all
    computed, whatever their weights, and nothing can be differentiated."""
    def on(name: str) -> bool:
        return weights.get(name, 0) > 0

    interaction = on("interaction") or on("energy") or not create_graph
    direct = on("direct_force") or not create_graph
    prediction = predict(model.head, batch, interaction=interaction, direct=direct, create_graph=create_graph)
    zero = torch.zeros((), dtype=prediction.forces.dtype)
    losses = {
        "force": force_loss(prediction, batch, stats, norm),
        "interaction": interaction_loss(prediction, batch, stats, norm) if interaction else zero,
        "energy": energy_loss(prediction, batch, stats, norm) if interaction else zero,
        "direct_force": direct_force_loss(prediction, batch, stats, norm) if direct else zero,
        "contrastive": contrastive_loss(model, prediction, batch, temperature, norm) if on("contrastive") else zero,
        "denoise": denoise_loss(model.head, batch, noise_nm, norm, generator) if on("denoise") else zero,
    }
    losses["total"] = sum(weights.get(k, 0.0) * losses[k] for k in OBJECTIVES)
    return losses, prediction


def delta_loss(model: InteractionModel, batch: Batch, weights: Dict[str, float], stats: Statistics,
               norm: Dict[str, float], create_graph: bool = True) -> Tuple[Dict[str, torch.Tensor], Prediction]:
    """The Δ objective of the interaction head: its energy and forces (-dE/dx) against the batch's target
    interaction energies and forces (``batch.interaction_energy``, ``batch.interaction_forces``; frames
    without them are left out), weighted by ``weights["interaction"]`` (forces) and ``weights["energy"]``
    (energies per atom).  Returns the losses under ``total_loss``'s names (0 for the objectives that do
    not apply) and the prediction."""
    prediction = predict(model.head, batch, interaction=True, create_graph=create_graph)
    zero = torch.zeros((), dtype=prediction.forces.dtype)
    losses = dict.fromkeys(OBJECTIVES, zero)
    losses["interaction"] = interaction_loss(prediction, batch, stats, norm)
    losses["energy"] = interaction_energy_loss(prediction, batch, stats, norm)
    losses["total"] = weights.get("interaction", 0.0) * losses["interaction"] + weights.get("energy", 0.0) * losses["energy"]
    return losses, prediction
