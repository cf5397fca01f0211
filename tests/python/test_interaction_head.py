# SPDX-License-Identifier: MIT
"""The interaction head: exactly zero for a molecule alone (bit for bit inside a real OpenMM System),
smooth and conservative between molecules, symmetric, exported as "graph/1" and run by MRLForce with the
engine's neighbor list, and trained with the Δ objective from a pretrained force head's trunk."""
import json
import os
import subprocess
import sys

import numpy as np
import openmm
import openmm.app as app
import openmm.unit as unit
import pytest
import torch
from rdkit import Chem
from rdkit.Chem import AllChem

from openmmmrl import MRLForce
from openmmmrl.head.batch import load_frames, make_batch, neighbor_edges
from openmmmrl.head.export import head_metadata, save_module, with_pretrained_trunk
from openmmmrl.head.losses import Statistics, normalizers
from openmmmrl.head.model import ExportedHead, InteractionConfig, InteractionHead, InteractionModel
from openmmmrl.head.train import TrainOptions, fit, losses_of

CONFIG = InteractionConfig(features=16, layers=2, radial_basis=8, cutoff_nm=0.45, pair_hidden=16, seed=3)
ENV = {**os.environ, "PYTHONWARNINGS": "ignore"}


def head():
    """An interaction head with random weights and an energy scale of a trained one (kJ/mol), float64."""
    model = InteractionHead(CONFIG).double()
    model.energy_scale.fill_(20.0)
    return model.eval()


def molecule(smiles, seed, offset):
    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    AllChem.EmbedMolecule(mol, randomSeed=seed)
    xyz = mol.GetConformer().GetPositions() / 10.0
    return np.array([a.GetAtomicNum() for a in mol.GetAtoms()]), xyz - xyz.mean(0) + np.asarray(offset)


def environment(distance_nm=0.3):
    """Ethanol and a water at ``distance_nm`` (RDKit conformers): atomic numbers, molecule index, nm."""
    parts = [molecule("CCO", 11, (0, 0, 0)), molecule("O", 12, (distance_nm, 0.05, 0.02))]
    z = np.concatenate([p[0] for p in parts])
    mol = np.concatenate([np.full(len(p[0]), k) for k, p in enumerate(parts)])
    return z, mol, np.concatenate([p[1] for p in parts])


def energy_forces(model, positions, z, mol, skin_nm=0.0):
    """The model's energy (kJ/mol) and forces (kJ/mol/nm) in float64, edges within cutoff + skin."""
    pos = torch.tensor(positions, dtype=torch.float64, requires_grad=True)
    edges, shifts = neighbor_edges(pos.detach(), None, CONFIG.cutoff_nm + skin_nm)
    energy = model(pos, torch.tensor(z), torch.tensor(mol), edges, shifts)
    (grad,) = torch.autograd.grad(energy, pos)
    return float(energy.detach()), -grad.numpy()


def exported(tmp_path, model):
    path = tmp_path / "interaction.pt"
    save_module(ExportedHead(model, json.dumps(head_metadata(model, CONFIG.to_dict()))), str(path))
    return path


def waters_system(centers_nm):
    """Flexible TIP3P-FB waters (amber14 force field, no cutoff) centred at the given points (nm)."""
    topology, positions = app.Topology(), []
    chain = topology.addChain()
    h, o = app.element.hydrogen, app.element.oxygen
    for center in centers_nm:
        residue = topology.addResidue("HOH", chain)
        atoms = [topology.addAtom(name, e, residue) for name, e in (("O", o), ("H1", h), ("H2", h))]
        topology.addBond(atoms[0], atoms[1])
        topology.addBond(atoms[0], atoms[2])
        positions += [np.asarray(center) + d for d in ([0, 0, 0], [0.0957, 0, 0], [-0.024, 0.0927, 0])]
    system = app.ForceField("amber14/tip3pfb.xml").createSystem(topology, nonbondedMethod=app.NoCutoff,
                                                                 rigidWater=False)
    z = [a.element.atomic_number for a in topology.atoms()]
    mol = [a.residue.index for a in topology.atoms()]
    return system, np.array(positions), z, mol


