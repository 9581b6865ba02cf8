"""The pretraining job: fusions → student (+ teacher) → the objectives of ``loss.terms`` → held-out retrieval
→ checkpoints and a summary. Everything else (threads, processes, resume, loader, logging, the loop)
is the shared job assembly, pixvox.engine.job.

Run through ``pixvox pretrain``, ``tools/pretrain.sh`` (torchrun) or ``python tools/pretrain.py``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pixvox.config import PretrainConfig
from pixvox.datasets.fusion import FusionPretrainDataset, collate_pretrain, holdout_split
from pixvox.engine import checkpoint as ckpt
from pixvox.engine.job import TrainingJob
from pixvox.engine.launch import JOBS
from pixvox.engine.logger import json_safe
from pixvox.engine.sampler import sample_seed
from pixvox.engine.trainer import TrainState
from pixvox.errors import MissingDataError
from pixvox.io.atomic import atomic_write_json
from pixvox.models.teacher.weights import teacher_weight_file
from pixvox.objectives import dataset_inputs, dataset_options
from pixvox.prep.ensure import ensure_pretrain_data
from pixvox.pretrain.model import PretrainNet
from pixvox.pretrain.step import PretrainStep

EVAL_EPOCH = 2**31 - 1  # seed stream of the held-out evaluation, apart from every training epoch
DEFAULT_CONFIG = JOBS["pretrain"].default_config


def make_eval_fn(cfg: PretrainConfig, step_fn: PretrainStep, dataset: FusionPretrainDataset | None):
    """Held-out retrieval of the first term (PPKT: voxel→pixel; PointContrast: voxel→voxel of the other
    view): fixed samples, no augmentation, fixed pair seeds."""
    if dataset is None or len(dataset) == 0:
        return None
    n = min(len(dataset), cfg.train.batch_size)
    batch = collate_pretrain(
        [dataset[(i, sample_seed(cfg.experiment.seed, EVAL_EPOCH, i))] for i in range(n)]
    )

    def evaluate(step: int) -> dict[str, float]:
        _, m, _ = step_fn.losses(batch, gather=False)
        return {"eval_loss": m["loss"], "eval_acc": m["acc"], "eval_chance": m["chance"]}

    return evaluate


class PretrainJob(TrainingJob):
    info = JOBS["pretrain"]
    cfg: PretrainConfig
    net: PretrainNet

    @classmethod
    def prepare_data(cls, cfg: PretrainConfig) -> None:
        ensure_pretrain_data(cfg)

    def build_data(self) -> FusionPretrainDataset:
        cfg = self.cfg
        root = Path(cfg.data.root)
        if not (root / "index.json").is_file():
            raise MissingDataError(
                f"{root / 'index.json'} not found: prepare fusions with `pixvox prep fusions`, or run "
                "`pixvox pretrain --prepare-data CONFIG` (tools/pretrain.sh does), which prepares "
                "data.sequence or the synthetic default dataset (data.synthetic.enabled=true) first"
            )
        probe = FusionPretrainDataset(root, cfg.data, augment=False)
        train_idx, held_idx = holdout_split(len(probe.index), cfg.data.holdout_every)
        # only what the configured objectives use
        kw = {"inputs": dataset_inputs(cfg), "input_kind": cfg.student.input, **dataset_options(cfg)}
        self.held_out = (
            FusionPretrainDataset(root, cfg.data, held_idx, augment=False, **kw) if held_idx else None
        )
        train = FusionPretrainDataset(root, cfg.data, train_idx, augment=True, skip_unreadable=True, **kw)
        if len(train) == 0:
            raise MissingDataError(
                f"{root / 'index.json'}: no training sample has what the objectives need (e.g. another "
                "fusion of its scene with enough voxel overlap for pointcontrast); see the log above"
            )
        return train

    def collate(self, samples: list[Any]) -> dict[str, Any]:
        return collate_pretrain(samples)

    def build_network(self) -> PretrainNet:
        return PretrainNet(self.cfg)

    def model_state(self) -> dict[str, Any]:
        return self.net.checkpoint_state()  # the frozen teacher backbone comes from its own file

    def checkpoint_extras(self) -> dict[str, Any]:
        return {"student": self.net.student_state(), "student_name": self.cfg.student.name}

    def weight_files(self) -> dict[str, Path]:
        teacher = self.net.teacher
        path = teacher_weight_file(teacher.weights_source) if teacher is not None else None
        return {"teacher.weights": path} if path is not None else {}

    def build_step(self) -> PretrainStep:
        return PretrainStep(self.model, self.cfg, self.dist.device)

    def build_eval(self):
        eval_step = PretrainStep(self.net, self.cfg, self.dist.device)
        return make_eval_fn(self.cfg, eval_step, self.held_out), self.cfg.train.checkpoint_every

    def summarize(self, state: TrainState, curves: Path | None, train_seconds: float) -> dict[str, Any]:
        m = state.last_metrics
        summary = {
            "run_dir": str(self.run_dir),
            "steps": state.step,
            "stopped_early": state.stopped_early,
            "seconds": round(train_seconds, 1),
            "checkpoint": str(ckpt.latest_checkpoint(self.run_dir / "checkpoints")),
            "curves": str(curves) if curves else None,
            **state.skip_counts(),
            **{k: m[k] for k in ("loss", "acc", "chance", "eval_loss", "eval_acc", "eval_chance") if k in m},
        }
        if self.dist.is_main:
            atomic_write_json(self.run_dir / "summary.json", json_safe(summary))
            acc = summary.get("eval_acc", summary.get("acc"))
            chance = summary.get("eval_chance", summary.get("chance"))
            which = "held-out" if "eval_acc" in summary else "train"
            ratio = f" ({acc / chance:.0f}x chance)" if acc is not None and chance else ""
            print(
                f"pixvox pretrain {'STOPPED' if state.stopped_early else 'done'}: {state.step} steps in "
                f"{summary['seconds']:.0f} s | loss {summary.get('loss', float('nan')):.3f} | {which} "
                f"{self.cfg.loss.terms[0].name} top-1 {acc if acc is not None else float('nan'):.3f}{ratio} | "
                f"checkpoint {summary['checkpoint']}"
            )
            print(json.dumps(json_safe(summary)))
        return summary


def main(argv: Sequence[str] | None = None) -> dict:
    """``[CONFIG] [key=value ...] [--resume auto|PATH|none|force]``; returns the summary."""
    return PretrainJob.main(list(argv) if argv is not None else None)


if __name__ == "__main__":
    main()
