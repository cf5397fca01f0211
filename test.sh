#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs what is missing, builds, and runs every C++ (GoogleTest through CTest) and Python (pytest) test.
# Extra arguments go to pytest, e.g. ./test.sh -k serialization
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"$root/scripts/setup.sh" || exit 1
venv="${MRL_VENV:-$root/.venv}"
build="${MRL_BUILD_DIR:-$root/build}"
status=0
echo "== C++ tests (ctest) =="
ctest --test-dir "$build" --output-on-failure -j 2 || status=1
echo "== Python tests (pytest) =="
(cd "$root" && "$venv/bin/python" -m pytest -q tests/python "$@") || status=1
exit $status
