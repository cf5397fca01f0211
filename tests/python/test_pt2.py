# SPDX-License-Identifier: MIT
"""AOTInductor packages (.pt2) in MRLForce: the test models of tests/models/make_models.py compiled with
openmmmrl.export_pt2, against the analytic pair potential, finite differences, the same models as
TorchScript, and every platform the suite covers; the shipped head's package against its TorchScript file."""
import io
import os
import sys
import zipfile

import numpy as np
import openmm
import pytest
import torch

from openmmmrl import MRLForce, export_pt2

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "models"))
import make_models  # noqa: E402  (the test models: one pair potential written several ways)

A, CUTOFF = make_models.A, make_models.CUTOFF
PLATFORMS = ["Reference", "CPU", "OpenCL"]
#: relative tolerance of a float64 model's energy: OpenCL (PoCL) keeps positions in single precision
EXACT = {"Reference": 1e-9, "CPU": 1e-9, "OpenCL": 1e-6}


def analytic(positions, box=None):
    """Energy (kJ/mol) and forces (kJ/mol/nm) of phi(r) = A (1 - (r/rc)^2)^3 over all pairs, in numpy."""
    n = len(positions)
    energy, forces = 0.0, np.zeros((n, 3))
    for i in range(n):
        for j in range(i + 1, n):
            d = positions[j] - positions[i]
            if box is not None:
                d -= np.round(d / np.diag(box)) * np.diag(box)
            x = d @ d / CUTOFF ** 2
            if x < 1:
                energy += A * (1 - x) ** 3
                f = 6 * A * (1 - x) ** 2 / CUTOFF ** 2 * d  # -dphi/d(x_j) = -dphi/dx * 2 d / rc^2
                forces[j] += f
                forces[i] -= f
    return energy, forces


class DensePairs(torch.nn.Module):
    """The same pair potential over all pairs by broadcasting: openmm-torch style (no attributes), and with
    no size fixed at trace time (make_models.PairPositions' torch.triu_indices(n, n) is; export_pt2 refuses it)."""

    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        delta = positions.unsqueeze(0) - positions.unsqueeze(1)
        self_pair = torch.eye(positions.shape[0], dtype=torch.bool, device=positions.device)
        r2 = torch.where(self_pair, torch.ones_like(delta[..., 0]), (delta * delta).sum(-1))
        x = r2 / 0.36  # CUTOFF ** 2 (TorchScript takes no globals)
        phi = torch.where((x < 1.0) & ~self_pair, 3.0 * (1.0 - x) ** 3, torch.zeros_like(x))  # A = 3
        return 0.5 * phi.sum()


class DensePairsPeriodic(torch.nn.Module):
    """DensePairs with minimum images in OpenMM's reduced triclinic box: forward(positions, box)."""

    def forward(self, positions: torch.Tensor, box: torch.Tensor) -> torch.Tensor:
        delta = positions.unsqueeze(0) - positions.unsqueeze(1)
        for k in (2, 1, 0):
            delta = delta - torch.round(delta[..., k] / box[k, k]).unsqueeze(-1) * box[k]
        self_pair = torch.eye(positions.shape[0], dtype=torch.bool, device=positions.device)
        x = torch.where(self_pair, torch.ones_like(delta[..., 0]), (delta * delta).sum(-1)) / 0.36
        phi = torch.where((x < 1.0) & ~self_pair, 3.0 * (1.0 - x) ** 3, torch.zeros_like(x))  # A = 3
        return 0.5 * phi.sum()


class ScaledDensePairs(torch.nn.Module):
    """E = scale * DensePairs + shift: two global parameters, dE/dscale is the pair energy."""

    def __init__(self):
        super().__init__()
        self.pairs = DensePairs()

    def forward(self, positions: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        return scale * self.pairs(positions) + shift


def points(n, seed=0, spread=0.9):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.0, spread, (n, 3))


