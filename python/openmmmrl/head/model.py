# SPDX-License-Identifier: MIT
"""The equivariant force head: a PaiNN-style message-passing network with scalar and vector features.

Units: positions and shifts in nm, energies in kJ/mol, forces in kJ/mol/nm.

``EquivariantTrunk`` turns a graph (atomic numbers, molecule index, directed edges with periodic
shifts) into per-atom scalar features ``s[N,F]`` and vector features ``v[N,3,F]``.  An edge knows
whether it joins two atoms of one molecule or of two molecules: the two kinds have their own radial
filters, so the network can learn intermolecular physics separately.  Every radial term is multiplied
by a polynomial envelope that goes to zero with two continuous derivatives at ``cutoff_nm``, and edges
beyond the cutoff contribute exactly zero (the ``"graph/1"`` contract).

Heads on top of the trunk:

- ``energy``: a sum of atomic energies (an MLP of ``s`` plus a per-element reference energy), so the
  forces ``-dE/dx`` are conservative;
- ``direct_forces``: an equivariant vector per atom (3DMRL's force prediction), not conservative;
- ``denoise``: an equivariant vector per atom, the noise added to the coordinates (MoleculeSDE and
  MoleBLEND's denoising), in units of the noise width.

``InteractionHead`` is the other model on the trunk: the intermolecular energy alone, a sum of pair
terms over the edges between molecules, so that a molecule alone has exactly zero energy and force.  It
corrects a force field's intermolecular energy (MMFF94 plus this head, fitted to a better method's
labels minus MMFF94's).

``ForceHead`` bundles trunk and heads with the ``"graph/1"`` forward that ``MRLForce`` calls; it is
what ``python -m openmmmrl.export`` scripts.  ``GraphEncoder2D`` is the 2D (bond graph) encoder of the
2D/3D contrastive objective; it is used in training only.
"""
import math
from dataclasses import asdict, dataclass
from typing import Tuple

import torch
from torch import nn


class _Settings:
    """A dataclass of hyper-parameters that is saved as a dict next to the weights."""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict):
        unknown = set(values) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown {cls.__name__} settings {sorted(unknown)}; known: {sorted(cls.__dataclass_fields__)}")
        return cls(**values)


#: The settings that shape the trunk; a pretrained trunk brings its own values of them.
TRUNK_SETTINGS = ("features", "layers", "radial_basis", "cutoff_nm", "max_atomic_number")


@dataclass
class HeadConfig(_Settings):
    """Hyper-parameters of the force head (saved in checkpoints and the model file)."""
    features: int = 64
    layers: int = 3
    radial_basis: int = 16
    cutoff_nm: float = 0.5
    max_atomic_number: int = 54
    projection: int = 64          #: size of the contrastive embedding
    graph2d_layers: int = 3       #: GIN layers of the 2D encoder
    seed: int = 0


@dataclass
class InteractionConfig(_Settings):
    """Hyper-parameters of the interaction head (saved in checkpoints and the model file).  The trunk
    settings (``TRUNK_SETTINGS``) mean what they mean in ``HeadConfig``."""
    features: int = 64
    layers: int = 3
    radial_basis: int = 16
    cutoff_nm: float = 0.5
    max_atomic_number: int = 54
    pair_hidden: int = 64         #: hidden width of the pair-energy MLP
    #: the pair terms switch on between these distances (nm): 0 below onset_start_nm, smoothly to 1 at
    #: onset_end_nm (0, 0: no switch).  Below the shortest contacts of the labels the correction is then
    #: zero and MMFF94's own repulsion rules, instead of a fitted term extrapolated to where no label is.
    onset_start_nm: float = 0.0
    onset_end_nm: float = 0.0
    label_set: str = "interaction"  #: what the energies it was fitted to are (e.g. "gfn2-xtb-minus-mmff94")
    seed: int = 0

    def trunk_config(self) -> HeadConfig:
        return HeadConfig(**{k: getattr(self, k) for k in TRUNK_SETTINGS}, seed=self.seed)


def _mlp(inputs: int, hidden: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(inputs, hidden), nn.SiLU(), nn.Linear(hidden, outputs))


