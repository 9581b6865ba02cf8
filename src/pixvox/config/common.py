"""Config sections shared by pretraining and fine-tuning. Every default lives here or beside it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional

from pixvox.errors import UserError


class ValidationError(UserError, ValueError):
    """A config value out of its allowed range (raised from ``__post_init__``)."""

    def __init__(self, key: str, msg: str) -> None:
        super().__init__(f"key '{key}' {msg}")
        self.key, self.msg = key, msg


def check(cond: bool, key: str, msg: str) -> None:
    if not cond:
        raise ValidationError(key, msg)


@dataclass
class ExperimentConfig:
    name: str = "pixvox"
    output_root: str = "outputs"  #: runs go to <output_root>/<name>/
    seed: int = 0

    def __post_init__(self) -> None:
        check(
            bool(self.name) and "/" not in self.name,
            "experiment.name",
            "must be a non-empty name without '/'",
        )


@dataclass
class StudentConfig:
    """Sparse U-Net student (``pixvox.models.build_student``)."""

    name: str = "Res16UNet34C"
    input: Literal["color", "ones"] = "color"  #: voxel features: mean RGB in [-0.5, 0.5], or constant 1
    planes: Optional[list[int]] = None  #: override the variant's channel widths (8 stages)
    bn_momentum: float = 0.1  #: BatchNorm running-statistics momentum (torch convention)
    conv1_kernel_size: int = 5

    @property
    def in_channels(self) -> int:
        return 3 if self.input == "color" else 1


@dataclass
class OptimConfig:
    name: Literal["sgd", "adamw"] = "sgd"
    lr: float = 0.5
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    grad_clip: float = 0.0  #: max global L2 norm of gradients; 0 disables clipping

    def __post_init__(self) -> None:
        check(self.lr > 0, "optim.lr", "must be > 0")
        check(self.weight_decay >= 0, "optim.weight_decay", "must be >= 0")
        check(self.grad_clip >= 0, "optim.grad_clip", "must be >= 0")


@dataclass
class ScheduleConfig:
    name: Literal["cosine", "poly", "exponential", "constant"] = "cosine"
    warmup_steps: int = 0
    warmup_start_factor: float = 0.01  #: lr multiplier at step 0 of the warm-up
    min_lr_factor: float = 0.0  #: cosine: final lr as a fraction of optim.lr
    power: float = 0.9  #: poly: (1 - t)^power
    gamma: float = 0.99  #: exponential: lr *= gamma every `gamma_every` steps
    gamma_every: int = 100

    def __post_init__(self) -> None:
        check(self.warmup_steps >= 0, "schedule.warmup_steps", "must be >= 0")
        check(0 < self.warmup_start_factor <= 1, "schedule.warmup_start_factor", "must be in (0, 1]")
        check(0 < self.gamma <= 1, "schedule.gamma", "must be in (0, 1]")
        check(self.gamma_every >= 1, "schedule.gamma_every", "must be >= 1")


@dataclass
class TrainConfig:
    max_steps: int = 60000
    batch_size: int = 8  #: global batch: samples per step over all processes (divisible by world size)
    num_workers: int = 2  #: DataLoader worker processes per rank
    device: Literal["auto", "cpu", "cuda"] = "auto"
    amp: Literal["none", "bf16", "fp16"] = "none"  #: mixed precision, GPU only
    sync_bn: bool = True  #: synchronized BatchNorm when world size > 1
    log_every: int = 10
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    #: torch/OpenMP compute threads of each process; 0 = chosen from the usable cores minus the data
    #: workers (pixvox.engine.threads; an OMP_NUM_THREADS in the environment wins over both)
    cpu_threads: int = 0
    #: a run stops after this many consecutive steps skipped for a non-finite loss or gradients (or
    #: for empty batches); a skipped step applies no update (docs/reliability.md)
    max_nonfinite_steps: int = 20

    def __post_init__(self) -> None:
        check(self.max_steps >= 1, "train.max_steps", "must be >= 1")
        check(self.batch_size >= 1, "train.batch_size", "must be >= 1")
        check(self.num_workers >= 0, "train.num_workers", "must be >= 0")
        check(self.log_every >= 1, "train.log_every", "must be >= 1")
        check(self.checkpoint_every >= 1, "train.checkpoint_every", "must be >= 1")
        check(self.keep_checkpoints >= 1, "train.keep_checkpoints", "must be >= 1")
        check(self.cpu_threads >= 0, "train.cpu_threads", "must be >= 0 (0 = chosen from the cores)")
        check(self.max_nonfinite_steps >= 1, "train.max_nonfinite_steps", "must be >= 1")


#: default of ``data.max_skipped_fraction`` in both jobs: a handful of damaged files in a large
#: dataset is tolerated, a systematic fault (wrong format, a lost mount) stops the run within a few
#: batches; 1% of the samples changes the data distribution too little to matter for pretraining or
#: segmentation, and any more is worth a look before days of training.
MAX_SKIPPED_FRACTION = 0.01


def check_skipped_fraction(value: float) -> None:
    check(0 <= value < 1, "data.max_skipped_fraction", "must be in [0, 1)")


@dataclass
class LoggingConfig:
    #: auto = online when WANDB_API_KEY is set, else disabled; offline = files under the run dir to sync later
    wandb: Literal["auto", "disabled", "offline", "online"] = "auto"
    wandb_project: str = "pixvox"
    progress_bar: bool = True


__all__ = [
    "ExperimentConfig",
    "StudentConfig",
    "OptimConfig",
    "ScheduleConfig",
    "TrainConfig",
    "LoggingConfig",
    "ValidationError",
    "check",
    "check_skipped_fraction",
    "field",
    "MAX_SKIPPED_FRACTION",
]
