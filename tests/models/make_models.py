# SPDX-License-Identifier: MIT
"""Write the TorchScript models that the C++ and Python tests run (real models, made with torch.jit.script).

Usage: python tests/models/make_models.py OUTPUT_DIR

The physics is one smooth pair potential, phi(r) = A (1 - (r/rc)^2)^3 for r < rc, written three ways:
dense over all pairs with a "positions" interface (openmm-torch's convention, with and without a box),
and over the engine's edges with the "graph/1" interface.  The tests compare each to an analytic
C++ reference and to finite differences.
"""
import os
import sys
from typing import Tuple

import torch

A = 3.0  # kJ/mol  (A and CUTOFF appear as literals inside the scripted functions below)
CUTOFF = 0.6  # nm


def pair_energy(r: torch.Tensor) -> torch.Tensor:
    """phi(r) of each distance r (nm), kJ/mol."""
    x = (r / 0.6) ** 2
    return torch.where(x < 1.0, 3.0 * (1.0 - x) ** 3, torch.zeros_like(r))


def all_pairs_energy(positions: torch.Tensor) -> torch.Tensor:
    """The pair energy summed over all pairs i < j, no box."""
    n = positions.shape[0]
    ij = torch.triu_indices(n, n, 1)
    delta = positions[ij[1]] - positions[ij[0]]
    return pair_energy(torch.sqrt((delta ** 2).sum(-1))).sum()


def edge_lengths(positions: torch.Tensor, edge_index: torch.Tensor, edge_shift: torch.Tensor) -> torch.Tensor:
    delta = positions[edge_index[1]] - positions[edge_index[0]] + edge_shift
    return torch.sqrt((delta ** 2).sum(-1))


class PairPositions(torch.nn.Module):
    """openmm-torch style: forward(positions) over all pairs, no attributes at all."""

    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        return all_pairs_energy(positions)


class PairPositionsPeriodic(torch.nn.Module):
    """forward(positions, box) with minimum images for OpenMM's reduced triclinic boxes."""

    def forward(self, positions: torch.Tensor, box: torch.Tensor) -> torch.Tensor:
        n = positions.shape[0]
        ij = torch.triu_indices(n, n, 1)
        delta = positions[ij[1]] - positions[ij[0]]
        delta = delta - torch.outer(torch.round(delta[:, 2] / box[2, 2]), box[2])
        delta = delta - torch.outer(torch.round(delta[:, 1] / box[1, 1]), box[1])
        delta = delta - torch.outer(torch.round(delta[:, 0] / box[0, 0]), box[0])
        return pair_energy(torch.sqrt((delta ** 2).sum(-1))).sum()


class GraphModel(torch.nn.Module):
    """A "graph/1" model with the test cutoff."""

    def __init__(self):
        super().__init__()
        self.mrl_interface = "graph/1"
        self.cutoff_nm = CUTOFF


class PairGraph(GraphModel):
    """The same potential through the engine's neighbor list ("graph/1"); each pair is listed twice."""

    def forward(self, positions: torch.Tensor, atomic_numbers: torch.Tensor, molecule_index: torch.Tensor,
                edge_index: torch.Tensor, edge_shift: torch.Tensor) -> torch.Tensor:
        return 0.5 * pair_energy(edge_lengths(positions, edge_index, edge_shift)).sum()


class InterMolecularGraph(GraphModel):
    """Pairs between different molecules only, each weighted by Z_i Z_j / 36 (1 for two carbons)."""

    def forward(self, positions: torch.Tensor, atomic_numbers: torch.Tensor, molecule_index: torch.Tensor,
                edge_index: torch.Tensor, edge_shift: torch.Tensor) -> torch.Tensor:
        i, j = edge_index[0], edge_index[1]
        phi = pair_energy(edge_lengths(positions, edge_index, edge_shift))
        weight = (atomic_numbers[i] * atomic_numbers[j]).to(phi.dtype) / 36.0
        inter = (molecule_index[i] != molecule_index[j]).to(phi.dtype)
        return 0.5 * (phi * weight * inter).sum()


