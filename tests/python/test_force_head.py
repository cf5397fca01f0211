# SPDX-License-Identifier: MIT
"""The equivariant force head: symmetry, finite differences, smooth cutoff, export, and agreement of the
exported file inside MRLForce with the Python model.  Geometries are real RDKit conformers."""
import numpy as np
import openmm
import openmm.unit as unit
import pytest
import torch
from rdkit import Chem
from rdkit.Chem import AllChem

from openmmmrl import MRLForce
from openmmmrl.head.batch import neighbor_edges
from openmmmrl.head.model import ExportedDirectForceHead, ExportedHead, ForceHead, HeadConfig

CONFIG = HeadConfig(features=24, layers=2, radial_basis=8, cutoff_nm=0.45, seed=5)


def environment():
    """Ethanol with two waters and an acetonitrile placed around it (RDKit conformers), nm."""
    parts = []
    offsets = [(0, 0, 0), (0.35, 0.05, 0.0), (-0.3, 0.2, 0.1), (0.05, -0.38, 0.12)]
    for k, smiles in enumerate(["CCO", "O", "O", "CC#N"]):
        mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
        AllChem.EmbedMolecule(mol, randomSeed=11 + k)
        xyz = mol.GetConformer().GetPositions() / 10.0
        parts.append((np.array([a.GetAtomicNum() for a in mol.GetAtoms()]), xyz - xyz.mean(0) + offsets[k], k))
    z = np.concatenate([p[0] for p in parts])
    mol = np.concatenate([np.full(len(p[0]), p[2]) for p in parts])
    return z, mol, np.concatenate([p[1] for p in parts])


def trained_like_head():
    """A head with random weights and the energy scale of a trained one (kJ/mol)."""
    head = ForceHead(CONFIG).double()
    head.energy_scale.fill_(50.0)
    head.force_scale.fill_(500.0)
    head.atom_reference[[1, 6, 7, 8]] = torch.tensor([-10.0, 20.0, 5.0, -30.0], dtype=torch.float64)
    return head.eval()


def energy_forces(head, positions, z, mol, box=None):
    pos = torch.tensor(positions, dtype=torch.float64, requires_grad=True)
    edges, shifts = neighbor_edges(pos.detach(), None if box is None else torch.tensor(box), head.cutoff_nm)
    energy = head(pos, torch.tensor(z), torch.tensor(mol), edges, shifts)
    (grad,) = torch.autograd.grad(energy, pos)
    return float(energy.detach()), -grad.numpy()


def random_rotation(rng):
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def test_energy_invariant_and_forces_equivariant_under_rotation_translation_permutation():
    head = trained_like_head()
    z, mol, x = environment()
    e0, f0 = energy_forces(head, x, z, mol)
    rng = np.random.default_rng(2)
    for _ in range(3):
        rotation, shift, order = random_rotation(rng), rng.normal(size=3), rng.permutation(len(z))
        e1, f1 = energy_forces(head, (x @ rotation.T + shift)[order], z[order], mol[order])
        assert e1 == pytest.approx(e0, rel=1e-10, abs=1e-9)
        np.testing.assert_allclose(f1, (f0 @ rotation.T)[order], rtol=1e-8, atol=1e-8 * np.abs(f0).max())
    # Reflections too: E(3), not only SE(3).
    mirror = np.diag([-1.0, 1.0, 1.0])
    e2, f2 = energy_forces(head, x @ mirror, z, mol)
    assert e2 == pytest.approx(e0, rel=1e-10)
    np.testing.assert_allclose(f2, f0 @ mirror, atol=1e-8 * np.abs(f0).max())


def test_direct_and_denoising_heads_are_equivariant():
    head = trained_like_head()
    z, mol, x = environment()
    rotation = random_rotation(np.random.default_rng(7))

    def heads(positions):
        pos = torch.tensor(positions)
        edges, shifts = neighbor_edges(pos, None, head.cutoff_nm)
        s, v = head.trunk(pos, torch.tensor(z), torch.tensor(mol), edges, shifts)
        return head.direct_forces(s, v).detach().numpy(), head.denoiser(s, v).detach().numpy()

    d0, n0 = heads(x)
    d1, n1 = heads(x @ rotation.T + 0.3)
    np.testing.assert_allclose(d1, d0 @ rotation.T, atol=1e-9 * np.abs(d0).max())
    np.testing.assert_allclose(n1, n0 @ rotation.T, atol=1e-9 * np.abs(n0).max())
    assert np.abs(d0).max() > 0 and np.abs(n0).max() > 0


def test_forces_equal_finite_differences_of_the_energy():
    head = trained_like_head()
    z, mol, x = environment()
    _, forces = energy_forces(head, x, z, mol)
    h = 1e-5
    rng = np.random.default_rng(3)
    for atom in rng.choice(len(z), 6, replace=False):
        for d in range(3):
            plus, minus = x.copy(), x.copy()
            plus[atom, d] += h
            minus[atom, d] -= h
            numeric = -(energy_forces(head, plus, z, mol)[0] - energy_forces(head, minus, z, mol)[0]) / (2 * h)
            assert numeric == pytest.approx(forces[atom, d], rel=1e-5, abs=1e-5 * np.abs(forces).max())


