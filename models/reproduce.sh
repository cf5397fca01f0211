#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Reproduces the shipped force head models/mrl-head-mmff94.pt and its model card's numbers:
#   1. interaction environments of the 52 shipped pairs with mrl-envgen build (about 5 min on 2 cores),
#   2. pretraining with python -m openmmmrl.train under torchrun, 2 processes (about 30 min),
#   3. export to TorchScript, 4. python -m openmmmrl.evaluate (about 40 min).
# Each step resumes when rerun.  Output: out/head/ (data, run, evaluation), models/mrl-head-mmff94.pt.
#   models/reproduce.sh            (after ./demo.sh or scripts/setup.sh)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${MRL_VENV:-$root/.venv}"
out="$root/out/head"
mkdir -p "$out"
"$venv/bin/mrl-envgen" build "$root/examples/pairs.csv" --output "$out/envs.h5" --conformers 3 --copies 5 \
  --equilibration 500 --steps 2000 --interval 100 --temperature 400 --seed 1 --quiet --summary "$out/envs.json"
"$venv/bin/torchrun" --standalone --nproc_per_node 2 -m openmmmrl.train "$out/envs.h5" --output "$out/run" \
  --epochs 25 --batch-size 16 --features 48 --cutoff-nm 0.45 --layers 3 --seed 1 --threads 1
"$venv/bin/python" -m openmmmrl.export "$out/run/best.pt" --output "$root/models/mrl-head-mmff94.pt"
"$venv/bin/python" -m openmmmrl.evaluate "$root/models/mrl-head-mmff94.pt" --data "$out/envs.h5" \
  --checkpoint "$out/run/best.pt" --output "$out/evaluation" --seed 1
