"""The metric log on resume: rows after the resumed step and lines cut by a kill are dropped."""

from __future__ import annotations

import json

from pixvox.engine.logger import MetricLogger, read_metrics


def test_resume_drops_later_rows_and_a_line_cut_by_a_kill(tmp_path):
    rows = [json.dumps({"step": s, "loss": 1.0 / s}) for s in range(1, 6)]
    # kill -9 while a row was being appended: the last line is cut (no newline, not JSON)
    (tmp_path / "metrics.jsonl").write_text("\n".join(rows) + '\n{"step": 6, "lo')
    logger = MetricLogger(tmp_path, 10, start_step=3, enabled=True, progress_bar=False, wandb_mode="disabled")
    logger.log(4, {"loss": 0.5})
    logger.close(curves_png=False)
    assert [(r["step"], r["loss"]) for r in read_metrics(tmp_path / "metrics.jsonl")] == [
        (1, 1.0),
        (2, 0.5),
        (3, 1.0 / 3),
        (4, 0.5),
    ]


def test_wandb_auto_is_online_with_a_key_and_off_without(monkeypatch):
    from pixvox.engine.logger import resolve_wandb_mode

    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    assert resolve_wandb_mode("auto") == "disabled"
    assert resolve_wandb_mode("offline") == "offline"  # asked for: kept
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert resolve_wandb_mode("auto") == "online"
    assert resolve_wandb_mode("disabled") == "disabled"
