# SPDX-License-Identifier: MIT
"""The device code of the GPU kernel (platforms/common/kernels/*.cc) compiles for CUDA.

OpenMM compiles it at run time, so a CUDA-only compile error would first show on a GPU.  Here nvcc compiles
each file (one program each, as the kernel compiles them) the way OpenMM's CudaContext does: the precision's
type definitions, OpenMM's own CUDA prelude (taken from the libOpenMMCUDA.so of the wheel), the kernel's
defines, then the source.  OpenCL compiles it in every OpenCL test already (PoCL)."""
import glob
import os
import shutil
import subprocess

import openmm
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KERNELS = os.path.join(ROOT, "platforms", "common", "kernels")
CUDA_PLATFORM = os.path.join(openmm.version.openmm_library_path, "plugins", "libOpenMMCUDA.so")


def _nvcc():
    found = shutil.which("nvcc")
    if found is None and os.path.exists("/usr/local/cuda/bin/nvcc"):
        found = "/usr/local/cuda/bin/nvcc"
    return found


def _openmm_cuda_prelude():
    """OpenMM's CUDA definitions of the common kernel language, as compiled into its CUDA platform."""
    with open(CUDA_PLATFORM, "rb") as f:
        data = f.read()
    at = data.find(b'#define KERNEL extern "C" __global__')
    assert at >= 0, "OpenMM's CUDA platform no longer holds the common-language prelude where it did"
    return data[data.rfind(b"\0", 0, at) + 1:data.find(b"\0", at)].decode()


def _kernel_files():
    return sorted(glob.glob(os.path.join(KERNELS, "*.cc")))


def _kernel_source(path):
    with open(path) as f:
        return f.read()


def _types(precision):
    real = "double" if precision == "double" else "float"
    mixed = "float" if precision == "single" else "double"
    lines = [f"typedef {real} real;", f"typedef {mixed} mixed;"]
    for n in (2, 3, 4):
        lines += [f"typedef {real}{n} real{n};", f"typedef {mixed}{n} mixed{n};"]
    return "\n".join(lines)


@pytest.mark.skipif(_nvcc() is None, reason="no nvcc (CUDA toolkit) here")
@pytest.mark.skipif(not os.path.exists(CUDA_PLATFORM), reason="no CUDA platform in the OpenMM install")
@pytest.mark.parametrize("precision,model", [("single", "float"), ("mixed", "float"), ("double", "double"),
                                             ("single", "double")])
def test_device_code_compiles_for_cuda(tmp_path, precision, model):
    defines = {"MLREAL": model, "MRL_GROUP_SIZE": "64", "USE_LONG_FORCES": "1"}
    if precision == "mixed":
        defines["MRL_MIXED_PRECISION"] = "1"
    sources = {}
    for kernel_file in _kernel_files():
        program = os.path.splitext(os.path.basename(kernel_file))[0]
        source = "\n".join([_types(precision), _openmm_cuda_prelude()] +
                           [f"#define {name} {value}" for name, value in defines.items()] +
                           [_kernel_source(kernel_file)])
        path = tmp_path / f"{program}.cu"
        path.write_text(source)
        run = subprocess.run([_nvcc(), "-c", "-arch=sm_90", "--use_fast_math", "-Werror", "all-warnings",
                              "-Xcompiler", "-Wno-deprecated-declarations", "-Wno-deprecated-declarations",
                              "-o", str(tmp_path / f"{program}.o"), str(path)],
                             capture_output=True, encoding="utf-8", errors="replace")
        assert run.returncode == 0, f"{kernel_file}:\n{run.stderr}"
        sources[program] = source
    assert sources, f"no device code in {KERNELS}"
    # The kernels the host code creates are all there.
    symbols = ""
    if shutil.which("cuobjdump"):
        for name in sources:
            symbols += subprocess.run(["cuobjdump", "-symbols", str(tmp_path / f"{name}.o")], capture_output=True,
                                      encoding="utf-8", errors="replace").stdout
    everything = "\n".join(sources.values())
    for kernel in ["gatherMLPositions", "addMLForces", "addMLEnergy", "checkNeighborList", "countNeighbors",
                   "scanNeighbors", "writeNeighbors"]:
        assert kernel in everything
        if symbols:
            assert kernel in symbols
