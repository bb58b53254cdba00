# Shared by run.sh and test.sh: installs the Debian packages ReconAD needs
# (only those missing, so a second call is quick) and configures/builds a tree.
# Sourced, not run.

RECON_PACKAGES=(build-essential cmake ninja-build ccache pkg-config
  libopenblas-dev libopenblas-openmp-dev libstb-dev doctest-dev zlib1g-dev libboost-context-dev
  python3 python3-numpy dataset-fashion-mnist)
# test.sh only: test_eval_apps_e2e renders recon_eval's report.html in
# headless Chromium (about 20 s to install from a warm apt cache).
RECON_TEST_PACKAGES=(chromium)
# test.sh only: scripts/fuzz.sh builds fuzz/ with clang and libFuzzer (whose
# runtime is in libclang-rt-14-dev, not a dependency of clang).
RECON_FUZZ_PACKAGES=(clang libclang-rt-14-dev)

recon_install_deps() {
  local missing=()
  for p in "${RECON_PACKAGES[@]}" "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    echo "== dependencies: all installed"
    return 0
  fi
  echo "== installing: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# recon_build DIR [cmake args...]: configures (once) and builds DIR with Ninja.
recon_build() {
  local dir="$1"; shift
  local launcher=()
  command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache)
  if [ ! -f "$dir/build.ninja" ]; then
    cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release "${launcher[@]}" "$@"
  fi
  cmake --build "$dir" -j "${RECON_JOBS:-2}"
}
