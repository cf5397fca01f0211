# SPDX-License-Identifier: MIT
"""openmmmrl.createMMFFSystem, checked against independent numbers: Python RDKit's own MMFF94 (a different
RDKit build from the Debian one the C++ builder links, loaded in the same process), the molecules taken one by
one (the intermolecular force group), and mrl-envgen build's recorded energies (the same C++ builder, reached
from the command line)."""
import subprocess
import sys
import types
from pathlib import Path

import h5py
import numpy as np
import openmm
import pytest
from openmm import unit
from rdkit import Chem
from rdkit.Chem import AllChem

import openmmmrl
from openmmmrl import createMMFFSystem

KCAL = 4.184  # kJ per kcal
TOLERANCE = 1e-6
ENVGEN = Path(sys.executable).parent / "mrl-envgen"

MOLECULES = {  # neutral, charged, aromatic (benzenoid, heteroaromatic with N-H), sulfur, halogens
    "ethanol": "CCO",
    "paracetamol": "CC(=O)Nc1ccc(O)cc1",
    "pyridine": "c1ccncc1",
    "imidazole": "c1c[nH]cn1",
    "toluene": "Cc1ccccc1",
    "methylammonium": "C[NH3+]",
    "acetate": "CC(=O)[O-]",
    "dmso": "CS(C)=O",
    "chloroform": "ClC(Cl)Cl",
    "water": "O",
}


def prepare(smiles, seed, shift_angstrom=(0.0, 0.0, 0.0)):
    """The molecule with hydrogens and one conformer (ETKDG, briefly MMFF-relaxed, then perturbed so that forces are
    far from zero), moved by `shift_angstrom`."""
    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    assert AllChem.EmbedMolecule(mol, randomSeed=seed) == 0
    AllChem.MMFFOptimizeMolecule(mol, maxIters=50)
    rng = np.random.default_rng(seed)
    conformer = mol.GetConformer()
    positions = conformer.GetPositions() + rng.normal(0.0, 0.05, (mol.GetNumAtoms(), 3)) + np.asarray(shift_angstrom)
    for i, p in enumerate(positions):
        conformer.SetAtomPosition(i, p.tolist())
    return mol


def combine(molecules):
    """The molecules, conformers included, as one RDKit molecule (fragments in order)."""
    combined = molecules[0]
    for mol in molecules[1:]:
        combined = Chem.CombineMols(combined, mol)
    combined = Chem.Mol(combined)
    Chem.SanitizeMol(combined)
    return combined


def positions_nm(molecules):
    return np.concatenate([mol.GetConformer().GetPositions() for mol in molecules]) * 0.1


def rdkit_energy_forces(mol, variant="MMFF94"):
    """RDKit's MMFF94 energy (kJ/mol) and forces (kJ/mol/nm) of the conformer, interfragment interactions included."""
    props = AllChem.MMFFGetMoleculeProperties(mol, mmffVariant=variant)
    ff = AllChem.MMFFGetMoleculeForceField(mol, props, nonBondedThresh=100.0, ignoreInterfragInteractions=False)
    return ff.CalcEnergy() * KCAL, -np.array(ff.CalcGrad()).reshape(-1, 3) * KCAL * 10.0


def openmm_energy_forces(system, positions, groups=-1, box=None):
    """Energy (kJ/mol) and forces (kJ/mol/nm) of the System on the Reference platform."""
    if box is not None:
        system.setDefaultPeriodicBoxVectors(*box)
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))
    context.setPositions(np.asarray(positions, dtype=float))
    state = context.getState(getEnergy=True, getForces=True, groups=groups)
    return (state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole),
            state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer))


def relative(computed, expected):
    """|computed - expected| relative to |expected| (energies) or RMS difference over RMS (forces)."""
    computed, expected = np.asarray(computed), np.asarray(expected)
    if computed.ndim == 0:
        return abs(computed - expected) / abs(expected)
    return np.sqrt(np.mean((computed - expected) ** 2)) / np.sqrt(np.mean(expected ** 2))


