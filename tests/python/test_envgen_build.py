# SPDX-License-Identifier: MIT
"""mrl-envgen build, merge and inspect, run as a user runs them, checked against independent numbers:
RDKit's own MMFF94 (Python RDKit) at the recorded positions, Newton's third law, a second run."""
import dataclasses
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from rdkit import Chem
from rdkit.Chem import AllChem

ENVGEN = Path(sys.executable).parent / "mrl-envgen"
KCAL = 4.184
pytestmark = pytest.mark.skipif(not ENVGEN.exists(), reason=f"{ENVGEN} is not installed (run scripts/setup.sh)")

PAIRS = [  # central/partner as written; the larger molecule becomes central
    ("CC(=O)Nc1ccc(O)cc1", "O", "paracetamol-water"),
    ("CS(C)=O", "ClC(Cl)Cl", "dmso-chloroform"),
    ("c1ccncc1", "CO", "pyridine-methanol"),
    ("C[NH3+]", "CC(=O)[O-]", "methylammonium-acetate"),
]
FAST = ["--copies", "3", "--equilibration", "50", "--steps", "60", "--interval", "20", "--quiet"]


def write_pairs(path, pairs, header=True):
    lines = ["central,partner,id"] if header else []
    lines += [f"{a},{b},{name}" for a, b, name in pairs]
    path.write_text("\n".join(lines) + "\n")
    return path


def envgen(*args, check=True, **kwargs):
    result = subprocess.run([str(ENVGEN), *map(str, args)], capture_output=True, text=True, **kwargs)
    if check and result.returncode != 0:
        raise AssertionError(f"mrl-envgen {' '.join(map(str, args))} failed:\n{result.stderr}")
    return result


def read_records(path):
    """Every record of a dataset as a dict keyed by record key, read with h5py (not our C++ reader)."""
    records = {}
    with h5py.File(path, "r") as f:
        assert f.attrs["format"] == b"openmm-mrl-dataset"  # fixed-length strings (format version 3): bytes
        r = f["records"]
        keys = [k.decode() for k in r["key"][:]]
        for i, key in enumerate(keys):
            a0, a1 = r["atom_offset"][i], r["atom_offset"][i + 1]
            f0, f1 = r["frame_offset"][i], r["frame_offset"][i + 1]
            m0, m1 = r["molecule_offset"][i], r["molecule_offset"][i + 1]
            b0, b1 = r["bond_offset"][i], r["bond_offset"][i + 1]
            n, nf = a1 - a0, f1 - f0
            fa0 = f["frames/atom_offset"][f0]
            fa1 = f["frames/atom_offset"][f1]
            assert fa1 - fa0 == n * nf
            rec = {"pair_id": r["pair_id"][i].decode(), "z": f["atoms/atomic_number"][a0:a1],
                   "charge": f["atoms/formal_charge"][a0:a1], "molecule": f["atoms/molecule_index"][a0:a1],
                   "anchor": f["atoms/anchor"][a0:a1],
                   "smiles": [s.decode() for s in f["molecules/smiles"][m0:m1]],
                   "is_central": f["molecules/is_central"][m0:m1], "bonds": f["bonds/index"][b0:b1],
                   "energy": f["frames/total_energy"][f0:f1], "interaction_energy": f["frames/interaction_energy"][f0:f1],
                   "box": f["frames/box"][f0:f1], "time": f["frames/time"][f0:f1]}
            for name in ("positions", "total_forces", "interaction_forces", "direction_3dmrl"):
                rec[name] = f["frame_atoms/" + name][fa0:fa1].reshape(nf, n, 3)
            assert key not in records, f"key {key} twice"
            records[key] = rec
        skipped = {k.decode(): reason.decode() for k, reason in zip(f["skipped/key"][:], f["skipped/reason"][:])}
    return records, skipped


