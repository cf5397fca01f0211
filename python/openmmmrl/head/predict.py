# SPDX-License-Identifier: MIT
"""What a model predicts for a batch: energies, total forces, interaction forces (and, for a
``ForceHead``, its direct forces and features).  Training, validation, evaluation and plots all get
their numbers from ``predict``.  Units: kJ/mol, kJ/mol/nm.

Interaction forces are -d(E(x) - E_intra(x))/dx, where E_intra is the same model on the same atoms with
the edges between molecules removed: the intermolecular part, as force groups split it in the data.
Both graphs go through the model together: the batch's atoms twice, the second copy with only the
edges inside molecules.  An ``InteractionHead``'s energy is intermolecular by construction: its
interaction energy and forces are its energy and forces, from one pass.
"""
from dataclasses import dataclass
from typing import Optional

import torch

from .batch import Batch
from .model import ForceHead, InteractionHead


@dataclass
class Prediction:
    """A model's outputs for a batch; ``None`` where ``predict`` was not asked for (or cannot give) it."""
    energy: torch.Tensor                          #: [frames] kJ/mol
    forces: torch.Tensor                          #: [N, 3] kJ/mol/nm, -dE/dx
    interaction_energy: Optional[torch.Tensor]    #: [frames] kJ/mol, E - E_intra
    interaction_forces: Optional[torch.Tensor]    #: [N, 3] kJ/mol/nm, -d(E - E_intra)/dx
    direct_forces: Optional[torch.Tensor]         #: [N, 3] kJ/mol/nm, the direct force head's (ForceHead only)
    features: Optional[torch.Tensor]              #: [N, F] the trunk's scalar features (ForceHead only)


def predict(model, batch: Batch, interaction: bool = True, direct: bool = False,
            create_graph: bool = False) -> Prediction:
    """The energies and forces of ``model`` for ``batch``.

    ``model`` is a ``ForceHead`` (one trunk pass over all frames, per-frame energies from its atomic
    energies), an ``InteractionHead`` (likewise; its interaction outputs are its energy and forces) or any
    ``"graph/1"`` module, e.g. an exported file from ``torch.jit.load`` (one call per
    frame and graph; a module that also returns forces has its energy used).  ``interaction`` adds the
    interaction energy and forces, ``direct`` the direct force head's forces (ForceHead only).
    ``create_graph`` keeps the autograd graph of the forces so that a loss of them can be
    differentiated (training); without it every output is detached.
    """
    n, b = batch.positions.shape[0], batch.frames
    intermolecular = isinstance(model, InteractionHead)
    interaction_asked, interaction = interaction, interaction and not intermolecular
    full = batch.positions.clone().requires_grad_(True)
    inputs = [full]
    positions, numbers, molecules = full, batch.atomic_numbers, batch.molecule_index
    edges, shifts, graph, graphs = batch.edge_index, batch.edge_shift, batch.graph_index, b
    if interaction:
        intra_only = batch.positions.clone().requires_grad_(True)
        inputs.append(intra_only)
        intra = batch.intra_edges()
        positions = torch.cat([full, intra_only])
        numbers = torch.cat([batch.atomic_numbers, batch.atomic_numbers])
        molecules = torch.cat([batch.molecule_index, batch.molecule_index])
        edges = torch.cat([batch.edge_index, batch.edge_index[:, intra] + n], 1)
        shifts = torch.cat([batch.edge_shift, batch.edge_shift[intra]])
        graph = torch.cat([batch.graph_index, batch.graph_index + b])
        graphs = 2 * b
    s = v = None
    if isinstance(model, ForceHead):
        s, v = model.trunk(positions, numbers, molecules, edges, shifts)
        atom_energy = model.atomic_energies(s, numbers)
        energies = torch.zeros(graphs, dtype=atom_energy.dtype).index_add_(0, graph, atom_energy)
    elif intermolecular:
        atom_energy = model.atomic_energies(positions, numbers, molecules, edges, shifts)
        energies = torch.zeros(graphs, dtype=atom_energy.dtype).index_add_(0, graph, atom_energy)
    else:
        energies = graph_energies(model, positions, numbers, molecules, edges, shifts, graph, graphs)
    grads = torch.autograd.grad(energies.sum(), inputs, create_graph=create_graph)
    prediction = Prediction(energy=energies[:b], forces=-grads[0], interaction_energy=None, interaction_forces=None,
                            direct_forces=None, features=None if s is None else s[:n])
    if interaction:
        prediction.interaction_forces = -(grads[0] - grads[1])
        prediction.interaction_energy = energies[:b] - energies[b:]
    elif interaction_asked and intermolecular:
        prediction.interaction_forces, prediction.interaction_energy = prediction.forces, prediction.energy
    if direct and s is not None:
        prediction.direct_forces = model.direct_forces(s[:n], v[:n])
    if not create_graph:
        for name, value in vars(prediction).items():
            if value is not None:
                setattr(prediction, name, value.detach())
    return prediction


def graph_energies(module, positions: torch.Tensor, atomic_numbers: torch.Tensor, molecule_index: torch.Tensor,
                   edge_index: torch.Tensor, edge_shift: torch.Tensor, graph_index: torch.Tensor,
                   graphs: int) -> torch.Tensor:
    """The energy (kJ/mol) of each graph of a batch, [graphs], by one ``"graph/1"`` call of ``module`` per
    graph on its own atoms and edges."""
    energies = []
    local = torch.zeros_like(graph_index)
    for g in range(graphs):
        atoms = torch.nonzero(graph_index == g).squeeze(1)
        local[atoms] = torch.arange(len(atoms))
        mine = graph_index[edge_index[0]] == g
        energy = module(positions[atoms], atomic_numbers[atoms], molecule_index[atoms], local[edge_index[:, mine]],
                        edge_shift[mine])
        energies.append(energy[0] if isinstance(energy, tuple) else energy)
    return torch.stack(energies)