def test_energy_and_force_go_smoothly_to_zero_at_the_cutoff():
    head = trained_like_head()
    z, mol = np.array([6, 8]), np.array([0, 1])
    isolated = energy_forces(head, np.array([[0.0, 0, 0], [5.0, 0, 0]]), z, mol)[0]
    rc = head.cutoff_nm
    values = []
    for r in (rc - 0.1, rc - 1e-6, rc + 1e-6):
        e, f = energy_forces(head, np.array([[0.0, 0, 0], [r, 0, 0]]), z, mol)
        values.append((e - isolated, np.abs(f).max()))
    assert abs(values[0][0]) > 1e-6  # inside the cutoff the pair interacts
    assert abs(values[1][0]) < 1e-9 and values[1][1] < 1e-6  # continuous energy and force at rc
    assert values[2][0] == 0.0 and values[2][1] == 0.0  # nothing beyond it


def test_intramolecular_and_intermolecular_edges_are_distinguished():
    head = trained_like_head()
    z, mol, x = environment()
    e_apart = energy_forces(head, x, z, mol)[0]
    e_one_molecule = energy_forces(head, x, z, np.zeros_like(mol))[0]
    assert abs(e_apart - e_one_molecule) > 1e-3


def context_energy_forces(model, z, mol, positions, platform="Reference", box=None, properties=None):
    force = MRLForce(model)
    force.setAtomicNumbers([int(a) for a in z])
    force.setMoleculeIndices([int(m) for m in mol])
    system = openmm.System()
    for _ in z:
        system.addParticle(12.0)
    if box is not None:
        force.setUsesPeriodicBoundaryConditions(True)
        system.setDefaultPeriodicBoxVectors(*[openmm.Vec3(*row) for row in box])
    system.addForce(force)
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName(platform),
                             properties or {})
    context.setPositions(positions)
    state = context.getState(getEnergy=True, getForces=True)
    return (state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole),
            state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer))


@pytest.mark.parametrize("periodic", [False, True])
def test_exported_file_in_mrlforce_matches_the_python_model(tmp_path, periodic):
    head = trained_like_head()
    z, mol, x = environment()
    box = np.diag([1.3, 1.25, 1.4]) if periodic else None
    if periodic:
        x = x + 0.6  # some atoms near the faces: edges across the boundary
    expected_e, expected_f = energy_forces(head, x, z, mol, box)
    path = tmp_path / "head.pt"
    torch.jit.save(torch.jit.script(ExportedHead(head)), str(path))
    energy, forces = context_energy_forces(str(path), z, mol, x, box=box)
    assert energy == pytest.approx(expected_e, rel=1e-5)
    rel = np.linalg.norm(forces - expected_f) / np.linalg.norm(expected_f)
    assert rel < 1e-5
    # The CPU platform runs the model in float32: agreement to float32 precision.
    energy32, forces32 = context_energy_forces(str(path), z, mol, x, platform="CPU", box=box)
    assert energy32 == pytest.approx(expected_e, rel=1e-4, abs=1e-3)
    assert np.linalg.norm(forces32 - expected_f) / np.linalg.norm(expected_f) < 1e-4
    # OpenCL (the common kernel; PoCL on the CPU here): double precision as tight as Reference, mixed as CPU.
    for precision, tolerance in (("double", 1e-5), ("mixed", 1e-4)):
        energy_cl, forces_cl = context_energy_forces(str(path), z, mol, x, platform="OpenCL", box=box,
                                                     properties={"Precision": precision})
        assert energy_cl == pytest.approx(expected_e, rel=tolerance, abs=1e-3), precision
        assert np.linalg.norm(forces_cl - expected_f) / np.linalg.norm(expected_f) < tolerance, precision


def test_direct_force_export_is_used_as_it_is(tmp_path):
    head = trained_like_head()
    z, mol, x = environment()
    module = torch.jit.script(ExportedDirectForceHead(head))
    assert module.outputs_forces
    pos = torch.tensor(x)
    edges, shifts = neighbor_edges(pos, None, head.cutoff_nm)
    expected_e, expected_f = module(pos, torch.tensor(z), torch.tensor(mol), edges, shifts)
    energy, forces = context_energy_forces(module, z, mol, x)
    assert energy == pytest.approx(float(expected_e), rel=1e-6)
    np.testing.assert_allclose(forces, expected_f.detach().numpy(), rtol=1e-6, atol=1e-6 * float(expected_f.abs().max()))
    # Not conservative: the direct forces differ from -dE/dx.
    assert np.linalg.norm(forces - energy_forces(head, x, z, mol)[1]) > 1e-3 * np.linalg.norm(forces)


def test_atoms_the_head_does_not_know_are_refused():
    head = ForceHead(CONFIG).eval()
    module = torch.jit.script(ExportedHead(head))
    z, mol, x = environment()
    z = z.copy()
    z[0] = 0  # a virtual site
    with pytest.raises(openmm.OpenMMException, match="atomic numbers 1 to 54"):
        context_energy_forces(module, z, mol, x)


def test_element_index_on_the_gpu_path_poisons_unknown_elements_instead_of_reading_them():
    """On a GPU the head must not read values on the host (per-step synchronisation, no CUDA graphs): an
    atomic number out of range turns into NaN features, which MRLForce reports as a non-finite output."""
    from openmmmrl.head.model import element_index
    z = torch.tensor([1, 8, 80, 0])
    safe, poison = element_index(z, 54, strict=False)
    assert safe.tolist() == [1, 8, 0, 0]
    assert poison[:2].tolist() == [1.0, 1.0] and torch.isnan(poison[2:]).all()
    with pytest.raises(ValueError, match="atomic numbers 1 to 54"):
        element_index(z, 54, strict=True)
