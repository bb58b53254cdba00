#!/usr/bin/env bash
# Installs what is missing, builds ReconAD and runs every test with ctest.
# Three builds: the default one (real CUDA when nvcc is present: every kernel
# must compile; tests that need a GPU skip and say so), the SIM build, where
# the CUDA kernels run on the SIMT emulator against the CPU, and an
# ASan + UBSan build of the SIM tests; then each fuzzer runs for seconds.
set -uo pipefail
cd "$(dirname "$0")"
source scripts/common.sh
recon_install_deps "${RECON_TEST_PACKAGES[@]}" || { echo "test.sh: installing dependencies failed"; exit 1; }

status=0
summary=()
run_suite() {
  local name="$1" dir="$2"; shift 2
  echo "== build: $name ($dir)"
  if ! recon_build "$dir" "$@"; then
    echo "test.sh: the $name build failed"
    status=1
    summary+=("$name: build failed")
    return
  fi
  echo "== ctest: $name"
  local log="$dir/ctest.log"
  (cd "$dir" && ctest --output-on-failure --timeout 900) 2>&1 | tee "$log"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
  summary+=("$name: $(grep -E 'tests passed' "$log" | tail -1)")
  passed=$((passed + $(grep -cE '^ *[0-9]+/[0-9]+ Test +#[0-9]+: .* Passed' "$log")))
  failed=$((failed + $(grep -cE '^ *[0-9]+/[0-9]+ Test +#[0-9]+: .*(Failed|Exception|Timeout|Not Run)' "$log")))
  skipped=$((skipped + $(grep -cE '^ *[0-9]+/[0-9]+ Test +#[0-9]+: .*Skipped' "$log")))
}

passed=0 failed=0 skipped=0
run_suite default build/default
run_suite sim build/sim -DRECON_CUDA=SIM -DRECON_BUILD_BENCH=OFF -DRECON_BUILD_APPS=OFF
# ASan + UBSan over the CPU and SIM tests, then each fuzzer for a few seconds.
scripts/sanitize.sh build/asan || status=1
summary+=("asan+ubsan: $(grep -E 'tests passed' build/asan/ctest.log 2>/dev/null | tail -1 || true)")
scripts/fuzz.sh build/fuzz || status=1
summary+=("fuzz: $(grep -c ': ok' build/fuzz/fuzz.log 2>/dev/null) of 6 fuzzers clean")

echo "== summary"
printf '  %s\n' "${summary[@]}"
echo "ctest: $passed passed, $failed failed, $skipped skipped"
exit $status