def graph_inputs(n, seed=0):
    """A "graph/1" call on n atoms: every pair within the cutoff, both directions."""
    x = torch.tensor(points(n, seed))
    i, j = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    keep = (i != j) & (torch.cdist(x, x) < CUTOFF)
    edges = torch.stack([i[keep], j[keep]])
    return x, torch.full((n,), 6), torch.arange(n), edges, torch.zeros(edges.shape[1], 3, dtype=x.dtype)


@pytest.fixture(scope="module")
def packages(tmp_path_factory):
    """The test models as packages (float64; the graph model in float32 too), compiled once (a few minutes)."""
    out = tmp_path_factory.mktemp("pt2")
    x = torch.tensor(points(5))
    box = torch.eye(3, dtype=torch.float64) * 1.2
    made = {
        "positions": export_pt2(DensePairs(), (x,), str(out / "positions.pt2"), dtypes=("float64",)),
        "periodic": export_pt2(DensePairsPeriodic(), (x, box), str(out / "periodic.pt2"),
                               dtypes=("float64",), periodic=True),
        "graph": export_pt2(make_models.PairGraph(), graph_inputs(6), str(out / "graph.pt2")),
        "harmonic": export_pt2(make_models.HarmonicWithForces(), (x,), str(out / "harmonic.pt2"), dtypes=("float64",)),
        "scaled": export_pt2(ScaledDensePairs(), (x, torch.tensor(1.0), torch.tensor(0.0)),
                             str(out / "scaled.pt2"), dtypes=("float64",)),
    }
    return {name: str(path) for name, path in made.items()}


def context(force, n, platform, box=None, precision="double"):
    if force.getInterface() == "graph/1":
        force.setAtomicNumbers([6] * n)
    system = openmm.System()
    for _ in range(n):
        system.addParticle(1.0)
    if box is not None:
        system.setDefaultPeriodicBoxVectors(*(openmm.Vec3(*row) for row in box))
    force.setProperty("Precision", precision)
    system.addForce(force)
    return openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName(platform))


def energy_forces(ctx, positions):
    ctx.setPositions(positions)
    state = ctx.getState(getEnergy=True, getForces=True)
    return state.getPotentialEnergy()._value, state.getForces(asNumpy=True)._value


@pytest.mark.parametrize("platform", PLATFORMS)
def test_positions_package_matches_the_analytic_potential_and_its_torchscript_twin(packages, platform, tmp_path):
    force = MRLForce(packages["positions"])
    assert force.getModelFormat() == "AOTInductor" and force.getInterface() == "positions" and force.getOutputsForces()
    x = points(9, seed=1)  # traced with 5 atoms: the atom count is dynamic
    energy, forces = energy_forces(context(force, 9, platform), x)
    expected, expected_forces = analytic(x)
    assert energy == pytest.approx(expected, rel=EXACT[platform])
    np.testing.assert_allclose(forces, expected_forces, rtol=100 * EXACT[platform], atol=100 * EXACT[platform])
    script = tmp_path / "pair.pt"
    torch.jit.script(DensePairs()).save(str(script))
    twin, twin_forces = energy_forces(context(MRLForce(str(script)), 9, platform), x)
    assert energy == pytest.approx(twin, rel=1e-5)
    np.testing.assert_allclose(forces, twin_forces, rtol=1e-5, atol=1e-6)


def test_a_model_that_returns_its_own_forces_keeps_them(packages):
    """make_models.HarmonicWithForces (outputs_forces): E = 50 sum |r|^2 and the forces it returns, -100 r."""
    x = points(4, seed=9)
    energy, forces = energy_forces(context(MRLForce(packages["harmonic"]), 4, "Reference"), x)
    assert energy == pytest.approx(50.0 * (x ** 2).sum(), rel=1e-12)
    np.testing.assert_allclose(forces, -100.0 * x, rtol=1e-12)


