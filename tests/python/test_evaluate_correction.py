# SPDX-License-Identifier: MIT
"""Evaluating a correction head (MMFF94 + interaction head toward GFN2-xTB) on a real mrl-envgen dataset
relabelled with tblite: the errors equal a direct computation, MD of MMFF94 + head reports intact and
broken environments with the reason, the NVE drift is a number, and mrl-evaluate runs every part, the
pretraining curve included, from a checkpoint."""
import dataclasses
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from openmmmrl.data import Dataset
from openmmmrl.head import train
from openmmmrl.head.batch import load_frames, neighbor_edges
from openmmmrl.head.evaluate import correction_errors, load_model
from openmmmrl.head.evaluate import main as evaluate
from openmmmrl.head.export import export, head_metadata, save_module
from openmmmrl.head.model import ExportedHead, InteractionConfig, InteractionHead

pytest.importorskip("tblite.interface")
TINY = ["--features", "8", "--layers", "1", "--radial-basis", "8", "--threads", "1", "--quiet"]


@pytest.fixture(scope="module")
def gfn2_data(head_data, tmp_path_factory):
    """head_data with a gfn2 label set (GFN2-xTB by python -m openmmmrl.relabel): 10 records, 2 frames each."""
    out = tmp_path_factory.mktemp("gfn2") / "xtb.h5"
    result = subprocess.run([sys.executable, "-m", "openmmmrl.relabel", str(head_data), "--output", str(out),
                             "--frames-per-record", "2", "--quiet"], capture_output=True, text=True, encoding="utf-8",
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="module")
def correction(head_data, gfn2_data, tmp_path_factory):
    """A tiny force head pretrained on the MMFF94 frames and a correction head fine-tuned from its trunk on
    GFN2-xTB − MMFF94 (in-process, one thread): the correction's best.pt."""
    runs = tmp_path_factory.mktemp("runs")
    train.main([str(head_data), "--output", str(runs / "pre"), "--epochs", "1", "--batch-size", "8", *TINY])
    train.main([str(gfn2_data), "--output", str(runs / "delta"), "--model", "interaction", "--delta-of", "gfn2",
                "--init", str(runs / "pre" / "best.pt"), "--epochs", "2", "--batch-size", "4", *TINY])
    return runs / "delta" / "best.pt"


def untrained(path):
    """An untrained interaction head (energy scale of a trained one) exported to ``path``."""
    config = InteractionConfig(features=8, layers=1, radial_basis=8, pair_hidden=8, seed=1)
    head = InteractionHead(config)
    head.energy_scale.fill_(5.0)
    save_module(ExportedHead(head, json.dumps(head_metadata(head, config.to_dict()))), str(path))
    return str(path)


def records(path, count):
    with Dataset(path) as data:
        return list(data.records())[:count]


