#!/usr/bin/env bash
# One idempotent environment script for pixvox, used by the README, .ci/run, the Dockerfile and
# environment.yml alike. On a fresh machine it creates .venv/, installs torch, the BLAS that
# MinkowskiEngine links against, MinkowskiEngine 0.5.4 built from its source release with the patches in
# patches/minkowskiengine/ (once, into a wheel cache keyed by Python, torch, CUDA and the patch set), then
# cuda_ext and pixvox itself (editable, with test extras).
#
# A run that finds the environment as the last successful run left it finishes in well under a second:
# that run wrote a stamp keyed by everything that decides the install (Python, the installed packages,
# nvcc, this script, setup.py, pyproject.toml, cuda_ext/ and the patch set), and any change to one of
# them re-runs the checks. PIXVOX_SETUP_FORCE=1 re-runs them regardless.
#
# Environment variables (all optional):
#   PIXVOX_VENV         where the virtual environment lives           (default: <repo>/.venv)
#   PIXVOX_PYTHON       interpreter used to create it                 (default: python3)
#   PIXVOX_CACHE        wheel and source cache for MinkowskiEngine    (default: ~/.cache/pixvox)
#   PIXVOX_TORCH_SPEC   torch requirement                             (default: torch==2.13.0)
#   PIXVOX_CUDA         auto | 0 | 1: build CUDA kernels              (default: auto = nvcc and a CUDA torch present)
#   PIXVOX_NO_VENV=1    install into the active interpreter instead (Docker, conda)
#   PIXVOX_ME_SDIST     a local MinkowskiEngine-0.5.4.tar.gz (offline machines; checked against its sha256)
#   PIXVOX_SETUP_FORCE=1  ignore the stamp and re-run every check
#   TORCH_CUDA_ARCH_LIST  CUDA architectures to compile for (e.g. "8.0;9.0")
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ME_VERSION="0.5.4"
TORCH_SPEC="${PIXVOX_TORCH_SPEC:-torch==2.13.0}"
CACHE_ROOT="${PIXVOX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pixvox}"
T0=$(date +%s)

say()  { printf '\033[1m[setup_env]\033[0m %s\n' "$*"; }
die()  { printf '\033[1;31m[setup_env] error:\033[0m %s\n' "$*" >&2; exit 1; }
PATCH_DIR="$REPO/patches/minkowskiengine"

# ---------------------------------------------------------------- 0. stamp: nothing changed, nothing to do
if [[ "${PIXVOX_NO_VENV:-0}" == "1" ]]; then
    STAMP_PY="$(command -v python3 || command -v python || true)"
else
    STAMP_PY="${PIXVOX_VENV:-$REPO/.venv}/bin/python"
fi
# What decides the install, read without importing torch: the interpreter and the distributions
# installed for it, MinkowskiEngine's patch-set marker, nvcc, pixvox's built extension, the inputs of the
# build, and the variables above.
stamp_key() {
    "$STAMP_PY" -I -S -c '
import glob, os, sys, sysconfig
site = sysconfig.get_paths()["purelib"]
print(sys.executable, sys.version.split()[0], site)
print(*sorted(os.path.basename(p) for p in glob.glob(os.path.join(site, "*.dist-info"))))
marker = os.path.join(site, "MinkowskiEngine", "_pixvox_patches.py")
print(open(marker).read() if os.path.exists(marker) else "no MinkowskiEngine patch marker")
' || return 1
    if command -v nvcc >/dev/null; then nvcc --version | tail -n 2; else echo "no nvcc"; fi
    (cd "$REPO" && ls -l src/pixvox/_ext*.so 2>/dev/null || echo "no _ext")
    (cd "$REPO" && find tools/setup_env.sh setup.py pyproject.toml cuda_ext "$PATCH_DIR" -type f \
        -not -name '*.pyc' -print0 | sort -z | xargs -0 sha256sum)
    env | grep -E '^(PIXVOX_(TORCH_SPEC|CUDA|NO_VENV|VENV|ME_SDIST)|TORCH_CUDA_ARCH_LIST)=' | sort || true
}
STAMP="$REPO/build/.pixvox-setup-stamp-$(printf '%s' "$STAMP_PY" | sha256sum | cut -c1-12)"
if [[ "${PIXVOX_SETUP_FORCE:-0}" != "1" && -x "$STAMP_PY" && -f "$STAMP" ]] \
        && key="$(stamp_key 2>/dev/null)" && [[ "$(sha256sum <<<"$key" | cut -c1-64)" == "$(cat "$STAMP")" ]]; then
    say "environment unchanged since its last successful setup (stamp $STAMP); nothing to do"
    exit 0