class LongestEdge(GraphModel):
    """Energy = the number of edges the engine passed plus the longest one in nm (always below 1 nm)."""

    def forward(self, positions: torch.Tensor, atomic_numbers: torch.Tensor, molecule_index: torch.Tensor,
                edge_index: torch.Tensor, edge_shift: torch.Tensor) -> torch.Tensor:
        r = edge_lengths(positions, edge_index, edge_shift)
        return torch.cat([r, torch.zeros(1, dtype=r.dtype)]).max() + float(edge_index.shape[1])


class ScaledPair(torch.nn.Module):
    """E = scale * pair energy + shift: two global parameters, dE/dscale is the pair energy."""

    def forward(self, positions: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        return scale * all_pairs_energy(positions) + shift


class HarmonicWithForces(torch.nn.Module):
    """outputs_forces: E = k/2 sum |r|^2, F = -k r, returned explicitly."""

    def __init__(self):
        super().__init__()
        self.outputs_forces = True

    def forward(self, positions: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        return 50.0 * (positions ** 2).sum(), -100.0 * positions


class IntegerBuffer(torch.nn.Module):
    """An int64 index buffer and a float buffer: E = weight * |r_order[0]|^2 must work in either precision."""

    def __init__(self):
        super().__init__()
        self.register_buffer("order", torch.tensor([1, 0], dtype=torch.int64))
        self.register_buffer("weight", torch.tensor(2.0, dtype=torch.float64))

    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        return self.weight * (positions[self.order[0]] ** 2).sum()


class RaisesError(torch.nn.Module):
    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        if positions.shape[0] > 0:
            raise RuntimeError("this model refuses to run")
        return positions.sum()


class WrongSignature(torch.nn.Module):
    def forward(self, positions: torch.Tensor, extra: torch.Tensor) -> torch.Tensor:
        return (positions ** 2).sum() + extra


class WrongShape(torch.nn.Module):
    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        return positions ** 2


class IntegerEnergy(torch.nn.Module):
    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        return torch.tensor(3, dtype=torch.int64)


class NaNEnergy(torch.nn.Module):
    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        return (positions ** 2).sum() * float("nan")


class NaNForces(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.outputs_forces = True

    def forward(self, positions: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        return (positions ** 2).sum(), positions * float("inf")


class WrongForcesShape(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.outputs_forces = True

    def forward(self, positions: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        return (positions ** 2).sum(), positions[:1]


class UnknownInterface(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.mrl_interface = "graph/7"

    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        return positions.sum()


class NegativeCutoff(PairGraph):
    def __init__(self):
        super().__init__()
        self.cutoff_nm = -1.0


MODELS = {
    "pair_positions.pt": PairPositions,
    "pair_positions_periodic.pt": PairPositionsPeriodic,
    "pair_graph.pt": PairGraph,
    "scaled_pair.pt": ScaledPair,
    "longest_edge.pt": LongestEdge,
    "intermolecular_graph.pt": InterMolecularGraph,
    "harmonic_forces.pt": HarmonicWithForces,
    "integer_buffer.pt": IntegerBuffer,
    "raises_error.pt": RaisesError,
    "wrong_signature.pt": WrongSignature,
    "wrong_shape.pt": WrongShape,
    "integer_energy.pt": IntegerEnergy,
    "nan_energy.pt": NaNEnergy,
    "nan_forces.pt": NaNForces,
    "wrong_forces_shape.pt": WrongForcesShape,
    "unknown_interface.pt": UnknownInterface,
    "negative_cutoff.pt": NegativeCutoff,
}


def main(output):
    os.makedirs(output, exist_ok=True)
    for name, cls in MODELS.items():
        torch.jit.script(cls()).save(os.path.join(output, name))
    with open(os.path.join(output, "not_a_model.pt"), "w") as f:
        f.write("this is a text file, not a TorchScript archive\n")


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] in ("-h", "--help"):
        print(__doc__)
        sys.exit(0 if len(sys.argv) == 2 else 2)
    main(sys.argv[1])
