#!/usr/bin/env bash
# Self-test of the install on this machine: `bash tools/selftest.sh [--device auto|cpu|cuda] [--json PATH]
# [--only CHECKS] [--skip CHECKS]`. Checks MinkowskiEngine and the cuda_ext kernels against references on
# the CPU and every visible GPU, runs a 20-step pretraining and a 2-process step, and the quick
# benchmarks; prints a table, writes outputs/selftest.json and exits 1 if any check fails.
# Run it on every new node before training. PIXVOX_SKIP_SETUP=1 skips the environment check.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=tools/launch.sh
source "$REPO/tools/launch.sh"
pixvox_setup
exec python -m pixvox.selftest "$@"
