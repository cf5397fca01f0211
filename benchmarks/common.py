# SPDX-License-Identifier: MIT
"""Shared pieces of the benchmarks: systems, timing (medians), and what the run is measured with."""
import json
import os
import platform as _platform
import statistics
import time
import warnings

import numpy as np
import openmm
import torch

warnings.filterwarnings("ignore", category=FutureWarning)
DENSITY_PER_NM3 = 100.0  # about the atom density of liquid water


def environment():
    """The facts that change the numbers: versions, BLAS, threads, CPU."""
    config = torch.__config__.show()
    blas = "MKL" if "BLAS_INFO=mkl" in config else ("OpenBLAS" if "openblas" in config.lower() else "unknown")
    return {"torch": torch.__version__, "openmm": openmm.__version__, "blas": blas,
            "torch_threads": torch.get_num_threads(), "cpu": _platform.processor() or _platform.machine(),
            "cores": os.cpu_count()}


def cluster(n, seed=0):
    """n atoms at liquid density in a cube (nm), as an (n, 3) array, and the cube's edge."""
    edge = (n / DENSITY_PER_NM3) ** (1.0 / 3.0)
    rng = np.random.default_rng(seed)
    # A jittered grid keeps atoms apart like a liquid (random points would overlap).
    side = int(np.ceil(n ** (1.0 / 3.0)))
    grid = np.stack(np.meshgrid(*[np.arange(side)] * 3, indexing="ij"), -1).reshape(-1, 3)[:n]
    spacing = edge / side
    return (grid + 0.5 + rng.uniform(-0.2, 0.2, grid.shape)) * spacing, edge


def median_time(function, repeats, warmup=2):
    """Median wall time of function() in seconds."""
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def make_context(force, n, platform="CPU", box=None):
    system = openmm.System()
    for _ in range(n):
        system.addParticle(12.0)
    if box is not None:
        system.setDefaultPeriodicBoxVectors(*[openmm.Vec3(*row) for row in box])
    system.addForce(force)
    return openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName(platform))


def emit(result, path=None):
    text = json.dumps(result, indent=2)
    print(text)
    if path:
        with open(path, "w") as f:
            f.write(text + "\n")