def context_state(system, positions, force=None):
    if force is not None:
        system.addForce(force)
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))
    context.setPositions(positions)
    state = context.getState(getEnergy=True, getForces=True)
    energy = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
    forces = state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer)
    if force is not None:
        system.removeForce(system.getNumForces() - 1)
    return energy, np.asarray(forces)


def mrl_force(path, z, mol):
    force = MRLForce(str(path))
    force.setAtomicNumbers([int(a) for a in z])
    force.setMoleculeIndices([int(m) for m in mol])
    return force


@pytest.mark.parametrize("centers", [[(0, 0, 0)], [(0, 0, 0), (1.2, 0.3, 0.1)]], ids=["one water", "apart"])
def test_a_molecule_alone_is_exactly_zero_bit_for_bit_in_a_system(tmp_path, centers):
    model = head()
    path = exported(tmp_path, model)
    system, x, z, mol = waters_system(centers)
    energy, forces = energy_forces(model, x, z, mol, skin_nm=0.1)
    assert energy == 0.0 and np.all(forces == 0.0)
    alone = openmm.System()
    for _ in z:
        alone.addParticle(16.0)
    assert context_state(alone, x, mrl_force(path, z, mol))[0] == 0.0
    before, after = context_state(system, x), context_state(system, x, mrl_force(path, z, mol))
    assert before[0] == after[0] and before[0] != 0.0
    assert np.array_equal(before[1], after[1]) and np.any(before[1] != 0.0)


def test_two_molecules_within_the_cutoff_interact_and_forces_are_the_gradient():
    model = head()
    z, mol, x = environment()
    energy, forces = energy_forces(model, x, z, mol)
    assert abs(energy) > 1e-3
    h, numeric = 1e-5, np.zeros_like(forces)
    for atom in range(len(z)):
        for k in range(3):
            plus, minus = x.copy(), x.copy()
            plus[atom, k] += h
            minus[atom, k] -= h
            numeric[atom, k] = -(energy_forces(model, plus, z, mol, 0.1)[0] - energy_forces(model, minus, z, mol, 0.1)[0]) / (2 * h)
    error = np.linalg.norm(numeric - forces) / np.linalg.norm(forces)
    print(f"finite differences: relative error {error:.2e}")
    assert error < 1e-6
    # Smooth to zero: the energy falls off with the distance and is exactly 0 past the cutoff.
    energies = [energy_forces(model, environment(d)[2], z, mol)[0] for d in (0.3, 0.6, 0.9)]
    assert energies[-1] == 0.0 and energies[0] != 0.0


def test_onset_switch_zeroes_short_contacts_and_keeps_forces_the_gradient():
    """With onset_nm (0.1, 0.14), a pair term is the same as without it beyond 0.14 nm, exactly 0 below 0.1 nm,
    and the forces stay -dE/dx (finite differences) inside the switch."""
    from dataclasses import replace
    from openmmmrl.head.model import onset_switch
    r = torch.tensor([0.05, 0.1, 0.12, 0.14, 0.3], dtype=torch.float64)
    assert onset_switch(r, 0.1, 0.14).tolist()[:2] == [0.0, 0.0] and onset_switch(r, 0.1, 0.14).tolist()[3:] == [1.0, 1.0]
    plain = head()
    switched = InteractionHead(replace(CONFIG, onset_start_nm=0.1, onset_end_nm=0.14)).double().eval()
    switched.load_state_dict(plain.state_dict())
    z = np.array([8, 1, 1, 8, 1, 1])
    mol = np.array([0, 0, 0, 1, 1, 1])
    water = np.array([[0.0, 0.0, 0.0], [0.0957, 0.0, 0.0], [-0.024, 0.0927, 0.0]])
    far = np.concatenate([water, water + [0.45, 0.0, 0.0]])  # nearest intermolecular pair 0.35 nm apart
    assert energy_forces(switched, far, z, mol)[0] == energy_forces(plain, far, z, mol)[0] != 0.0
    # One H of the second water 0.12 nm from the first oxygen: that pair inside the switch.
    near = np.concatenate([water, water - water[1] + [-0.12, 0.0, 0.0]])
    energy, forces = energy_forces(switched, near, z, mol)
    assert energy != energy_forces(plain, near, z, mol)[0]
    h = 1e-6
    for atom, k in [(0, 0), (4, 0), (4, 1)]:
        plus, minus = near.copy(), near.copy()
        plus[atom, k] += h
        minus[atom, k] -= h
        numeric = -(energy_forces(switched, plus, z, mol)[0] - energy_forces(switched, minus, z, mol)[0]) / (2 * h)
        assert forces[atom, k] == pytest.approx(numeric, rel=1e-5, abs=1e-6)


