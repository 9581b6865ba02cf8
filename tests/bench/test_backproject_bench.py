"""pixvox.bench.backproject: paired rounds, JSON, and refusing to time a wrong result."""

from __future__ import annotations

import json

import pytest
import torch

from pixvox import ops
from pixvox.bench import backproject as bench


def test_quick_run_writes_the_json(tmp_path):
    out = tmp_path / "b.json"
    result = bench.main(["--quick", "--threads", "1", "--repeats", "2", "--json", str(out)])
    assert json.loads(out.read_text()) == result
    run = result["by_threads"]["1"]
    assert set(run["ops"]) == {"voxel_hash_build", "pixel_to_voxel", "scatter_mean", "scatter_max", "gather"}
    combined = run["combined"]
    assert combined["ops"] == ["pixel_to_voxel", "scatter_mean", "gather"]
    assert result["speedup_vs_reference"] == combined["speedup"]["median"] > 0
    assert result["bandwidth_fraction"] == combined["fraction_of_copy"]["median"] > 0
    # Bytes are the minimum each op moves: pixels x channels x 4 B of features dominate scatter/gather.
    wl = result["workload"]
    assert (
        run["ops"]["gather"]["bytes"]
        == wl["kept_pixels"] * (8 + wl["channels"] * 4) + wl["scene_voxels"] * wl["channels"] * 4
    )
    assert combined["bytes"] == sum(run["ops"][k]["bytes"] for k in combined["ops"])
    for name in combined["ops"]:
        assert run["ops"][name]["ext_cold_ms"] > 0
        assert run["ops"][name]["speedup"]["min"] <= run["ops"][name]["speedup"]["median"]
    assert result["targets"]["met"] == (
        result["speedup_vs_reference"] >= 10 and result["bandwidth_fraction"] >= 0.6
    )


def test_a_wrong_kernel_result_is_not_timed(tmp_path, monkeypatch):
    def wrong_gather(feats: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        return torch.zeros(index.shape[0], feats.shape[1], dtype=feats.dtype)

    monkeypatch.setattr(ops, "gather_from_voxels", wrong_gather)
    with pytest.raises(SystemExit, match="gather disagrees"):
        bench.main(["--quick", "--threads", "1", "--repeats", "1", "--json", str(tmp_path / "b.json")])
    assert not (tmp_path / "b.json").exists()


def test_bad_arguments_are_refused():
    with pytest.raises(SystemExit):
        bench.parse_args(["--threads", "one"])
    with pytest.raises(SystemExit):
        bench.parse_args(["--repeats", "0"])
