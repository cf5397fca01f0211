# SPDX-License-Identifier: MIT
"""The CUDA kernel.  Where there is no GPU (CI) only the link check runs: the plugin is loaded with every
symbol resolved against the CUDA toolkit's stub driver.  On a GPU machine (scripts/gpu-check.sh) the rest
runs: agreement with Reference, CUDA graphs against eager, and several contexts beside other PyTorch work."""
import glob
import os
import shutil
import subprocess
import sys

import numpy as np
import openmm
import pytest
import torch

from openmmmrl import MRLForce

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HEAD = os.path.join(ROOT, "models", "mrl-head-mmff94.pt")
PLUGIN_DIR = os.path.join(openmm.version.openmm_library_path, "plugins")


def _cuda_available():
    try:
        return openmm.Platform.getPlatformByName("CUDA").supportsKernels(["CalcMRLForce"])
    except Exception:
        return False


needs_cuda = pytest.mark.skipif(not _cuda_available(),
                                reason="no CUDA platform with the MRLForce kernel here (no GPU or no driver)")


def _stub_driver():
    roots = [os.environ.get("CUDA_HOME", ""), "/usr/local/cuda"]
    nvcc = shutil.which("nvcc")
    if nvcc:
        roots.append(os.path.dirname(os.path.dirname(os.path.realpath(nvcc))))
    for root in roots:
        for candidate in glob.glob(os.path.join(root, "lib*", "stubs", "libcuda.so")) + \
                glob.glob(os.path.join(root, "targets", "*", "lib", "stubs", "libcuda.so")):
            return candidate
    return None


def test_cuda_plugin_resolves_every_symbol(tmp_path):
    plugin = os.path.join(PLUGIN_DIR, "libOpenMMMRLCUDA.so")
    if not os.path.exists(plugin):
        pytest.skip("the CUDA kernel was not built (it needs the CUDA toolkit and openmm-cuda-13)")
    env = dict(os.environ)
    if not _cuda_available():
        stub = _stub_driver()
        if stub is None:
            pytest.skip("no CUDA driver and no stub driver (CUDA toolkit) to link against")
        os.symlink(stub, tmp_path / "libcuda.so.1")
        env["LD_LIBRARY_PATH"] = f"{tmp_path}:{env.get('LD_LIBRARY_PATH', '')}"
    # RTLD_NOW: every undefined symbol must resolve now, through the plugin's own RUNPATH (as OpenMM loads it).
    code = ("import ctypes, os, sys; d = sys.argv[1]; "
            "ctypes.CDLL(os.path.join(d, 'libOpenMMCUDA.so'), mode=os.RTLD_NOW | os.RTLD_GLOBAL); "
            "ctypes.CDLL(os.path.join(d, 'libOpenMMMRLCUDA.so'), mode=os.RTLD_NOW); print('resolved')")
    run = subprocess.run([sys.executable, "-c", code, PLUGIN_DIR], env=env, capture_output=True,
                         encoding="utf-8", errors="replace")
    assert run.returncode == 0 and "resolved" in run.stdout, run.stderr


def _water_box(waters, seed=0):
    side = int(np.ceil(waters ** (1 / 3)))
    edge = (waters / 33.4) ** (1 / 3)
    grid = np.stack(np.meshgrid(*[np.arange(side)] * 3, indexing="ij"), -1).reshape(-1, 3)[:waters]
    rng = np.random.default_rng(seed)
    local = np.array([[0, 0, 0], [0.0757, 0.0586, 0], [-0.0757, 0.0586, 0]])
    positions = []
    for center in (grid + 0.5) * (edge / side):
        rotation, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        positions.extend(center + local @ rotation.T)
    return np.array(positions), [8, 1, 1] * waters, np.repeat(np.arange(waters), 3).tolist(), edge


def _context(platform, precision=None, graphs=False, waters=60):
    positions, z, molecules, edge = _water_box(waters)
    system = openmm.System()
    for number in z:
        system.addParticle(16.0 if number == 8 else 1.008)
    system.setDefaultPeriodicBoxVectors(*(openmm.Vec3(*row) for row in np.eye(3) * edge))
    force = MRLForce(HEAD)
    force.setAtomicNumbers(z)
    force.setMoleculeIndices(molecules)
    force.setUsesPeriodicBoundaryConditions(True)
    force.setProperty("UseCUDAGraphs", "true" if graphs else "false")
    system.addForce(force)
    properties = {"Precision": precision} if precision else {}
    context = openmm.Context(system, openmm.VerletIntegrator(0.0005), openmm.Platform.getPlatformByName(platform),
                             properties)
    context.setPositions(positions)
    return context, positions