def test_exported_file_equals_the_python_model_and_runs_in_mrlforce(tmp_path):
    model = head()
    z, mol, x = environment()
    path = exported(tmp_path, model)
    module = torch.jit.load(str(path))
    assert module.mrl_interface == "graph/1" and module.cutoff_nm == pytest.approx(CONFIG.cutoff_nm)
    meta = json.loads(module.mrl_metadata)
    assert meta["elements"] == [1, 54] and meta["label_set"] == "interaction" and meta["energy"] == "intermolecular"
    assert meta["mrl_interface"] == "graph/1" and meta["cutoff_nm"] == CONFIG.cutoff_nm
    expected_e, expected_f = energy_forces(model, x, z, mol)
    energy, forces = energy_forces(module, x, z, mol)
    assert energy == pytest.approx(expected_e, rel=1e-10, abs=1e-12)
    np.testing.assert_allclose(forces, expected_f, rtol=1e-10, atol=1e-10)
    system = openmm.System()
    for _ in z:
        system.addParticle(12.0)
    energy, forces = context_state(system, x, mrl_force(path, z, mol))
    print(f"MRLForce vs Python: energy {energy} vs {expected_e}, "
          f"force relative error {np.linalg.norm(forces - expected_f) / np.linalg.norm(expected_f):.1e}")
    assert energy == pytest.approx(expected_e, rel=1e-8)
    assert np.linalg.norm(forces - expected_f) / np.linalg.norm(expected_f) < 1e-8


def test_energy_invariant_under_rotation_translation_and_permutation():
    model = head()
    z, mol, x = environment()
    energy, forces = energy_forces(model, x, z, mol)
    rng = np.random.default_rng(4)
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    moved = x @ q.T + np.array([0.7, -1.1, 2.3])
    e2, f2 = energy_forces(model, moved, z, mol)
    assert e2 == pytest.approx(energy, rel=1e-10)
    np.testing.assert_allclose(f2, forces @ q.T, atol=1e-9 * np.abs(forces).max())
    order = rng.permutation(len(z))
    e3, f3 = energy_forces(model, x[order], z[order], mol[order] + 5)
    assert e3 == pytest.approx(energy, rel=1e-10)
    np.testing.assert_allclose(f3, forces[order], atol=1e-9 * np.abs(forces).max())


def test_delta_objective_learns(head_data):
    frames = [f for f in load_frames([str(head_data)]) if f.has_interaction][:16]
    stats = Statistics(frames, CONFIG.max_atomic_number)
    model = InteractionModel(CONFIG)
    stats.initialize_interaction(model.head)
    options = TrainOptions(epochs=6, batch_size=8, learning_rate=3e-3, final_learning_rate=1e-3)

    def loss():
        batch = make_batch(frames, CONFIG.cutoff_nm)
        return float(losses_of(model, batch, options, stats, normalizers(frames), create_graph=False)[0]["total"])

    before = loss()
    history = fit(model, frames, [], options, stats, quiet=True)
    after = loss()
    print(f"delta loss {before:.4f} -> {after:.4f}")
    assert after < 0.7 * before and history[-1]["train_interaction"] < history[0]["train_interaction"]