def mixture():
    """Acetate, methylammonium and water a few Å apart: charged, hydrogen-bonding, three molecules."""
    return [prepare("CC(=O)[O-]", 1), prepare("C[NH3+]", 2, (4.5, 0.0, 0.0)), prepare("O", 3, (0.0, 3.5, 0.5))]


def test_lazy_export_and_module_path():
    assert openmmmrl.createMMFFSystem is createMMFFSystem
    assert createMMFFSystem.__module__ == "openmmmrl.mmff"


@pytest.mark.parametrize("variant", ["MMFF94", "MMFF94s"])
def test_energies_and_forces_equal_rdkit_mmff94(variant):
    worst_energy = worst_force = 0.0
    cases = {name: [prepare(smiles, 10 + k)] for k, (name, smiles) in enumerate(MOLECULES.items())}
    cases["acetate + methylammonium + water"] = mixture()
    for name, molecules in cases.items():
        system = createMMFFSystem(molecules, variant=variant)
        assert system.getNumParticles() == sum(mol.GetNumAtoms() for mol in molecules)
        energy, forces = openmm_energy_forces(system, positions_nm(molecules))
        expected_energy, expected_forces = rdkit_energy_forces(combine(molecules), variant)
        errors = relative(energy, expected_energy), relative(forces, expected_forces)
        assert max(errors) < TOLERANCE, (name, energy, expected_energy, errors)
        worst_energy, worst_force = max(worst_energy, errors[0]), max(worst_force, errors[1])
    print(f"\ncreateMMFFSystem vs Python RDKit {variant}: energy rel err {worst_energy:.1e}, "
          f"RMS force err/RMS {worst_force:.1e}")


def test_aromatic_molecules_type_as_rdkit_types_them():
    """Kekulé mol blocks re-perceived in C++ give RDKit's own MMFF94 types: the per-atom partial charges (which
    depend on the types) reproduce Python RDKit's dipole through the intramolecular electrostatics group."""
    for smiles in ("c1ccncc1", "c1c[nH]cn1", "Cc1ccccc1", "c1ccc2ccccc2c1", "Oc1ccccc1"):
        mol = prepare(smiles, 5)
        system = createMMFFSystem(mol)
        electrostatics = next(f for f in system.getForces() if f.getName() == "MMFF94 intramolecular electrostatics")
        props = AllChem.MMFFGetMoleculeProperties(mol)
        coulomb = 332.0716 * KCAL * 0.1  # kJ nm/mol/e²
        for b in range(electrostatics.getNumBonds()):
            i, j, (qq,) = electrostatics.getBondParameters(b)
            scale = qq / (coulomb * props.GetMMFFPartialCharge(i) * props.GetMMFFPartialCharge(j))
            assert scale == pytest.approx(1.0, rel=1e-12) or scale == pytest.approx(0.75, rel=1e-12), smiles


@pytest.mark.parametrize("order", ["ring first", "ring after others"])
def test_aromatic_rings_after_the_first_molecule_type_as_alone(order):
    """RDKit's insertMol does not carry the inserted molecule's rings into the joined molecule's ring info, so
    an aromatic molecule joined after another one looked like a "non-ring atom marked aromatic" to the typer;
    each molecule's MMFF94 energy must not depend on its place in the list."""
    dioxane = [prepare("C1COCCO1", 20 + k, (6.0 * (k + 1), 0.0, 0.0)) for k in range(2)]
    aromatic = prepare("O=C(NN=Cc1sc(N2CCOCC2)nc1-c1ccccc1)c1ccccc1F", 30)
    molecules = [aromatic, *dioxane] if order == "ring first" else [*dioxane, aromatic]
    system = createMMFFSystem(molecules)
    energy, forces = openmm_energy_forces(system, positions_nm(molecules))
    expected_energy, expected_forces = rdkit_energy_forces(combine(molecules))
    assert relative(energy, expected_energy) < TOLERANCE and relative(forces, expected_forces) < TOLERANCE