class RadialBasis(nn.Module):
    """sin(n pi r / rc) / r (Bessel) times the polynomial envelope of DimeNet (p = 6), [E, K].
    The envelope and its first two derivatives vanish at rc; beyond rc the basis is exactly 0."""

    def __init__(self, count: int, cutoff_nm: float):
        super().__init__()
        self.cutoff = float(cutoff_nm)
        self.register_buffer("frequencies", torch.arange(1, count + 1, dtype=torch.float32) * math.pi / cutoff_nm)

    def envelope(self, r: torch.Tensor) -> torch.Tensor:
        x = r / self.cutoff
        x6 = x ** 6
        value = 1.0 - 28.0 * x6 + 48.0 * x6 * x - 21.0 * x6 * x * x
        return torch.where(x < 1.0, value, torch.zeros_like(x))

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        safe = torch.clamp(r, min=1e-4)
        basis = torch.sin(self.frequencies * safe.unsqueeze(-1)) / safe.unsqueeze(-1)
        return basis * (self.envelope(r) * self.cutoff).unsqueeze(-1)


class _Message(nn.Module):
    def __init__(self, f: int, k: int):
        super().__init__()
        self.features = f
        self.phi = _mlp(f, f, 3 * f)
        # Separate filters for edges inside a molecule and between molecules: input [rbf, inter * rbf].
        self.filter = nn.Linear(2 * k, 3 * f, bias=False)  # no bias: a zero basis (at the cutoff) gives no message

    def forward(self, s: torch.Tensor, v: torch.Tensor, source: torch.Tensor, target: torch.Tensor,
                filter_input: torch.Tensor, unit: torch.Tensor, first: bool) -> Tuple[torch.Tensor, torch.Tensor]:
        """``filter_input`` is [rbf, inter * rbf] per edge; ``first``: v is still zero (skip its term)."""
        f = self.features
        x = torch.index_select(self.phi(s), 0, target) * self.filter(filter_input)
        a_s, a_vv, a_vs = x[:, :f], x[:, f:2 * f], x[:, 2 * f:]
        dv_edge = a_vs.unsqueeze(1) * unit.unsqueeze(-1)
        if not first:
            dv_edge = dv_edge + a_vv.unsqueeze(1) * torch.index_select(v, 0, target)
        ds = torch.zeros_like(s).index_add_(0, source, a_s)
        dv = torch.zeros_like(v).index_add_(0, source, dv_edge)
        return s + ds, v + dv


