"""What is installed: Python, torch, CUDA and the driver, MinkowskiEngine, pixvox and its kernels.

The check fails when the install cannot use the GPU it runs next to: a CUDA device is visible but
torch, MinkowskiEngine or ``pixvox._ext`` were built without CUDA.
"""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys
from typing import Any

import torch

from pixvox.selftest.report import FAIL, PASS, CheckResult


def driver_version() -> str | None:
    """The NVIDIA driver version from ``nvidia-smi``, or None where there is none."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run(
            [exe, "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    lines = out.stdout.strip().splitlines()
    return lines[0].strip() if lines else None


def collect() -> dict[str, Any]:
    """Versions and builds as a flat dict (the JSON report's ``versions``)."""
    import pixvox
    from pixvox.sparse import ME

    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "executable": sys.executable,
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cuda_available": torch.cuda.is_available(),
        "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        if torch.cuda.is_available()
        else [],
        "driver": driver_version(),
        "minkowskiengine": ME.__version__,
        "minkowskiengine_build": "cuda" if ME.is_cuda_available() else "cpu",
        "pixvox": pixvox.__version__,
        "cuda_ext": pixvox.ext_status(),
        "torch_threads": torch.get_num_threads(),
    }
    if ME.is_cuda_available():
        info["minkowskiengine_cudart"] = ME.cudart_version()
    return info


def check_versions(device: torch.device, seed: int) -> CheckResult:
    info = collect()
    problems = []
    if info["cuda_ext"].startswith("not built"):
        problems.append(f"pixvox._ext {info['cuda_ext']}; run `bash tools/setup_env.sh`")
    if device.type == "cuda":
        if info["minkowskiengine_build"] != "cuda":
            problems.append(
                "MinkowskiEngine is a CPU build; rebuild with `PIXVOX_CUDA=1 bash tools/setup_env.sh`"
            )
        if info["cuda_ext"] != "cpu+cuda":
            problems.append(
                "pixvox._ext has no CUDA kernels; rebuild with `PIXVOX_CUDA=1 bash tools/setup_env.sh`"
            )
    figure = (
        f"py {info['python']}, torch {info['torch']}"
        + (f" (CUDA {info['torch_cuda']}, driver {info['driver']})" if info["torch_cuda"] else "")
        + f", ME {info['minkowskiengine']} ({info['minkowskiengine_build']}), ext {info['cuda_ext']}"
    )
    return CheckResult(
        "versions", str(device), FAIL if problems else PASS, figure, detail="; ".join(problems), data=info
    )
