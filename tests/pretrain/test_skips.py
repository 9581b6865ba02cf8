"""Bad samples and empty batches in pretraining (issue 14 item 2): an unreadable or damaged sample is
skipped, counted and listed in skipped_samples.jsonl (also from a loader worker), too many stop the
run with a user error, and batches without pairs are skipped, not fatal."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from pixvox import cli
from pixvox.config.pretrain import PretrainDataConfig
from pixvox.datasets.fusion import FusionPretrainDataset
from pixvox.datasets.skipped import SkippedSample
from pixvox.errors import EXIT_USER_ERROR
from pixvox.io.fusions import FusionIndex

from .conftest import REPO, tiny_overrides

CONFIG = str(REPO / "configs/pretrain/quickstart.yaml")


def _flip_a_pixel(path: Path) -> None:
    """Change one byte inside the ``images`` array: the file still loads with the right shapes."""
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["images"].flat[7] ^= 0xFF
    np.savez(path, **arrays)


def _copy(tiny_fusions: Path, tmp_path: Path) -> tuple[Path, FusionIndex]:
    root = tmp_path / "fusions"
    shutil.copytree(tiny_fusions, root)
    return root, FusionIndex.load(root)


def test_a_flipped_byte_is_caught_by_the_checksum(tiny_fusions, tmp_path):
    root, index = _copy(tiny_fusions, tmp_path)
    _flip_a_pixel(index.path(1))
    cfg = PretrainDataConfig(root=str(root), voxel_size=0.1)
    ds = FusionPretrainDataset(root, cfg, augment=False, skip_unreadable=True)
    got = ds[(1, 0)]
    assert isinstance(got, SkippedSample) and got.path == str(index.path(1)) and "sha256" in got.reason
    assert not isinstance(ds[(0, 0)], SkippedSample)
    unchecked = PretrainDataConfig(root=str(root), voxel_size=0.1, verify_checksums=False)
    assert not isinstance(FusionPretrainDataset(root, unchecked, augment=False)[(1, 0)], SkippedSample)


def test_bad_samples_are_skipped_listed_and_counted(tiny_fusions, tmp_path):
    root, index = _copy(tiny_fusions, tmp_path)
    bad = {index.path(2): "truncated", index.path(5): "sha256"}
    data = index.path(2).read_bytes()
    index.path(2).write_bytes(data[: len(data) // 2])
    _flip_a_pixel(index.path(5))
    args = tiny_overrides(
        root,
        tmp_path,
        "skips",
        **{"train.num_workers": 1, "train.max_steps": 6, "data.max_skipped_fraction": 0.2},
    )
    assert cli.main(["pretrain", CONFIG, *args, "--resume", "none"]) == 0
    run = tmp_path / "skips"
    lines = [json.loads(x) for x in (run / "skipped_samples.jsonl").read_text().splitlines()]
    assert lines and {Path(x["path"]) for x in lines} <= set(bad)
    for x in lines:
        assert str(x["path"]) in x["reason"] and x["rank"] == 0 and 1 <= x["step"] <= 6
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 6 and summary["skipped_samples"] == len(lines)
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["skipped_samples"] == len(lines)


def test_too_many_bad_samples_stop_the_run(capsys, tiny_fusions, tmp_path):
    root, index = _copy(tiny_fusions, tmp_path)
    data = index.path(0).read_bytes()
    index.path(0).write_bytes(data[:100])
    args = tiny_overrides(root, tmp_path, "stop", **{"train.max_steps": 12, "train.batch_size": 12})
    code = cli.main(["pretrain", CONFIG, *args, "--resume", "none"])
    err = capsys.readouterr().err
    assert code == EXIT_USER_ERROR and "Traceback" not in err
    assert "1 of 12 prepared samples could not be read" in err and "data.max_skipped_fraction=0.01" in err
    assert str(tmp_path / "stop" / "skipped_samples.jsonl") in err and str(index.path(0)) in err


def test_batches_without_pairs_are_skipped_then_stop_the_run(capsys, tiny_fusions, tmp_path):
    # no depth between 9.9 and 10 m: no pixel matches a voxel, so no batch has a pair
    args = tiny_overrides(
        tiny_fusions,
        tmp_path,
        "nopairs",
        **{"data.depth_min": 9.9, "data.depth_max": 10.0, "train.max_nonfinite_steps": 2},
    )
    code = cli.main(["pretrain", CONFIG, *args, "--resume", "none"])
    err = capsys.readouterr().err
    assert code == EXIT_USER_ERROR and "Traceback" not in err, err
    assert "step 2: 2 consecutive batches had nothing to learn from" in err