def _forces(context, positions=None):
    if positions is not None:
        context.setPositions(positions)
    state = context.getState(getEnergy=True, getForces=True)
    return (state.getPotentialEnergy().value_in_unit(openmm.unit.kilojoule_per_mole),
            state.getForces(asNumpy=True).value_in_unit(openmm.unit.kilojoule_per_mole / openmm.unit.nanometer))


@needs_cuda
@pytest.mark.parametrize("precision,tolerance", [("double", 1e-8), ("mixed", 2e-4), ("single", 2e-4)])
def test_cuda_matches_reference(precision, tolerance):
    reference, positions = _context("Reference")
    cuda, _ = _context("CUDA", precision)
    e_ref, f_ref = _forces(reference)
    e_cuda, f_cuda = _forces(cuda)
    scale = np.sqrt((f_ref ** 2).mean())
    assert abs(e_cuda - e_ref) < tolerance * max(1.0, abs(e_ref))
    assert np.abs(f_cuda - f_ref).max() < tolerance * 10 * scale


@needs_cuda
def test_cuda_graphs_match_eager_through_md():
    eager, positions = _context("CUDA", "mixed")
    graphs, _ = _context("CUDA", "mixed", graphs=True)
    eager.setVelocitiesToTemperature(300, 1)
    integrator = eager.getIntegrator()
    for step in range(12):  # the warm-up steps, the capture, then replays
        integrator.step(2)
        now = eager.getState(getPositions=True).getPositions(asNumpy=True)
        e_eager, f_eager = _forces(eager)
        e_graph, f_graph = _forces(graphs, now)
        assert e_graph == pytest.approx(e_eager, rel=1e-5), step
        assert np.abs(f_graph - f_eager).max() < 1e-4 * np.abs(f_eager).max(), step


@needs_cuda
def test_contexts_and_other_pytorch_work_do_not_interfere():
    first, positions = _context("CUDA", "mixed", graphs=True)
    second, _ = _context("CUDA", "mixed")
    expected = _forces(_context("CUDA", "mixed")[0])[1]
    stream = torch.cuda.current_stream()
    a = torch.randn(1024, 1024, device="cuda", dtype=torch.float64)
    for _ in range(5):
        product = a @ a  # queued on PyTorch's stream while the contexts work
        for context in (first, second):
            context.getIntegrator().step(1)
            context.setPositions(positions)
            assert np.abs(_forces(context)[1] - expected).max() < 1e-4 * np.abs(expected).max()
        assert torch.cuda.current_stream() == stream
        assert torch.allclose(product.cpu(), a.cpu() @ a.cpu())


@needs_cuda
def test_cuda_list_regrows_and_graph_is_captured_again():
    reference, positions = _context("Reference")
    cuda, _ = _context("CUDA", "double", graphs=True)
    squeezed = positions * 0.7  # denser: more edges than the first capacity
    for coordinates in [positions, positions, positions, squeezed, squeezed, squeezed, positions]:
        e_ref, f_ref = _forces(reference, coordinates)
        e_cuda, f_cuda = _forces(cuda, coordinates)
        assert e_cuda == pytest.approx(e_ref, rel=1e-8)
        assert np.abs(f_cuda - f_ref).max() < 1e-7 * np.abs(f_ref).max()


@needs_cuda
def test_shipped_head_runs_on_the_gpu_without_host_synchronisation():
    module = torch.jit.load(HEAD, map_location="cuda")
    positions, z, molecules, edge = _water_box(200)
    pos = torch.tensor(positions, dtype=torch.float32, device="cuda", requires_grad=True)
    with torch.no_grad():
        delta = pos[None] - pos[:, None]
        delta -= torch.round(delta / edge) * edge
        pairs = ((delta * delta).sum(-1) < module.cutoff_nm ** 2).nonzero()
        pairs = pairs[pairs[:, 0] != pairs[:, 1]]
        shift = delta[pairs[:, 0], pairs[:, 1]] - (pos[pairs[:, 1]] - pos[pairs[:, 0]])
    zt = torch.tensor(z, device="cuda")
    mt = torch.tensor(molecules, device="cuda")
    edge_index = pairs.t().contiguous()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        energy = module(pos, zt, mt, edge_index, shift)
        forces = -torch.autograd.grad([energy], [pos])[0]
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert torch.isfinite(forces).all()
