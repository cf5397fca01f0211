#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A short example run of mrl-envgen: the first 8 shipped solute/solvent pairs, 5 solvent copies each,
# 20 frames per environment, then a summary and an extended XYZ export for ASE.  About a minute on 2 cores.
#   examples/make_dataset.sh [OUTPUT_DIR]        (after ./demo.sh or scripts/setup.sh)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
envgen="${MRL_VENV:-$root/.venv}/bin/mrl-envgen"
out="${1:-$root/out/dataset}"
mkdir -p "$out"
"$envgen" build "$root/examples/pairs.csv" --output "$out/pairs.h5" --limit 8 --copies 5 \
  --equilibration 500 --steps 2000 --interval 100 --temperature 300 --seed 1 --summary "$out/summary.json"
"$envgen" inspect "$out/pairs.h5" --records 3
"$envgen" export "$out/pairs.h5" --output "$out/pairs.extxyz"
echo "dataset: $out/pairs.h5 (extended XYZ: $out/pairs.extxyz)"
