"""Bad scenes in fine-tuning (issue 14 item 2): an unreadable scene is skipped, counted and listed in
skipped_samples.jsonl instead of ending the run."""

from __future__ import annotations

import json
import shutil

from pixvox.finetune.run import main
from pixvox.io.clouds import CloudIndex

from .test_run import CONFIG, tiny_args


def test_an_unreadable_scene_is_skipped_and_listed(tiny_rooms, tmp_path):
    root = tmp_path / "clouds"
    shutil.copytree(tiny_rooms, root)
    bad = CloudIndex.load(root).path(1)  # room1, a training scene
    bad.write_bytes(bad.read_bytes()[:200])
    args = tiny_args(root, tmp_path, "skip", **{"data.max_skipped_fraction": 0.6, "train.max_steps": 3})
    summary = main([CONFIG, *args, "--resume", "none"])
    lines = [json.loads(x) for x in (tmp_path / "skip" / "skipped_samples.jsonl").read_text().splitlines()]
    assert lines and all(x["path"] == str(bad) and str(bad) in x["reason"] for x in lines)
    assert summary["steps"] == 3 and summary["skipped_samples"] == len(lines)
