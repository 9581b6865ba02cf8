"""Fine-tuning scratch vs pretrained at a few labeled points per training room, through the
fine-tuning job (pixvox.finetune), cached like the pretraining runs (hash of the resolved config).

A seed fixes the labeled points, the head and augmentations, and (for ``pretrained``) the pretraining
run of the same seed: a seed's two inits see the same labels. The validation mIoU is also measured at
``curve_points`` evenly spaced steps (``eval.every``) so the report can say whether the curve had
flattened: the change between the last two measurements.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from pathlib import Path

from pixvox.bench.transfer.arms import config_hash, finished
from pixvox.config import FinetuneConfig, load_config

INITS = ("scratch", "pretrained")


def finetune_config(
    recipe: Path,
    init: str,
    budget: int,
    seed: int,
    steps: int,
    rooms_root: Path,
    train_rooms: Sequence[str],
    test_rooms: Sequence[str],
    checkpoint: Path | None,
    curve_points: int = 4,
    overrides: Sequence[str] = (),
) -> FinetuneConfig:
    """The resolved fine-tuning config of one run; ``overrides`` (``key=value``) come last."""
    ov = [
        f"data.root={rooms_root}",
        f"data.train.include=[{', '.join(train_rooms)}]",
        f"data.val.include=[{', '.join(test_rooms)}]",
        f"data.subset.points_per_scene={budget}",
        f"data.subset.seed={seed}",
        f"experiment.seed={seed}",
        f"train.max_steps={steps}",
        f"eval.every={max(1, steps // curve_points)}",
        f"init.mode={init}",
    ]
    if init != "scratch":
        ov.append(f"init.checkpoint={checkpoint}")
    return load_config(FinetuneConfig, recipe, [*ov, *overrides])


def finetune_run(
    cfg: FinetuneConfig, runs: Path, log_file: Path
) -> tuple[dict, list[tuple[int, float]], bool]:
    """Run (or reuse) one fine-tuning; returns (summary, [(step, val mIoU)...], reused)."""
    from pixvox.finetune.run import FinetuneJob

    tag = f"{cfg.init.mode}_b{cfg.data.subset.points_per_scene}_s{cfg.experiment.seed}"
    cfg.experiment.name = f"{tag}_{config_hash(cfg)}"
    cfg.experiment.output_root = str(runs)
    run_dir = runs / cfg.experiment.name
    summary = finished(run_dir, cfg)
    reused = summary is not None
    if summary is None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(log_file, "a") as out, contextlib.redirect_stdout(out):
            summary = FinetuneJob.launch(cfg, resume="auto")
        if summary.get("stopped_early"):
            raise KeyboardInterrupt(f"fine-tuning {run_dir} was interrupted; rerun to resume it")
    return summary, eval_curve(run_dir / "metrics.jsonl"), reused


def eval_curve(metrics_jsonl: Path) -> list[tuple[int, float]]:
    """``[(step, eval_miou)]`` logged by the run, in step order (the last entry wins per step)."""
    points: dict[int, float] = {}
    if metrics_jsonl.is_file():
        for line in metrics_jsonl.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict) and row.get("eval_miou") is not None and "step" in row:
                points[int(row["step"])] = float(row["eval_miou"])
    return sorted(points.items())
