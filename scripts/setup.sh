#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs what is missing and builds openmm-mrl: Debian packages, the project venv with OpenMM and
# PyTorch, then a CMake build installed into the venv's OpenMM.  Every step is skipped when done.
#
#   scripts/setup.sh            # what ./demo.sh and ./test.sh run first
#   MRL_VENV=/path/venv scripts/setup.sh   # use (or create) a venv elsewhere
#   MRL_BUILD_DIR=/path/build scripts/setup.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${MRL_VENV:-$root/.venv}"
build="${MRL_BUILD_DIR:-$root/build}"
say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

# 1. Debian packages (compilers, GoogleTest, OpenCL on the CPU through PoCL).
debian_packages=(g++ cmake make libgtest-dev pocl-opencl-icd ocl-icd-opencl-dev librdkit-dev libboost-dev libhdf5-dev openmpi-bin)
source "$root/scripts/debian-packages.sh"
install_missing_debian_packages "${debian_packages[@]}"

# 2. The project venv with the pinned Python packages.
if [ ! -x "$venv/bin/python" ]; then
  say "creating the venv $venv"
  python3 -m venv "$venv"
fi
python="$venv/bin/python"
stamp="$venv/.mrl-requirements-$(cat "$root/requirements.txt" "$root/requirements-nodeps.txt" | sha1sum | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  say "installing Python packages into $venv (a few minutes the first time)"
  "$python" -m pip install -q --upgrade pip
  torch_spec="$(grep -E '^torch==' "$root/requirements.txt")"
  if ! "$python" -c "import torch" 2>/dev/null; then
    "$python" -m pip install -q --retries 0 --timeout 10 --index-url https://download.pytorch.org/whl/cpu "$torch_spec" 2>/dev/null ||
      say "the CPU-only torch index is unreachable; using PyPI's default torch wheel"
  fi
  "$python" -m pip install -q -r "$root/requirements.txt"
  "$python" -m pip install -q --no-deps -r "$root/requirements-nodeps.txt"
  touch "$stamp"
fi

# 3. Configure, build and install into the venv (OpenMM.libs/lib, its plugins directory, site-packages/openmmmrl).
if [ ! -f "$build/CMakeCache.txt" ] || ! grep -Eq "^Python3_EXECUTABLE:[A-Z]+=$python\$" "$build/CMakeCache.txt"; then
  say "configuring $build"
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DPython3_EXECUTABLE="$python" >/dev/null
fi
say "building"
# One build; its progress lines are dropped, anything else (warnings, errors) is shown.
if ! cmake --build "$build" -j "$(nproc)" 2>&1 | { grep -Ev '^\[ *[0-9]+%\]|^(Consolidate|Scanning)' || true; }; then
  echo "the build failed (messages above)" >&2
  exit 1
fi
# The installed package is rebuilt whole each time, so that no file of an older layout stays importable.
site="$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
rm -rf "$site/openmmmrl"
cmake --install "$build" >/dev/null
# The pure-Python package, its metadata (the version) and console commands (mrl-train, mrl-export,
# mrl-evaluate) from pyproject.toml; CMake installed the compiled modules beside it.
"$python" -m pip install -q --no-deps --no-build-isolation --no-index "$root" 2>&1 | { grep -v "^\s*$" || true; }
"$python" -c "from openmmmrl import MRLForce; import openmmmrl.data" || { echo "openmmmrl (MRLForce, openmmmrl.data) does not import after the install" >&2; exit 1; }
# 4. The shipped correction head as an AOTInductor package for this machine and this torch (a .pt2 is native
# code, never shipped): built once, then found in the cache by the model's hash (openmmmrl.head.export).
"$python" -W ignore - "$root/models/mrl-head-xtb.pt" <<'PY' || { echo "building the .pt2 package of models/mrl-head-xtb.pt failed" >&2; exit 1; }
import os, sys
from openmmmrl.head.export import cached_package, package_path
if not os.path.exists(package_path(sys.argv[1])):
    print("setup: compiling the shipped head's .pt2 package for this machine (a few minutes, once)", flush=True)
cached_package(sys.argv[1])
PY
say "ready: $python with openmmmrl $("$python" -c 'import openmmmrl; print(openmmmrl.__version__)')"
