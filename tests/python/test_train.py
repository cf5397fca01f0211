# SPDX-License-Identifier: MIT
"""python -m openmmmrl.train / export / evaluate on a small real dataset made by mrl-envgen build:
learning, the split, determinism, resume, torchrun with 2 processes, plots, errors."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from openmmmrl.head.batch import load_frames, split_groups

SMALL = ["--features", "16", "--layers", "2", "--radial-basis", "6", "--cutoff-nm", "0.4", "--batch-size", "8",
         "--threads", "1", "--quiet", "--validation-fraction", "0.2", "--test-fraction", "0.2"]
ENV = {**os.environ, "PYTHONWARNINGS": "ignore"}


def train(data, out, *extra, check=True, launcher=(sys.executable, "-m")):
    result = subprocess.run([*launcher, "openmmmrl.train", str(data), "--output", str(out), *SMALL, *extra],
                            capture_output=True, encoding="utf-8", errors="replace", env=ENV)
    if check and result.returncode != 0:
        raise AssertionError(f"train failed:\n{result.stderr[-3000:]}")
    return result


def weights(path):
    return torch.load(path, weights_only=False)["model"]


def assert_same_weights(a, b, atol=0.0):
    assert a.keys() == b.keys()
    for k in a:
        if atol == 0.0:
            assert torch.equal(a[k], b[k]), k
        else:
            torch.testing.assert_close(a[k], b[k], rtol=0, atol=atol, msg=k)


def test_split_keeps_each_central_molecule_in_one_part(head_data):
    frames = load_frames([str(head_data)])
    split = split_groups([f.group for f in frames], seed=1, validation=0.2, test=0.2)
    parts = [set(split[k]) for k in ("train", "validation", "test")]
    assert sum(len(p) for p in parts) == len({f.group for f in frames}) == 5
    assert all(parts) and not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])
    assert split == split_groups([f.group for f in frames][::-1], seed=1, validation=0.2, test=0.2)
    with pytest.raises(ValueError, match="at least one training group"):
        split_groups(["a", "b", "c"], seed=1, validation=0.5, test=0.5)


def test_training_learns_writes_plots_and_exports(head_data, tmp_path):
    out = tmp_path / "run"
    train(head_data, out, "--epochs", "10", "--lr", "3e-3")
    history = json.loads((out / "history.json").read_text())
    assert len(history) == 10
    # It learns: the force objectives fall, and interaction forces of unseen molecules improve.
    first, last = history[0], history[-1]
    assert last["train_force"] + last["train_interaction"] < 0.75 * (first["train_force"] + first["train_interaction"])
    assert last["val_interaction_force_mae"] < 0.9 * first["val_interaction_force_mae"]
    for name in ("loss_curves.png", "force_parity.png", "best.pt", "checkpoint.pt", "split.json"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "loss_curves.png").read_bytes()[:4] == b"\x89PNG"
    split = json.loads((out / "split.json").read_text())
    assert split["frames"]["train"] > 0 and split["frames"]["test"] > 0
    model = tmp_path / "head.pt"
    subprocess.run([sys.executable, "-m", "openmmmrl.export", str(out / "best.pt"), "--output", str(model)],
                   check=True, capture_output=True, env=ENV)
    module = torch.jit.load(str(model))
    assert module.mrl_interface == "graph/1" and module.cutoff_nm == pytest.approx(0.4)
    meta = json.loads(module.mrl_metadata)
    assert meta["split"] == split["groups"] and meta["config"]["features"] == 16

    # evaluate, all parts, small: the exported model on the test molecules through MRLForce.
    evaluation = tmp_path / "eval"
    result = subprocess.run([sys.executable, "-m", "openmmmrl.evaluate", str(model), "--data", str(head_data),
                             "--checkpoint", str(out / "best.pt"), "--output", str(evaluation), "--md-environments", "2",
                             "--md-ps", "1", "--nve-ps", "0.1", "--nve-environments", "1", "--finetune-frames", "6",
                             "--finetune-epochs", "1", "--threads", "1"], capture_output=True, encoding="utf-8", errors="replace", env=ENV)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((evaluation / "metrics.json").read_text())
    errors = metrics["errors"]
    # The exported model's test errors equal the training code's own evaluation of the test frames.
    assert errors["frames"] == split["frames"]["test"]
    assert 0 < errors["total"]["mae_kj_mol_nm"] and errors["interaction"]["reference_rms_kj_mol_nm"] > 0
    assert metrics["md"]["environments"] == 2 and 0 <= metrics["md"]["intact"] <= 2
    assert np.isfinite(metrics["nve"]["drift_kj_mol_ps_per_atom"])
    assert metrics["finetune"]["tune_frames"] == 6 and np.isfinite(metrics["finetune"]["force_mae_reduction"])
    for name in ("parity.png", "md_energies.png"):
        assert (evaluation / name).read_bytes()[:4] == b"\x89PNG"


def test_exported_errors_match_the_training_evaluation(head_data, tmp_path):
    """Two independent paths to the test-set force MAE: the training code (batched, float32) and the
    exported TorchScript file (per frame, float64, its own neighbor search)."""
    from openmmmrl.head.evaluate import force_errors
    from openmmmrl.head.export import export
    from openmmmrl.head.losses import Statistics
    from openmmmrl.head.model import HeadConfig, Model
    from openmmmrl.head.train import TrainOptions, evaluate_frames
    frames = load_frames([str(head_data)])[:30]
    config = HeadConfig(features=16, layers=2, radial_basis=6, cutoff_nm=0.4, seed=2)
    model = Model(config)
    stats = Statistics(frames, config.max_atomic_number)
    stats.initialize(model.head)
    mine = evaluate_frames(model, frames, TrainOptions(), stats)
    torch.save({"model": model.state_dict(), "config": config.to_dict(), "history": []}, tmp_path / "c.pt")
    module = export(str(tmp_path / "c.pt"), str(tmp_path / "m.pt")).double()
    theirs, _ = force_errors(module, frames)
    assert theirs["total"]["mae_kj_mol_nm"] == pytest.approx(mine["force_mae"], rel=1e-4)
    assert theirs["interaction"]["mae_kj_mol_nm"] == pytest.approx(mine["interaction_force_mae"], rel=1e-4)
    assert theirs["energy_mae_kj_mol_per_atom"] == pytest.approx(mine["energy_mae_per_atom"], rel=1e-3)


def test_same_seed_same_weights_and_resume_continues_exactly(head_data, tmp_path):
    train(head_data, tmp_path / "a", "--epochs", "3")
    train(head_data, tmp_path / "b", "--epochs", "3")
    assert_same_weights(weights(tmp_path / "a" / "checkpoint.pt"), weights(tmp_path / "b" / "checkpoint.pt"))
    # Interrupted after two epochs, then the same command resumes and lands on the same weights.
    train(head_data, tmp_path / "c", "--epochs", "3", "--stop-after", "2")
    assert len(json.loads((tmp_path / "c" / "history.json").read_text())) == 2
    result = train(head_data, tmp_path / "c", "--epochs", "3")
    assert "resuming" in result.stderr
    assert_same_weights(weights(tmp_path / "a" / "checkpoint.pt"), weights(tmp_path / "c" / "checkpoint.pt"))
    other = train(head_data, tmp_path / "d", "--epochs", "1", "--seed", "2")
    assert other.returncode == 0
    assert not torch.equal(weights(tmp_path / "a" / "checkpoint.pt")["head.atomic_energy.0.weight"],
                           weights(tmp_path / "d" / "checkpoint.pt")["head.atomic_energy.0.weight"])
    # Resuming with other settings is refused with advice; --overwrite starts again.
    refused = train(head_data, tmp_path / "c", "--epochs", "3", "--lr", "1e-2", check=False)
    assert refused.returncode != 0 and "--overwrite" in refused.stderr
    assert train(head_data, tmp_path / "c", "--epochs", "1", "--lr", "1e-2", "--overwrite").returncode == 0


def test_torchrun_two_processes_follow_one_process(head_data, tmp_path):
    """Gradients summed over 2 processes equal one process's gradient of the same global batch; the
    contrastive and denoising objectives are off because they depend on how frames are shared out."""
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    objectives = ["--contrastive", "0", "--denoise", "0", "--epochs", "2"]
    train(head_data, tmp_path / "one", *objectives)
    train(head_data, tmp_path / "two", *objectives, launcher=(torchrun, "--standalone", "--nproc_per_node", "2", "-m"))
    assert_same_weights(weights(tmp_path / "one" / "checkpoint.pt"), weights(tmp_path / "two" / "checkpoint.pt"),
                        atol=2e-5)
    one = json.loads((tmp_path / "one" / "history.json").read_text())
    two = json.loads((tmp_path / "two" / "history.json").read_text())
    assert two[-1]["val_force_mae"] == pytest.approx(one[-1]["val_force_mae"], rel=1e-3)


def test_usage_errors_name_the_problem(head_data, tmp_path):
    for module in ("openmmmrl.train", "openmmmrl.export", "openmmmrl.evaluate"):
        shown = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, encoding="utf-8", errors="replace", env=ENV)
        assert shown.returncode == 0 and "usage" in shown.stdout
    missing = train(tmp_path / "nope.h5", tmp_path / "x", check=False)
    assert missing.returncode != 0 and "no such dataset" in missing.stderr
    bad = train(head_data, tmp_path / "y", "--epochs", "0", check=False)
    assert bad.returncode != 0 and "--epochs must be at least 1" in bad.stderr
    result = subprocess.run([sys.executable, "-m", "openmmmrl.export", str(tmp_path / "none.pt"), "--output",
                             str(tmp_path / "m.pt")], capture_output=True, encoding="utf-8", errors="replace", env=ENV)
    assert result.returncode != 0 and "no such checkpoint" in result.stderr


def test_scaffold_split_keeps_ring_systems_out_of_training():
    from openmmmrl.head.batch import scaffold_of
    groups = ["c1ccccc1O", "c1ccccc1N", "c1ccccc1C(=O)O", "C1CCCCC1O", "C1CCCCC1N", "c1ccncc1C", "c1ccncc1O",
              "CCO", "CCCO", "CC(=O)N", "c1ccc2ccccc2c1", "c1ccc2ccccc2c1O"]
    split = split_groups(groups, seed=3, validation=0.2, test=0.25, by_scaffold=True)
    assert sorted(split["test"] + split["validation"] + split["train"]) == sorted(groups)
    test_scaffolds = {scaffold_of(g) for g in split["test"]}
    assert len(split["test"]) >= 3
    assert not test_scaffolds & {scaffold_of(g) for g in split["train"] + split["validation"]}
    assert scaffold_of("c1ccccc1O") == scaffold_of("c1ccccc1N") == "c1ccccc1"
    assert scaffold_of("CCO") == "acyclic:CCO"
    assert split == split_groups(groups[::-1], seed=3, validation=0.2, test=0.25, by_scaffold=True)


def test_split_from_another_run(tmp_path):
    """Fine-tuning keeps the pretraining run's held-out molecules out of training."""
    from openmmmrl.head.train import split_from_file
    path = tmp_path / "split.json"
    path.write_text(json.dumps({"groups": {"test": ["a", "b"], "validation": ["c"], "train": ["d", "e"]}}))
    assert split_from_file(str(path), ["b", "c", "d", "x", "x", "y"]) == {
        "test": ["b"], "validation": ["c"], "train": ["d", "x", "y"]}
    with pytest.raises(ValueError, match="validation molecules of these data remain"):
        split_from_file(str(path), ["a", "d"])
    path.write_text("{}")
    with pytest.raises(ValueError, match="not a split.json"):
        split_from_file(str(path), ["a"])
