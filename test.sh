#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs what is missing, builds, and runs every C++ (GoogleTest through CTest) and Python (pytest) test.
#   ./test.sh                       # the ordinary build's tests
#   ./test.sh --sanitize --fuzz     # then the C++ tests under ASan+UBSan (scripts/sanitize.sh) and every fuzz
#                                   # target for MRL_FUZZ_SECONDS (60) each (scripts/fuzz.sh); CI runs this
# Other arguments go to pytest, e.g. ./test.sh -k serialization
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
sanitize=0 fuzz=0 pytest_args=()
for arg in "$@"; do
  case "$arg" in
    --sanitize) sanitize=1 ;;
    --fuzz) fuzz=1 ;;
    *) pytest_args+=("$arg") ;;
  esac
done
"$root/scripts/setup.sh" || exit 1
venv="${MRL_VENV:-$root/.venv}"
build="${MRL_BUILD_DIR:-$root/build}"
status=0
echo "== C++ tests (ctest) =="
ctest --test-dir "$build" --output-on-failure -j 2 || status=1
echo "== Python tests (pytest) =="
(cd "$root" && "$venv/bin/python" -m pytest -q tests/python "${pytest_args[@]}") || status=1
if [ $sanitize -eq 1 ]; then
  echo "== C++ tests under AddressSanitizer + UndefinedBehaviorSanitizer =="
  "$root/scripts/sanitize.sh" || status=1
fi
if [ $fuzz -eq 1 ]; then
  echo "== fuzz targets =="
  "$root/scripts/fuzz.sh" || status=1
fi
exit $status