fi

# ---------------------------------------------------------------- 1. virtual environment
if [[ "${PIXVOX_NO_VENV:-0}" == "1" ]]; then
    PY="$(command -v python3 || command -v python)" || die "no python3 on PATH"
    say "PIXVOX_NO_VENV=1: installing into $PY"
else
    VENV="${PIXVOX_VENV:-$REPO/.venv}"
    BASE_PY="${PIXVOX_PYTHON:-python3}"
    command -v "$BASE_PY" >/dev/null || die "'$BASE_PY' not found; install Python >= 3.9 or set PIXVOX_PYTHON"
    if [[ ! -x "$VENV/bin/python" ]]; then
        say "creating virtual environment $VENV with $($BASE_PY --version 2>&1)"
        "$BASE_PY" -m venv "$VENV" || die "python -m venv failed; on Debian/Ubuntu install python3-venv"
    else
        say "virtual environment $VENV exists"
    fi
    PY="$VENV/bin/python"
fi
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 9))' || die "Python >= 3.9 is required, found $("$PY" --version)"
PIP=("$PY" -m pip --disable-pip-version-check)
# pip >= 23.1 is needed for the -C/--config-settings options of the MinkowskiEngine build.
if ! "$PY" -c 'import sys, pip; sys.exit(tuple(map(int, pip.__version__.split(".")[:2])) < (23, 1))' 2>/dev/null; then
    say "upgrading pip"
    "${PIP[@]}" install -q -U "pip>=24" || die "could not upgrade pip"
fi

have_pkg() { "$PY" -c "import importlib.metadata as m, sys; m.version(sys.argv[1])" "$1" >/dev/null 2>&1; }

# ---------------------------------------------------------------- 2. torch
want_torch="${TORCH_SPEC#torch==}"
have_torch="$("$PY" -c 'import torch; print(torch.__version__)' 2>/dev/null || true)"
if [[ -n "$have_torch" && ( "$want_torch" == "$TORCH_SPEC" || "${have_torch%%+*}" == "$want_torch" ) ]]; then
    say "torch $have_torch present"
else
    say "installing $TORCH_SPEC (a CPU build where the local wheel index offers one; set PIXVOX_TORCH_SPEC to change)"
    "${PIP[@]}" install -q "$TORCH_SPEC" "numpy>=1.24,<3" || die "could not install $TORCH_SPEC"
fi
read -r PY_TAG TORCH_V TORCH_CUDA < <("$PY" -c '
import sys, torch
print(f"py{sys.version_info[0]}{sys.version_info[1]}", torch.__version__.split("+")[0], torch.version.cuda or "cpu")')

case "${PIXVOX_CUDA:-auto}" in
    1) WITH_CUDA=1 ;;
    0) WITH_CUDA=0 ;;
    *) if command -v nvcc >/dev/null && [[ "$TORCH_CUDA" != "cpu" ]]; then WITH_CUDA=1; else WITH_CUDA=0; fi ;;
esac
if [[ "$WITH_CUDA" == "1" ]]; then
    [[ "$TORCH_CUDA" != "cpu" ]] || die "PIXVOX_CUDA=1 but torch $TORCH_V is a CPU build; set PIXVOX_TORCH_SPEC to a CUDA build"
    command -v nvcc >/dev/null || die "PIXVOX_CUDA=1 but nvcc is not on PATH; install the CUDA toolkit matching torch ($TORCH_CUDA)"
    CUDA_TAG="cu${TORCH_CUDA//./}"
    say "CUDA build: torch CUDA $TORCH_CUDA, nvcc $(nvcc --version | sed -n 's/.*release \([0-9.]*\).*/\1/p')"
else
    CUDA_TAG="cpu"
    say "CPU-only build (no nvcc or a CPU torch)"
fi

