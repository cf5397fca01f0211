# SPDX-License-Identifier: MIT
"""models/sample_head_md.py: frames of MMFF94 + head MD written with their MMFF94 labels (the head and the
restraint left out), checked against a fresh createMMFFSystem Context at the written positions; a rerun
skips the records already there."""
import json
import os
import subprocess
import sys

import numpy as np
import openmm

from openmmmrl import createMMFFSystem, moleculesFromRecord
from openmmmrl.data import Dataset

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "models", "sample_head_md.py")
MODEL = os.path.join(ROOT, "models", "mrl-head-xtb.pt")


def run(head_data, out):
    command = [sys.executable, SCRIPT, str(head_data), "--model", MODEL, "--output", str(out), "--records", "2",
               "--ps", "0.06", "--interval-ps", "0.02"]
    result = subprocess.run(command, capture_output=True, encoding="utf-8", env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout[result.stdout.index("{"):])


def test_frames_carry_mmff94_labels_and_a_rerun_adds_nothing(head_data, tmp_path):
    out = tmp_path / "onpolicy.h5"
    summary = run(head_data, out)
    assert summary["records"] == 2 and summary["frames"] == 6 and not summary["stopped"]
    with Dataset(str(head_data)) as source, Dataset(str(out)) as data:
        assert data.attributes["interaction_forces"] == "force_groups:1"
        for record in data.records():
            original = source.record(list(r.key for r in source.records()).index(record.key))
            assert list(record.smiles) == list(original.smiles)
            assert np.array_equal(record.formal_charges, original.formal_charges)
            context = openmm.Context(createMMFFSystem(moleculesFromRecord(record, 0)), openmm.VerletIntegrator(0.001),
                                     openmm.Platform.getPlatformByName("Reference"))
            for f in range(len(record.positions)):
                assert not np.allclose(record.positions[f], original.positions[0], atol=1e-3)  # it moved
                context.setPositions(record.positions[f].astype(np.float64))
                total = context.getState(getEnergy=True, getForces=True)
                inter = context.getState(getEnergy=True, getForces=True, groups={1})
                scale = abs(total.getPotentialEnergy()._value) + 1.0
                assert abs(record.total_energy[f] - total.getPotentialEnergy()._value) < 1e-3 * scale
                assert abs(record.interaction_energy[f] - inter.getPotentialEnergy()._value) < 1e-3 * scale
                np.testing.assert_allclose(record.interaction_forces[f], inter.getForces(asNumpy=True)._value,
                                           rtol=1e-3, atol=0.5)
    assert run(head_data, out)["already_present"] == 2
