#!/usr/bin/env bash
# Fine-tuning launcher for 3D semantic segmentation:
#   bash tools/finetune_seg.sh DATASET [CONFIG] [key=value ...] [--resume auto|PATH|none]
# DATASET names configs/finetune/<DATASET>.yaml, with the short names synthetic, s3dis (s3dis_area5),
# scannet, scannet_scene0000, linear_probe, scannet_points{20,50,100,200}, scannet_scenes{1,5,10,20}pct;
# CONFIG (a .yaml path) replaces that file. Examples:
#   bash tools/finetune_seg.sh s3dis init.checkpoint=outputs/my_pretraining
#   bash tools/finetune_seg.sh scannet configs/finetune/scannet_points20.yaml data.subset.seed=1
#
# With no arguments it fine-tunes on the synthetic default dataset twice, from the Quickstart
# pretraining checkpoint (outputs/quickstart, made by `bash tools/pretrain.sh`) and from scratch, and
# prints both results side by side.
#
# Processes: as tools/pretrain.sh (NGPUS, NNODES, NODE_RANK, MASTER_ADDR, MASTER_PORT, SLURM variables;
# see tools/launch.sh). PIXVOX_SKIP_SETUP=1 skips the environment check.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=tools/launch.sh
source "$REPO/tools/launch.sh"
pixvox_setup
pixvox_resolve_processes

if [[ $# -eq 0 ]]; then
    QUICKSTART="outputs/quickstart/checkpoints"
    if ! compgen -G "$QUICKSTART/step_*.pt" >/dev/null; then
        echo "[finetune_seg.sh] No Quickstart pretraining checkpoint in $REPO/$QUICKSTART." >&2
        echo "[finetune_seg.sh] Run the pretraining first:   bash tools/pretrain.sh" >&2
        echo "[finetune_seg.sh] then run this script again.  (Or fine-tune from scratch only:" >&2
        echo "[finetune_seg.sh]   bash tools/finetune_seg.sh synthetic init.mode=scratch)" >&2
        exit 2
    fi
    CONFIG=configs/finetune/synthetic.yaml
    python tools/finetune_seg.py --prepare-data "$CONFIG"
    pixvox_launch run finetune_seg.sh tools/finetune_seg.py "$CONFIG" experiment.name=finetune_synthetic_pretrained \
        init.mode=pretrained init.checkpoint=outputs/quickstart --resume none
    pixvox_launch run finetune_seg.sh tools/finetune_seg.py "$CONFIG" experiment.name=finetune_synthetic_scratch \
        init.mode=scratch --resume none
    python tools/finetune_seg.py --compare outputs/finetune_synthetic_pretrained outputs/finetune_synthetic_scratch
    exit 0
fi

DATASET="$1"
shift
case "$DATASET" in
    s3dis) CONFIG=configs/finetune/s3dis_area5.yaml ;;
    *.yaml|*.yml) CONFIG="$DATASET" ;;
    *) CONFIG="configs/finetune/$DATASET.yaml" ;;
esac
if [[ $# -gt 0 && ( "$1" == *.yaml || "$1" == *.yml ) ]]; then
    CONFIG="$1"
    shift
fi
if [[ ! -f "$CONFIG" ]]; then
    names=()
    for f in configs/finetune/*.yaml; do names+=("$(basename "$f" .yaml)"); done
    echo "[finetune_seg.sh] config not found: $CONFIG. Datasets: ${names[*]}" >&2
    exit 2
fi

# Data preparation runs once, before any training process starts (node 0 only on multi-node runs); a
# single process prepares its own.
if [[ "$NODE_RANK" == "0" ]] && ! pixvox_single_process; then
    python tools/finetune_seg.py --prepare-data "$CONFIG" "$@"
fi
pixvox_launch exec finetune_seg.sh tools/finetune_seg.py "$CONFIG" "$@"
