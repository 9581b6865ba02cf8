"""Fine-tuning config schema (``configs/finetune/*.yaml`` load into :class:`FinetuneConfig`).

Defaults follow the semantic-segmentation fine-tuning recipe of Contrastive Scene Contexts (CSC, Hou et
al. 2021, ``facebookresearch/ContrastiveSceneContexts``, ``downstream/semseg``): SGD with momentum 0.9
and weight decay 1e-4, a poly schedule (power 0.9), BatchNorm momentum 0.02, colors normalized to
[-0.5, 0.5], chromatic auto-contrast / translation / jitter, rotation about the up axis with small
tilts, scaling, flips and elastic distortion. Every number's source is listed in docs/finetune.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal, Optional, Union

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
from pixvox.config.pretrain import SyntheticDataConfig


@dataclass
class SceneSplitConfig:
    """Which scenes of a labeled-cloud dataset form a split.

    ``list_file`` (one scene name per line, e.g. ScanNet's ``scannetv2_val.txt``; relative paths are
    relative to ``data.root``) wins over the patterns; otherwise scenes matching any ``include`` glob
    pattern and no ``exclude`` pattern are used.
    """

    include: list[str] = field(default_factory=lambda: ["*"])
    exclude: list[str] = field(default_factory=list)
    list_file: Optional[str] = None


@dataclass
class LabelSubsetConfig:
    """Data-efficient training (the CSC ScanNet benchmark): fewer scenes and/or fewer labeled points.

    Selections are random but fixed by ``seed`` (scene choice) and by ``(seed, scene name)`` (points),
    so runs that differ only in initialization train on exactly the same labels; the scheme is the one
    the split files of ``python -m pixvox.prep scannet splits`` are written with
    (:mod:`pixvox.prep.scannet.benchmark`): same seed, same scenes and points.
    """

    scene_fraction: float = 1.0  #: keep this fraction of the training scenes (CSC: 0.01, 0.05, 0.1, 0.2)
    points_per_scene: int = 0  #: >0: keep labels of this many points per scene (CSC: 20, 50, 100, 200)
    seed: int = 0
    #: a fixed selection of labeled points, overriding the random choice for the scenes it lists: the
    #: ``limited_points.json`` of ``pixvox.prep scannet splits`` (its first ``points_per_scene`` points per
    #: scene), CSC's published ``points20``..``points200`` files, or JSON ``{"scene": [point indices]}``;
    #: a relative path is relative to ``data.root`` unless it exists from the working directory
    points_file: Optional[str] = None

    def __post_init__(self) -> None:
        check(0 < self.scene_fraction <= 1, "data.subset.scene_fraction", "must be in (0, 1]")
        check(self.points_per_scene >= 0, "data.subset.points_per_scene", "must be >= 0 (0 = every label)")


@dataclass
class SegAugment3DConfig:
    """Geometric training augmentation of the points (before voxelization)."""

    up_axis: Literal["x", "y", "z"] = "z"  #: world axis opposite to gravity (ScanNet, S3DIS, synthetic: z)
    rotate_gravity: bool = True  #: uniform rotation about the up axis
    tilt: float = math.pi / 64  #: radians; uniform rotation in ±tilt about each horizontal axis
    scale: tuple[float, float] = (0.9, 1.1)
    flip: bool = True  #: mirror each horizontal axis with probability 0.5
    translate: float = 0.2  #: metres, uniform in ±translate per axis
    elastic: bool = True
    #: (granularity, magnitude) pairs in metres, applied in order
    elastic_params: list[tuple[float, float]] = field(default_factory=lambda: [(0.2, 0.4), (0.8, 1.6)])
    elastic_probability: float = 0.95

    def __post_init__(self) -> None:
        check(self.tilt >= 0, "data.augment_3d.tilt", "must be >= 0 (radians)")
        check(0 < self.scale[0] <= self.scale[1], "data.augment_3d.scale", "needs 0 < min <= max")
        check(0 <= self.elastic_probability <= 1, "data.augment_3d.elastic_probability", "must be in [0, 1]")


@dataclass
class ColorAugmentConfig:
    """Chromatic training augmentation of the voxel colors (RGB on the 0-255 scale)."""

    auto_contrast: float = 0.2  #: probability of stretching each channel to the full 0-255 range (blended)
    translation: float = 0.1  #: ratio: with prob. 0.95 shift all colors by U(±ratio) × 255 per channel
    jitter_std: float = 0.05  #: with prob. 0.95 add N(0, (std × 255)^2) noise per voxel and channel

    def __post_init__(self) -> None:
        check(0 <= self.auto_contrast <= 1, "data.color.auto_contrast", "must be a probability in [0, 1]")
        check(self.translation >= 0, "data.color.translation", "must be >= 0")
        check(self.jitter_std >= 0, "data.color.jitter_std", "must be >= 0")


@dataclass
class SegDataConfig:
    #: labeled clouds (index.json + <scene>.npz), or Pointcept-preprocessed scene folders read in place
    root: str = "data/synthetic/clouds"
    #: Pointcept layout only: the label file to train on (segment20, segment200 or S3DIS's segment);
    #: None picks segment20 where present, else segment
    label_field: Optional[Literal["segment20", "segment200", "segment"]] = None
    voxel_size: float = 0.05  #: metres
    train: SceneSplitConfig = field(default_factory=SceneSplitConfig)
    val: SceneSplitConfig = field(default_factory=lambda: SceneSplitConfig(include=[]))
    subset: LabelSubsetConfig = field(default_factory=LabelSubsetConfig)
    train_repeat: int = 1  #: each training scene appears this many times per epoch (tiny datasets)
    #: metres; >0: train on a random horizontal square of this edge around a random labeled point
    crop_size: float = 0.0
    #: fixed 3×3 rotation applied to every scene before augmentation (training and evaluation), e.g.
    #: to give the clouds the up axis the pretraining data had; set augment_3d.up_axis to match
    world_rotation: Optional[list[list[float]]] = None
    augment_3d: SegAugment3DConfig = field(default_factory=SegAugment3DConfig)
    color: ColorAugmentConfig = field(default_factory=ColorAugmentConfig)
    #: generate the synthetic default dataset (pixvox.prep.synthetic) into root/.. when root is empty
    synthetic: SyntheticDataConfig = field(default_factory=SyntheticDataConfig)
    #: folder with mmdetection3d-style ScanNet ``<scene>_vert_all.npy`` / ``_sem_label_all.npy``;
    #: its scenes are converted into ``root`` (ScanNet-20 labels) when root is empty
    scannet_npy: Optional[str] = None
    #: distinct prepared samples that fail to read or decode (each skipped, counted and listed in
    #: <run_dir>/skipped_samples.jsonl) may reach this fraction of the training set; more stops the run
    max_skipped_fraction: float = MAX_SKIPPED_FRACTION

    def __post_init__(self) -> None:
        check(self.voxel_size > 0, "data.voxel_size", "must be > 0 (metres)")
        check_skipped_fraction(self.max_skipped_fraction)
        check(self.train_repeat >= 1, "data.train_repeat", "must be >= 1")
        check(self.crop_size >= 0, "data.crop_size", "must be >= 0 (metres; 0 = whole scenes)")
        if self.world_rotation is not None:
            R = self.world_rotation
            check(len(R) == 3 and all(len(r) == 3 for r in R), "data.world_rotation", "must be a 3x3 matrix")
            gram = [[sum(R[k][i] * R[k][j] for k in range(3)) for j in range(3)] for i in range(3)]
            det = (
                R[0][0] * (R[1][1] * R[2][2] - R[1][2] * R[2][1])
                - R[0][1] * (R[1][0] * R[2][2] - R[1][2] * R[2][0])
                + R[0][2] * (R[1][0] * R[2][1] - R[1][1] * R[2][0])
            )
            ok = all(abs(gram[i][j] - (i == j)) < 1e-6 for i in range(3) for j in range(3)) and det > 0
            check(ok, "data.world_rotation", "must be a rotation (orthonormal, determinant +1)")


@dataclass
class InitConfig:
    """Where the network's weights start.

    scratch: random; pretrained: the student's weights from a pretraining checkpoint, a new classifier
    ``final`` layer, everything trains; linear_probe: the same weights frozen (BatchNorm statistics
    included), only the new ``final`` layer trains.

    head: how the new classifier starts. ``new``: random, as the layer initializes. ``probe``: a
    multinomial logistic regression fitted to convergence on the frozen network's features of the
    training scenes' labeled voxels (whole scenes, unaugmented, label budget applied), then loaded
    into ``final``; training goes on from there (LP-FT, Kumar et al. 2022, arXiv 2202.10054).
    """

    mode: Literal["scratch", "pretrained", "linear_probe"] = "scratch"
    #: a pretraining checkpoint file, a run's checkpoints/ folder or a run folder (its newest checkpoint)
    checkpoint: Optional[str] = None
    head: Literal["new", "probe"] = "new"
    #: L2 penalty of the probe fit (head=probe), on standardized features
    probe_l2: float = 1e-4
    #: BatchNorm in eval mode during training too: the statistics the network starts with (a
    #: pretraining's; for scratch the initial zero mean and unit variance) stay, the affine weights train
    keep_bn_stats: bool = False

    def __post_init__(self) -> None:
        check(
            self.mode == "scratch" or bool(self.checkpoint),
            "init.checkpoint",
            f"is required for init.mode={self.mode} (a pretraining checkpoint or run folder)",
        )
        check(self.probe_l2 > 0, "init.probe_l2", f"must be > 0, got {self.probe_l2}")


@dataclass
class SegLossConfig:
    #: none, inverse_sqrt (1/sqrt(frequency)) or inverse_log (1/ln(1.02 + frequency)) of the labeled
    #: training points, normalized to mean 1 over the classes present; or one weight per class
    class_weights: Union[Literal["none", "inverse_sqrt", "inverse_log"], list[float]] = "none"
    label_smoothing: float = 0.0

    def __post_init__(self) -> None:
        check(0 <= self.label_smoothing < 1, "loss.label_smoothing", "must be in [0, 1)")
        if isinstance(self.class_weights, list):
            check(all(w >= 0 for w in self.class_weights), "loss.class_weights", "must be >= 0")


@dataclass
class SegEvalConfig:
    every: int = 0  #: steps between evaluations on the validation split while training; 0 = only at the end
    export_ply: int = 2  #: colored prediction PLYs of the first N validation scenes (-1 = all, 0 = none)
    confusion_png: bool = True

    def __post_init__(self) -> None:
        check(self.every >= 0, "eval.every", "must be >= 0")
        check(self.export_ply >= -1, "eval.export_ply", "must be -1 (all), 0 (none) or a count")


# Sections whose fine-tuning defaults differ from pretraining's. Subclasses (not default factories) keep
# these defaults when a YAML file sets only some keys of the section.
@dataclass
class FinetuneExperimentConfig(ExperimentConfig):
    name: str = "finetune"


@dataclass
class FinetuneOptimConfig(OptimConfig):
    lr: float = 0.1  #: CSC: 0.1 (S3DIS, ScanNet limited annotations), 0.8 (ScanNet full and limited scenes)
    #: the backbone's lr as a fraction of ``lr`` (every layer but the new classifier ``final``, which
    #: trains at ``lr``); below 1 a pretrained backbone moves less while its new head fits
    backbone_lr_factor: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.backbone_lr_factor >= 0, "optim.backbone_lr_factor", "must be >= 0")


@dataclass
class FinetuneScheduleConfig(ScheduleConfig):
    name: Literal["cosine", "poly", "exponential", "constant"] = "poly"


@dataclass
class FinetuneTrainConfig(TrainConfig):
    max_steps: int = 20000
    batch_size: int = 48  #: global batch (split across processes, as in pretraining); CSC: 48 on 8 GPUs
    checkpoint_every: int = 1000


@dataclass
class FinetuneConfig:
    experiment: FinetuneExperimentConfig = field(default_factory=FinetuneExperimentConfig)
    data: SegDataConfig = field(default_factory=SegDataConfig)
    student: StudentConfig = field(default_factory=StudentConfig)
    init: InitConfig = field(default_factory=InitConfig)
    loss: SegLossConfig = field(default_factory=SegLossConfig)
    optim: FinetuneOptimConfig = field(default_factory=FinetuneOptimConfig)
    schedule: FinetuneScheduleConfig = field(default_factory=FinetuneScheduleConfig)
    train: FinetuneTrainConfig = field(default_factory=FinetuneTrainConfig)
    eval: SegEvalConfig = field(default_factory=SegEvalConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)


__all__ = [
    "ColorAugmentConfig",
    "FinetuneConfig",
    "FinetuneExperimentConfig",
    "FinetuneOptimConfig",
    "FinetuneScheduleConfig",
    "FinetuneTrainConfig",
    "InitConfig",
    "LabelSubsetConfig",
    "SceneSplitConfig",
    "SegAugment3DConfig",
    "SegDataConfig",
    "SegEvalConfig",
    "SegLossConfig",
]
