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
    ValidationError,
    check,
    check_skipped_fraction,
)
from pixvox.config.objectives import OBJECTIVES, ObjectiveTerm, make_term


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
    #: brightness/contrast/saturation strength on the voxel colours, drawn per view; 0 disables
    color_jitter: float = 0.0

    def __post_init__(self) -> None:
        check(self.color_jitter >= 0, "data.augment_3d.color_jitter", "must be >= 0")


@dataclass
class PretrainDataConfig:
    root: str = "data/synthetic/fusions"  #: prepared fusions (index.json + samples/)
    synthetic: SyntheticDataConfig = field(default_factory=SyntheticDataConfig)
    #: an RGB-D sequence folder (any layout pixvox.prep.sequence reads, or a folder of them, e.g. ICL-NUIM's
    #: trajectory.log) exported to <root>/../frames and fused into ``root`` on first use
    sequence: Optional[str] = None
    voxel_size: float = 0.025  #: metres; must equal the fusions' voxel size
    #: F neighbouring frames fused per sample in the world frame (each frame's pixels back-projected
    #: with its own camera-to-world pose, also when PPKT matches them); None: whatever ``root`` holds,
    #: 1 where the fusions are made on first use. Set, it must equal the fusions' F.
    frames_per_sample: Optional[int] = None
    #: exported frames between the first frames of consecutive samples when they are made on first
    #: use (None = F: samples share no frame)
    frame_stride: Optional[int] = None
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
            self.frames_per_sample is None or self.frames_per_sample >= 1,
            "data.frames_per_sample",
            "must be >= 1",
        )
        check(self.frame_stride is None or self.frame_stride >= 1, "data.frame_stride", "must be >= 1")
        check(
            not (self.sequence and self.synthetic.enabled),
            "data.sequence",
            "set either data.sequence or data.synthetic.enabled, not both",
        )


@dataclass
class TeacherConfig:
    backbone: Literal[
        "resnet18",
        "resnet34",
        "resnet50",
        "efficientnet_lite0",
        "efficientnet_lite1",
        "efficientnet_lite2",
        "dinov2_vits14",
        "dinov2_vitb14",
    ] = "resnet50"
    #: imagenet | path to a state_dict | none (tests only); DINOv2: the path of the official checkpoint
    weights: str = "imagenet"
    fpn_channels: int = 128
    #: the trainable 2D side: fpn (FPN + upsampling projection + 1x1 head) or linear (one 1x1
    #: projection of the deepest frozen stage, upsampled: the teacher's features, linearly mapped)
    head: Literal["fpn", "linear"] = "fpn"
    #: with head=linear: the frozen stage it projects, an index into the backbone's stages (-1: the
    #: deepest; EfficientNet-Lite and ResNet: 0..3 at strides 4, 8, 16, 32)
    linear_stage: int = -1

    def __post_init__(self) -> None:
        check(
            self.head == "linear" or self.linear_stage == -1,
            "teacher.linear_stage",
            "picks the stage of the linear head; set teacher.head=linear or leave it at -1",
        )


#: Shorthand keys of configs written before ``loss.terms``: key → (objective, option of its term).
LOSS_SHORTHAND: dict[str, tuple[str, str]] = {
    "temperature": ("ppkt", "temperature"),
    "num_pairs": ("ppkt", "num_pairs"),
    "pixel_level": ("ppkt", "pixel_level"),
    "symmetric": ("ppkt", "symmetric"),
    "pointcontrast_weight": ("pointcontrast", "weight"),
    "pointcontrast_temperature": ("pointcontrast", "temperature"),
    "pointcontrast_pairs": ("pointcontrast", "num_pairs"),
}


@dataclass
class LossConfig:
    """The pretraining loss: a weighted sum of objectives (``terms``; see pixvox.config.objectives).

    ``loss.terms: [{name: ppkt, weight: 1.0, temperature: 0.07}, {name: pointcontrast, weight: 0.5}]``.
    Shorthand (configs before ``terms``): ``name: ppkt+pointcontrast`` makes one term per objective,
    and the keys of :data:`LOSS_SHORTHAND` set an option of their objective's term (also on top of
    ``terms``, so ``loss.temperature=0.1`` keeps working on the command line). After validation
    ``terms`` holds everything and the shorthand keys are None, so the saved config is canonical.
    """

    terms: list[ObjectiveTerm] = field(default_factory=list)
    embed_dim: int = 64  #: D of the student's output and of every projection head
    name: Optional[str] = None  #: shorthand: objective names joined by '+'; default 'ppkt'
    temperature: Optional[float] = None
    num_pairs: Optional[int] = None
    pixel_level: Optional[bool] = None
    symmetric: Optional[bool] = None
    pointcontrast_weight: Optional[float] = None
    pointcontrast_temperature: Optional[float] = None
    pointcontrast_pairs: Optional[int] = None

    def __post_init__(self) -> None:
        check(self.embed_dim >= 1, "loss.embed_dim", "must be >= 1")
        check(
            not (self.terms and self.name),
            "loss.name",
            "is shorthand for loss.terms; set one of them, not both (on the command line, replace the "
            "terms instead: 'loss.terms=[{name: pointcontrast}]')",
        )
        if not self.terms:
            names = (self.name or "ppkt").split("+")
            self.terms = [make_term(n.strip()) for n in names]
        for i, term in enumerate(self.terms):
            spec = OBJECTIVES.get(term.name)
            check(
                spec is not None and type(term) is spec.term,
                f"loss.terms[{i}].name",
                f"must be one of {', '.join(repr(n) for n in OBJECTIVES)} with that objective's term, "
                f"got {term.name!r} ({type(term).__name__})",
            )
        names = [t.name for t in self.terms]
        dup = sorted({n for n in names if names.count(n) > 1})
        check(not dup, "loss.terms", f"names objective(s) {dup} more than once; give each one term")
        for key, (objective, option) in LOSS_SHORTHAND.items():
            value = getattr(self, key)
            if value is None:
                continue
            term = next((t for t in self.terms if t.name == objective), None)
            check(
                term is not None,
                f"loss.{key}",
                f"sets the {objective} term's {option}, but loss.terms has no {objective} term "
                f"(terms: {', '.join(names)})",
            )
            setattr(term, option, value)
            try:
                term.__post_init__()
            except ValidationError as err:
                raise ValidationError(f"loss.{key}", err.msg) from err
            setattr(self, key, None)
        self.name = None

    def term(self, name: str) -> ObjectiveTerm | None:
        """The term of objective ``name``, if the loss has one."""
        return next((t for t in self.terms if t.name == name), None)


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