def test_package_forces_match_finite_differences(packages):
    ctx = context(MRLForce(packages["graph"]), 7, "Reference")
    x = points(7, seed=2)
    _, forces = energy_forces(ctx, x)
    h = 1e-6
    for atom, axis in [(0, 0), (3, 1), (6, 2)]:
        plus, minus = x.copy(), x.copy()
        plus[atom, axis] += h
        minus[atom, axis] -= h
        numeric = -(energy_forces(ctx, plus)[0] - energy_forces(ctx, minus)[0]) / (2 * h)
        assert forces[atom, axis] == pytest.approx(numeric, rel=1e-5, abs=1e-5)


@pytest.mark.parametrize("platform", PLATFORMS)
def test_graph_package_follows_the_neighbor_list_as_it_grows(packages, platform):
    force = MRLForce(packages["graph"])
    assert force.getCutoff() == pytest.approx(CUTOFF)
    n = 14
    ctx = context(force, n, platform)
    for spread in (3.0, 1.5, 0.7):  # from few edges to many: the edge count differs from the traced one
        x = points(n, seed=3, spread=spread)
        energy, forces = energy_forces(ctx, x)
        expected, expected_forces = analytic(x)
        assert energy == pytest.approx(expected, rel=EXACT[platform], abs=1e-12)
        np.testing.assert_allclose(forces, expected_forces, rtol=100 * EXACT[platform], atol=100 * EXACT[platform])


def test_float32_model_runs_at_single_precision(packages):
    ctx = context(MRLForce(packages["graph"]), 10, "CPU", precision="single")
    x = points(10, seed=4)
    energy, forces = energy_forces(ctx, x)
    expected, expected_forces = analytic(x)
    assert energy == pytest.approx(expected, rel=1e-5)
    np.testing.assert_allclose(forces, expected_forces, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("platform", ["Reference", "CPU"])
def test_periodic_positions_package(packages, platform):
    force = MRLForce(packages["periodic"])
    force.setUsesPeriodicBoundaryConditions(True)
    box = np.eye(3) * 1.3
    x = points(8, seed=5, spread=1.3)
    energy, forces = energy_forces(context(force, 8, platform, box=box), x)
    expected, expected_forces = analytic(x, box)
    assert energy == pytest.approx(expected, rel=1e-9)
    np.testing.assert_allclose(forces, expected_forces, rtol=1e-7, atol=1e-7)


def test_global_parameters_and_their_derivative_come_from_the_graph(packages):
    force = MRLForce(packages["scaled"])
    force.addGlobalParameter("scale", 2.0)
    force.addGlobalParameter("shift", 0.5)
    force.addEnergyParameterDerivative("scale")
    ctx = context(force, 6, "Reference")
    x = points(6, seed=6)
    pair, pair_forces = analytic(x)
    energy, forces = energy_forces(ctx, x)
    assert energy == pytest.approx(2.0 * pair + 0.5, rel=1e-9)
    np.testing.assert_allclose(forces, 2.0 * pair_forces, rtol=1e-7, atol=1e-7)
    ctx.setParameter("scale", -1.0)
    state = ctx.getState(getEnergy=True, getParameterDerivatives=True)
    assert state.getPotentialEnergy()._value == pytest.approx(-pair + 0.5, rel=1e-9)
    assert state.getEnergyParameterDerivatives()["scale"] == pytest.approx(pair, rel=1e-9)


def test_serialization_embeds_the_package(packages, tmp_path):
    import shutil
    path = shutil.copy(packages["graph"], tmp_path / "graph.pt2")
    force = MRLForce(str(path))
    x = points(8, seed=7)
    original = context(force, 8, "Reference")
    xml = openmm.XmlSerializer.serialize(original.getSystem())
    os.remove(path)  # the XML alone carries the package
    restored = openmm.XmlSerializer.deserialize(xml)
    copy = MRLForce.cast(restored.getForce(0))
    assert copy.getModelFormat() == "AOTInductor" and copy.getModelBytes() == force.getModelBytes()
    ctx = openmm.Context(restored, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))
    assert energy_forces(ctx, x)[0] == energy_forces(original, x)[0] == pytest.approx(analytic(x)[0], rel=1e-9)


