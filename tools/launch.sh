# shellcheck shell=bash
# Shared launcher of the training tools (sourced by tools/pretrain.sh and tools/finetune_seg.sh).
#
# pixvox_setup: environment check (tools/setup_env.sh unless PIXVOX_SKIP_SETUP=1), activates .venv
#   (unless PIXVOX_NO_VENV=1; PIXVOX_VENV picks another), cd to the repository, one BLAS thread.
# pixvox_resolve_processes: NGPUS per node (default: SLURM_GPUS_ON_NODE, else the visible GPUs, else 1),
#   NNODES (default SLURM_NNODES or 1), NODE_RANK (default SLURM_NODEID or 0), MASTER_ADDR (default: first
#   host of SLURM_JOB_NODELIST, else 127.0.0.1), MASTER_PORT (default 29500).
# pixvox_launch MODE TAG SCRIPT [ARGS...]: one process runs `python SCRIPT ARGS` without torchrun; more go
#   through torchrun. MODE exec replaces the shell (signals such as SLURM's pre-emption SIGTERM reach
#   Python directly); MODE run returns the exit status, for scripts that launch several jobs.
# Needs REPO set to the repository root before sourcing.

pixvox_setup() {
    if [[ "${PIXVOX_SKIP_SETUP:-0}" != "1" ]]; then
        bash "$REPO/tools/setup_env.sh"
    fi
    if [[ "${PIXVOX_NO_VENV:-0}" != "1" ]]; then
        # shellcheck disable=SC1091
        source "${PIXVOX_VENV:-$REPO/.venv}/bin/activate"
    fi
    cd "$REPO" || return 1
    export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"
}

# GPUs this node's job may use, at least 1, without importing torch (~2-4 s) where the answer is 1:
# CUDA_VISIBLE_DEVICES when set, else nvidia-smi's list; torch decides only when those say 2 or more
# (a CPU-only torch on a GPU node runs one process).
pixvox_visible_gpus() {
    local n=0
    if [[ -n "${CUDA_VISIBLE_DEVICES+x}" ]]; then
        if [[ -n "$CUDA_VISIBLE_DEVICES" && "$CUDA_VISIBLE_DEVICES" != "-1" ]]; then
            n="$(tr ',' '\n' <<<"$CUDA_VISIBLE_DEVICES" | grep -c .)"
        fi
    elif command -v nvidia-smi >/dev/null; then
        n="$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ' || true)"
    fi
    if (( n >= 2 )); then
        python -c 'import torch; print(max(1, torch.cuda.device_count()))'
    else
        echo 1
    fi
}

# True when one process runs the job; it then prepares its own data (no separate --prepare-data).
pixvox_single_process() {
    [[ "$NNODES" == "1" && "$NGPUS" == "1" ]]
}

pixvox_resolve_processes() {
    NNODES="${NNODES:-${SLURM_NNODES:-1}}"
    NODE_RANK="${NODE_RANK:-${SLURM_NODEID:-0}}"
    if [[ -z "${NGPUS:-}" ]]; then
        if [[ -n "${SLURM_GPUS_ON_NODE:-}" ]]; then
            NGPUS="$SLURM_GPUS_ON_NODE"
        else
            NGPUS="$(pixvox_visible_gpus)"
        fi
    fi
    if [[ -z "${MASTER_ADDR:-}" ]]; then
        if [[ -n "${SLURM_JOB_NODELIST:-}" ]] && command -v scontrol >/dev/null; then
            MASTER_ADDR="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n1)"
        else
            MASTER_ADDR="127.0.0.1"
        fi
    fi
    MASTER_PORT="${MASTER_PORT:-29500}"
}

pixvox_launch() {
    local mode="$1" tag="$2" script="$3"
    shift 3
    local cmd
    if pixvox_single_process; then
        cmd=(python "$script" "$@")
    else
        echo "[$tag] torchrun: $NNODES node(s) x $NGPUS process(es), node rank $NODE_RANK, master $MASTER_ADDR:$MASTER_PORT"
        cmd=(torchrun --nnodes="$NNODES" --nproc-per-node="$NGPUS" --node-rank="$NODE_RANK"
             --master-addr="$MASTER_ADDR" --master-port="$MASTER_PORT" "$script" "$@")
    fi
    if [[ "$mode" == "exec" ]]; then
        exec "${cmd[@]}"
    fi
    "${cmd[@]}"
}
