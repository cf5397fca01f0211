# SPDX-License-Identifier: MIT
"""A small invariant message-passing potential, written two ways with the same weights.

``GraphMessagePassing`` uses the plugin's ``"graph/1"`` interface (the engine supplies the edges);
``AllPairsMessagePassing`` is the same network for the ``"positions"`` interface, finding its
neighbors inside the model from all N x N distances, as openmm-torch users write it.  They give the
same energy (kJ/mol) and forces, so the benchmarks compare neighbor searches, not networks.  The weights are random: this is a stand-in
for the pretrained head for speed and plumbing, not a physical potential.
"""
import math
from dataclasses import dataclass

import torch


@dataclass
class ToyConfig:
    features: int = 32
    radial_basis: int = 8
    layers: int = 2
    cutoff_nm: float = 0.5
    max_atomic_number: int = 100
    energy_scale: float = 1.0  # kJ/mol per unit of readout
    seed: int = 0


class _Weights(torch.nn.Module):
    def __init__(self, config: ToyConfig):
        super().__init__()
        generator = torch.Generator().manual_seed(config.seed)
        f, k = config.features, config.radial_basis
        self.embedding = torch.nn.Parameter(torch.randn(config.max_atomic_number + 1, f, generator=generator) * 0.5)
        self.filters = torch.nn.Parameter(torch.randn(config.layers, k, f, generator=generator) / math.sqrt(k))
        self.updates = torch.nn.Parameter(torch.randn(config.layers, f, f, generator=generator) / math.sqrt(f))
        self.readout = torch.nn.Parameter(torch.randn(f, generator=generator) / math.sqrt(f))
        self.register_buffer("centers", torch.linspace(0.0, config.cutoff_nm, k))
        self.width = float(config.cutoff_nm / k)
        self.cutoff = float(config.cutoff_nm)
        self.scale = float(config.energy_scale)

    def energy(self, positions: torch.Tensor, atomic_numbers: torch.Tensor, edge_index: torch.Tensor,
               edge_shift: torch.Tensor) -> torch.Tensor:
        """The network's energy (kJ/mol) over directed edges (both directions listed)."""
        source, target = edge_index[0], edge_index[1]
        delta = positions[target] - positions[source] + edge_shift
        basis = self.radial(torch.sqrt((delta * delta).sum(-1)))
        h = self.embedding[atomic_numbers].to(positions.dtype)
        for layer in range(self.filters.shape[0]):
            messages = (basis @ self.filters[layer]) * h[target]
            aggregated = torch.zeros_like(h).index_add_(0, source, messages)
            h = h + torch.nn.functional.silu(aggregated @ self.updates[layer])
        return self.scale * (h @ self.readout).sum()

    def radial(self, r: torch.Tensor) -> torch.Tensor:
        """Gaussian radial basis times a cosine cutoff that goes smoothly to zero at the cutoff, [..., K]."""
        envelope = torch.where(r < self.cutoff, 0.5 * (torch.cos(math.pi * r / self.cutoff) + 1.0), torch.zeros_like(r))
        return torch.exp(-(((r.unsqueeze(-1) - self.centers) / self.width) ** 2)) * envelope.unsqueeze(-1)


class GraphMessagePassing(torch.nn.Module):
    """The toy network over the engine's edges (``mrl_interface = "graph/1"``)."""

    def __init__(self, config: ToyConfig = ToyConfig()):
        super().__init__()
        self.mrl_interface = "graph/1"
        self.cutoff_nm = float(config.cutoff_nm)
        self.weights = _Weights(config)

    def forward(self, positions: torch.Tensor, atomic_numbers: torch.Tensor, molecule_index: torch.Tensor,
                edge_index: torch.Tensor, edge_shift: torch.Tensor) -> torch.Tensor:
        return self.weights.energy(positions, atomic_numbers, edge_index, edge_shift)


class AllPairsMessagePassing(torch.nn.Module):
    """The same network with its neighbor search inside the model (``"positions"`` interface, no box):
    all N x N distances, then the pairs within the cutoff."""

    def __init__(self, atomic_numbers, config: ToyConfig = ToyConfig()):
        super().__init__()
        self.weights = _Weights(config)
        self.register_buffer("atomic_numbers", torch.as_tensor(atomic_numbers, dtype=torch.int64))

    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        n = positions.shape[0]
        with torch.no_grad():
            distances = torch.cdist(positions, positions)
            distances.fill_diagonal_(2.0 * self.weights.cutoff)
            edge_index = torch.nonzero(distances < self.weights.cutoff).t().contiguous()
        shift = torch.zeros(edge_index.shape[1], 3, dtype=positions.dtype, device=positions.device)
        return self.weights.energy(positions, self.atomic_numbers, edge_index, shift)
