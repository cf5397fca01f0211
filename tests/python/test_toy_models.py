# SPDX-License-Identifier: MIT
"""The toy message-passing network gives the same energy and forces whether the engine supplies the
edges ("graph/1") or the model searches all pairs itself ("positions"), and its forces are -dE/dx."""
import numpy as np
import openmm
import openmm.unit as unit
import pytest
import torch

from openmmmrl import MRLForce
from openmmmrl.toy import AllPairsMessagePassing, GraphMessagePassing


def state_of(model, positions, atomic_numbers, platform="Reference", graph=True):
    system = openmm.System()
    for _ in positions:
        system.addParticle(12.0)
    force = MRLForce(torch.jit.script(model))
    if graph:
        force.setAtomicNumbers(atomic_numbers)
    system.addForce(force)
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName(platform))
    context.setPositions(positions)
    state = context.getState(getEnergy=True, getForces=True)
    return (state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole),
            np.asarray(state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer)), context)


@pytest.fixture
def cluster():
    rng = np.random.default_rng(3)
    grid = np.stack(np.meshgrid(*[np.arange(5)] * 3, indexing="ij"), -1).reshape(-1, 3)
    return (grid + rng.uniform(-0.2, 0.2, grid.shape)) * 0.22, rng.choice([1, 6, 7, 8], len(grid)).tolist()


@pytest.mark.parametrize("platform", ["Reference", "CPU"])
def test_graph_and_all_pairs_forms_agree(cluster, platform):
    positions, z = cluster
    e_graph, f_graph, _ = state_of(GraphMessagePassing(), positions, z, platform)
    e_pairs, f_pairs, _ = state_of(AllPairsMessagePassing(z), positions, z, platform, graph=False)
    tolerance = 1e-10 if platform == "Reference" else 1e-4
    assert abs(e_graph) > 1.0
    assert e_graph == pytest.approx(e_pairs, rel=tolerance)
    assert np.abs(f_graph - f_pairs).max() <= tolerance * np.abs(f_graph).max() * 10


def test_forces_are_minus_the_energy_gradient(cluster):
    positions, z = cluster
    energy, forces, context = state_of(GraphMessagePassing(), positions, z)
    step = 1e-6
    rng = np.random.default_rng(0)
    for atom in rng.choice(len(positions), 5, replace=False):
        for d in range(3):
            shifted = positions.copy()
            shifted[atom, d] += step
            context.setPositions(shifted)
            plus = context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
            shifted[atom, d] -= 2 * step
            context.setPositions(shifted)
            minus = context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
            assert -(plus - minus) / (2 * step) == pytest.approx(forces[atom, d], abs=1e-5 * np.abs(forces).max())