# ---------------------------------------------------------------- 3. runtime and build dependencies
# Installed before MinkowskiEngine because its build imports numpy and setuptools.
if ! "$PY" -c 'import numpy, setuptools, wheel, yaml' >/dev/null 2>&1; then
    say "installing build prerequisites (numpy, setuptools, wheel, ninja, pyyaml)"
    "${PIP[@]}" install -q "numpy>=1.24,<3" "setuptools>=64" wheel ninja pyyaml || die "pip install of build prerequisites failed"
fi

# ---------------------------------------------------------------- 4. BLAS for MinkowskiEngine
BLAS_ARGS=(-C--global-option=--blas=openblas)
find_openblas_header() {
    for d in /usr/include/x86_64-linux-gnu/openblas-pthread /usr/include/aarch64-linux-gnu/openblas-pthread \
             /usr/include/openblas /usr/include "${CONDA_PREFIX:-/nonexistent}/include"; do
        [[ -f "$d/cblas.h" ]] && { echo "$d"; return 0; }
    done
    return 1
}
if ! find_openblas_header >/dev/null; then
    if [[ "$(id -u)" == "0" ]] && command -v apt-get >/dev/null; then
        say "installing libopenblas-dev with apt-get"
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libopenblas-dev >/dev/null) \
            || die "apt-get install libopenblas-dev failed"
    else
        die "MinkowskiEngine needs OpenBLAS headers (cblas.h). Install them first:
    Debian/Ubuntu: sudo apt-get install libopenblas-dev
    conda:         conda env create -f environment.yml   (brings openblas), then rerun this script"
    fi
fi
BLAS_INC="$(find_openblas_header)"
if [[ -n "${CONDA_PREFIX:-}" && "$BLAS_INC" == "$CONDA_PREFIX/include" ]]; then
    BLAS_ARGS+=(-C--global-option=--blas_include_dirs="$BLAS_INC" -C--global-option=--blas_library_dirs="$CONDA_PREFIX/lib")
fi