def test_correction_errors_equal_a_direct_computation(tmp_path, gfn2_data, correction):
    model = tmp_path / "delta.pt"
    export(str(correction), str(model))
    module = load_model(str(model))
    frames = load_frames([str(gfn2_data)], delta_of="gfn2")
    result, (target, head) = correction_errors(module, frames)
    energy = {"base": [], "corr": []}
    forces = {"base": [], "corr": []}
    groups = {}
    for frame in frames:  # the module called directly: its energy and -dE/dx, no predict
        x = torch.tensor(frame.positions, dtype=torch.float64, requires_grad=True)
        edges, shifts = neighbor_edges(x.detach(), None, module.cutoff_nm)
        e = module(x, torch.tensor(frame.atomic_numbers), torch.tensor(frame.molecule_index), edges, shifts)
        f = -torch.autograd.grad(e, x)[0].numpy()
        energy["base"].append(abs(frame.interaction_energy))
        energy["corr"].append(abs(frame.interaction_energy - float(e.detach())))
        forces["base"].append(np.abs(frame.interaction_forces.astype(float)))
        forces["corr"].append(np.abs(frame.interaction_forces.astype(float) - f))
        groups.setdefault(frame.group, []).append(forces["corr"][-1])
    base_f, corr_f = np.mean(np.concatenate(forces["base"])), np.mean(np.concatenate(forces["corr"]))
    print(f"\ninteraction energy MAE MMFF94 {np.mean(energy['base']):.2f}, + head {np.mean(energy['corr']):.2f} kJ/mol; "
          f"forces {base_f:.2f}, + head {corr_f:.2f} kJ/mol/nm")
    e, fr = result["interaction_energy"], result["interaction_forces"]
    assert result["frames"] == len(frames) == 20
    assert e["baseline_mae_kj_mol"] == pytest.approx(np.mean(energy["base"]), rel=1e-12)
    assert e["corrected_mae_kj_mol"] == pytest.approx(np.mean(energy["corr"]), rel=1e-9)
    assert fr["baseline_mae_kj_mol_nm"] == pytest.approx(base_f, rel=1e-12)
    assert fr["corrected_mae_kj_mol_nm"] == pytest.approx(corr_f, rel=1e-9)
    assert fr["ratio"] == pytest.approx(corr_f / base_f, rel=1e-9)
    assert np.mean(np.abs(target - head)) == pytest.approx(corr_f, rel=1e-9)
    molecules = {m["molecule"]: m["interaction_forces"]["corrected_mae_kj_mol_nm"] for m in result["per_molecule"]}
    assert molecules == pytest.approx({g: np.mean(np.concatenate(v)) for g, v in groups.items()}, rel=1e-9)
    worst = [m["interaction_forces"]["corrected_mae_kj_mol_nm"] for m in result["per_molecule"]]
    assert worst == sorted(worst, reverse=True)


def test_mmff_plus_head_md_reports_intact_and_broken_environments(tmp_path, gfn2_data):
    from openmmmrl.head.md import mmff_head_system, mmff_md_stability
    model = untrained(tmp_path / "untrained.pt")
    good = records(gfn2_data, 2)
    # The partner molecule moved whole so that one of its atoms is 0.05 nm from an atom of the central one.
    x = good[0].positions.copy()
    partner = good[0].molecule_index == 1
    first = np.flatnonzero(partner)[0]
    x[:, partner] += x[:, :1] - x[:, first:first + 1] + np.array([0.05, 0.0, 0.0], np.float32)
    broken = dataclasses.replace(good[0], key="broken", positions=x)
    built = mmff_head_system(good[0], model)
    assert [f.getForceGroup() for f in built.system.getForces()][-2:] == [2, 3]  # MRLForce, restraint
    state = tmp_path / "md_state.json"
    result, (times, energies) = mmff_md_stability(model, good + [broken], 0.2, threads=1, check_ps=0.1,
                                                  progress=False, resume=str(state))
    print(f"\nMMFF94 + head MD: {result['intact']}/{result['environments']} intact, {result['ms_per_step']:.2f} ms/step")
    assert result["environments"] == 3 and result["intact"] == 2 and result["completed_ps"] == pytest.approx(0.2)
    [failure] = result["failures"]
    assert failure["environment"] == "broken" and failure["time_ps"] == 0.0
    assert "nm apart" in failure["reason"] and float(failure["reason"].split()[4]) < 0.08
    assert times == pytest.approx([0.1, 0.2]) and all(np.isfinite(energies))
    again, _ = mmff_md_stability(model, good + [broken], 0.2, threads=1, check_ps=0.1, progress=False,
                                 resume=str(state))  # finished: resumes with nothing left to run
    assert again["completed_ps"] == pytest.approx(0.2) and again["failures"] == result["failures"]


def test_nve_drift_of_mmff_plus_head_is_a_finite_number(tmp_path, gfn2_data):
    from openmmmrl.head.md import mmff_nve_drift
    result = mmff_nve_drift(untrained(tmp_path / "untrained.pt"), records(gfn2_data, 1), 0.15, threads=1)
    print(f"\nNVE drift of MMFF94 + head over 0.15 ps: {result['drift_kj_mol_ps_per_atom']:.2e} kJ/mol/ps per atom")
    assert math.isfinite(result["drift_kj_mol_ps_per_atom"]) and result["atoms"] == 29
    assert result["timestep_ps"] == 0.0005


