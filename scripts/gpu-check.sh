#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# On a lent GPU machine (the device tool): build openmm-mrl against the machine's PyTorch and CUDA toolkit
# with the OpenMM wheels carried in .gpu/ (scripts/gpu-prepare.sh makes it here), then run the CUDA tests
# (C++ suites over CUDA single/mixed/double, tests/python/test_cuda.py) and benchmarks/gpu_step.py.
# Logs and the benchmark's JSON go to $OUT (the device tool's result folder), else out/gpu/.
#
#   run(command="bash scripts/gpu-check.sh", carry=[".gpu"], timeout_s=600)
#   bash scripts/gpu-check.sh --bench-only     # skip the tests
#   bash scripts/gpu-check.sh --sanitize       # the CUDA C++ tests in mixed precision under compute-sanitizer
#                                              # (memcheck, then racecheck): cross-context pointers, races
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
out="${OUT:-$root/out/gpu}"
mkdir -p "$out"
say() { printf '[gpu-check] %s\n' "$*" | tee -a "$out/summary.txt"; }
[ -d .gpu/wheels ] || { echo "no .gpu/wheels: run scripts/gpu-prepare.sh here and carry .gpu" >&2; exit 2; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt"
# The wheels go next to PyTorch: the plugins find LibTorch through a relative RPATH (../../../torch/lib).
if ! python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir .gpu/wheels/*.whl; then
  site=/tmp/mrl-site
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" .gpu/wheels/*.whl || exit 1
  packages="$(python3 -c 'import os, torch; print(os.path.dirname(os.path.dirname(torch.__file__)))')"
  for name in torch nvidia; do [ -e "$packages/$name" ] && ln -sfn "$packages/$name" "$site/$name"; done
  export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}" PATH="$site/bin:$PATH"
fi
export PYTHONUNBUFFERED=1
say "python $(python3 -c 'import sys, torch, openmm; print(sys.version.split()[0], "torch", torch.__version__, "openmm", openmm.__version__)')"

# GoogleTest from the carried sources.
cmake -S .gpu/googletest -B /tmp/gtest-build -DCMAKE_INSTALL_PREFIX=/tmp/gtest >/dev/null &&
  cmake --build /tmp/gtest-build -j "$(nproc)" >/dev/null && cmake --install /tmp/gtest-build >/dev/null || exit 1

# The wrappers need Python's headers; without them only the C++ tests run.
python_wrappers=ON
[ -f "$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["include"])')/Python.h" ] || python_wrappers=OFF
say "configure (Python wrappers: $python_wrappers)"
cmake -S . -B /tmp/mrl-build -DCMAKE_BUILD_TYPE=Release -DPython3_EXECUTABLE="$(command -v python3)" \
  -DCMAKE_PREFIX_PATH=/tmp/gtest -DMRL_BUILD_TOOLS=OFF -DMRL_BUILD_OPENCL=OFF -DMRL_BUILD_PYTHON=$python_wrappers \
  >"$out/configure.log" 2>&1 || { tail -30 "$out/configure.log"; exit 1; }
grep "CUDA kernel" "$out/configure.log" | tee -a "$out/summary.txt"
cmake --build /tmp/mrl-build -j "$(nproc)" >"$out/build.log" 2>&1 || { grep -E "error|Error" -A3 "$out/build.log" | head -40; exit 1; }
cmake --install /tmp/mrl-build >/dev/null || exit 1
status=0
if [ "${1:-}" = "--sanitize" ]; then
  command -v compute-sanitizer >/dev/null || { say "no compute-sanitizer on this machine"; exit 2; }
  python3 tests/models/make_models.py /tmp/mrl-build/tests/models >/dev/null # the tests' models (CMake: MRL_TEST_MODELS)
  for tool in memcheck racecheck; do
    say "compute-sanitizer --tool $tool"
    compute-sanitizer --tool "$tool" --error-exitcode 3 /tmp/mrl-build/tests/TestMRL \
      --gtest_filter='*CUDA_mixed*:*OnGpuPlatform*/CUDA' >"$out/sanitize-$tool.log" 2>&1 || status=1
    tail -4 "$out/sanitize-$tool.log" | tee -a "$out/summary.txt"
  done
  exit $status
fi
if [ "${1:-}" != "--bench-only" ]; then
  say "C++ tests on CUDA"
  ctest --test-dir /tmp/mrl-build -R "CUDA|MakeTestModels" --output-on-failure >"$out/ctest.log" 2>&1 || status=1
  tail -5 "$out/ctest.log" | tee -a "$out/summary.txt"
  if [ "$python_wrappers" = ON ]; then
    say "Python CUDA tests"
    python3 -m pytest -q -p no:cacheprovider tests/python/test_cuda.py >"$out/pytest.log" 2>&1 || status=1
    tail -3 "$out/pytest.log" | tee -a "$out/summary.txt"
  fi
fi
if [ "$python_wrappers" = ON ]; then
  say "benchmark"
  (cd benchmarks && python3 gpu_step.py --json "$out/gpu_step.json") >"$out/bench.log" 2>&1 || status=1
  tail -40 "$out/bench.log"
fi
exit $status