def rdkit_environment(central, partner, copies):
    """The environment's molecule built independently with Python RDKit, in the tool's atom order."""
    mol = Chem.AddHs(Chem.MolFromSmiles(central))
    part = Chem.AddHs(Chem.MolFromSmiles(partner))
    for _ in range(copies):
        mol = Chem.CombineMols(mol, part)
    mol = Chem.Mol(mol)
    Chem.SanitizeMol(mol)
    return mol, Chem.AddHs(Chem.MolFromSmiles(central)), part


def mmff_energy_forces(mol, positions_nm):
    """RDKit MMFF94 energy (kJ/mol) and forces (kJ/mol/nm), interfragment interactions included."""
    mol = Chem.Mol(mol)
    conf = Chem.Conformer(mol.GetNumAtoms())
    for i, p in enumerate(positions_nm.astype(float) * 10.0):
        conf.SetAtomPosition(i, p.tolist())
    mol.RemoveAllConformers()
    mol.AddConformer(conf)
    props = AllChem.MMFFGetMoleculeProperties(mol)
    ff = AllChem.MMFFGetMoleculeForceField(mol, props, nonBondedThresh=100.0, ignoreInterfragInteractions=False)
    energy = ff.CalcEnergy() * KCAL
    forces = -np.array(ff.CalcGrad()).reshape(-1, 3) * KCAL * 10.0
    return energy, forces


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    directory = tmp_path_factory.mktemp("build")
    pairs = write_pairs(directory / "pairs.csv", PAIRS + [("C1CC", "O", "broken-smiles"), ("B(O)(O)O", "O", "boron")])
    out = directory / "data.h5"
    result = envgen("build", pairs, "--output", out, "--seed", "7", *FAST)
    return directory, pairs, out, json.loads(result.stdout)


def test_build_labels_equal_rdkit_mmff94(built):
    directory, pairs, out, summary = built
    records, skipped = read_records(out)
    assert summary["records_written"] == 4 and summary["skipped"] == 2
    worst_energy, worst_force, worst_interaction = 0.0, 0.0, 0.0
    for key, rec in records.items():
        a, b, _ = next(p for p in PAIRS if p[2] == rec["pair_id"])
        heavy = lambda s: Chem.MolFromSmiles(s).GetNumHeavyAtoms()
        central, partner = (b, a) if heavy(b) > heavy(a) else (a, b)
        mol, central_mol, partner_mol = rdkit_environment(central, partner, 3)
        assert list(rec["z"]) == [atom.GetAtomicNum() for atom in mol.GetAtoms()]
        assert list(rec["charge"]) == [atom.GetFormalCharge() for atom in mol.GetAtoms()]
        nc, npart = central_mol.GetNumAtoms(), partner_mol.GetNumAtoms()
        for frame in range(len(rec["energy"])):
            x = rec["positions"][frame]
            energy, forces = mmff_energy_forces(mol, x)
            # The interaction part: the whole minus each molecule alone.
            alone_energy, alone_forces = 0.0, np.zeros_like(forces)
            for start, count, single in [(0, nc, central_mol)] + [(nc + k * npart, npart, partner_mol) for k in range(3)]:
                e, f = mmff_energy_forces(single, x[start:start + count])
                alone_energy += e
                alone_forces[start:start + count] = f
            rms = np.sqrt(np.mean(forces ** 2))
            worst_energy = max(worst_energy, abs(rec["energy"][frame] - energy) / max(abs(energy), 10.0))
            worst_force = max(worst_force, np.sqrt(np.mean((rec["total_forces"][frame] - forces) ** 2)) / rms)
            inter = forces - alone_forces
            worst_interaction = max(worst_interaction,
                                    np.sqrt(np.mean((rec["interaction_forces"][frame] - inter) ** 2)) / rms)
            assert rec["interaction_energy"][frame] == pytest.approx(energy - alone_energy, rel=1e-4, abs=0.05)
            # Newton's third law: intermolecular forces sum to zero.
            assert np.abs(rec["interaction_forces"][frame].sum(axis=0)).max() < 1e-2 * rms
    print(f"\nbuild vs RDKit MMFF94: energy rel err {worst_energy:.2e}, RMS force err/RMS {worst_force:.2e}, "
          f"interaction force err/RMS {worst_interaction:.2e}")
    # Positions and forces are stored as float32: 1e-5 relative is the storage limit, not the physics.
    assert worst_energy < 1e-4 and worst_force < 1e-4 and worst_interaction < 1e-4
    assert skipped["p000004/c0"].startswith("invalid SMILES \"C1CC\"")
    assert "MMFF94 cannot type atom 0 (B)" in skipped["p000005/c0"]


