#!/usr/bin/env bash
# Installs what is missing, builds ReconAD in Release and runs the main
# program on its default data (Fashion-MNIST from Debian's
# dataset-fashion-mnist). Extra arguments go to the program.
set -euo pipefail
cd "$(dirname "$0")"
source scripts/common.sh
recon_install_deps
recon_build build/default
APP=build/default/apps/train_twostage
echo "== running $APP $*"
exec "$APP" "$@"
