#!/usr/bin/env bash
# One prepared GPU session (issue 9): builds ReconAD for sm_90 with cuDNN,
# runs the real-GPU tests (the CUDA suites) and every benchmark (bench_kernels with
# its composite rows against kernels_torch.py, bench_train on cuda with its
# PyTorch twin, then bench_ops), profiles the SSIM and conv
# kernels with ncu when it works, and writes every table, JSON and log to one
# folder: $OUT if set, else bench/out. Sized for 10 minutes on an H200; each
# step has its own time limit, a failed or timed-out step is recorded in
# summary.txt and the rest still runs. Exit status: 0 when every step passed.
#
# Usage: bench/run_gpu.sh            (from anywhere; env: OUT, BUILD_DIR, JOBS, PYTHON, BUDGET_S)
set -u
cd "$(dirname "$0")/.." || exit 2
ROOT=$PWD
OUT=${OUT:-$ROOT/bench/out}
BUILD=${BUILD_DIR:-$ROOT/build-gpu-bench}
JOBS=${JOBS:-$(nproc)}
BUDGET_S=${BUDGET_S:-570}  # stop starting steps after this many seconds
mkdir -p "$OUT" || { echo "run_gpu.sh: cannot create $OUT" >&2; exit 2; }
SUMMARY=$OUT/summary.txt
: >"$SUMMARY"
FAILED=0
START=$SECONDS

note() { echo "[run_gpu $((SECONDS - START))s] $*" | tee -a "$SUMMARY"; }

# step NAME LIMIT_S CMD...: runs CMD with a time limit, output in $OUT/NAME.log.
step() {
  local name=$1 limit=$2
  shift 2
  local left=$((BUDGET_S - (SECONDS - START)))
  if ((left < 15)); then
    note "SKIP $name (time budget spent)"
    FAILED=1
    return 1
  fi
  ((limit > left)) && limit=$left
  echo "== $name (limit ${limit}s): $*" | tee "$OUT/$name.log"
  local t0=$SECONDS rc
  timeout --kill-after=10 "$limit" "$@" >>"$OUT/$name.log" 2>&1
  rc=$?
  if ((rc == 0)); then
    note "ok   $name ($((SECONDS - t0))s)"
  else
    ((rc == 124 || rc == 137)) && note "FAIL $name: timed out after ${limit}s (see $name.log)" ||
      note "FAIL $name: exit $rc (see $name.log)"
    tail -5 "$OUT/$name.log" | sed 's/^/       /' | tee -a "$SUMMARY"
    FAILED=1
  fi
  return $rc
}

note "output in $OUT; build in $BUILD; $JOBS jobs; load average $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1 || echo "nvidia-smi failed"; } \
  >"$OUT/gpu.txt"
note "gpu: $(tail -n +2 "$OUT/gpu.txt" | head -1)"

# ---- build (cuDNN optional: retried without it when configure fails) ----------------
CMAKE_ARGS=(-S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DRECON_CUDA=ON
  -DCMAKE_CUDA_ARCHITECTURES=90 -DRECON_TORCH_REFERENCE=OFF)
command -v ninja >/dev/null || CMAKE_ARGS=(-S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DRECON_CUDA=ON
  -DCMAKE_CUDA_ARCHITECTURES=90 -DRECON_TORCH_REFERENCE=OFF)
command -v ccache >/dev/null && CMAKE_ARGS+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache)
[[ -x /usr/local/cuda/bin/nvcc ]] && CMAKE_ARGS+=(-DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc)
if ! step configure 90 cmake "${CMAKE_ARGS[@]}" -DRECON_CUDNN=ON; then
  rm -f "$BUILD/CMakeCache.txt"
  step configure_no_cudnn 90 cmake "${CMAKE_ARGS[@]}" -DRECON_CUDNN=OFF
fi
# Only what this session runs: the CUDA test suites and the three benchmarks
# (the apps and CPU suites are CI's); a full build would spend the budget.
TARGETS=(bench_ops bench_kernels bench_train)
for f in "$ROOT"/tests/test_cuda_*.cpp; do TARGETS+=("$(basename "$f" .cpp)"); done
step build 300 cmake --build "$BUILD" -j "$JOBS" --target "${TARGETS[@]}"

BIN=$BUILD/bench
have() { [[ -x $1 ]] || { note "SKIP $2: $1 was not built"; FAILED=1; return 1; }; }

# ---- real-GPU tests -----------------------------------------------------------------
if [[ -f $BUILD/CTestTestfile.cmake ]]; then
  step ctest 150 ctest --test-dir "$BUILD" -R '^test_cuda_' --output-on-failure -j 4 --timeout 120
else
  note "SKIP ctest: no build"
  FAILED=1
fi

