#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs what is missing, builds, and runs the main job on a small default: OpenMM MD of a water box
# whose central molecules are computed by a TorchScript model through MRLForce (energies and ns/day).
# Extra arguments go to examples/run_md.py (see --help).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"$root/scripts/setup.sh"
venv="${MRL_VENV:-$root/.venv}"
exec "$venv/bin/python" "$root/examples/run_md.py" "$@"
