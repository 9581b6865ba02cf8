"""The fine-tuning job: labeled scenes → network (scratch / pretrained / linear probe; classifier new or
from a converged probe) → segmentation step → evaluation on the original points → metrics JSON,
confusion PNG, PLY predictions, summary.
Everything else (threads, processes, resume, loader, logging, the loop) is the shared job assembly,
pixvox.engine.job.

Run through ``pixvox finetune``, ``tools/finetune_seg.sh`` (torchrun) or ``python tools/finetune_seg.py``.
Outputs under ``<experiment.output_root>/<experiment.name>/``: config.yaml, metrics.jsonl, curves.png,
checkpoints/, init.json (what was loaded), eval/metrics.json, eval/confusion.png,
eval/predictions/*.ply, summary.json.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch import nn

from pixvox.comm import broadcast_tensors
from pixvox.config import FinetuneConfig
from pixvox.datasets.segmentation import SegmentationDataset, class_weights, collate_segmentation
from pixvox.datasets.splits import resolve_split
from pixvox.engine.job import TrainingJob
from pixvox.engine.launch import JOBS
from pixvox.engine.logger import MetricLogger, json_safe, log
from pixvox.engine.trainer import TrainState
from pixvox.evaluation import metrics_table, plot_confusion, write_metrics_json
from pixvox.evaluation.export import legend
from pixvox.finetune.evaluate import evaluate
from pixvox.finetune.head_init import init_head_from_probe
from pixvox.finetune.model import HEAD_PREFIX, SegmentationNet, initialize
from pixvox.finetune.step import SegmentationStep
from pixvox.io.atomic import atomic_write_json
from pixvox.io.clouds import CloudIndex
from pixvox.prep.ensure import ensure_segmentation_data, open_segmentation_data
from pixvox.prep.scannet.benchmark import select_scenes

DEFAULT_CONFIG = JOBS["finetune"].default_config


def make_datasets(cfg: FinetuneConfig, index: CloudIndex) -> tuple[SegmentationDataset, SegmentationDataset]:
    d = cfg.data
    all_train = resolve_split(index, d.train, "data.train")
    train_names = select_scenes(all_train, d.subset.scene_fraction, d.subset.seed)
    val_names = resolve_split(index, d.val, "data.val")
    overlap = sorted(set(train_names) & set(val_names))
    if overlap:
        log.warning(
            "%d scenes are in both the training and the validation split (e.g. %s)", len(overlap), overlap[:3]
        )
    train_ds = SegmentationDataset(
        index,
        train_names,
        d,
        train=True,
        input_kind=cfg.student.input,
        repeat=d.train_repeat,
        skip_unreadable=True,
    )
    val_ds = SegmentationDataset(index, val_names, d, train=False, input_kind=cfg.student.input)
    log.info(
        "train: %d of %d scenes%s | val: %d scenes | %d classes",
        len(train_names),
        len(all_train),
        f", {d.subset.points_per_scene} labeled points each" if d.subset.points_per_scene else "",
        len(val_names),
        index.num_classes,
    )
    return train_ds, val_ds


class FinetuneJob(TrainingJob):
    info = JOBS["finetune"]
    cfg: FinetuneConfig
    net: SegmentationNet

    @classmethod
    def prepare_data(cls, cfg: FinetuneConfig) -> None:
        ensure_segmentation_data(cfg)

    def start_note(self) -> str:
        return f" | init {self.cfg.init.mode}"

    def build_data(self) -> SegmentationDataset:
        cfg = self.cfg
        self.index = open_segmentation_data(cfg)
        train_ds, self.val_ds = make_datasets(cfg, self.index)
        self.train_ds = train_ds
        self.train_scenes = len(train_ds.scenes)
        self.class_weights = None
        if cfg.loss.class_weights != "none":
            self.class_weights = class_weights(train_ds.label_counts(), cfg.loss.class_weights)
            log.info("class weights %s", [round(float(w), 3) for w in self.class_weights])
        return train_ds

    def collate(self, samples: list[Any]) -> dict[str, Any]:
        return collate_segmentation(samples)

    def build_network(self) -> SegmentationNet:
        cfg = self.cfg
        net = SegmentationNet(cfg.student, self.index.num_classes)
        report, self.init_path = initialize(net, cfg)
        self.init_info = {
            "mode": cfg.init.mode,
            "head": cfg.init.head,
            "head_probe": None,  # filled by initialize_fresh with init.head=probe
            "checkpoint": str(self.init_path) if self.init_path else None,
            "loaded": len(report.loaded) if report else 0,
            "new_head": report.expected_missing if report else [],
            "unexpected": report.unexpected if report else [],
            "trainable_parameters": sum(p.numel() for p in net.parameters() if p.requires_grad),
        }
        return net

    def initialize_fresh(self) -> None:
        """With ``init.head=probe``, fit the classifier on the main process and broadcast it (a resumed
        run skips this: its checkpoint holds the trained classifier); write init.json (a resumed run
        keeps the one its start wrote)."""
        if self.cfg.init.head == "probe":
            if self.dist.is_main:
                self.init_info["head_probe"] = init_head_from_probe(
                    self.net, self.train_ds, self.dist.device, self.cfg.init.probe_l2
                )
            final = self.net.student.final
            broadcast_tensors([final.kernel, final.bias])
        if self.dist.is_main:
            atomic_write_json(self.run_dir / "init.json", self.init_info)

    def sync_bn_scope(self) -> nn.Module | None:
        return None if self.net.frozen_backbone or self.net.frozen_bn_stats else self.net.student

    def param_groups(self) -> list[dict[str, Any]]:
        lr = self.cfg.optim.lr
        if self.cfg.optim.backbone_lr_factor == 1:
            return super().param_groups()  # one group: checkpoints of earlier runs still resume
        head, backbone = [], []
        for name, p in self.net.student.named_parameters():
            (head if name.startswith(HEAD_PREFIX) else backbone).append(p)
        return [
            {"params": head, "lr": lr},
            {"params": backbone, "lr": lr * self.cfg.optim.backbone_lr_factor},
        ]

    def checkpoint_extras(self) -> dict[str, Any]:
        return {
            "student": self.net.student_state(),
            "student_name": self.cfg.student.name,
            "class_names": self.index.class_names,
        }

    def weight_files(self) -> dict[str, Path]:
        return {"init.checkpoint": self.init_path} if self.init_path is not None else {}

    def build_step(self) -> SegmentationStep:
        return SegmentationStep(
            self.model, self.dist.device, self.class_weights, self.cfg.loss.label_smoothing
        )

    def build_eval(self):
        cfg = self.cfg

        def periodic_eval(step: int) -> dict[str, float]:
            if step >= cfg.train.max_steps:
                return {}  # the final evaluation (with exports) covers the last step
            m, loss = evaluate(self.net, self.val_ds, self.dist.device)
            return {"eval_miou": m.miou, "eval_macc": m.macc, "eval_acc": m.oa, "eval_loss": loss}

        return (periodic_eval if cfg.eval.every else None), cfg.eval.every

    def after_training(self, state: TrainState, logger: MetricLogger) -> None:
        cfg = self.cfg
        t1 = time.perf_counter()
        self.metrics, self.eval_loss = evaluate(
            self.net,
            self.val_ds,
            self.dist.device,
            self.run_dir / "eval" / "predictions",
            cfg.eval.export_ply,
        )
        self.eval_seconds = time.perf_counter() - t1
        if self.dist.is_main and not state.stopped_early:
            m = self.metrics
            logger.log(
                state.step,
                {"eval_miou": m.miou, "eval_macc": m.macc, "eval_acc": m.oa, "eval_loss": self.eval_loss},
            )

    def summarize(self, state: TrainState, curves: Path | None, train_seconds: float) -> dict[str, Any]:
        cfg, metrics, val_ds = self.cfg, self.metrics, self.val_ds
        eval_dir = self.run_dir / "eval"
        summary = {
            "run_dir": str(self.run_dir),
            "init": cfg.init.mode,
            "checkpoint": self.init_info["checkpoint"],
            "steps": state.step,
            "stopped_early": state.stopped_early,
            "train_seconds": round(train_seconds, 1),
            "eval_seconds": round(self.eval_seconds, 1),
            "train_scenes": self.train_scenes,
            "val_scenes": len(val_ds.scenes),
            "points_per_scene": cfg.data.subset.points_per_scene,
            "scene_fraction": cfg.data.subset.scene_fraction,
            "seed": cfg.experiment.seed,
            "miou": metrics.miou,
            "macc": metrics.macc,
            "oa": metrics.oa,
            "eval_loss": self.eval_loss,
            "curves": str(curves) if curves else None,
            **state.skip_counts(),
        }
        if not self.dist.is_main:
            return summary
        write_metrics_json(
            eval_dir / "metrics.json",
            metrics,
            init=cfg.init.mode,
            step=state.step,
            checkpoint=self.init_info["checkpoint"],
            val_scenes=val_ds.scenes,
        )
        if cfg.eval.export_ply:
            atomic_write_json(eval_dir / "predictions" / "legend.json", legend(self.index.class_names))
        if cfg.eval.confusion_png:
            plot_confusion(
                metrics, eval_dir / "confusion.png", title=f"{cfg.experiment.name} ({cfg.init.mode})"
            )
        atomic_write_json(self.run_dir / "summary.json", json_safe(summary))
        title = f"{cfg.experiment.name}: {cfg.init.mode}, step {state.step}, {len(val_ds.scenes)} validation scene(s)"
        print(metrics_table(metrics, title))
        print(
            f"pixvox finetune {'STOPPED' if state.stopped_early else 'done'}: {state.step} steps in "
            f"{train_seconds:.0f} s | mIoU {100 * metrics.miou:.1f} | mAcc {100 * metrics.macc:.1f} | "
            f"OA {100 * metrics.oa:.1f} | {eval_dir / 'metrics.json'}"
        )
        print(json.dumps(json_safe({k: v for k, v in summary.items() if k not in ("curves",)})))
        return summary


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run one fine-tuning job; returns its summary (also written to summary.json)."""
    return FinetuneJob.main(list(argv) if argv is not None else None)


if __name__ == "__main__":
    main()