# ---- benchmarks (most wanted first: conv against cuDNN, then the training steps) -----
PY=${PYTHON:-python3}
torch_cuda() { "$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' >/dev/null 2>&1; }
if have "$BIN/bench_kernels" bench_kernels; then
  # Conv rows against cuDNN, and the composite ops (SSIM, entropies, information reduction) on
  # cuda; their torch side is kernels_torch.py on the exported inputs (validated before timing).
  step bench_kernels 120 "$BIN/bench_kernels" --json "$OUT/bench_kernels.json" --export "$BUILD/kernels_export"
  if ! torch_cuda; then
    note "SKIP bench_kernels_torch: $PY has no torch with CUDA (ReconAD numbers only)"
  elif [[ -f $BUILD/kernels_export/kernels.safetensors ]]; then
    step bench_kernels_torch 90 "$PY" "$ROOT/bench/reference/kernels_torch.py" "$BUILD/kernels_export" \
      --device cuda --json "$OUT/bench_kernels_torch.json" --ours "$OUT/bench_kernels.json"
  else
    note "SKIP bench_kernels_torch: no export from bench_kernels"
    FAILED=1
  fi
fi
if have "$BIN/bench_train" bench_train; then
  # ReconAD on cuda; the torch side is the Python twin (the machine's torch package),
  # which validates against the exported values before it times anything.
  step bench_train 120 "$BIN/bench_train" --device cuda --no-torch --export "$OUT/train_export" \
    --json "$OUT/bench_train_cuda.json"
  if torch_cuda; then
    if [[ -f $OUT/train_export/expected.safetensors ]]; then
      step bench_train_torch 120 "$PY" "$ROOT/bench/reference/twostage_torch.py" "$OUT/train_export" --device cuda \
        --json "$OUT/bench_train_torch_cuda.json" --ours "$OUT/bench_train_cuda.json"
    else
      note "SKIP bench_train_torch: no export from bench_train"
      FAILED=1
    fi
  else
    note "SKIP bench_train_torch: $PY has no torch with CUDA (ReconAD numbers only)"
  fi
  # The same steps without CUDA graphs (eager launches): what the graphs buy.
  step bench_train_eager 90 "$BIN/bench_train" --device cuda --no-torch --cuda-graphs off \
    --json "$OUT/bench_train_cuda_eager.json"
fi

# The per-op microbenchmarks last of the benchmarks: the least needed if time runs out.
have "$BIN/bench_ops" bench_ops && step bench_ops 60 "$BIN/bench_ops" --json "$OUT/bench_ops.json"

# ---- ncu on the SSIM and conv kernels ---------------------------------------------------
if command -v ncu >/dev/null && [[ -x $BIN/bench_kernels ]]; then
  if step ncu_probe 60 ncu --clock-control none --launch-count 1 "$BIN/bench_kernels" --runs 1 &&
    ! grep -q "==ERROR==" "$OUT/ncu_probe.log"; then
    step ncu_ssim_conv 150 ncu --clock-control none --kernel-name regex:'ssim|conv' --launch-count 12 \
      --section SpeedOfLight --section Occupancy --section LaunchStats --csv --page details \
      "$BIN/bench_kernels" --runs 1
    # The conv rows come first: the SSIM kernels (forward, backward) get their own run without them.
    step ncu_ssim 90 ncu --clock-control none --kernel-name regex:'ssim' --launch-count 4 \
      --section SpeedOfLight --section Occupancy --section LaunchStats --csv --page details \
      "$BIN/bench_kernels" --runs 1 --no-conv
    # The summary: one line per kernel launch with its duration and SOL numbers.
    cat "$OUT/ncu_ssim_conv.log" "$OUT/ncu_ssim.log" 2>/dev/null | grep -E '"(ID|[0-9]+)",' |
      grep -E 'Kernel Name|Duration|Memory Throughput|Compute \(SM\) Throughput|Achieved Occupancy' \
        >"$OUT/ncu_summary.csv" || true
    note "ncu summary: $OUT/ncu_summary.csv (full reports in ncu_ssim_conv.log, ncu_ssim.log)"
  else
    note "SKIP ncu: it does not run here (permissions or driver; see ncu_probe.log)"
  fi
else
  note "SKIP ncu: not installed or bench_kernels not built"
fi

# ---- one file with every table ----------------------------------------------------------
{
  for f in gpu.txt bench_ops.log bench_kernels.log bench_kernels_torch.log bench_train.log bench_train_torch.log bench_train_eager.log \
    summary.txt; do
    [[ -f $OUT/$f ]] && { echo "##### $f"; grep -v '^{' "$OUT/$f"; echo; }
  done
} >"$OUT/tables.txt"
note "done in $((SECONDS - START))s; tables in $OUT/tables.txt; $( ((FAILED)) && echo 'some steps FAILED' || echo 'all steps passed')"
exit $FAILED