def test_init_starts_the_trunk_from_a_pretrained_force_head_and_exports(head_data, tmp_path):
    small = ["--layers", "2", "--radial-basis", "6", "--cutoff-nm", "0.4", "--batch-size", "16", "--threads", "1",
             "--quiet", "--validation-fraction", "0.2", "--test-fraction", "0.2", "--epochs", "1"]

    def train(out, *extra):
        result = subprocess.run([sys.executable, "-m", "openmmmrl.train", str(head_data), "--output", str(out),
                                 *small, *extra], capture_output=True, encoding="utf-8", errors="replace", env=ENV)
        assert result.returncode == 0, result.stderr[-3000:]

    train(tmp_path / "pretrained", "--features", "16")
    pretrained = torch.load(tmp_path / "pretrained" / "best.pt", weights_only=False)
    head_model, config = with_pretrained_trunk(InteractionHead, InteractionConfig(features=8, cutoff_nm=0.3),
                                               str(tmp_path / "pretrained" / "best.pt"))
    assert config.features == 16 and config.cutoff_nm == 0.4 and config.layers == 2
    for name, value in head_model.trunk.state_dict().items():
        assert torch.equal(value, pretrained["model"]["head.trunk." + name]), name
    # The command: --features 8 gives way to the checkpoint's 16; the pair head is new.
    train(tmp_path / "delta", "--model", "interaction", "--init", str(tmp_path / "pretrained" / "best.pt"),
          "--features", "8", "--label-set", "mmff94-interaction")
    state = torch.load(tmp_path / "delta" / "best.pt", weights_only=False)
    assert state["kind"] == "interaction" and state["config"]["features"] == 16
    assert state["init"] == str(tmp_path / "pretrained" / "best.pt")
    path = tmp_path / "delta.pt"
    subprocess.run([sys.executable, "-m", "openmmmrl.export", str(tmp_path / "delta" / "best.pt"), "--output",
                    str(path)], check=True, capture_output=True, env=ENV)
    module = torch.jit.load(str(path))
    meta = json.loads(module.mrl_metadata)
    assert meta["format"] == "openmm-mrl interaction head" and meta["label_set"] == "mmff94-interaction"
    assert meta["cutoff_nm"] == 0.4 and meta["elements"] == [1, 54]
    z, mol, x = environment()
    assert energy_forces(module.double(), x, z, np.zeros_like(mol))[0] == 0.0


def test_the_shipped_pretrained_trunk_fine_tunes_on_a_users_labels(head_data, tmp_path):
    """models/mrl-trunk-mmff94.pt (pretrained on 35 940 MMFF94 frames of 1198 pairs) starts a correction head on
    any dataset with forces: its trunk's weights are the ones loaded, its shape wins over the command line's."""
    trunk = os.path.join(os.path.dirname(__file__), "..", "..", "models", "mrl-trunk-mmff94.pt")
    shipped = torch.load(trunk, weights_only=False)
    assert shipped["kind"] == "force" and shipped["config"]["features"] == 32 and shipped["config"]["cutoff_nm"] == 0.5
    head_model, config = with_pretrained_trunk(InteractionHead, InteractionConfig(features=8), trunk)
    assert config.features == 32 and config.layers == 2
    for name, value in head_model.trunk.state_dict().items():
        assert torch.equal(value, shipped["model"]["head.trunk." + name]), name
    result = subprocess.run([sys.executable, "-m", "openmmmrl.train", str(head_data), "--output", str(tmp_path / "ft"),
                             "--model", "interaction", "--init", trunk, "--label-set", "mmff94-interaction",
                             "--epochs", "1", "--batch-size", "16", "--threads", "1", "--quiet",
                             "--validation-fraction", "0.2", "--test-fraction", "0.2"],
                            capture_output=True, encoding="utf-8", errors="replace", env=ENV)
    assert result.returncode == 0, result.stderr[-3000:]
    state = torch.load(tmp_path / "ft" / "best.pt", weights_only=False)
    assert state["kind"] == "interaction" and state["config"]["features"] == 32