def test_build_environment_geometry_and_3dmrl_targets(built):
    _, _, out, _ = built
    records, _ = read_records(out)
    for rec in records.values():
        molecules = rec["molecule"]
        assert rec["is_central"][0] == 1 and not rec["is_central"][1:].any()
        partner_atoms = np.nonzero(molecules > 0)[0]
        assert (rec["anchor"][molecules == 0] == -1).all() and (rec["anchor"][partner_atoms] >= 0).all()
        assert (molecules[rec["anchor"][partner_atoms]] == 0).all()  # anchors are central atoms
        heavy = rec["z"] > 1
        for frame in range(len(rec["energy"])):
            x = rec["positions"][frame]
            # No clash survives: heavy atoms of different molecules stay apart.
            d = np.linalg.norm(x[:, None] - x[None, :], axis=-1)
            different = (molecules[:, None] != molecules[None, :]) & heavy[:, None] & heavy[None, :]
            assert d[different].min() > 0.2
            # 3DMRL directions: unit vectors from the anchor to the copy's centroid, zero for the central molecule.
            directions = rec["direction_3dmrl"][frame]
            assert np.allclose(directions[molecules == 0], 0)
            for m in range(1, molecules.max() + 1):
                atoms = np.nonzero(molecules == m)[0]
                expected = x[atoms].mean(axis=0) - x[rec["anchor"][atoms[0]]]
                expected /= np.linalg.norm(expected)
                assert np.allclose(directions[atoms], expected, atol=1e-5)
        assert np.all(rec["box"] == 0)
        assert np.allclose(np.diff(rec["time"]), 20 * 0.001)


def test_build_is_deterministic_and_seeded(built, tmp_path):
    _, pairs, out, _ = built
    again = tmp_path / "again.h5"
    envgen("build", pairs, "--output", again, "--seed", "7", *FAST)
    first, _ = read_records(out)
    second, _ = read_records(again)
    assert first.keys() == second.keys()
    for key in first:
        for name in ("positions", "total_forces", "interaction_forces", "energy"):
            assert np.array_equal(first[key][name], second[key][name]), (key, name)
    other = tmp_path / "other.h5"
    envgen("build", pairs, "--output", other, "--seed", "8", "--limit", "1", *FAST)
    third, _ = read_records(other)
    assert not np.array_equal(third["p000000/c0"]["positions"], first["p000000/c0"]["positions"])


def test_inspect_and_resume_of_a_finished_run(built):
    _, pairs, out, _ = built
    summary = json.loads(envgen("inspect", out, "--json").stdout)
    assert summary["records"] == 4 and summary["skipped"] == 2 and summary["frames"] == 12
    assert summary["skip_reasons"] == {"MMFF94 typing": 1, "invalid SMILES": 1}
    text = envgen("inspect", out, "--records", "2").stdout
    assert "paracetamol-water" in text and "MMFF94 cannot type atom 0 (B)" in text
    rerun = json.loads(envgen("build", pairs, "--output", out, "--seed", "7", *FAST).stdout)
    assert rerun["records_written"] == 0 and rerun["records_already_present"] == 6
    changed = envgen("build", pairs, "--output", out, "--seed", "8", *FAST, check=False)
    assert changed.returncode == 1 and "was made with other options" in changed.stderr


