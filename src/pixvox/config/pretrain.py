"""Pretraining config schema (``configs/pretrain/*.yaml`` load into :class:`PretrainConfig`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional

from pixvox.config.common import (
    MAX_SKIPPED_FRACTION,
    ExperimentConfig,
    LoggingConfig,
    OptimConfig,
    ScheduleConfig,
    StudentConfig,
    TrainConfig,
    check,
    check_skipped_fraction,
)


@dataclass
class SyntheticDataConfig:
    """The embedded default dataset, generated on first use when ``data.root`` has no index."""

    enabled: bool = False
    scenes: int = 4
    frames_per_scene: int = 40
    image_size: tuple[int, int] = (240, 320)  #: (height, width) pixels


@dataclass
class Augment2DConfig:
    hflip: bool = True
    resize_crop_scale: tuple[float, float] = (0.6, 1.0)  #: fraction of the image area kept
    color_jitter: float = 0.4  #: brightness/contrast/saturation strength; 0 disables


@dataclass
class Augment3DConfig:
    up_axis: Literal["x", "y", "z"] = "z"  #: world axis opposite to gravity (ScanNet, synthetic: z)
    rotate_gravity: bool = True  #: random rotation about the up axis
    scale: tuple[float, float] = (0.9, 1.1)
    flip: bool = True  #: mirror x with probability 0.5
    translate: float = 0.2  #: metres, uniform in ±translate per axis
    elastic: bool = False
    elastic_params: list[tuple[float, float]] = field(default_factory=lambda: [(0.2, 0.4), (0.8, 1.6)])


@dataclass
class PretrainDataConfig:
    root: str = "data/synthetic/fusions"  #: prepared fusions (index.json + samples/)
    synthetic: SyntheticDataConfig = field(default_factory=SyntheticDataConfig)
    #: an RGB-D sequence folder (any layout pixvox.prep.sequence reads, or a folder of them, e.g. ICL-NUIM's
    #: trajectory.log) exported to <root>/../frames and fused into ``root`` on first use
    sequence: Optional[str] = None
    voxel_size: float = 0.025  #: metres; must equal the fusions' voxel size
    depth_min: float = 0.1  #: metres
    depth_max: float = 8.0  #: metres
    holdout_every: int = 0  #: every k-th sample is held out for evaluation; 0 = none
    image_size: Optional[tuple[int, int]] = None  #: resize-crop output (H, W); None = keep the stored size
    augment_2d: Augment2DConfig = field(default_factory=Augment2DConfig)
    augment_3d: Augment3DConfig = field(default_factory=Augment3DConfig)
    #: distinct prepared samples that fail to read or decode (each skipped, counted and listed in
    #: <run_dir>/skipped_samples.jsonl) may reach this fraction of the training set; more stops the run
    max_skipped_fraction: float = MAX_SKIPPED_FRACTION
    #: re-hash every sample file against index.json's SHA-256 when it is read (catches damage inside
    #: the arrays that the shape checks cannot see); measured at ~0.3% of a sample's loading time
    #: (docs/reliability.md)
    verify_checksums: bool = True

    def __post_init__(self) -> None:
        check(self.voxel_size > 0, "data.voxel_size", "must be > 0 (metres)")
        check_skipped_fraction(self.max_skipped_fraction)
        check(
            0 <= self.depth_min < self.depth_max,
            "data.depth_min/depth_max",
            "need 0 <= depth_min < depth_max",
        )
        check(self.holdout_every >= 0, "data.holdout_every", "must be >= 0")
        check(
            not (self.sequence and self.synthetic.enabled),
            "data.sequence",
            "set either data.sequence or data.synthetic.enabled, not both",
        )


@dataclass
class TeacherConfig:
    backbone: Literal["resnet18", "resnet34", "resnet50", "efficientnet_lite0"] = "resnet50"
    weights: str = "imagenet"  #: imagenet | path to a state_dict | none (tests only)
    fpn_channels: int = 128


@dataclass
class LossConfig:
    name: Literal["ppkt", "pointcontrast", "ppkt+pointcontrast"] = "ppkt"
    embed_dim: int = 64  #: D of both projection heads
    num_pairs: int = 4096  #: matched pairs N sampled across the batch per step
    temperature: float = 0.04  #: PPKT's τ
    pixel_level: bool = False  #: pairs of single pixels instead of voxel-averaged pixel targets
    symmetric: bool = False  #: add the pixel→voxel direction
    pointcontrast_weight: float = 1.0
    pointcontrast_temperature: float = 0.4
    pointcontrast_pairs: int = 4096

    def __post_init__(self) -> None:
        check(self.embed_dim >= 1, "loss.embed_dim", "must be >= 1")
        check(self.num_pairs >= 2, "loss.num_pairs", "must be >= 2")
        check(self.temperature > 0, "loss.temperature", "must be > 0")
        check(self.pointcontrast_temperature > 0, "loss.pointcontrast_temperature", "must be > 0")


@dataclass
class PretrainConfig:
    experiment: ExperimentConfig = field(default_factory=ExperimentConfig)
    data: PretrainDataConfig = field(default_factory=PretrainDataConfig)
    student: StudentConfig = field(default_factory=StudentConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
