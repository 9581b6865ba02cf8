"""The tiny CPU runs of the fault campaign: configs and ``key=value`` overrides of each job."""

from __future__ import annotations

from pathlib import Path

import pixvox

REPO = Path(pixvox.__file__).resolve().parents[2]
PRETRAIN_CONFIG = REPO / "configs/pretrain/quickstart.yaml"
FINETUNE_CONFIG = REPO / "configs/finetune/synthetic.yaml"

#: the synthetic default dataset, shrunk: 2 rooms x 6 frames of 60x80 pixels, fused at 10 cm
SYNTHETIC = {
    "data.synthetic.enabled": "true",
    "data.synthetic.scenes": "2",
    "data.synthetic.frames_per_scene": "6",
    "data.synthetic.image_size": "[60,80]",
    "data.voxel_size": "0.1",
}
COMMON = {
    "train.num_workers": "0",  # bit-exact resume is claimed for 0 data workers and 1 compute thread
    "train.cpu_threads": "1",
    "train.log_every": "1",
    "train.keep_checkpoints": "1000",  # every checkpoint stays, to compare each with the reference's
    "logging.wandb": "disabled",
    "logging.progress_bar": "false",
}


def _args(values: dict[str, str]) -> list[str]:
    return [f"{k}={v}" for k, v in values.items()]


def prepare_args(data: Path) -> list[str]:
    """``pixvox pretrain --prepare-data``: generate the synthetic rooms under ``data`` and fuse them."""
    return [
        "pretrain",
        str(PRETRAIN_CONFIG),
        *_args({**SYNTHETIC, "data.root": str(data / "fusions")}),
        "--prepare-data",
    ]


def pretrain_args(
    fusions: Path, out_root: Path, name: str, steps: int, every: int, **extra: str
) -> list[str]:
    values = {
        **SYNTHETIC,
        **COMMON,
        "experiment.name": name,
        "experiment.output_root": str(out_root),
        "data.root": str(fusions),
        "data.synthetic.enabled": "false",
        "data.image_size": "[48,64]",
        "data.holdout_every": "0",
        "student.name": "Res16UNet14S",
        "teacher.fpn_channels": "16",
        "loss.embed_dim": "16",
        "loss.num_pairs": "64",
        "train.batch_size": "2",
        "train.max_steps": str(steps),
        "train.checkpoint_every": str(every),
        **extra,
    }
    return ["pretrain", str(PRETRAIN_CONFIG), *_args(values)]


def finetune_args(
    clouds: Path, init: Path | None, out_root: Path, name: str, steps: int, every: int, **extra: str
) -> list[str]:
    values = {
        **COMMON,
        "experiment.name": name,
        "experiment.output_root": str(out_root),
        "data.root": str(clouds),
        "data.synthetic.enabled": "false",
        "data.voxel_size": "0.1",
        "data.train.include": "[synth0000]",
        "data.val.include": "[synth0001]",
        "data.augment_3d.elastic": "false",
        "student.name": "Res16UNet14S",
        "init.mode": "pretrained" if init else "scratch",
        "init.checkpoint": str(init) if init else "null",
        "train.batch_size": "2",
        "train.max_steps": str(steps),
        "train.checkpoint_every": str(every),
        "eval.export_ply": "1",
        **extra,
    }
    return ["finetune", str(FINETUNE_CONFIG), *_args(values)]