def _rewrite(path, out, change):
    """A copy of a package with change(name, bytes) -> bytes applied to every member."""
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(out, "w") as target:
        for item in source.infolist():
            target.writestr(item, change(item.filename, source.read(item.filename)))
    return str(out)


def test_bad_packages_get_clear_errors(packages, tmp_path):
    data = open(packages["graph"], "rb").read()
    with pytest.raises(openmm.OpenMMException, match="not a complete zip archive"):
        MRLForce(data[: len(data) // 2])
    cuda = _rewrite(packages["graph"], tmp_path / "cuda.pt2",
                    lambda name, b: b.replace(b'"AOTI_DEVICE_KEY": "cpu"', b'"AOTI_DEVICE_KEY": "cuda"')
                    if name.endswith("_metadata.json") else b)
    with pytest.raises(openmm.OpenMMException, match="compiled for cuda but this platform runs the model on cpu"):
        context(MRLForce(cuda), 6, "Reference")
    bare = _rewrite(packages["graph"], tmp_path / "bare.pt2",
                    lambda name, b: b.replace(b'"mrl_interface"', b'"other_key"') if name.endswith("_metadata.json") else b)
    with pytest.raises(openmm.OpenMMException, match='without the metadata "mrl_interface"'):
        MRLForce(bare)
    with pytest.raises(openmm.OpenMMException, match='has no "float32" model'):
        context(MRLForce(packages["positions"]), 6, "CPU", precision="single")
    with pytest.raises(openmm.OpenMMException, match="always returns its forces"):
        MRLForce(packages["positions"]).setOutputsForces(False)
    extra = MRLForce(packages["graph"])
    extra.addGlobalParameter("lambda", 1.0)
    with pytest.raises(openmm.OpenMMException, match="forward takes 5 arguments"):
        context(extra, 6, "Reference")


def test_export_refuses_bad_settings(tmp_path):
    x = torch.tensor(points(5))
    with pytest.raises(ValueError, match="give float32 and/or float64"):
        export_pt2(make_models.PairPositions(), (x,), str(tmp_path / "p.pt2"), dtypes=("float16",))
    with pytest.raises(ValueError, match="takes 5 inputs"):
        export_pt2(make_models.PairGraph(), (x,), str(tmp_path / "g.pt2"))
    with pytest.raises(ValueError, match="fixed to 5 atoms"):
        export_pt2(make_models.PairPositions(), (x,), str(tmp_path / "t.pt2"), dtypes=("float64",))
    assert not os.listdir(tmp_path)


def test_shipped_head_package_equals_its_torchscript_file():
    from openmmmrl.head.export import cached_package
    model = os.path.join(ROOT, "models", "mrl-head-xtb.pt")
    package = cached_package(model)  # built by the setup step; built here if it is missing
    rng = np.random.default_rng(8)
    waters = np.array([[0.0, 0.0, 0.0], [0.0757, 0.0586, 0.0], [-0.0757, 0.0586, 0.0]])
    x = np.concatenate([o + waters for o in rng.uniform(0, 0.9, (12, 3))])
    results = []
    for path in (model, package):
        force = MRLForce(path)
        force.setAtomicNumbers([8, 1, 1] * 12)
        force.setMoleculeIndices(list(np.repeat(np.arange(12), 3)))
        results.append(energy_forces(context(force, 36, "CPU"), x))
    (e_script, f_script), (e_pt2, f_pt2) = results
    assert abs(e_script) > 1.0
    assert e_pt2 == pytest.approx(e_script, rel=1e-5)
    np.testing.assert_allclose(f_pt2, f_script, rtol=1e-5, atol=1e-5 * np.abs(f_script).max())
