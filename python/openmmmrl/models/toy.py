# SPDX-License-Identifier: MIT
"""A small invariant message-passing potential, written two ways with the same weights.

``GraphMessagePassing`` uses the plugin's ``"graph/1"`` interface (the engine supplies the edges);
``DenseMessagePassing`` is the same network over all N x N pairs inside the model, as openmm-torch
users write it for the ``"positions"`` interface.  They give the same energy (kJ/mol) and forces, so
the benchmarks compare neighbor searches, not networks.  The weights are random: this is a stand-in
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
        w = self.weights
        source, target = edge_index[0], edge_index[1]
        delta = positions[target] - positions[source] + edge_shift
        basis = w.radial(torch.sqrt((delta * delta).sum(-1)))
        h = w.embedding[atomic_numbers].to(positions.dtype)
        for layer in range(w.filters.shape[0]):
            messages = (basis @ w.filters[layer]) * h[target]
            aggregated = torch.zeros_like(h).index_add_(0, source, messages)
            h = h + torch.nn.functional.silu(aggregated @ w.updates[layer])
        return w.scale * (h @ w.readout).sum()


class DenseMessagePassing(torch.nn.Module):
    """The same network over all pairs inside the model (``"positions"`` interface, no periodicity)."""

    def __init__(self, atomic_numbers, config: ToyConfig = ToyConfig()):
        super().__init__()
        self.weights = _Weights(config)
        self.register_buffer("atomic_numbers", torch.as_tensor(atomic_numbers, dtype=torch.int64))

    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        w = self.weights
        n = positions.shape[0]
        delta = positions.unsqueeze(0) - positions.unsqueeze(1)  # [i, j] = r_j - r_i
        eye = torch.eye(n, dtype=positions.dtype, device=positions.device)
        r = torch.sqrt((delta * delta).sum(-1) + eye)  # + eye keeps the diagonal away from sqrt(0)
        basis = w.radial(r) * (1.0 - eye).unsqueeze(-1)
        h = w.embedding[self.atomic_numbers].to(positions.dtype)
        for layer in range(w.filters.shape[0]):
            filters = basis @ w.filters[layer]  # [N, N, F]
            aggregated = (filters * h.unsqueeze(0)).sum(1)
            h = h + torch.nn.functional.silu(aggregated @ w.updates[layer])
        return w.scale * (h @ w.readout).sum()
