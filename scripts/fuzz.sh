#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs every libFuzzer target of tests/fuzz/ for a bounded time (default 60 s each, MRL_FUZZ_SECONDS) from its
# seed corpus (tests/fuzz/corpus/<target>/) and the inputs that once crashed (tests/fuzz/regressions/<target>/),
# built with clang, ASan and UBSan by scripts/sanitize.sh --build-only in build-asan/.  Prints the inputs run and
# the findings per target; a finding (crash, escaping exception, leak, timeout, allocation over 1 GiB) fails the
# run and leaves its input in build-asan/fuzz/findings/: add it to tests/fuzz/regressions/<target>/ with the fix.
# The target dataset-python is the Python reader (tests/fuzz/fuzz_dataset_reader.py, atheris).
#
#   scripts/fuzz.sh                 # every target, 60 s each
#   MRL_FUZZ_SECONDS=600 scripts/fuzz.sh dcd pdb
# The mutations follow MRL_FUZZ_SEED (1): CI repeats the same sequence; set another seed to explore further.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${MRL_SANITIZE_BUILD_DIR:-$root/build-asan}"
seconds="${MRL_FUZZ_SECONDS:-60}"
say() { printf '\033[1m[fuzz]\033[0m %s\n' "$*"; }
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(mrlforcexml modelbytes dcd pdb dataset dataset-python)
venv="${MRL_VENV:-$root/.venv}"

MRL_SANITIZE_BUILD_DIR="$build" "$root/scripts/sanitize.sh" --build-only || exit 1
export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:detect_odr_violation=0:allocator_may_return_null=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export LSAN_OPTIONS="suppressions=$root/tests/sanitizers/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:suppressions=$root/tests/sanitizers/ubsan.supp"
status=0
summary=()
for target in "${targets[@]}"; do
  if [ "$target" = dataset-python ]; then
    # The Python reader under atheris (requirements.txt); its seeds are the C++ dataset target's.
    binary="$venv/bin/python"
    script=("$root/tests/fuzz/fuzz_dataset_reader.py")
    seeds="dataset"
  else
    binary="$(find "$build" -name "fuzz-$target" -type f -perm -u+x | head -1)"
    script=()
    seeds="$target"
  fi
  if [ -z "$binary" ]; then
    echo "no fuzz target fuzz-$target in $build (the targets: tests/fuzz/CMakeLists.txt)" >&2
    exit 2
  fi
  work="$build/fuzz/corpus/$target" findings="$build/fuzz/findings"
  rm -rf "$work"
  mkdir -p "$work" "$findings"
  log="$build/fuzz/$target.log"
  say "fuzz-$target for ${seconds} s"
  regressions="$root/tests/fuzz/regressions/$target"
  inputs=("$root/tests/fuzz/corpus/$seeds")
  # The dataset regressions are files of format version 2 (variable-length strings): mutated, they lead into
  # HDF5's global heap reader, which hangs on damaged bytes (third-party, docs/dataset.md "Why version 3").  They
  # run as CTest tests (FuzzRegression.dataset); the fuzzers start from version 3 seeds only.
  [ -d "$regressions" ] && [ "$seeds" != dataset ] && inputs+=("$regressions")
  # The first directory is the working corpus (new inputs go there, never into the repository).
  "$binary" "${script[@]}" "$work" "${inputs[@]}" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=3072 -malloc_limit_mb=1024 \
    -seed="${MRL_FUZZ_SEED:-1}" -print_final_stats=1 -artifact_prefix="$findings/$target-" >"$log" 2>&1
  rc=$?
  runs="$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' | tail -1)"
  if [ $rc -eq 0 ]; then
    summary+=("$(printf '%-12s %10s inputs  no finding' "$target" "${runs:-?}")")
  else
    status=1
    tail -60 "$log" >&2
    summary+=("$(printf '%-12s %10s inputs  FINDING (exit %d): %s' "$target" "${runs:-?}" "$rc" \
      "$(ls -t "$findings/$target-"* 2>/dev/null | head -1)")")
  fi
done
say "summary (build: $build; logs: $build/fuzz/*.log)"
printf '  %s\n' "${summary[@]}"
exit $status
