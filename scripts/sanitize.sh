#!/usr/bin/env bash
# AddressSanitizer + UndefinedBehaviorSanitizer: builds the SIM configuration
# (which runs every CPU test as well as the CUDA kernels on the SIMT
# emulator) with -O1 and the sanitizers, tests only (no apps, no benchmarks),
# and runs ctest. Any report fails the run: UBSan halts on its first error,
# ASan always does, LeakSanitizer reports at exit. Nothing is suppressed.
# Usage: scripts/sanitize.sh [BUILD_DIR]   (default build/asan; log in BUILD_DIR/ctest.log)
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh
dir="${1:-build/asan}"

# Through the environment rather than -D: CMake takes CXXFLAGS/LDFLAGS on the
# first configure, and the install_consumer test (a fresh CMake project built
# by ctest) then links against the instrumented library with the same flags.
export CXXFLAGS="-O1 -g1 -fno-omit-frame-pointer -fsanitize=address,undefined"
export LDFLAGS="-fsanitize=address,undefined"
export ASAN_OPTIONS="detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"

log="$dir/ctest.log"
rm -f "$log"
echo "== build: asan+ubsan ($dir)"
# Build type None: no -O3/-DNDEBUG after our -O1 (assertions stay on).
recon_build "$dir" -DRECON_CUDA=SIM -DRECON_BUILD_BENCH=OFF -DRECON_BUILD_APPS=OFF -DCMAKE_BUILD_TYPE=None \
  || { echo "sanitize.sh: the sanitizer build failed"; exit 1; }
echo "== ctest: asan+ubsan"
(cd "$dir" && ctest --output-on-failure --timeout 900) 2>&1 | tee "$log"
exit "${PIPESTATUS[0]}"
