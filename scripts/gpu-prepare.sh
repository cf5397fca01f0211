#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Gathers here what a lent GPU machine lacks for scripts/gpu-check.sh, into .gpu/ (ignored by git): the
# Python 3.12 wheels of OpenMM, its CUDA platform and SWIG, and GoogleTest's sources (from Debian's
# libgtest-dev).  The device machine reaches no network, so they travel with the working tree (about 25 MiB).
#
#   scripts/gpu-prepare.sh            # then, with the device tool: run(command="bash scripts/gpu-check.sh", carry=[".gpu"])
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${MRL_VENV:-$root/.venv}/bin/python"
[ -x "$python" ] || python=python3
pin() { grep -E "^$1==" "$root/requirements.txt" | cut -d' ' -f1; }
mkdir -p "$root/.gpu/wheels"
"$python" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_34_x86_64 --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 -d "$root/.gpu/wheels" "$(pin openmm)" "$(pin openmm-cuda-13)" "$(pin swig)"
rm -rf "$root/.gpu/googletest"
cp -r /usr/src/googletest "$root/.gpu/googletest"
du -sh "$root/.gpu"