def test_sigkill_at_random_moments_then_rerun_loses_and_duplicates_nothing(tmp_path):
    pairs = write_pairs(tmp_path / "pairs.csv", PAIRS * 4)
    args = ["--seed", "3", "--copies", "2", "--equilibration", "20", "--steps", "40", "--interval", "20", "--quiet"]
    reference = tmp_path / "reference.h5"
    envgen("build", pairs, "--output", reference, *args)
    out = tmp_path / "killed.h5"
    rng = random.Random(11)
    kills = 0
    for attempt in range(8):
        process = subprocess.Popen([str(ENVGEN), "build", str(pairs), "--output", str(out), *args],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.2, 1.2))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.wait()
    envgen("build", pairs, "--output", out, *args)
    assert kills >= 2, "the runs finished before they could be killed; make them longer"
    expected, _ = read_records(reference)
    got, _ = read_records(out)  # read_records fails on a key seen twice
    assert got.keys() == expected.keys()
    for key in expected:
        for name in ("positions", "total_forces", "interaction_forces", "energy", "z"):
            assert np.array_equal(got[key][name], expected[key][name]), (key, name)
    assert not (tmp_path / "killed.h5.journal").exists()


@pytest.mark.skipif(shutil.which("mpirun") is None, reason="OpenMPI's mpirun is not installed (apt-get install openmpi-bin)")
def test_mpirun_shards_then_merge_equal_one_run(built, tmp_path):
    _, pairs, out, _ = built
    environment = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
                       OMPI_MCA_rmaps_base_oversubscribe="1")
    sharded = tmp_path / "mpi.h5"
    result = subprocess.run(["mpirun", "-np", "2", str(ENVGEN), "build", str(pairs), "--output", str(sharded),
                             "--seed", "7", *FAST], capture_output=True, text=True, env=environment, timeout=300)
    assert result.returncode == 0, result.stderr
    shards = [tmp_path / "mpi.shard0of2.h5", tmp_path / "mpi.shard1of2.h5"]
    assert all(s.exists() for s in shards)
    summaries = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert sorted(s["shard"] for s in summaries) == ["0/2", "1/2"]
    merged = tmp_path / "merged.h5"
    envgen("merge", *shards, "--output", merged)
    single, single_skipped = read_records(out)
    both, both_skipped = read_records(merged)
    assert both.keys() == single.keys() and both_skipped.keys() == single_skipped.keys()
    for key in single:
        assert np.array_equal(both[key]["positions"], single[key]["positions"])
        assert np.array_equal(both[key]["total_forces"], single[key]["total_forces"])
    again = envgen("merge", *shards, "--output", merged, check=False)
    assert again.returncode == 2 and "exists" in again.stderr


def test_periodic_box_of_solvent(tmp_path):
    pairs = write_pairs(tmp_path / "pairs.csv", [("CCO", "O", "ethanol-water")])
    out = tmp_path / "box.h5"
    envgen("build", pairs, "--output", out, "--periodic", "--copies", "60", "--box", "1.7", "--cutoff", "0.8",
           "--equilibration", "50", "--steps", "40", "--interval", "20", "--quiet")
    records, skipped = read_records(out)
    assert not skipped
    rec = records["p000000/c0"]
    assert rec["molecule"].max() == 60
    assert np.allclose(rec["box"][:, [0, 1, 2], [0, 1, 2]], 1.7)
    for frame in range(2):
        f = rec["interaction_forces"][frame]
        assert np.isfinite(f).all() and np.abs(f.sum(axis=0)).max() < 1e-2 * np.sqrt(np.mean(f ** 2))
        assert rec["interaction_energy"][frame] < 0  # hydrogen-bonded liquid


def test_copies_column_sets_the_partner_copies_of_one_row(tmp_path):
    """A copies column overrides --copies for its row (one ion per environment, say); an empty cell keeps it."""
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("central,partner,id,copies\nCC(=O)Nc1ccc(O)cc1,[Na+],one-ion,1\nCS(C)=O,O,default,\n")
    out = tmp_path / "copies.h5"
    envgen("build", pairs, "--output", out, "--seed", "3", *FAST)
    records, skipped = read_records(out)
    assert not skipped
    ion, default = records["p000000/c0"], records["p000001/c0"]
    assert default["molecule"].max() == 3  # the central molecule and --copies 3 waters
    assert ion["molecule"].max() == 1 and ion["charge"].sum() == 1
    mol, _, _ = rdkit_environment("CC(=O)Nc1ccc(O)cc1", "[Na+]", 1)
    energy, forces = mmff_energy_forces(mol, ion["positions"][0])
    assert abs(ion["energy"][0] - energy) < 1e-4 * max(abs(energy), 10.0)
    for cell, message in [("0", "not a whole number from 1"), ("2.5", "not a whole number from 1")]:
        pairs.write_text(f"central,partner,copies\nCCO,O,{cell}\n")
        result = envgen("build", pairs, "--output", tmp_path / f"bad{cell}.h5", *FAST, check=False)
        assert result.returncode == 2 and message in result.stderr and "line 2" in result.stderr, result.stderr
        assert not (tmp_path / f"bad{cell}.h5").exists()


