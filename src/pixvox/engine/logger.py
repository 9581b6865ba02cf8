"""Run logging: a console progress bar, a JSONL metrics file, wandb, and a PNG of the curves.

Only the main process (rank 0) writes; other ranks get a logger that does nothing.
"""

from __future__ import annotations

import json
import logging
import math
import os
import secrets
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pixvox.io.atomic import atomic_write_text

log = logging.getLogger("pixvox")


def setup_console_logging(is_main: bool) -> None:
    level = logging.INFO if is_main else logging.WARNING
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stdout
    )
    log.setLevel(level)


def json_safe(values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` with every NaN/inf float replaced by None (JSON null) and, where any was, a
    ``"nonfinite"`` list naming those keys; strict JSON writers (pixvox.io.atomic) accept the result."""
    out: dict[str, Any] = {}
    bad = []
    for k, v in values.items():
        if isinstance(v, float) and not math.isfinite(v):
            out[k] = None
            bad.append(k)
        else:
            out[k] = v
    if bad:
        out["nonfinite"] = bad
    return out


def resolve_wandb_mode(mode: str) -> str:
    """``auto`` → online with WANDB_API_KEY set, else disabled: ``metrics.jsonl`` and ``curves.png`` hold
    the run, and an offline wandb run nobody syncs would cost every launch ~2 s of start-up (issue 17's
    5-second start); ``offline`` asks for one (sync later with ``wandb sync``)."""
    if mode == "auto":
        return "online" if os.environ.get("WANDB_API_KEY") else "disabled"
    return mode


class MetricLogger:
    """Writes ``metrics.jsonl`` (one JSON object per logged step) under ``run_dir``.

    Args:
        run_dir: the run's output folder.
        total_steps: for the progress bar's ETA.
        start_step: when resuming, lines after this step (logged after the checkpoint) are dropped
            first, so the file never holds the same step twice.
        wandb_mode: disabled | offline | online | auto.
        config: the resolved config (plain dict), stored with the wandb run.
    """

    def __init__(
        self,
        run_dir: str | Path,
        total_steps: int,
        start_step: int = 0,
        enabled: bool = True,
        progress_bar: bool = True,
        wandb_mode: str = "disabled",
        wandb_project: str = "pixvox",
        run_name: str = "pixvox",
        config: Mapping[str, Any] | None = None,
    ) -> None:
        self.enabled = enabled
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / "metrics.jsonl"
        self._bar = None
        self._wandb = None
        if not enabled:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._truncate(start_step)
        self._file = self.path.open("a")
        if progress_bar:
            from tqdm import tqdm

            self._bar = tqdm(
                total=total_steps,
                initial=start_step,
                desc=run_name,
                unit="step",
                dynamic_ncols=True,
                file=sys.stdout,
                mininterval=1.0,
            )
        mode = resolve_wandb_mode(wandb_mode)
        if mode != "disabled":
            self._wandb = self._init_wandb(mode, wandb_project, run_name, config or {})

    def _truncate(self, start_step: int) -> None:
        if not self.path.exists():
            return
        kept = [
            line
            for line in self.path.read_text().splitlines()
            if line.strip() and 0 <= _step_of(line) <= start_step  # -1: a line cut by a kill
        ]
        atomic_write_text(self.path, "".join(f"{line}\n" for line in kept))

    def _init_wandb(self, mode: str, project: str, name: str, config: Mapping[str, Any]):
        try:
            import wandb
        except ImportError:
            log.warning("wandb is not installed; logging.wandb=%s ignored (pip install wandb)", mode)
            return None
        id_file = self.run_dir / "wandb_run_id.txt"
        run_id = id_file.read_text().strip() if id_file.exists() else secrets.token_hex(4)
        atomic_write_text(id_file, run_id)
        os.environ.setdefault("WANDB_SILENT", "true")
        run = wandb.init(
            project=project,
            name=name,
            id=run_id,
            resume="allow",
            mode=mode,
            dir=str(self.run_dir),
            config=dict(config),
        )
        log.info("wandb run %s (%s) in %s", run_id, mode, run.dir)
        return run

    def log(self, step: int, metrics: Mapping[str, float | None], advance: int = 0) -> None:
        """Record ``metrics`` at ``step`` (1-based count of finished steps)."""
        if not self.enabled:
            return
        row = json_safe({"step": step, **{k: _number(v) for k, v in metrics.items()}})
        self._file.write(json.dumps(row, allow_nan=False) + "\n")
        self._file.flush()
        if self._wandb is not None:
            self._wandb.log(dict(metrics), step=step)
        if self._bar is not None:
            self._bar.set_postfix(
                {
                    k: f"{v:.4g}"
                    for k, v in metrics.items()
                    if k in ("loss", "acc", "pairs_s", "lr") and v is not None
                },
                refresh=False,
            )

    def advance(self, n: int = 1) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def close(self, curves_png: bool = True) -> Path | None:
        if not self.enabled:
            return None
        if self._bar is not None:
            self._bar.close()
        self._file.close()
        if self._wandb is not None:
            self._wandb.finish()
        return plot_curves(self.path, self.run_dir / "curves.png") if curves_png else None


def _number(v: Any) -> float | None:
    return None if v is None else float(v)


def _step_of(line: str) -> int:
    try:
        return int(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return -1


def read_metrics(path: str | Path) -> list[dict[str, float]]:
    rows = []
    for line in Path(path).read_text().splitlines():
        if line.strip():
            rows.append(json.loads(line))
    return rows


def plot_curves(
    metrics_jsonl: str | Path, out_png: str | Path, keys: tuple[str, ...] = ("loss", "acc")
) -> Path | None:
    """A PNG with one panel per metric in ``keys`` (train and held-out ``eval_*`` curves together)."""
    rows = read_metrics(metrics_jsonl) if Path(metrics_jsonl).exists() else []
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 3.6))
    for ax, key in zip(axes if len(keys) > 1 else [axes], keys):
        for name, style in ((key, "-"), (f"eval_{key}", "o-")):
            pts = [(r["step"], r[name]) for r in rows if r.get(name) is not None]
            if pts:
                ax.plot(*zip(*pts), style, label=name, markersize=3)
        if key == "acc":
            chance = [(r["step"], r["chance"]) for r in rows if r.get("chance") is not None]
            if chance:
                ax.plot(*zip(*chance), ":", color="gray", label="chance (1/N)")
        ax.set_xlabel("step")
        ax.set_title(key)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    out_png = Path(out_png)
    tmp = out_png.with_name(f".{out_png.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, out_png)
    return out_png