# ---------------------------------------------------------------- 5. MinkowskiEngine (patched, cached wheel)
# 0.5.4's source release, checked against the sha256 in patches/minkowskiengine/sdist.sha256, with every
# patch of patches/minkowskiengine/series applied in order. The wheel cache key carries the patch set's
# hash, and the built engine records it in MinkowskiEngine/_pixvox_patches.py, so a changed patch set
# rebuilds the engine and an unpatched install is replaced.
[[ -f "$PATCH_DIR/series" && -f "$PATCH_DIR/sdist.sha256" ]] || die "$PATCH_DIR/series or sdist.sha256 is missing"
mapfile -t ME_PATCHES < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$PATCH_DIR/series")
for p in "${ME_PATCHES[@]}"; do [[ -f "$PATCH_DIR/$p" ]] || die "patches/minkowskiengine/series names $p, which does not exist"; done
PATCH_HASH="$(cd "$PATCH_DIR" && cat sdist.sha256 series "${ME_PATCHES[@]}" | sha256sum | cut -c1-16)"
ME_KEY="minkowskiengine-${ME_VERSION}-${PY_TAG}-torch${TORCH_V}-${CUDA_TAG}-patches${PATCH_HASH}"
ME_CACHE="$CACHE_ROOT/wheels/$ME_KEY"
# The patch set the installed engine was built with, read without importing it (that imports torch).
installed_patch_set() {
    "$PY" -c '
import importlib.util, os, re
spec = importlib.util.find_spec("MinkowskiEngine")
path = os.path.join(os.path.dirname(spec.origin), "_pixvox_patches.py") if spec and spec.origin else ""
m = re.search(r"PATCH_SET = \"(\w+)\"", open(path).read()) if os.path.exists(path) else None
print(m.group(1) if m else "none")' 2>/dev/null || echo none
}
me_imports() { "$PY" -c 'import MinkowskiEngine' >/dev/null 2>&1; }
SDIST_NAME="$(awk '{print $2}' "$PATCH_DIR/sdist.sha256")"
SDIST_SHA="$(awk '{print $1}' "$PATCH_DIR/sdist.sha256")"
# The source release, from PIXVOX_ME_SDIST, the cache or the package index, verified by its sha256;
# sets SDIST_PATH.
fetch_sdist() {
    local dest="$CACHE_ROOT/sdist/$SDIST_NAME" tmp
    mkdir -p "$CACHE_ROOT/sdist"
    if [[ -n "${PIXVOX_ME_SDIST:-}" ]]; then
        [[ -f "$PIXVOX_ME_SDIST" ]] || die "PIXVOX_ME_SDIST=$PIXVOX_ME_SDIST does not exist"
        cp "$PIXVOX_ME_SDIST" "$dest.partial" && mv "$dest.partial" "$dest"
    elif [[ ! -f "$dest" ]]; then
        say "downloading the MinkowskiEngine $ME_VERSION source release from the package index"
        tmp="$(mktemp -d)"
        # pip prepares the release's metadata by running its setup.py, which (unpatched) runs
        # `pip uninstall MinkowskiEngine -y` with the first pip on PATH: a stand-in pip there keeps it
        # from touching any environment. The build options spare setup.py its numpy.distutils BLAS probe.
        mkdir -p "$tmp/no-pip" && printf '#!/bin/sh\nexit 0\n' > "$tmp/no-pip/pip" && chmod +x "$tmp/no-pip/pip"
        printf 'minkowskiengine==%s --config-settings=--global-option=--blas=openblas --config-settings=--global-option=--cpu_only\n' \
            "$ME_VERSION" > "$tmp/requirements.txt"
        PATH="$tmp/no-pip:$PATH" "${PIP[@]}" download -q --no-deps --no-binary :all: --no-build-isolation --use-pep517 \
            -r "$tmp/requirements.txt" -d "$tmp" > "$tmp/download.log" 2>&1 \
            || { tail -n 30 "$tmp/download.log" >&2; die "could not download minkowskiengine==$ME_VERSION (offline? set PIXVOX_ME_SDIST=/path/to/$SDIST_NAME)"; }
        [[ -f "$tmp/$SDIST_NAME" ]] || die "pip did not save $SDIST_NAME (got: $(ls "$tmp"))"
        mv "$tmp/$SDIST_NAME" "$dest.partial" && mv "$dest.partial" "$dest"
        rm -rf "$tmp"
    fi
    echo "$SDIST_SHA  $dest" | sha256sum -c --quiet - >/dev/null 2>&1 || {
        rm -f "$dest"
        die "$SDIST_NAME does not have the sha256 in patches/minkowskiengine/sdist.sha256 ($SDIST_SHA); the patches are made for that file"; }
    SDIST_PATH="$dest"
}
# Unpack the release into $1/src and apply the patch set; any patch that does not apply stops the build.
patched_source() {
    local work="$1" src p
    if ! command -v patch >/dev/null && [[ "$(id -u)" == "0" ]] && command -v apt-get >/dev/null; then
        # As for OpenBLAS above: a root shell on Debian/Ubuntu (containers, CI) gets it installed.
        say "installing the patch program with apt-get"
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq patch >/dev/null) || true
    fi
    command -v patch >/dev/null || die "the 'patch' program is needed to patch MinkowskiEngine (Debian/Ubuntu: apt-get install patch; conda: conda install patch)"
    fetch_sdist
    mkdir -p "$work/src"
    tar -xzf "$SDIST_PATH" -C "$work/src" --strip-components=1 || die "could not unpack $SDIST_PATH"
    src="$work/src"
    for p in "${ME_PATCHES[@]}"; do
        patch -p1 --forward --batch --fuzz=0 --no-backup-if-mismatch -d "$src" -i "$PATCH_DIR/$p" > "$work/patch.log" 2>&1 \
            || { cat "$work/patch.log" >&2; die "patches/minkowskiengine/$p does not apply to $SDIST_NAME (see above); fix or remove it in the series"; }
    done
    printf '"""Written by pixvox tools/setup_env.sh: the patches this build of MinkowskiEngine carries."""\n\nPATCH_SET = "%s"\nPATCHES = (\n%s)\n' \
        "$PATCH_HASH" "$(printf '    "%s",\n' "${ME_PATCHES[@]}")" > "$src/MinkowskiEngine/_pixvox_patches.py"
    say "applied ${#ME_PATCHES[@]} patches (set $PATCH_HASH) to $SDIST_NAME"
}
if [[ "$(installed_patch_set)" == "$PATCH_HASH" ]] && me_imports; then
    say "MinkowskiEngine $ME_VERSION with patch set $PATCH_HASH imports"