def test_help_and_usage_errors(tmp_path):
    for command in ("build", "carve", "export", "merge", "inspect"):
        result = envgen(command, "--help")
        assert result.stdout.startswith(f"usage: mrl-envgen {command}"), command
    assert envgen("--help").stdout.startswith("usage: mrl-envgen <command>")
    bad = envgen("build", tmp_path / "missing.csv", "--output", tmp_path / "x.h5", check=False)
    assert bad.returncode == 2 and "cannot read the pairs CSV" in bad.stderr
    pairs = write_pairs(tmp_path / "p.csv", PAIRS[:1])
    for args, message in [(["--copies", "0"], "at least 1"), (["--platform", "Nope"], "no OpenMM platform \"Nope\""),
                          (["--shard", "2/2"], "0 <= k < n"), (["--interval", "x"], "needs an integer"),
                          (["--bogus"], "unknown option --bogus")]:
        result = envgen("build", pairs, "--output", tmp_path / "x.h5", *args, check=False)
        assert result.returncode == 2 and message in result.stderr, (args, result.stderr)
    assert envgen("frobnicate", check=False).returncode == 2


def test_python_and_cpp_writers_read_each_other(built, tmp_path):
    """A file from the C++ writer reads the same through openmmmrl.Dataset as through h5py, and a file from the
    Python DatasetWriter is inspected and merged by the C++ mrl-envgen."""
    from openmmmrl import Dataset, DatasetWriter
    _, _, out, _ = built
    raw, _ = read_records(out)
    with Dataset(out) as ds:
        assert ds.keys() == list(raw)
        for key, rec in raw.items():
            record = ds.record(key)
            assert np.array_equal(record.positions, rec["positions"])
            assert np.array_equal(record.interaction_forces, rec["interaction_forces"])
            assert list(record.smiles) == rec["smiles"]
        first = ds.record(0)
    python_file = tmp_path / "python.h5"
    renamed = dataclasses.replace(first, key="from-python")
    with DatasetWriter(python_file, {"options_json": "{}", "tool": "test"}) as writer:
        writer.add_record(renamed)
        writer.add_skipped("python-skip", "x", "invalid SMILES \"C1\": test")
    summary = json.loads(envgen("inspect", python_file, "--json").stdout)
    assert summary["records"] == 1 and summary["skipped"] == 1
    merged = tmp_path / "merged.h5"
    envgen("merge", out, python_file, "--output", merged)
    both, _ = read_records(merged)
    assert list(both) == list(raw) + ["from-python"]
    assert np.array_equal(both["from-python"]["total_forces"], first.total_forces)


def test_exploding_trajectories_are_skipped_and_the_run_goes_on(tmp_path):
    pairs = write_pairs(tmp_path / "pairs.csv", PAIRS[:2])
    out = tmp_path / "explode.h5"
    # A force limit far below MMFF94's thermal forces marks every trajectory as exploding.
    summary = json.loads(envgen("build", pairs, "--output", out, "--max-force", "10", *FAST).stdout)
    assert summary["records_written"] == 0 and summary["skip_reasons"] == {"exploding trajectory": 2}
    records, skipped = read_records(out)
    assert not records and len(skipped) == 2
    assert all(reason.startswith("exploding trajectory: atom") and "(step 70)" in reason for reason in skipped.values())
