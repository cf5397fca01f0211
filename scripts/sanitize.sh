#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the C++ tests with AddressSanitizer + UndefinedBehaviorSanitizer (LeakSanitizer included) in a build
# directory of their own and runs them with CTest: Reference, CPU and OpenCL (PoCL) entries, the tools' tests
# with a sanitized mrl-envgen, and the fuzz targets' regression inputs.  Run after scripts/setup.sh (the venv);
# ./test.sh --sanitize runs it after the ordinary tests.  Suppressions: tests/sanitizers/*.supp, third-party only.
#
#   scripts/sanitize.sh                          # address,undefined in build-asan/
#   MRL_SANITIZERS=thread MRL_SANITIZE_BUILD_DIR=build-tsan scripts/sanitize.sh -R Concurrency
# Extra arguments go to ctest; --build-only builds and stops (scripts/fuzz.sh builds its targets here too).
# With clang (Debian's clang and libclang-rt-14-dev, installed when missing) the build also instruments for
# libFuzzer, so the fuzz targets of scripts/fuzz.sh come from the same build.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${MRL_VENV:-$root/.venv}"
sanitizers="${MRL_SANITIZERS:-address,undefined}"
build="${MRL_SANITIZE_BUILD_DIR:-$root/build-asan}"
say() { printf '\033[1m[sanitize]\033[0m %s\n' "$*"; }

build_only=0
if [ "${1:-}" = "--build-only" ]; then
  build_only=1
  shift
fi
source "$root/scripts/debian-packages.sh"
install_missing_debian_packages clang libclang-rt-14-dev
if [ ! -f "$build/CMakeCache.txt" ]; then
  say "configuring $build (clang, -fsanitize=$sanitizers, libFuzzer targets)"
  fuzzers=ON
  [ "$sanitizers" = "thread" ] && fuzzers=OFF
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPython3_EXECUTABLE="$venv/bin/python" \
    -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DMRL_SANITIZE="$sanitizers" -DMRL_BUILD_FUZZERS=$fuzzers \
    -DMRL_BUILD_PYTHON=OFF -DMRL_BUILD_CUDA=OFF >/dev/null
fi
say "building the C++ tests with -fsanitize=$sanitizers"
if ! cmake --build "$build" -j "$(nproc)" 2>&1 | { grep -Ev '^\[ *[0-9]+%\]|^(Consolidate|Scanning)' || true; }; then
  echo "the sanitizer build failed (messages above)" >&2
  exit 1
fi
[ $build_only -eq 1 ] && exit 0
supp="$root/tests/sanitizers"
# halt_on_error: the first report fails the test.  detect_odr_violation=0: OpenMM's plugins and LibTorch are
# loaded twice under different names by design (RTLD_LOCAL), which ASan reports as ODR violations of
# uninstrumented globals.
export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:detect_odr_violation=0:strict_string_checks=1:detect_stack_use_after_return=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:suppressions=$supp/ubsan.supp${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$supp/tsan.supp${TSAN_OPTIONS:+:$TSAN_OPTIONS}"
# The concurrency test runs 200 Context lifetimes here (1000 in the ordinary build): ASan makes each ~3x slower.
export MRL_TEST_LIFETIMES="${MRL_TEST_LIFETIMES:-200}"
say "running the C++ tests under -fsanitize=$sanitizers"
ctest --test-dir "$build" --output-on-failure -j "$(nproc)" "$@"