else
    if ! ls "$ME_CACHE"/*.whl >/dev/null 2>&1; then
        say "building MinkowskiEngine $ME_VERSION ($CUDA_TAG, patch set $PATCH_HASH) into $ME_CACHE; this takes about 6 minutes on 2 cores, once"
        work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
        patched_source "$work"
        me_opts=("${BLAS_ARGS[@]}")
        if [[ "$WITH_CUDA" == "1" ]]; then
            me_opts+=(-C--global-option=--force_cuda)
        else
            me_opts+=(-C--global-option=--cpu_only)
        fi
        # MAX_JOBS bounds parallel compile jobs: each needs ~2 GB of RAM (nvcc jobs up to 4 GB).
        MAX_JOBS="${MAX_JOBS:-$(nproc)}" "${PIP[@]}" wheel -v --no-deps --no-build-isolation --use-pep517 \
            "${me_opts[@]}" -w "$work/dist" "$work/src" > "$work/build.log" 2>&1 \
            || { mkdir -p "$CACHE_ROOT" && cp "$work/build.log" "$CACHE_ROOT/minkowskiengine-build.log" 2>/dev/null || true
                 tail -n 60 "$work/build.log" >&2
                 die "MinkowskiEngine build failed (log above; full log in $CACHE_ROOT/minkowskiengine-build.log)"; }
        mkdir -p "$ME_CACHE"
        # Copy then rename, so an interrupted copy never looks like a cached wheel.
        whl="$(ls "$work"/dist/*.whl)"
        cp "$whl" "$ME_CACHE/.partial.whl" && mv "$ME_CACHE/.partial.whl" "$ME_CACHE/$(basename "$whl")"
        say "cached $(basename "$whl")"
    else
        say "installing MinkowskiEngine (patch set $PATCH_HASH) from cache $ME_CACHE"
    fi
    "${PIP[@]}" install -q --no-deps --force-reinstall "$ME_CACHE"/*.whl || die "installing the cached MinkowskiEngine wheel failed"
    me_imports || die "MinkowskiEngine was installed but does not import; remove $ME_CACHE and rerun"
    [[ "$(installed_patch_set)" == "$PATCH_HASH" ]] || die "the installed MinkowskiEngine does not carry patch set $PATCH_HASH; remove $ME_CACHE and rerun"
fi

# ---------------------------------------------------------------- 6. pixvox + cuda_ext
# Rebuild only when a source under cuda_ext/ or setup.py changed since the last build.
stamp="$REPO/build/.pixvox-installed-$PY_TAG-$CUDA_TAG"
newest="$(find "$REPO/cuda_ext" "$REPO/setup.py" "$REPO/pyproject.toml" -type f -newer "$stamp" 2>/dev/null | head -n1 || true)"
if [[ -f "$stamp" && -z "$newest" ]] && "$PY" -c 'import pixvox' >/dev/null 2>&1; then
    say "pixvox (editable) and cuda_ext are up to date"
else
    say "building cuda_ext and installing pixvox in editable mode with test extras"
    PIXVOX_WITH_CUDA="$WITH_CUDA" MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
        "${PIP[@]}" install -q --no-build-isolation -e "${REPO}[test]" || die "pip install -e .[test] failed (see above)"
    mkdir -p "$REPO/build" && touch "$stamp"
fi

"$PY" -c 'import pixvox, MinkowskiEngine' || die "'import pixvox, MinkowskiEngine' fails with $PY"
"$PY" -c 'import pixvox, pixvox.sparse as s; print("[setup_env] pixvox", pixvox.__version__, "| MinkowskiEngine", s.ME.__version__, "| cuda_ext:", pixvox.ext_status())'
# Everything checked out: record the state, so that the next run with nothing changed stops at step 0.
if key="$(stamp_key)"; then
    mkdir -p "$(dirname "$STAMP")" && sha256sum <<<"$key" | cut -c1-64 > "$STAMP.partial" && mv "$STAMP.partial" "$STAMP"
fi
say "done in $(( $(date +%s) - T0 )) s. Activate with: source ${VENV:-<active env>}/bin/activate"
