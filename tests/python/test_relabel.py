# SPDX-License-Identifier: MIT
"""python -m openmmmrl.relabel: GFN2-xTB labels of real mrl-envgen environments, checked against direct tblite
calls; resuming after SIGKILL; frames that cannot be labelled; the input is never modified."""
import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from openmmmrl.data import Dataset, DatasetWriter, Record, format_version

tblite = pytest.importorskip("tblite.interface")

HARTREE = 2625.4996394798254  # kJ/mol
BOHR = 0.0529177210903  # nm


def relabel(*args, check=True):
    command = [sys.executable, "-m", "openmmmrl.relabel", *map(str, args), "--quiet"]
    result = subprocess.run(command, capture_output=True, text=True, encoding="utf-8",
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    if check:
        assert result.returncode == 0, result.stderr
    return result


def direct(numbers, positions_nm, charge):
    """Energy (kJ/mol) and forces (kJ/mol/nm) from tblite's own interface, called here directly."""
    electrons = int(np.sum(numbers)) - charge
    calc = tblite.Calculator("GFN2-xTB", np.asarray(numbers), np.asarray(positions_nm, float) / BOHR,
                             charge=float(charge), uhf=electrons % 2)
    calc.set("verbosity", 0)
    result = calc.singlepoint()
    return result.get("energy") * HARTREE, -result.get("gradient") * HARTREE / BOHR


def digest(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_labels_equal_direct_tblite_calls(tmp_path, head_data):
    before = digest(head_data)
    out = tmp_path / "xtb.h5"
    summary = json.loads(relabel(head_data, "--output", out, "--max-records", 2, "--frames-per-record", 2).stdout)
    assert summary["records_written"] == 2 and summary["frames_labelled"] == 4
    assert digest(head_data) == before  # the input is never modified
    envgen = os.path.join(os.path.dirname(sys.executable), "mrl-envgen")
    inspect = subprocess.run([envgen, "inspect", str(out), "--json"], capture_output=True, text=True, encoding="utf-8")
    assert inspect.returncode == 0, inspect.stderr
    assert json.loads(inspect.stdout)["label_sets"]["gfn2"].startswith("GFN2-xTB (tblite ")
    with Dataset(head_data) as source, Dataset(out) as ds:
        assert ds.label_sets["gfn2"].startswith("GFN2-xTB (tblite ") and ds.attributes["format_version"] == format_version()
        assert ds.keys() == source.keys()[:2]
        for key in ds.keys():
            got, full = ds.record(key), source.record(key)
            assert got.num_frames == 2
            frames = [0, full.num_frames - 1]
            np.testing.assert_array_equal(got.positions, full.positions[frames])  # the MMFF94 labels kept
            np.testing.assert_array_equal(got.total_forces, full.total_forces[frames])
            for j, f in enumerate(frames):
                x = full.positions[f].astype(np.float64)
                energy, forces = direct(full.atomic_numbers, x, int(full.formal_charges.sum()))
                alone_e, alone_f = 0.0, np.zeros_like(forces)
                for m in np.unique(full.molecule_index):
                    atoms = full.molecule_index == m
                    e, fm = direct(full.atomic_numbers[atoms], x[atoms], int(full.formal_charges[atoms].sum()))
                    alone_e += e
                    alone_f[atoms] = fm
                labels = got.labels["gfn2"]
                assert labels["total_energy"][j] == pytest.approx(energy, rel=1e-6)
                assert labels["interaction_energy"][j] == pytest.approx(energy - alone_e, rel=1e-6, abs=1e-6)
                np.testing.assert_allclose(labels["total_forces"][j], forces, rtol=1e-6,
                                           atol=1e-6 * np.abs(forces).max())
                np.testing.assert_allclose(labels["interaction_forces"][j], forces - alone_f, rtol=1e-5,
                                           atol=1e-6 * np.abs(forces).max())
                # Interaction forces sum to zero on each molecule's partners taken together: Newton's third law.
                np.testing.assert_allclose(labels["interaction_forces"][j].sum(axis=0), 0,
                                           atol=1e-4 * np.abs(forces).max())


def test_sigkill_resume_loses_and_duplicates_nothing(tmp_path, head_data):
    reference = tmp_path / "reference.h5"
    relabel(head_data, "--output", reference, "--frames-per-record", 2)
    out = tmp_path / "killed.h5"
    journal = tmp_path / "killed.h5.journal"
    command = [sys.executable, "-m", "openmmmrl.relabel", str(head_data), "--output", str(out),
               "--frames-per-record", "2", "--quiet"]
    kills = 0
    for entries in (1, 2, 3):  # kill once `entries` more records are durable in the journal, mid-run
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        done_before = len(os.listdir(journal)) if journal.exists() else 0
        deadline = time.time() + 120
        while process.poll() is None and time.time() < deadline:
            if journal.exists() and len([n for n in os.listdir(journal) if n.endswith(".h5")]) >= done_before + entries:
                process.send_signal(signal.SIGKILL)
                kills += 1
                break
            time.sleep(0.01)
        process.wait()
    assert kills >= 2
    relabel(head_data, "--output", out, "--frames-per-record", 2)  # resume to the end
    with Dataset(reference) as want, Dataset(out) as got:
        assert got.keys() == want.keys() and len(got.keys()) == len(set(got.keys())) == 10
        for key in want.keys():
            a, b = got.record(key).labels["gfn2"], want.record(key).labels["gfn2"]
            for field in a:
                np.testing.assert_array_equal(a[field], b[field], err_msg=f"{key} {field}")
    assert sorted(os.listdir(tmp_path)) == ["killed.h5", "reference.h5"]  # no journal or temporary left


def test_frames_that_cannot_be_labelled_are_skipped_with_their_reason(tmp_path):
    """A periodic frame is not labelled (GFN2-xTB of an isolated cluster); the other frame is."""
    water = np.array([[0.0, 0.0, 0.0], [0.0957, 0.0, 0.0], [-0.024, 0.0927, 0.0]])
    positions = np.concatenate([water, water + [0.29, 0.0, 0.0]])
    box = np.zeros((2, 3, 3))
    box[1] = np.eye(3) * 2.0
    source = tmp_path / "dimer.h5"
    with DatasetWriter(source, {"options_json": {"test": "dimer"}}) as writer:
        writer.add_record(Record(key="dimer", atomic_numbers=[8, 1, 1, 8, 1, 1], molecule_index=[0, 0, 0, 1, 1, 1],
                                 smiles=["O", "O"], positions=np.stack([positions, positions]), box=box))
    out = tmp_path / "xtb.h5"
    summary = json.loads(relabel(source, "--output", out).stdout)
    assert summary["frames_labelled"] == 1 and summary["frames_skipped"] == 1
    with Dataset(out) as ds:
        assert ds.record("dimer").num_frames == 1
        assert ds.skipped() == [("dimer#frame1", "dimer",
                                 "periodic frames are not labelled (GFN2-xTB of an isolated cluster)")]
        energy = ds.record("dimer").labels["gfn2"]["interaction_energy"][0]
        assert -40 < energy < -5  # a hydrogen-bonded water dimer: about -20 kJ/mol


def test_bad_arguments(tmp_path, head_data):
    result = relabel(head_data, "--output", head_data, check=False)
    assert result.returncode != 0 and "must be a new file, not the input" in result.stderr
    result = relabel(tmp_path / "missing.h5", "--output", tmp_path / "o.h5", check=False)
    assert result.returncode != 0 and "does not exist" in result.stderr
    result = relabel(head_data, "--output", tmp_path / "o.h5", "--frames-per-record", 0, check=False)
    assert result.returncode != 0 and "--frames-per-record must be at least 1" in result.stderr


def test_correction_targets_and_training_from_a_label_set(tmp_path, head_data):
    """load_frames(delta_of=...) gives label − MMFF94 interaction targets; a correction head trains on them."""
    from openmmmrl.head.batch import load_frames
    out = tmp_path / "xtb.h5"
    relabel(head_data, "--output", out, "--frames-per-record", 2)
    frames = load_frames([str(out)], delta_of="gfn2")
    with Dataset(out) as ds:
        want = [(rec.labels["gfn2"]["interaction_energy"][j] - rec.interaction_energy[j],
                 rec.labels["gfn2"]["interaction_forces"][j].astype(float) - rec.interaction_forces[j])
                for rec in ds.records() for j in range(rec.num_frames)]
    assert len(frames) == len(want) == 20
    for frame, (energy, forces) in zip(frames, want):
        assert frame.interaction_energy == pytest.approx(energy, rel=1e-12)
        np.testing.assert_allclose(frame.interaction_forces, forces, rtol=1e-6, atol=1e-4)
    with pytest.raises(ValueError, match="has no label set 'dft'"):
        load_frames([str(out)], delta_of="dft")
    run = tmp_path / "run"
    result = subprocess.run([sys.executable, "-m", "openmmmrl.train", str(out), "--output", str(run), "--model",
                             "interaction", "--delta-of", "gfn2", "--epochs", "2", "--batch-size", "4",
                             "--features", "8", "--layers", "1", "--quiet"], capture_output=True, text=True,
                            encoding="utf-8")
    assert result.returncode == 0, result.stderr
    model = tmp_path / "head.pt"
    result = subprocess.run([sys.executable, "-m", "openmmmrl.export", str(run / "best.pt"), "--output", str(model)],
                            capture_output=True, text=True, encoding="utf-8")
    assert result.returncode == 0, result.stderr
    import torch
    metadata = json.loads(torch.jit.load(str(model)).mrl_metadata)
    assert metadata["label_set"] == "gfn2-minus-mmff94" and metadata["energy"] == "intermolecular"