def test_mrl_evaluate_runs_every_part_from_a_correction_checkpoint(tmp_path, gfn2_data, correction):
    out = tmp_path / "evaluation"
    evaluate([str(correction), "--data", str(gfn2_data), "--output", str(out), "--md-environments", "2",
              "--md-ps", "0.2", "--md-check-ps", "0.1", "--nve-ps", "0.1", "--nve-environments", "1", "--threads", "1",
              "--curve-sizes", "4", "8", "--curve-epochs", "1"])
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["kind"] == "correction" and metrics["delta_of"] == "gfn2"
    assert metrics["label_set"] == "gfn2-minus-mmff94"
    assert metrics["errors"]["frames"] == 4 and metrics["errors"]["interaction_forces"]["ratio"] > 0
    assert math.isfinite(metrics["nve"]["drift_kj_mol_ps_per_atom"])
    assert metrics["md"]["environments"] == 2 and metrics["md"]["intact"] == 2
    curve = json.loads((out / "curve.json").read_text())
    assert [(r["frames"], r["start"]) for r in curve["rows"]] == [(4, "pretrained"), (4, "random"), (8, "pretrained"),
                                                                   (8, "random")]
    assert set(curve["force_error_reduction"]) == {"4", "8"}
    print("\ncurve: " + ", ".join(f"{r['frames']} {r['start']} {r['interaction_force_mae_kj_mol_nm']:.1f}"
                                  for r in curve["rows"]))
    for name in ("curve.png", "parity.png", "md_energies.png", "model.pt"):
        assert (out / name).stat().st_size > 0


def test_mmff_plus_head_md_of_a_periodic_box(tmp_path):
    """A periodic box of mrl-envgen build --periodic (ethanol in 30 waters): periodic MMFF94 with the dataset's
    cutoff gives the recorded energy, and MMFF94 + head runs and stays intact."""
    import openmm
    from openmmmrl.head.evaluate import dataset_cutoff_nm
    from openmmmrl.head.md import mmff_head_system, mmff_md_stability
    envgen = os.path.join(os.path.dirname(sys.executable), "mrl-envgen")
    if not os.path.exists(envgen):
        pytest.skip(f"{envgen} is not installed (run scripts/setup.sh)")
    (tmp_path / "box.csv").write_text("central,partner,id\nCCO,O,ethanol-water\n")
    box = tmp_path / "box.h5"
    subprocess.run([envgen, "build", str(tmp_path / "box.csv"), "--output", str(box), "--periodic", "--copies", "30",
                    "--box", "1.9", "--conformers", "1", "--equilibration", "20", "--steps", "20", "--interval", "20",
                    "--seed", "3", "--platform", "CPU", "--quiet"], check=True, capture_output=True)
    [record] = records(box, 1)
    model = untrained(tmp_path / "untrained.pt")
    built = mmff_head_system(record, model, cutoff_nm=dataset_cutoff_nm(str(box)))
    assert built.force.usesPeriodicBoundaryConditions() and built.environment.box is not None
    context = openmm.Context(built.system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))
    context.setPeriodicBoxVectors(*record.box[0])
    context.setPositions(record.positions[0])
    mmff = context.getState(getEnergy=True, groups={0, 1}).getPotentialEnergy().value_in_unit(openmm.unit.kilojoule_per_mole)
    assert mmff == pytest.approx(record.total_energy[0], rel=1e-4)
    result, _ = mmff_md_stability(model, [record], 0.05, threads=1, check_ps=0.05, progress=False,
                                  cutoff_nm=dataset_cutoff_nm(str(box)))
    print(f"\nperiodic box, {record.num_atoms} atoms: {result['ms_per_step']:.1f} ms/step")
    assert result["intact"] == 1 and result["periodic"] == [True]
