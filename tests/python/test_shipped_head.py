# SPDX-License-Identifier: MIT
"""The shipped force head (models/mrl-head-mmff94.pt): its forces against MMFF94 labels of environments
made fresh by mrl-envgen (checked against RDKit's MMFF94 in test_envgen_build.py), and the demo's MD."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from openmmmrl.head.evaluate import force_errors
from openmmmrl.head.batch import load_frames

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = os.path.join(ROOT, "models", "mrl-head-mmff94.pt")


def test_shipped_head_is_small_and_describes_itself():
    assert os.path.getsize(MODEL) < 5e6
    module = torch.jit.load(MODEL)
    assert module.mrl_interface == "graph/1" and 0.3 <= module.cutoff_nm <= 0.6
    meta = json.loads(module.mrl_metadata)
    assert set(meta["split"]) == {"train", "validation", "test"} and meta["config"]["layers"] >= 2


def test_shipped_head_predicts_mmff94_forces_of_new_environments(head_data):
    """The fixture's environments (other seeds, temperatures and copies than the training data) are
    labelled by MMFF94; the head's errors must stay near those of its model card."""
    module = torch.jit.load(MODEL).double()
    result, _ = force_errors(module, load_frames([str(head_data)]))
    print(json.dumps(result, indent=1))
    assert result["total"]["mae_relative_to_rms"] < 0.25  # measured 0.146
    assert result["interaction"]["mae_relative_to_rms"] < 0.3  # measured 0.212


def test_demo_runs_md_with_the_shipped_head(tmp_path):
    result = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "run_head.py"), "--model", MODEL, "--steps", "300",
                             "--report-interval", "100", "--output", str(tmp_path), "--threads", "1"],
                            capture_output=True, encoding="utf-8", errors="replace", env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout[result.stdout.index("{"):])
    assert summary["ns_per_day"] > 0 and summary["atoms"] > 20 and summary["system"] == "head alone"
    table = np.loadtxt(tmp_path / "energies.csv", delimiter=",", skiprows=1)
    assert table.shape == (3, 4) and np.isfinite(table).all()
    for name in ("trajectory.pdb", "trajectory.dcd", "energies.png"):
        assert (tmp_path / name).stat().st_size > 0
