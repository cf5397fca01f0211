# SPDX-License-Identifier: MIT
"""openmmmrl.head.md: environments packed into one System evaluate as if they were alone, and the
intactness check sees broken bonds and escaped atoms."""
import numpy as np
import openmm
import openmm.unit as unit
import pytest
import torch

from openmmmrl.head.md import HEAD_ONLY, MMFF_HEAD, Environment, IntactCriteria, head_system, intact
from openmmmrl.toy import GraphMessagePassing, ToyConfig


def water_pair(shift):
    o, h1, h2 = np.array([0.0, 0, 0]), np.array([0.0957, 0, 0]), np.array([-0.024, 0.0927, 0])
    x = np.array([o, h1, h2, o + [0.28, 0.05, 0], h1 + [0.28, 0.05, 0], h2 + [0.28, 0.05, 0]]) + shift
    return Environment("w2", np.array([8, 1, 1, 8, 1, 1]), np.array([0, 0, 0, 1, 1, 1]),
                       np.array([[0, 1], [0, 2], [3, 4], [3, 5]]), x)


def energy(packed):
    context = openmm.Context(packed.system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))
    context.setPositions(packed.positions)
    return context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)


def test_packed_environments_do_not_see_each_other():
    model = torch.jit.script(GraphMessagePassing(ToyConfig(seed=1)))
    a, b = water_pair(0.0), water_pair(0.1)
    b.atomic_numbers = np.array([8, 1, 1, 7, 1, 1])
    separate = energy(head_system(model, [a])) + energy(head_system(model, [b]))
    packed = head_system(model, [a, b])
    assert energy(packed) == pytest.approx(separate, rel=1e-12)
    assert packed.ranges == [(0, 6), (6, 12)]
    # Restarting from other coordinates keeps the restraint where the environment started.
    moved = head_system(model, [a], positions=[a.positions + 0.4])
    np.testing.assert_allclose(moved.centers[0], a.positions.mean(0))
    assert energy(moved) > energy(head_system(model, [a], positions=[a.positions + 0.01]))


def test_intact_sees_broken_bonds_and_escaped_atoms():
    env = water_pair(0.0)
    center, radius = env.positions.mean(0), env.radius_nm + 0.3
    assert intact(env, env.positions, center, radius) == ""
    stretched = env.positions.copy()
    stretched[1] += [0.06, 0, 0]
    assert "bond 0-1 stretched" in intact(env, stretched, center, radius)
    flung = env.positions.copy()
    flung[3:] += [1.5, 0, 0]
    assert "flung" in intact(env, flung, center, radius)
    assert intact(env, env.positions * np.nan, center, radius) == "non-finite coordinates"


def test_mmff_criteria_see_far_hydrogens_and_close_contacts_across_the_box():
    env = water_pair(0.0)
    assert intact(env, env.positions, criteria=MMFF_HEAD) == ""
    loose = IntactCriteria(bond_stretch=10.0)
    far = env.positions.copy()
    far[2] += [-0.3, 0, 0]
    assert intact(env, far, criteria=loose).startswith("hydrogen 2 0.")
    assert "from its partner 0" in intact(env, far, criteria=loose)
    close = env.positions.copy()
    close[3:] += env.positions[1] - env.positions[3] + [0.06, 0, 0]
    assert intact(env, close, criteria=MMFF_HEAD) == "atoms 1 and 3 0.060 nm apart"
    # Periodic: the second water 0.07 nm from the first through a face of the box, not 2.9 nm away.
    periodic = water_pair(0.0)
    periodic.box = np.eye(3) * 3.0
    across = periodic.positions.copy()
    across[3:] += periodic.positions[0] - periodic.positions[3] + [0, 0, 2.93]  # each atom over its twin
    assert intact(periodic, across, criteria=MMFF_HEAD).endswith(" 0.070 nm apart")
    assert intact(periodic, across, criteria=HEAD_ONLY) == ""
