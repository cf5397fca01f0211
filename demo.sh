#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs what is missing, builds, and runs the main job on a small default: mrl-envgen builds an
# interaction environment from a SMILES pair (pyridine in 5 waters); the interaction energy at the start
# from MMFF94, MMFF94 + the shipped correction head (models/mrl-head-xtb.pt) and GFN2-xTB; then OpenMM MD
# of MMFF94 + head through MRLForce: energies, ns/day, a trajectory and a plot in out/demo/.  Extra
# arguments go to examples/run_head.py (see --help), e.g.
#   ./demo.sh --central "CC(=O)Nc1ccc(O)cc1" --partner CO --steps 5000
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"$root/scripts/setup.sh"
venv="${MRL_VENV:-$root/.venv}"
exec "$venv/bin/python" "$root/examples/run_head.py" "$@"
