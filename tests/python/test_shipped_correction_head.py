# SPDX-License-Identifier: MIT
"""The shipped correction head (models/mrl-head-xtb.pt, MMFF94 + head toward GFN2-xTB): what its file
says of itself, zero for a molecule alone in an OpenMM System, its errors against fresh GFN2-xTB labels
(direct tblite calls through relabel) of environments of held-out molecules made by mrl-envgen, MD of
MMFF94 + head, and the demo, whose printed energies are checked against mrl-envgen's MMFF94 labels and a
direct tblite call."""
import json
import os
import subprocess
import sys

import numpy as np
import openmm
import openmm.app as app
import pytest
import torch

from openmmmrl import MRLForce, createMMFFSystem
from openmmmrl.data import Dataset
from openmmmrl.head.batch import load_frames
from openmmmrl.head.evaluate import correction_errors

pytest.importorskip("tblite.interface")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = os.path.join(ROOT, "models", "mrl-head-xtb.pt")
SPLIT = os.path.join(ROOT, "models", "mrl-trunk-mmff94.split.json")
#: Test molecules of the shipped split (held out of pretraining and fine-tuning) with partners.
HELD_OUT = [("c1ccncc1", "O"), ("C1CCNC1", "CO"), ("CC(=O)CC(C)C", "O")]


def test_the_shipped_head_describes_itself_and_holds_out_its_test_molecules():
    assert os.path.getsize(MODEL) < 5e6
    module = torch.jit.load(MODEL)
    meta = json.loads(module.mrl_metadata)
    assert module.mrl_interface == "graph/1" and 0.3 <= module.cutoff_nm <= 0.6
    assert meta["energy"] == "intermolecular" and meta["label_set"] == "gfn2-minus-mmff94"
    first, last = meta["elements"]
    assert first == 1 and last >= 35  # H to Br at least
    test = set(json.load(open(SPLIT))["groups"]["test"])
    assert set(meta["split"]["test"]) <= test and not test & set(meta["split"]["train"])
    assert {central for central, _ in HELD_OUT} <= test


def test_a_molecule_alone_keeps_its_mmff94_energy_and_forces_to_the_last_bit():
    from rdkit import Chem
    from rdkit.Chem import AllChem
    molecule = Chem.AddHs(Chem.MolFromSmiles("CC(=O)Nc1ccc(O)cc1"))
    AllChem.EmbedMolecule(molecule, randomSeed=7)
    x = molecule.GetConformer().GetPositions() / 10.0

    def state(with_head):
        system = createMMFFSystem([molecule])
        if with_head:
            head = MRLForce(MODEL)
            head.setAtomicNumbers([a.GetAtomicNum() for a in molecule.GetAtoms()])
            head.setMoleculeIndices([0] * molecule.GetNumAtoms())
            system.addForce(head)
        context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))
        context.setPositions(x)
        st = context.getState(getEnergy=True, getForces=True)
        return st.getPotentialEnergy()._value, st.getForces(asNumpy=True)._value

    (e0, f0), (e1, f1) = state(False), state(True)
    assert e0 == e1 and np.array_equal(f0, f1) and e0 != 0.0


