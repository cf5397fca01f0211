# SPDX-License-Identifier: MIT
"""mrl-envgen carve on a System, PDB and DCD written by OpenMM's own Python writers, then mrl-envgen export,
read back with ASE and compared with the HDF5 file read with h5py (units: Angstrom, eV, eV/Angstrom)."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ase_io = pytest.importorskip("ase.io")
h5py = pytest.importorskip("h5py")
openmm = pytest.importorskip("openmm")
from openmm import app, unit  # noqa: E402

EV = 96.48533212  # kJ/mol
ENVGEN = Path(os.environ.get("MRL_ENVGEN", Path(sys.executable).parent / "mrl-envgen"))
pytestmark = pytest.mark.skipif(not ENVGEN.exists(), reason=f"mrl-envgen is not installed ({ENVGEN}); run ./test.sh "
                                "or scripts/setup.sh (or set MRL_ENVGEN to a built mrl-envgen)")

BOX = 2.2  # nm


def make_simulation_files(directory, periodic=True, frames=3, seed=7):
    """A ligand (C, O, H, H) and 20 three-site waters with bonds/angles in group 0 and a NonbondedForce in
    group 1; a PDB (PDBFile), a System XML and a DCD written by DCDFile, molecules broken by wrapping."""
    rng = np.random.default_rng(seed)
    topology = app.Topology()
    chain = topology.addChain()
    system = openmm.System()
    bonds = openmm.HarmonicBondForce()
    angles = openmm.HarmonicAngleForce()
    nonbonded = openmm.NonbondedForce()
    bonds.setForceGroup(0)
    angles.setForceGroup(0)
    nonbonded.setForceGroup(1)
    positions = []
    bond_pairs = []
    elements = {sym: app.Element.getBySymbol(sym) for sym in ("C", "O", "H")}

    def add_molecule(name, symbols, charges, sigmas, epsilons, local, pairs, angle_triples):
        residue = topology.addResidue(name, chain)
        center = rng.uniform(0, BOX, 3)
        rotation, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        start = system.getNumParticles()
        atoms = []
        for sym, q, s, e, x in zip(symbols, charges, sigmas, epsilons, local):
            atoms.append(topology.addAtom(sym, elements[sym], residue))
            system.addParticle(elements[sym].mass)
            nonbonded.addParticle(q, s, e)
            positions.append(center + rotation @ np.asarray(x))
        for i, j in pairs:
            topology.addBond(atoms[i], atoms[j])
            r0 = np.linalg.norm(np.asarray(local[i]) - np.asarray(local[j]))
            bonds.addBond(start + i, start + j, r0, 4e5)
            bond_pairs.append((start + i, start + j))
        for i, j, k in angle_triples:
            angles.addAngle(start + i, start + j, start + k, 1.9, 400.0)

    add_molecule("LIG", ["C", "O", "H", "H"], [0.3, -0.5, 0.1, 0.1], [0.34, 0.3, 0.25, 0.25],
                 [0.4, 0.8, 0.1, 0.1], [(0, 0, 0), (0.123, 0, 0), (-0.05, 0.09, 0), (-0.05, -0.09, 0)],
                 [(0, 1), (0, 2), (0, 3)], [(1, 0, 2), (1, 0, 3)])
    for _ in range(20):
        add_molecule("HOH", ["O", "H", "H"], [-0.834, 0.417, 0.417], [0.315, 0.1, 0.1], [0.636, 0.0, 0.0],
                     [(0, 0, 0), (0.09572, 0, 0), (-0.024, 0.0927, 0)], [(0, 1), (0, 2)], [(1, 0, 2)])
    nonbonded.createExceptionsFromBonds(bond_pairs, 0.5, 0.5)
    if periodic:
        nonbonded.setNonbondedMethod(openmm.NonbondedForce.CutoffPeriodic)
        nonbonded.setCutoffDistance(1.0)
        system.setDefaultPeriodicBoxVectors(openmm.Vec3(BOX, 0, 0), openmm.Vec3(0, BOX, 0), openmm.Vec3(0, 0, BOX))
        topology.setPeriodicBoxVectors([openmm.Vec3(BOX, 0, 0), openmm.Vec3(0, BOX, 0), openmm.Vec3(0, 0, BOX)])
    for force in (bonds, angles, nonbonded):
        system.addForce(force)
    positions = np.array(positions)
    if periodic:
        positions = positions % BOX  # break molecules across the boundary

    directory = Path(directory)
    (directory / "system.xml").write_text(openmm.XmlSerializer.serialize(system))
    with open(directory / "top.pdb", "w") as f:
        app.PDBFile.writeFile(topology, positions * unit.nanometer, f)
    trajectory = []
    with open(directory / "traj.dcd", "wb") as f:
        dcd = app.DCDFile(f, topology, 0.002 * unit.picoseconds, firstStep=100, interval=50)
        for k in range(frames):
            frame = positions + rng.normal(scale=0.01, size=positions.shape)
            box = BOX * (1.0 + 0.01 * k)
            vectors = [openmm.Vec3(box, 0, 0), openmm.Vec3(0, box, 0), openmm.Vec3(0, 0, box)]
            dcd.writeModel(frame * unit.nanometer, periodicBoxVectors=vectors * unit.nanometer if periodic else None)
            trajectory.append((np.float32(frame * 10).astype(np.float64) / 10, box))
    return system, trajectory


def run(*args):
    result = subprocess.run([str(ENVGEN), *map(str, args)], capture_output=True, text=True)
    assert result.returncode == 0, f"mrl-envgen {args[0]} failed:\n{result.stderr}"
    return result


def read_h5(path):
    with h5py.File(path, "r") as h5:
        data = {name: h5[name][()] for name in ("records/key", "records/atom_offset", "records/frame_offset",
                                                 "atoms/atomic_number", "atoms/molecule_index", "frames/box",
                                                 "frames/total_energy", "frames/interaction_energy",
                                                 "frames/atom_offset", "frames/time", "frame_atoms/positions",
                                                 "frame_atoms/total_forces", "frame_atoms/interaction_forces")}
        data["attrs"] = {k: v.decode() if isinstance(v, bytes) else v for k, v in h5.attrs.items()}  # v3: bytes
    return data


@pytest.mark.parametrize("periodic", [True, False])
def test_export_matches_hdf5_in_ase_units(tmp_path, periodic):
    system, trajectory = make_simulation_files(tmp_path, periodic=periodic)
    out = tmp_path / "carved.h5"
    run("carve", "--system", tmp_path / "system.xml", "--topology", tmp_path / "top.pdb", "--trajectory",
        tmp_path / "traj.dcd", "--central-resname", "LIG", "--interaction-groups", "1", "--output", out,
        "--no-progress")
    xyz = tmp_path / "carved.extxyz"
    run("export", out, "--output", xyz, "--no-progress")
    assert not (tmp_path / "carved.extxyz.tmp").exists()

    h5 = read_h5(out)
    assert h5["attrs"]["interaction_forces"] == "force_groups:1"
    frames = ase_io.read(xyz, index=":")
    assert len(frames) == len(trajectory) == len(h5["frames/total_energy"])
    for f, atoms in enumerate(frames):
        a0, a1 = h5["records/atom_offset"][f:f + 2]
        fa0, fa1 = h5["frames/atom_offset"][f:f + 2]
        assert atoms.info["key"] == h5["records/key"][f].decode()
        assert atoms.info["pair_id"] == "LIG"
        np.testing.assert_array_equal(atoms.numbers, h5["atoms/atomic_number"][a0:a1])
        np.testing.assert_array_equal(atoms.arrays["molecule"], h5["atoms/molecule_index"][a0:a1])
        np.testing.assert_allclose(atoms.positions, h5["frame_atoms/positions"][fa0:fa1] * 10, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(atoms.get_forces(), h5["frame_atoms/total_forces"][fa0:fa1] / (10 * EV),
                                   rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(atoms.arrays["interaction_forces"],
                                   h5["frame_atoms/interaction_forces"][fa0:fa1] / (10 * EV), rtol=1e-6, atol=1e-9)
        assert atoms.get_potential_energy() == pytest.approx(h5["frames/total_energy"][f] / EV, rel=1e-8)
        assert atoms.info["interaction_energy"] == pytest.approx(h5["frames/interaction_energy"][f] / EV, rel=1e-8)
        assert atoms.info["time_ps"] == pytest.approx(h5["frames/time"][f], rel=1e-6)
        assert atoms.info["time_ps"] == pytest.approx((100 + 50 * f) * 0.002, rel=1e-5)
        assert list(atoms.pbc) == [periodic] * 3
        if periodic:
            np.testing.assert_allclose(atoms.cell[:], h5["frames/box"][f] * 10, rtol=1e-6)
            np.testing.assert_allclose(atoms.cell[:], np.eye(3) * trajectory[f][1] * 10, rtol=1e-6)
        else:
            assert not np.any(h5["frames/box"][f])

        # The stored total energy is the whole System's at the DCD frame (as OpenMM's Python computes it).
        positions, box = trajectory[f]
        context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))
        if periodic:
            context.setPeriodicBoxVectors(openmm.Vec3(box, 0, 0), openmm.Vec3(0, box, 0), openmm.Vec3(0, 0, box))
        context.setPositions(positions)
        energy = context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
        assert h5["frames/total_energy"][f] == pytest.approx(energy, rel=1e-4, abs=1e-3)


def test_export_interaction_forces_as_ase_forces(tmp_path):
    make_simulation_files(tmp_path, frames=2)
    out = tmp_path / "carved.h5"
    run("carve", "--system", tmp_path / "system.xml", "--topology", tmp_path / "top.pdb", "--trajectory",
        tmp_path / "traj.dcd", "--central-resname", "LIG", "--interaction-groups", "1", "--output", out,
        "--no-progress")
    xyz = tmp_path / "interaction.extxyz"
    run("export", out, "--output", xyz, "--forces", "interaction", "--records", "1:", "--no-progress")
    h5 = read_h5(out)
    frames = ase_io.read(xyz, index=":")
    assert len(frames) == 1
    atoms = frames[0]
    fa0, fa1 = h5["frames/atom_offset"][1:3]
    np.testing.assert_allclose(atoms.get_forces(), h5["frame_atoms/interaction_forces"][fa0:fa1] / (10 * EV),
                               rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(atoms.arrays["total_forces"], h5["frame_atoms/total_forces"][fa0:fa1] / (10 * EV),
                               rtol=1e-6, atol=1e-9)
    assert atoms.get_potential_energy() == pytest.approx(h5["frames/interaction_energy"][1] / EV, rel=1e-8)


def test_export_without_interaction_forces(tmp_path):
    make_simulation_files(tmp_path, frames=1)
    out = tmp_path / "carved.h5"
    run("carve", "--system", tmp_path / "system.xml", "--topology", tmp_path / "top.pdb", "--trajectory",
        tmp_path / "traj.dcd", "--central-resname", "LIG", "--output", out, "--no-progress")
    h5 = read_h5(out)
    assert h5["attrs"]["interaction_forces"] == "none"
    assert np.all(np.isnan(h5["frame_atoms/interaction_forces"]))
    xyz = tmp_path / "total.extxyz"
    run("export", out, "--output", xyz, "--no-progress")
    (atoms,) = ase_io.read(xyz, index=":")
    assert "interaction_forces" not in atoms.arrays
    np.testing.assert_allclose(atoms.get_forces(), h5["frame_atoms/total_forces"][:] / (10 * EV), rtol=1e-6,
                               atol=1e-9)
    result = subprocess.run([str(ENVGEN), "export", str(out), "--output", str(tmp_path / "x.extxyz"), "--forces",
                             "interaction"], capture_output=True, text=True)
    assert result.returncode != 0
    assert "no interaction forces" in result.stderr
