"""pixvox.bench.sparse (tools/bench_sparse.py) on the real ScanNet room, in its --quick form."""

from __future__ import annotations

import json

import numpy as np

from pixvox.bench.sparse import load_room, main


def test_quick_benchmark_writes_its_table_and_json(shared_data, tmp_path, capsys):
    room = shared_data / "scannet_pointcept" / "scene0011_00"
    out = tmp_path / "sparse.json"
    assert main(["--quick", "--room", str(room), "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    (case,) = result["cases"]
    # The voxel count is the number of distinct floor(xyz / 5 cm) cells of the quarter room.
    xyz, _ = load_room(room, quarter=True)
    assert case["voxels"] == len(np.unique(np.floor(xyz.astype(np.float64) / 0.05), axis=0))
    assert case["model"] == "Res16UNet14S" and case["voxel_size_m"] == 0.05
    s1, s2 = case["seconds"]["1"], case["seconds"]["2"]
    assert len(s1["runs"]) == len(s2["runs"]) == 2 and s1["median"] > 0 and s2["median"] > 0
    assert case["scaling_2_threads"] == s1["median"] / s2["median"]
    # The engine keeps the thread count it is given (patch 0011): 1 stays 1.
    assert case["threads_in_effect_after_step"] == {"1": 1, "2": 2}
    table = capsys.readouterr().out
    assert "Res16UNet14S" in table and "scaling" in table


def test_missing_room_is_a_clear_error(tmp_path, capsys):
    assert main(["--quick", "--room", str(tmp_path), "--json", str(tmp_path / "x.json")]) == 2
    assert "coord.npy" in capsys.readouterr().err
