# pixvox training image: CUDA toolkit, the matching PyTorch, OpenBLAS, MinkowskiEngine 0.5.4 (CUDA build)
# and cuda_ext, all installed by tools/setup_env.sh, the same script as a local install.
#
#   docker build -t pixvox .
#   docker run --gpus all --ipc=host --stop-timeout 150 \
#       -v /path/to/data:/workspace/pixvox/data -v "$PWD/outputs":/workspace/pixvox/outputs \
#       pixvox configs/pretrain/scannet_ppkt_res16unet34c.yaml [overrides...]
#
# Needs BuildKit (the default builder since Docker 23) for the cache mount below. Build arguments,
# Apptainer and SLURM use: docs/cluster.md. tests/packaging/ checks the versions here against
# setup.py.

# The CUDA of the base image must match the CUDA the torch wheel was built with: PyPI's torch 2.13.0
# Linux wheels are CUDA 13.0 builds (they need an NVIDIA driver >= 580 on the host). For an older
# driver, build with CUDA_VERSION=12.x and TORCH_INDEX_URL set to PyTorch's wheel index for that CUDA.
ARG CUDA_VERSION=13.0.2
ARG UBUNTU_VERSION=24.04
FROM nvidia/cuda:${CUDA_VERSION}-devel-ubuntu${UBUNTU_VERSION}

# Must equal TORCH_VERSION in setup.py.
ARG TORCH_VERSION=2.13.0
# Extra pip index holding a torch wheel for another CUDA; empty = PyPI's CUDA 13.0 wheel.
ARG TORCH_INDEX_URL=
# GPU architectures that MinkowskiEngine and cuda_ext are compiled for: 7.5 T4 / RTX 20, 8.0 A100,
# 8.6 A10 / RTX 30, 8.9 L4 / L40 / RTX 40, 9.0 H100 / H200; "+PTX" lets newer GPUs compile the kernels
# at their first start. Fewer architectures build faster, e.g. --build-arg TORCH_CUDA_ARCH_LIST=9.0.
ARG TORCH_CUDA_ARCH_LIST="7.5;8.0;8.6;8.9;9.0+PTX"
# Parallel compile jobs: each nvcc job of the MinkowskiEngine build takes 2-4 GB of RAM.
ARG MAX_JOBS=4

# A virtual environment rather than PIXVOX_NO_VENV=1: Ubuntu 24.04 marks its system Python as
# externally managed (PEP 668), so pip may not install into it. The venv comes first on PATH, so
# `python`, `torchrun` and `pytest` are the installed ones. PIXVOX_SKIP_SETUP=1 stops tools/pretrain.sh
# from re-checking the install at every start: it is done at build time, and the image may be
# read-only at run time (Apptainer).
ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    OPENBLAS_NUM_THREADS=1 \
    PIXVOX_VENV=/opt/pixvox/venv \
    VIRTUAL_ENV=/opt/pixvox/venv \
    PATH=/opt/pixvox/venv/bin:${PATH} \
    PIXVOX_CACHE=/root/.cache/pixvox \
    PIXVOX_TORCH_SPEC=torch==${TORCH_VERSION} \
    PIXVOX_CUDA=1 \
    PIXVOX_SKIP_SETUP=1 \
    TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST} \
    TORCH_ELASTIC_SHUTDOWN_TIMEOUT=90

# Only what the setup script cannot install itself: Python with venv and headers, a C++ toolchain, patch
# (for the MinkowskiEngine patch set), and tini, which passes `docker stop`'s SIGTERM on to the training
# processes so they save a checkpoint.
# Versions are not pinned: the base image tag fixes the Ubuntu release, whose archive drops old versions.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        build-essential ca-certificates patch python3 python3-dev python3-venv tini \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /workspace/pixvox

# Just the inputs of the install, so that editing configs, tools or docs does not rebuild this layer.
COPY tools/setup_env.sh tools/setup_env.sh
COPY patches/ patches/
COPY setup.py pyproject.toml ./
COPY cuda_ext/ cuda_ext/
COPY src/ src/

# torch, OpenBLAS (apt-get inside the script), MinkowskiEngine (source release + patches/minkowskiengine/)
# and cuda_ext. The cache mount keeps pip's
# downloads and the MinkowskiEngine wheel between builds, so a change under src/ reinstalls in minutes
# instead of recompiling MinkowskiEngine; it is not part of the image.
RUN --mount=type=cache,target=/root/.cache \
    if [ -n "$TORCH_INDEX_URL" ]; then export PIP_EXTRA_INDEX_URL="$TORCH_INDEX_URL"; fi \
    && MAX_JOBS="$MAX_JOBS" bash tools/setup_env.sh \
    && rm -rf /var/lib/apt/lists/*

# The rest of the repository (configs, tools, data_prep, tests, docs); .dockerignore keeps data,
# outputs and host build products (a CPU-only pixvox/_ext*.so among them) out.
COPY . .

# Health: the self-test's correctness checks (versions; MinkowskiEngine against a dense reference;
# every cuda_ext op against its reference) take seconds and little GPU memory, so they can run hourly
# beside training and mark a container whose node computes wrong as unhealthy. The full self-test
# (smoke training, 2-process step, benchmarks) is for each new node: docs/cluster.md.
HEALTHCHECK --interval=1h --timeout=5m --start-period=5m --retries=1 \
    CMD ["python", "-m", "pixvox.selftest", "--only", "versions,sparse,ops", "--json", "/tmp/pixvox-selftest.json"]

# `docker run pixvox [CONFIG] [overrides...]` passes its arguments to tools/pretrain.sh;
# `docker run --entrypoint bash -it pixvox` gives a shell, `--entrypoint pytest` runs the tests.
ENTRYPOINT ["/usr/bin/tini", "-g", "--", "bash", "/workspace/pixvox/tools/pretrain.sh"]
CMD []
