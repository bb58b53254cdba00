#!/usr/bin/env bash
# Fuzzing in CI: builds fuzz/ (clang, libFuzzer, ASan + UBSan; its own CMake
# project), replays every saved crash input (fuzz/regressions/<reader>/,
# -runs=0: each file once), then runs each fuzzer for a few seconds from its
# seed corpus (fuzz/corpus/<reader>/; new inputs go to a scratch copy, the
# committed corpus stays as it is). Any crash, sanitizer report, leak or
# timeout fails the script; the crashing input is left in BUILD_DIR/crashes/.
# Usage: scripts/fuzz.sh [BUILD_DIR] [SECONDS per fuzzer, default 5]
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh
dir="${1:-build/fuzz}"
secs="${2:-${RECON_FUZZ_SECONDS:-5}}"
recon_install_deps "${RECON_FUZZ_PACKAGES[@]}" || { echo "fuzz.sh: installing clang failed"; exit 1; }

rm -f "$dir/fuzz.log"
echo "== build: fuzz ($dir)"
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
if [ ! -f "$dir/build.ninja" ]; then
  cmake -S fuzz -B "$dir" -G Ninja -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ "${launcher[@]}" >/dev/null \
    || { echo "fuzz.sh: configuring the fuzz build failed"; exit 1; }
fi
cmake --build "$dir" -j "${RECON_JOBS:-2}" || { echo "fuzz.sh: the fuzz build failed"; exit 1; }

export ASAN_OPTIONS="detect_leaks=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
status=0
results=()
mkdir -p "$dir/crashes"
for reader in idx image safetensors cifar folder json; do
  bin="$dir/fuzz_$reader"
  log="$dir/fuzz_$reader.log"
  : >"$log"
  regress=()
  [ -d "fuzz/regressions/$reader" ] && regress=("fuzz/regressions/$reader")
  # Replay: every saved input once.
  if [ ${#regress[@]} -gt 0 ] && ! "$bin" -runs=0 -artifact_prefix="$dir/crashes/${reader}-" "${regress[@]}" >>"$log" 2>&1; then
    echo "fuzz.sh: fuzz_$reader fails on a saved regression input:"; tail -40 "$log"
    status=1; results+=("$reader: regression FAILED"); continue
  fi
  work="$dir/corpus_$reader"
  rm -rf "$work"; mkdir -p "$work"
  # Short runs: 2 GiB memory cap, 10 s per input, inputs up to 64 KiB.
  if "$bin" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -max_len=65536 \
       -artifact_prefix="$dir/crashes/${reader}-" "$work" "fuzz/corpus/$reader" >>"$log" 2>&1; then
    results+=("$reader: ok ($(grep -oE '#[0-9]+[[:space:]]+DONE' "$log" | tail -1 | tr -d '#' | awk '{print $1}') runs)")
  else
    echo "fuzz.sh: fuzz_$reader found a failure (input in $dir/crashes/):"; tail -60 "$log"
    status=1; results+=("$reader: FAILED")
  fi
done
echo "== fuzz summary (${secs}s each)"
printf '  %s\n' "${results[@]}" | tee "$dir/fuzz.log"
exit $status