@pytest.fixture(scope="module")
def held_out_xtb(tmp_path_factory):
    """Environments of held-out molecules from mrl-envgen (4 partner copies, 2 conformers, 2 frames each),
    relabelled with GFN2-xTB by python -m openmmmrl.relabel (direct tblite calls)."""
    envgen = os.path.join(os.path.dirname(sys.executable), "mrl-envgen")
    out = tmp_path_factory.mktemp("held_out")
    pairs = out / "pairs.csv"
    pairs.write_text("central,partner,id\n" + "".join(f"{c},{p},h{k}\n" for k, (c, p) in enumerate(HELD_OUT)))
    subprocess.run([envgen, "build", str(pairs), "--output", str(out / "mmff.h5"), "--copies", "4", "--conformers",
                    "2", "--equilibration", "200", "--steps", "400", "--interval", "200", "--seed", "5", "--quiet"],
                   check=True, capture_output=True)
    result = subprocess.run([sys.executable, "-m", "openmmmrl.relabel", str(out / "mmff.h5"), "--output",
                             str(out / "xtb.h5"), "--quiet"], capture_output=True, encoding="utf-8",
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr
    return out / "xtb.h5"


def test_the_shipped_head_corrects_mmff94_toward_fresh_gfn2_labels_of_held_out_molecules(held_out_xtb):
    frames = load_frames([str(held_out_xtb)], delta_of="gfn2")
    assert len(frames) == 12
    result, _ = correction_errors(torch.jit.load(MODEL).double(), frames)
    f, e = result["interaction_forces"], result["interaction_energy"]
    print(f"\nheld-out environments: interaction forces {f['baseline_mae_kj_mol_nm']:.2f} -> "
          f"{f['corrected_mae_kj_mol_nm']:.2f} kJ/mol/nm, energy {e['baseline_mae_kj_mol']:.2f} -> "
          f"{e['corrected_mae_kj_mol']:.2f} kJ/mol")
    # The model card's held-out force ratio is about 0.5 (models/mrl-head-xtb.md); on 12 frames allow 0.8.
    assert f["ratio"] < 0.8


def test_mmff94_plus_the_shipped_head_stays_intact_in_md(held_out_xtb):
    from openmmmrl.head.md import mmff_md_stability
    with Dataset(str(held_out_xtb)) as data:
        records = list(data.records())[::2]
    result, (_, energies) = mmff_md_stability(MODEL, records, 2.0, threads=1, check_ps=0.5, progress=False)
    print(f"\nMMFF94 + shipped head, 2 ps: {result['intact']}/{result['environments']} intact, "
          f"{result['ms_per_step']:.2f} ms/step")
    assert result["intact"] == result["environments"] == 3, result["failures"]
    assert np.all(np.isfinite(energies))


def test_the_demo_prints_mmff94_head_and_gfn2_energies_and_runs_md(tmp_path):
    from openmmmrl.labels.xtb import label_frame
    result = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "run_head.py"), "--steps", "300",
                             "--report-interval", "100", "--output", str(tmp_path), "--threads", "1"],
                            capture_output=True, encoding="utf-8", errors="replace",
                            env={**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "interaction energy (kJ/mol): MMFF94" in result.stdout
    summary = json.loads(result.stdout[result.stdout.index("{"):])
    assert summary["system"] == "MMFF94 + head" and summary["ns_per_day"] > 0
    start = summary["start_interaction_energy_kj_mol"]
    # MMFF94's intermolecular group against mrl-envgen's label (all minus each molecule alone).
    assert start["mmff94"] == pytest.approx(summary["start_mmff94_label_kj_mol"], rel=1e-6, abs=1e-6)
    # GFN2-xTB against a direct tblite call at the start positions (the PDB's, rounded to 1e-4 nm).
    pdb = app.PDBFile(str(tmp_path / "trajectory.pdb"))
    x = pdb.getPositions(asNumpy=True).value_in_unit(openmm.unit.nanometer)
    z = np.array([a.element.atomic_number for a in pdb.topology.atoms()])
    mol = np.array([a.residue.index for a in pdb.topology.atoms()])
    direct = label_frame(z, np.zeros_like(z), mol, np.asarray(x)).interaction_energy
    assert start["gfn2_xtb"] == pytest.approx(direct, abs=0.5)
    assert abs(start["mmff94_plus_head"] - start["gfn2_xtb"]) < abs(start["mmff94"] - start["gfn2_xtb"])
    table = np.loadtxt(tmp_path / "energies.csv", delimiter=",", skiprows=1)
    assert table.shape == (3, 4) and np.isfinite(table).all()
    for name in ("trajectory.pdb", "trajectory.dcd", "energies.png"):
        assert (tmp_path / name).stat().st_size > 0