class _Update(nn.Module):
    def __init__(self, f: int):
        super().__init__()
        self.features = f
        self.u = nn.Linear(f, f, bias=False)
        self.w = nn.Linear(f, f, bias=False)
        self.mix = _mlp(2 * f, f, 3 * f)

    def forward(self, s: torch.Tensor, v: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        f = self.features
        uv, wv = self.u(v), self.w(v)
        norm = torch.sqrt((wv * wv).sum(1) + 1e-8)
        x = self.mix(torch.cat([s, norm], dim=-1))
        a_vv, a_sv, a_ss = x[:, :f], x[:, f:2 * f], x[:, 2 * f:]
        return s + a_sv * (uv * wv).sum(1) + a_ss, v + a_vv.unsqueeze(1) * uv


def element_index(atomic_numbers: torch.Tensor, max_atomic_number: int, strict: bool) -> Tuple[torch.Tensor, torch.Tensor]:
    """Atomic numbers safe to index the element tables with, and a factor per atom: 1, or NaN for an atomic
    number outside 1..max_atomic_number.  ``strict`` raises for such an atom instead; that reads the values
    on the host, so on a GPU (where a step must not wait for the host, and a CUDA graph cannot) the NaN
    makes the energy and forces non-finite, which MRLForce reports."""
    valid = (atomic_numbers >= 1) & (atomic_numbers <= max_atomic_number)
    if strict and not bool(valid.all()):
        raise ValueError("the force head knows atomic numbers 1 to " + str(max_atomic_number) +
                         "; an atom outside that range (a virtual site?) must be left out of the ML region")
    safe = torch.where(valid, atomic_numbers, torch.zeros_like(atomic_numbers))
    poison = torch.where(valid, torch.ones(valid.shape, dtype=torch.float32, device=valid.device),
                         torch.full(valid.shape, float("nan"), dtype=torch.float32, device=valid.device))
    return safe, poison


def onset_switch(r: torch.Tensor, start_nm: float, end_nm: float) -> torch.Tensor:
    """0 for r <= start_nm, 1 for r >= end_nm, and the quintic smoothstep between (two continuous
    derivatives at both ends)."""
    x = torch.clamp((r - start_nm) / (end_nm - start_nm), 0.0, 1.0)
    return x * x * x * (10.0 - 15.0 * x + 6.0 * x * x)


def edge_vectors(positions: torch.Tensor, edge_index: torch.Tensor,
                 edge_shift: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """r_ij = x_j - x_i + shift of each edge (i, j), [E,3] nm, and its length, [E] nm (never exactly 0,
    so that its gradient is finite)."""
    delta = torch.index_select(positions, 0, edge_index[1]) - torch.index_select(positions, 0, edge_index[0]) + edge_shift
    return delta, torch.sqrt((delta * delta).sum(-1) + 1e-12)


class EquivariantTrunk(nn.Module):
    """Scalar features s[N,F] (invariant) and vector features v[N,3,F] (equivariant) of a graph."""

    def __init__(self, config: HeadConfig):
        super().__init__()
        f, k = config.features, config.radial_basis
        self.features = f
        self.cutoff_nm = float(config.cutoff_nm)
        self.embedding = nn.Embedding(config.max_atomic_number + 1, f)
        self.max_atomic_number = int(config.max_atomic_number)
        self.basis = RadialBasis(k, config.cutoff_nm)
        self.messages = nn.ModuleList([_Message(f, k) for _ in range(config.layers)])
        self.updates = nn.ModuleList([_Update(f) for _ in range(config.layers)])
        #: raise for an unknown element (reads a value on the host); False gives NaN energies instead, as on a GPU
        #: and in a compiled (.pt2) graph, which cannot branch on values
        self.check_elements_on_host = True

    def forward(self, positions: torch.Tensor, atomic_numbers: torch.Tensor, molecule_index: torch.Tensor,
                edge_index: torch.Tensor, edge_shift: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        z, poison = element_index(atomic_numbers, self.max_atomic_number, strict=self.check_elements_on_host and not positions.is_cuda)
        source, target = edge_index[0], edge_index[1]
        delta, r = edge_vectors(positions, edge_index, edge_shift)
        unit = delta / r.unsqueeze(-1)
        basis = self.basis(r)
        inter = (torch.index_select(molecule_index, 0, source) != torch.index_select(molecule_index, 0, target)).to(positions.dtype)
        filter_input = torch.cat([basis, basis * inter.unsqueeze(-1)], dim=-1)
        s = self.embedding(z).to(positions.dtype) * poison.to(positions.dtype).unsqueeze(-1)
        v = torch.zeros(s.shape[0], 3, self.features, dtype=positions.dtype, device=positions.device)
        first = True
        for message, update in zip(self.messages, self.updates):
            s, v = message(s, v, source, target, filter_input, unit, first)
            s, v = update(s, v)
            first = False
        return s, v


class _VectorHead(nn.Module):
    """An equivariant vector per atom: gated linear combination of the vector features, [N,3]."""

    def __init__(self, f: int):
        super().__init__()
        self.vectors = nn.Linear(f, f, bias=False)
        self.gate = _mlp(f, f, f)

    def forward(self, s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return (self.vectors(v) * self.gate(s).unsqueeze(1)).sum(-1)


class ForceHead(nn.Module):
    """Trunk plus energy, direct-force and denoising heads; ``forward`` is the ``"graph/1"`` interface.

    ``energy_scale`` (kJ/mol per unit of network output) and the per-element reference energies
    ``atom_reference`` (kJ/mol) are set from the training data before training starts.
    ``energy_and_direct_forces`` adds the direct force head's forces (not conservative).
    """

    def __init__(self, config: HeadConfig = HeadConfig()):
        super().__init__()
        torch.manual_seed(config.seed)
        self.mrl_interface = "graph/1"
        self.cutoff_nm = float(config.cutoff_nm)
        self.trunk = EquivariantTrunk(config)
        f = config.features
        self.atomic_energy = _mlp(f, f, 1)
        self.register_buffer("atom_reference", torch.zeros(config.max_atomic_number + 1, dtype=torch.float64))
        self.register_buffer("energy_scale", torch.ones((), dtype=torch.float64))
        self.register_buffer("force_scale", torch.ones((), dtype=torch.float64))
        self.direct_force = _VectorHead(f)
        self.denoiser = _VectorHead(f)

    def atomic_energies(self, s: torch.Tensor, atomic_numbers: torch.Tensor) -> torch.Tensor:
        """Per-atom energies (kJ/mol), [N]."""
        reference = self.atom_reference[atomic_numbers.clamp(0, self.atom_reference.shape[0] - 1)].to(s.dtype)
        return self.atomic_energy(s).squeeze(-1) * self.energy_scale.to(s.dtype) + reference

    def direct_forces(self, s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """The direct force head's forces (kJ/mol/nm), [N,3]."""
        return self.direct_force(s, v) * self.force_scale.to(s.dtype)

    def forward(self, positions: torch.Tensor, atomic_numbers: torch.Tensor, molecule_index: torch.Tensor,
                edge_index: torch.Tensor, edge_shift: torch.Tensor) -> torch.Tensor:
        """The energy (kJ/mol)."""
        s, _ = self.trunk(positions, atomic_numbers, molecule_index, edge_index, edge_shift)
        return self.atomic_energies(s, atomic_numbers).sum()

    def energy_and_direct_forces(self, positions: torch.Tensor, atomic_numbers: torch.Tensor,
                                 molecule_index: torch.Tensor, edge_index: torch.Tensor,
                                 edge_shift: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """The energy (kJ/mol) and the direct force head's forces (kJ/mol/nm, [N,3])."""
        s, v = self.trunk(positions, atomic_numbers, molecule_index, edge_index, edge_shift)
        return self.atomic_energies(s, atomic_numbers).sum(), self.direct_forces(s, v)


class InteractionHead(nn.Module):
    """The intermolecular energy (kJ/mol) as a sum of pair terms over the edges between molecules.

    The trunk's scalar features see every edge, inside molecules and between them.  The energy is

        E = 1/2 sum over directed edges (i, j) with molecule_index[i] != molecule_index[j] of
            MLP([s_i + s_j, s_i * s_j, rbf(r_ij)]) * envelope(r_ij) * energy_scale,

    symmetric in i and j, so the sum over both directions counts each pair once.  With ``onset_end_nm`` > 0
    each term is also multiplied by ``onset_switch(r_ij)``: zero at contacts shorter than any in the labels.  The term of an edge
    inside a molecule is an exact zero (``torch.where``, not a product), so the energy of a molecule with
    no partner within ``cutoff_nm`` is exactly 0.0 and so are its forces; the envelope is exactly 0 at and
    beyond the cutoff, with two continuous derivatives there.  No shape depends on the data, so the
    forward runs without reading values back to the host (CUDA graphs).  ``energy_scale`` (kJ/mol per
    unit of network output) is set from the training data before training starts.
    """

    def __init__(self, config: InteractionConfig = InteractionConfig()):
        super().__init__()
        torch.manual_seed(config.seed)
        self.mrl_interface = "graph/1"
        self.cutoff_nm = float(config.cutoff_nm)
        self.trunk = EquivariantTrunk(config.trunk_config())
        self.pair = _mlp(2 * config.features + config.radial_basis, config.pair_hidden, 1)
        self.onset_start_nm = float(config.onset_start_nm)
        self.onset_end_nm = float(config.onset_end_nm)
        self.register_buffer("energy_scale", torch.ones((), dtype=torch.float64))

    def atomic_energies(self, positions: torch.Tensor, atomic_numbers: torch.Tensor, molecule_index: torch.Tensor,
                        edge_index: torch.Tensor, edge_shift: torch.Tensor) -> torch.Tensor:
        """Half of each intermolecular pair term on each of its two atoms (kJ/mol), [N]."""
        s, _ = self.trunk(positions, atomic_numbers, molecule_index, edge_index, edge_shift)
        source, target = edge_index[0], edge_index[1]
        _, r = edge_vectors(positions, edge_index, edge_shift)
        s_i, s_j = torch.index_select(s, 0, source), torch.index_select(s, 0, target)
        term = self.pair(torch.cat([s_i + s_j, s_i * s_j, self.trunk.basis(r)], dim=-1)).squeeze(-1)
        term = term * self.trunk.basis.envelope(r) * (0.5 * self.energy_scale.to(s.dtype))
        if self.onset_end_nm > self.onset_start_nm:
            term = term * onset_switch(r, self.onset_start_nm, self.onset_end_nm)
        between = torch.index_select(molecule_index, 0, source) != torch.index_select(molecule_index, 0, target)
        term = torch.where(between, term, torch.zeros_like(term))
        return torch.zeros(s.shape[0], dtype=s.dtype, device=s.device).index_add_(0, source, term)

    def forward(self, positions: torch.Tensor, atomic_numbers: torch.Tensor, molecule_index: torch.Tensor,
                edge_index: torch.Tensor, edge_shift: torch.Tensor) -> torch.Tensor:
        """The intermolecular energy (kJ/mol)."""
        return self.atomic_energies(positions, atomic_numbers, molecule_index, edge_index, edge_shift).sum()


class InteractionModel(nn.Module):
    """Everything that trains in the interaction (Δ) objective: the interaction head.  Checkpoints hold its
    ``state_dict`` (keys ``head.``), as they do ``Model``'s."""

    def __init__(self, config: InteractionConfig):
        super().__init__()
        self.head = InteractionHead(config)


class ExportedHead(nn.Module):
    """The exported ``"graph/1"`` model of a ``ForceHead`` or an ``InteractionHead``: ``forward`` returns
    the energy (kJ/mol); forces are -dE/dx."""

    def __init__(self, head: nn.Module, metadata: str = "{}"):
        super().__init__()
        self.mrl_interface = "graph/1"
        self.cutoff_nm = float(head.cutoff_nm)
        self.mrl_metadata = metadata
        self.head = head

    def forward(self, positions: torch.Tensor, atomic_numbers: torch.Tensor, molecule_index: torch.Tensor,
                edge_index: torch.Tensor, edge_shift: torch.Tensor) -> torch.Tensor:
        return self.head(positions, atomic_numbers, molecule_index, edge_index, edge_shift)


class ExportedDirectForceHead(ExportedHead):
    """The exported model with the direct force head (``outputs_forces``): ``forward`` returns
    ``(energy kJ/mol, forces [N,3] kJ/mol/nm)``; the forces are not the gradient of the energy."""

    def __init__(self, head: ForceHead, metadata: str = "{}"):
        super().__init__(head, metadata)
        self.outputs_forces = True

    def forward(self, positions: torch.Tensor, atomic_numbers: torch.Tensor, molecule_index: torch.Tensor,
                edge_index: torch.Tensor, edge_shift: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        return self.head.energy_and_direct_forces(positions, atomic_numbers, molecule_index, edge_index, edge_shift)


def mean_pool(x: torch.Tensor, graph_index: torch.Tensor, graphs: int) -> torch.Tensor:
    """Mean of the rows of x[N,F] per graph, [graphs, F] (0 for a graph without atoms)."""
    pooled = torch.zeros(graphs, x.shape[1], dtype=x.dtype).index_add_(0, graph_index, x)
    counts = torch.zeros(graphs, dtype=x.dtype).index_add_(0, graph_index, torch.ones_like(graph_index, dtype=x.dtype))
    return pooled / counts.clamp(min=1).unsqueeze(-1)


class GraphEncoder2D(nn.Module):
    """A GIN over the bond graph (atoms: element and formal charge; bonds: order), pooled per graph.

    ``forward(atomic_numbers[N], formal_charges[N], bonds[2,B] (both directions), bond_orders[B],
    graph_index[N], graphs)`` returns one embedding per graph, [graphs, projection].
    """

    def __init__(self, config: HeadConfig):
        super().__init__()
        f = config.features
        self.atoms = nn.Embedding(config.max_atomic_number + 1, f)
        self.charges = nn.Embedding(9, f)  # formal charge -4..+4
        self.bond_types = nn.Embedding(5, f)  # unknown, single, aromatic, double, triple
        self.layers = nn.ModuleList([_mlp(f, f, f) for _ in range(config.graph2d_layers)])
        self.projection = _mlp(f, f, config.projection)

    @staticmethod
    def bond_type(orders: torch.Tensor) -> torch.Tensor:
        return torch.bucketize(orders, torch.tensor([0.5, 1.25, 1.75, 2.5], dtype=orders.dtype))

    def forward(self, atomic_numbers, formal_charges, bonds, bond_orders, graph_index, graphs: int):
        h = self.atoms(atomic_numbers) + self.charges(torch.clamp(formal_charges, -4, 4) + 4)
        edge = self.bond_types(self.bond_type(bond_orders))
        for layer in self.layers:
            messages = torch.relu(h[bonds[1]] + edge)
            h = h + layer(h + torch.zeros_like(h).index_add_(0, bonds[0], messages))
        return self.projection(mean_pool(h, graph_index, graphs))


class Projection3D(nn.Module):
    """Pools the trunk's scalar features per graph into the contrastive embedding, [graphs, projection]."""

    def __init__(self, config: HeadConfig):
        super().__init__()
        self.projection = _mlp(config.features, config.features, config.projection)

    def forward(self, s: torch.Tensor, graph_index: torch.Tensor, graphs: int) -> torch.Tensor:
        return self.projection(mean_pool(s, graph_index, graphs))


class Model(nn.Module):
    """Everything that trains: the force head plus the encoders of the contrastive objective.  Checkpoints
    hold its ``state_dict`` (keys ``head.``, ``encoder2d.``, ``projection3d.``)."""

    def __init__(self, config: HeadConfig):
        super().__init__()
        self.head = ForceHead(config)
        self.encoder2d = GraphEncoder2D(config)
        self.projection3d = Projection3D(config)