def test_force_group_1_is_exactly_the_intermolecular_part():
    molecules = mixture()
    system = createMMFFSystem(molecules)
    groups = {force.getName(): force.getForceGroup() for force in system.getForces()}
    assert groups.pop("MMFF94 intermolecular nonbonded") == 1 and set(groups.values()) == {0}
    x = positions_nm(molecules)
    total, total_forces = openmm_energy_forces(system, x)
    inter, inter_forces = openmm_energy_forces(system, x, groups={1})
    alone = [openmm_energy_forces(createMMFFSystem(mol), mol.GetConformer().GetPositions() * 0.1)
             for mol in molecules]
    alone_energy = sum(e for e, _ in alone)
    alone_forces = np.concatenate([f for _, f in alone])
    errors = relative(inter, total - alone_energy), relative(inter_forces, total_forces - alone_forces)
    print(f"\ngroup 1 vs E(mixture) - sum E(alone): energy rel err {errors[0]:.1e}, force {errors[1]:.1e}")
    assert max(errors) < TOLERANCE
    assert np.abs(inter_forces.sum(axis=0)).max() < 1e-9 * np.abs(inter_forces).max()  # Newton's third law


def envgen_record(tmp_path, pair, *options):
    """Runs mrl-envgen build on one pair and returns its record."""
    if not ENVGEN.exists():
        pytest.skip(f"{ENVGEN} is not installed (run scripts/setup.sh)")
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("central,partner,id\n%s,%s,%s\n" % pair)
    out = tmp_path / "envs.h5"
    result = subprocess.run([str(ENVGEN), "build", str(pairs), "--output", str(out), "--seed", "5", "--quiet",
                             "--equilibration", "50", "--steps", "40", "--interval", "20", *options],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    # Read with h5py (docs/dataset.md): one record, so every array of the file is that record's.
    with h5py.File(out, "r") as f:
        assert len(f["records/key"]) == 1, "the pair was skipped"
        record = types.SimpleNamespace(
            atomic_numbers=f["atoms/atomic_number"][:], formal_charges=f["atoms/formal_charge"][:],
            molecule_index=f["atoms/molecule_index"][:], bonds=f["bonds/index"][:], box=f["frames/box"][:],
            total_energy=f["frames/total_energy"][:], interaction_energy=f["frames/interaction_energy"][:])
        shape = (len(record.total_energy), len(record.atomic_numbers), 3)
        record.positions = f["frame_atoms/positions"][:].reshape(shape)
        record.total_forces = f["frame_atoms/total_forces"][:].reshape(shape)
    return record


def molecules_of_record(record, central, partner):
    """The record's molecules rebuilt from the SMILES the tool read (central first, then the partner copies),
    checked against the record's atoms, charges, molecule index and bonds."""
    num_molecules = int(record.molecule_index.max()) + 1
    molecules = [Chem.AddHs(Chem.MolFromSmiles(central))] + \
        [Chem.AddHs(Chem.MolFromSmiles(partner)) for _ in range(num_molecules - 1)]
    combined = combine(molecules)
    assert list(record.atomic_numbers) == [a.GetAtomicNum() for a in combined.GetAtoms()]
    assert list(record.formal_charges) == [a.GetFormalCharge() for a in combined.GetAtoms()]
    assert list(record.molecule_index) == [m for m, mol in enumerate(molecules) for _ in mol.GetAtoms()]
    bonds = {tuple(sorted((b.GetBeginAtomIdx(), b.GetEndAtomIdx()))) for b in combined.GetBonds()}
    assert {tuple(sorted(b)) for b in record.bonds.tolist()} == bonds
    return molecules


def float32_bound(positions, forces):
    """A first-order bound on the energy change from rounding double positions to the stored float32 ones:
    Σ |F| · half a float32 ulp of the coordinate (kJ/mol)."""
    ulp = np.spacing(np.abs(positions).astype(np.float32)).astype(float)
    return float(np.sum(np.abs(forces) * ulp / 2))


@pytest.mark.parametrize("periodic", [False, True], ids=["cluster", "periodic"])
def test_system_equals_mrl_envgen_build(tmp_path, periodic):
    central, partner = "c1ccncc1", "CO"  # pyridine (aromatic) in methanol
    options = ["--copies", "3"] if not periodic else ["--periodic", "--copies", "12", "--box", "2.0",
                                                       "--cutoff", "0.9"]
    record = envgen_record(tmp_path, (central, partner, "pyridine-methanol"), *options)
    molecules = molecules_of_record(record, central, partner)
    system = createMMFFSystem(molecules, periodic=periodic, cutoff=0.9 * unit.nanometer)
    assert system.usesPeriodicBoundaryConditions() == periodic
    worst = worst_of_bound = 0.0
    for frame in range(len(record.total_energy)):
        x = record.positions[frame].astype(float)
        box = record.box[frame].astype(float) if periodic else None
        energy, forces = openmm_energy_forces(system, x, box=box)
        inter, _ = openmm_energy_forces(system, x, groups={1}, box=box)
        # The recorded energies were computed at double positions; the positions are stored as float32.
        slack = float32_bound(x, record.total_forces[frame])
        for computed, expected in ((energy, record.total_energy[frame]), (inter, record.interaction_energy[frame])):
            assert abs(computed - expected) <= TOLERANCE * abs(expected) + slack, (frame, computed, expected, slack)
            worst = max(worst, abs(computed - expected) / abs(expected))
            worst_of_bound = max(worst_of_bound, abs(computed - expected) / slack)
        assert relative(forces, record.total_forces[frame]) < 1e-4  # float32 forces and positions (the storage limit)
    print(f"\ncreateMMFFSystem vs mrl-envgen build ({'periodic' if periodic else 'cluster'}): "
          f"energy rel diff {worst:.1e}, {worst_of_bound:.2f} of the float32-position bound")


def test_untypable_atom_raises_the_builders_message():
    boron = Chem.AddHs(Chem.MolFromSmiles("B(O)(O)O"))
    with pytest.raises(ValueError) as error:
        createMMFFSystem([Chem.AddHs(Chem.MolFromSmiles("O")), boron])
    message = str(error.value)
    # The C++ texts (tests/tools/TestMMFFSystem.cpp), with the molecule named by its index and SMILES.
    assert message.startswith('MMFF94 cannot type atom 0 (B) of molecule "molecules[1] (OB(O)O)": '
                              'MMFF94 has no atom types for B')
    assert "Use a molecule with only the elements" in message
    with pytest.raises(ValueError, match=r'no MMFF94 atom type for this bonding \(S with 6 neighbours'):
        createMMFFSystem(Chem.AddHs(Chem.MolFromSmiles("FS(F)(F)(F)(F)F")))


def test_implicit_hydrogens_raise_the_builders_message():
    with pytest.raises(ValueError) as error:
        createMMFFSystem([prepare("O", 1), Chem.MolFromSmiles("CCO")])
    message = str(error.value)
    assert message.startswith('Molecule "molecules[1] (CCO)" has implicit hydrogens: atom 0 (C) carries 3 '
                              'hydrogen(s)')
    assert "RDKit::MolOps::addHs" in message and "Chem.AddHs(mol, addCoords=True)" in message


def test_bad_inputs_name_the_molecule_and_the_fix():
    with pytest.raises(ValueError, match="at least one molecule"):
        createMMFFSystem([])
    with pytest.raises(TypeError, match=r"molecules\[1\] is a str, not an RDKit molecule"):
        createMMFFSystem([prepare("O", 1), "CCO"])
    salt = Chem.AddHs(Chem.MolFromSmiles("C[NH3+].[Cl-]"))
    with pytest.raises(ValueError, match=r'molecules\[0\] .* holds 2 fragments.*GetMolFrags\(mol, asMols=True\)'):
        createMMFFSystem(salt)
    assert createMMFFSystem(list(Chem.GetMolFrags(salt, asMols=True))).getNumParticles() == salt.GetNumAtoms()
    with pytest.raises(ValueError, match=r'has no atoms'):
        createMMFFSystem(Chem.Mol())
    with pytest.raises(ValueError, match=r'MMFFOptions::variant is "MMFF99"'):
        createMMFFSystem(prepare("O", 1), variant="MMFF99")
    with pytest.raises(TypeError, match="cutoff must be a length"):
        createMMFFSystem(prepare("O", 1), periodic=True, cutoff=1.0 * unit.picosecond)


def test_periodic_option():
    molecules = mixture()
    system = createMMFFSystem(molecules, periodic=True, cutoff=12 * unit.angstrom, switchWidth=0.2)
    assert system.usesPeriodicBoundaryConditions()
    assert all(force.usesPeriodicBoundaryConditions() for force in system.getForces())
    inter = next(f for f in system.getForces() if f.getName() == "MMFF94 intermolecular nonbonded")
    assert inter.getNonbondedMethod() == openmm.CustomNonbondedForce.CutoffPeriodic
    assert inter.getCutoffDistance().value_in_unit(unit.nanometer) == pytest.approx(1.2)
    assert inter.getUseSwitchingFunction() and inter.getSwitchingDistance().value_in_unit(unit.nanometer) == \
        pytest.approx(1.0)
    assert not createMMFFSystem(molecules).usesPeriodicBoundaryConditions()
    with pytest.raises(ValueError, match="less than cutoffNm"):
        createMMFFSystem(molecules, periodic=True, cutoff=0.5, switchWidth=0.5)
    # The bonded and intramolecular terms follow the minimum image: a molecule split across the box edge has the
    # energy it has whole.
    box = [openmm.Vec3(3, 0, 0), openmm.Vec3(0, 3, 0), openmm.Vec3(0, 0, 3)]
    x = positions_nm(molecules)
    whole, _ = openmm_energy_forces(system, x, box=box)
    wrapped, _ = openmm_energy_forces(system, x % 3.0, box=box)
    assert wrapped == pytest.approx(whole, rel=1e-9)


@pytest.mark.parametrize("first", ["openmmmrl.mmff_core", "rdkit.Chem"])
def test_both_rdkit_builds_in_one_process(first):
    """Python's PyPI RDKit and the builder's Debian librdkit load side by side (RTLD_LOCAL, distinct sonames),
    whichever is imported first."""
    code = (f"import {first}\n"
            "from rdkit import Chem\nfrom rdkit.Chem import AllChem\nfrom openmmmrl import createMMFFSystem\n"
            "mol = Chem.AddHs(Chem.MolFromSmiles('c1ccccc1O'))\nAllChem.EmbedMolecule(mol, randomSeed=1)\n"
            "system = createMMFFSystem([mol, Chem.AddHs(Chem.MolFromSmiles('O'))])\n"
            "assert AllChem.MMFFOptimizeMolecule(mol) in (0, 1)\nprint(system.getNumParticles())\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["16"]


def test_molecules_from_record_rebuild_the_environment(tmp_path):
    """moleculesFromRecord gives the record's molecules in its atom order (aromatic and charged ones included):
    createMMFFSystem of them gives the recorded MMFF94 energy at the recorded positions."""
    from openmmmrl import moleculesFromRecord
    from openmmmrl.data import Dataset
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("central,partner,id\nc1ccncc1,CC(=O)[O-],pyridine-acetate\n")
    out = tmp_path / "envs.h5"
    result = subprocess.run([str(ENVGEN), "build", str(pairs), "--output", str(out), "--seed", "5", "--quiet",
                             "--equilibration", "50", "--steps", "40", "--interval", "20", "--copies", "2"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    with Dataset(out) as ds:
        record = ds.record(0)
    molecules = moleculesFromRecord(record, frame=1)
    assert [m.GetNumAtoms() for m in molecules] == [int((record.molecule_index == k).sum()) for k in range(3)]
    assert sum(a.GetFormalCharge() for m in molecules for a in m.GetAtoms()) == int(record.formal_charges.sum()) == -2
    assert Chem.MolToSmiles(Chem.RemoveHs(molecules[0])) == "c1ccncc1"
    x = record.positions[1].astype(float)
    np.testing.assert_allclose(np.concatenate([m.GetConformer().GetPositions() for m in molecules]) / 10, x,
                               atol=1e-12)
    energy, forces = openmm_energy_forces(createMMFFSystem(molecules), x)
    slack = float32_bound(x, record.total_forces[1])
    assert abs(energy - record.total_energy[1]) <= TOLERANCE * abs(record.total_energy[1]) + slack
