#!/usr/bin/env bash
# Pretraining launcher: `bash tools/pretrain.sh [CONFIG] [key=value ...] [--resume auto|PATH|none]`.
# With no arguments it runs the Quickstart: configs/pretrain/quickstart.yaml, generating the synthetic
# default dataset on first use, on CPU (or the GPUs present).
#
# Processes: NGPUS per node (default: SLURM_GPUS_ON_NODE, else the visible GPUs, else 1), NNODES
# (default SLURM_NNODES or 1), NODE_RANK (default SLURM_NODEID or 0), MASTER_ADDR (default: first host
# of SLURM_JOB_NODELIST, else 127.0.0.1), MASTER_PORT (default 29500). One process runs without
# torchrun; more go through torchrun. PIXVOX_SKIP_SETUP=1 skips the environment check.
# (The process logic lives in tools/launch.sh, shared with tools/finetune_seg.sh.)
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=tools/launch.sh
source "$REPO/tools/launch.sh"
pixvox_setup
pixvox_resolve_processes

# Data preparation runs once, before any training process starts (node 0 only on multi-node runs,
# which need the data on a shared file system); a single process prepares its own.
if [[ "$NODE_RANK" == "0" ]] && ! pixvox_single_process; then
    python tools/pretrain.py --prepare-data "$@"
fi

pixvox_launch exec pretrain.sh tools/pretrain.py "$@"
