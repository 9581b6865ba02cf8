"""The segmentation network: a pretrained (or fresh) student whose ``final`` layer is the classifier.

Initialization modes (``init.mode``):
- ``scratch``: random weights.
- ``pretrained``: every student tensor but ``final`` from a pretraining checkpoint; all layers train.
- ``linear_probe``: the same weights, frozen (BatchNorm statistics included); only ``final`` trains.

``init.keep_bn_stats`` keeps every BatchNorm in eval mode (statistics fixed, affine weights train);
``init.head=probe`` (:mod:`pixvox.finetune.head_init`) starts ``final`` from a converged probe.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import MinkowskiEngine as ME
import torch
from torch import nn

from pixvox.config.common import StudentConfig
from pixvox.config.finetune import FinetuneConfig
from pixvox.engine.checkpoint import latest_checkpoint, load_checkpoint
from pixvox.engine.logger import log
from pixvox.errors import CheckpointMismatchError, CheckpointNotFoundError
from pixvox.models import LoadReport, build_student, load_student_weights
from pixvox.sparse import features_in_input_order, sparse_tensor

HEAD_PREFIX = "final."
STUDENT_PREFIX = "student."


def build_segmentation_student(s: StudentConfig, num_classes: int) -> nn.Module:
    kwargs: dict[str, Any] = {"bn_momentum": s.bn_momentum, "conv1_kernel_size": s.conv1_kernel_size}
    if s.planes is not None:
        kwargs["planes"] = s.planes
    return build_student(s.name, s.in_channels, num_classes, **kwargs)


class SegmentationNet(nn.Module):
    """``forward(feats [ΣV, Cin], coords [ΣV, 4] int32) -> logits [ΣV, num_classes]`` in input row order."""

    def __init__(self, student_cfg: StudentConfig, num_classes: int) -> None:
        super().__init__()
        self.student = build_segmentation_student(student_cfg, num_classes)
        self.num_classes = num_classes
        self.frozen_backbone = False
        self.frozen_bn_stats = False

    def freeze_backbone(self) -> None:
        """Linear probing: only ``final`` trains; the backbone runs in eval mode (its BatchNorm keeps the
        pretrained statistics) and without autograd."""
        for name, p in self.student.named_parameters():
            p.requires_grad_(name.startswith(HEAD_PREFIX))
        self.frozen_backbone = True
        self.train(self.training)

    def freeze_bn_stats(self) -> None:
        """``init.keep_bn_stats``: every BatchNorm runs in eval mode, in training too, so the statistics
        the network starts with normalize training and evaluation alike; their affine weights train."""
        self.frozen_bn_stats = True
        self.train(self.training)

    def train(self, mode: bool = True) -> SegmentationNet:
        super().train(mode)
        if self.frozen_backbone:
            for m in self.student.children():
                if m is not self.student.final:
                    m.train(False)
        if self.frozen_bn_stats:
            for m in self.student.modules():
                if isinstance(m, (ME.MinkowskiBatchNorm, nn.modules.batchnorm._BatchNorm)):
                    m.train(False)
        return self

    def forward(self, feats: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
        x = sparse_tensor(feats, coords)
        if self.frozen_backbone:
            with torch.no_grad():
                f = self.student.forward_features(x)
            out = self.student.final(f)
        else:
            out = self.student(x)
        # Rows of ``out`` follow MinkowskiEngine's coordinate map (hash order on CUDA); labels and the
        # points' inverse map index rows of ``coords``, so map them back explicitly.
        return features_in_input_order(out, x)

    def student_state(self) -> dict[str, torch.Tensor]:
        n = len(STUDENT_PREFIX)
        return {k[n:]: v for k, v in self.state_dict().items() if k.startswith(STUDENT_PREFIX)}


def resolve_pretrain_checkpoint(spec: str | Path) -> Path:
    """A checkpoint file, or the newest ``step_*.pt`` of a ``checkpoints/`` folder or of a run folder."""
    path = Path(spec)
    if path.is_file():
        return path
    for folder in (path / "checkpoints", path):
        if folder.is_dir():
            found = latest_checkpoint(folder)
            if found is not None:
                return found
    raise CheckpointNotFoundError(
        f"init.checkpoint={spec}: no pretraining checkpoint there (looked for a file, "
        f"{path}/checkpoints/step_*.pt and {path}/step_*.pt). Run the pretraining first, e.g. "
        "`bash tools/pretrain.sh` for outputs/quickstart"
    )


def check_student_matches(state: dict[str, Any], s: StudentConfig, path: Path) -> None:
    """Raise if the checkpoint's student architecture or input differs from the config's."""
    problems = []
    name = state.get("student_name")
    if name is not None and name != s.name:
        problems.append(f"student.name={name}")
    saved = (state.get("config") or {}).get("student") or {}
    for key in ("input", "conv1_kernel_size", "planes"):
        if key in saved:
            mine = getattr(s, key)
            theirs = saved[key]
            if key == "planes" and theirs is not None:
                theirs = list(theirs)
            if (list(mine) if key == "planes" and mine is not None else mine) != theirs:
                problems.append(f"student.{key}={theirs}")
    if problems:
        raise CheckpointMismatchError(
            f"{path} was pretrained with {', '.join(problems)}; set the same in the fine-tuning config "
            f"(override e.g. {' '.join(problems)}) so features and weights match"
        )


def initialize(net: SegmentationNet, cfg: FinetuneConfig) -> tuple[LoadReport | None, Path | None]:
    """Apply ``cfg.init`` to ``net``: load the pretrained student (every tensor but the head must load)
    and, for linear probing, freeze the backbone. Returns the load report and the checkpoint used."""
    if cfg.init.keep_bn_stats:
        net.freeze_bn_stats()
    if cfg.init.mode == "scratch":
        return None, None
    path = resolve_pretrain_checkpoint(cfg.init.checkpoint or "")
    state = load_checkpoint(path)
    if not isinstance(state.get("student"), dict):
        raise CheckpointMismatchError(
            f"{path}: no 'student' weights inside; is init.checkpoint a pixvox pretraining checkpoint?"
        )
    check_student_matches(state, cfg.student, path)
    report = load_student_weights(net.student, state["student"], expected_missing_prefixes=(HEAD_PREFIX,))
    if not report.complete:
        raise CheckpointMismatchError(f"{path}: the pretrained student does not fit this network:\n{report}")
    dropped = [k for k in state["student"] if k.startswith(HEAD_PREFIX)]
    log.info(
        "initialized from %s: %d tensors loaded; new head %s; pretraining head %s not used; %d unexpected",
        path,
        len(report.loaded),
        report.expected_missing,
        dropped,
        len(report.unexpected),
    )
    if cfg.init.mode == "linear_probe":
        net.freeze_backbone()
    return report, path
