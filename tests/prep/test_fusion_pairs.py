"""View pairs (PointContrast): overlap figures against brute-force counts; the stored list is exact."""

from __future__ import annotations

import itertools
import json
import shutil

import numpy as np
import pytest

from pixvox.io.fusions import FusionFormatError, FusionIndex
from pixvox.prep.fusion_pairs import overlapping_pairs, view_pairs_json
from tests.pretrain.conftest import tiny_fusions  # noqa: F401  (session fixture)


def _brute(a: np.ndarray, b: np.ndarray) -> tuple[int, float]:
    sa, sb = set(map(tuple, a.tolist())), set(map(tuple, b.tolist()))
    shared = len(sa & sb)
    return shared, shared / min(len(sa), len(sb))


def _random_fusions(seed: int, n: int = 7) -> list[np.ndarray]:
    """Boxes of voxels at shifted places (some overlapping a lot, some little, some not at all),
    each with a random half of its voxels kept."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        lo = rng.integers(-12, 12, size=3)
        grid = np.stack(np.meshgrid(*[np.arange(8)] * 3, indexing="ij"), -1).reshape(-1, 3) + lo
        out.append(grid[rng.random(len(grid)) < 0.5].astype(np.int32))
    return out


def test_overlap_figures_equal_a_brute_force_count(seed):
    coords = _random_fusions(seed)
    got = {(i, j): (s, o) for i, j, s, o in overlapping_pairs(coords, 0.3)}
    kept = 0
    for i, j in itertools.combinations(range(len(coords)), 2):
        shared, overlap = _brute(coords[i], coords[j])
        if overlap >= 0.3:
            kept += 1
            assert got[(i, j)][0] == shared and got[(i, j)][1] == pytest.approx(overlap, rel=1e-12)
        else:
            assert (i, j) not in got
    assert kept == len(got)


def test_the_index_stores_exactly_the_pairs_above_the_threshold(tiny_fusions):  # noqa: F811
    index = FusionIndex.load(tiny_fusions)
    stored = {(p.a, p.b): p for p in index.view_pairs(0.3)}
    assert stored, "the synthetic fusions should overlap"
    coords = [index.load_sample(i).coords for i in range(len(index))]
    scene = [r.name.rsplit("_", 1)[0] for r in index.samples]
    for a, b in itertools.combinations(range(len(index)), 2):
        if scene[a] != scene[b]:
            assert (a, b) not in stored  # pairs never cross scenes
            continue
        shared, overlap = _brute(coords[a], coords[b])
        if overlap >= 0.3:
            assert stored[(a, b)].shared == shared and stored[(a, b)].overlap == pytest.approx(overlap)
        else:
            assert (a, b) not in stored


def test_view_pairs_errors_name_the_index(tiny_fusions, tmp_path):  # noqa: F811
    root = tmp_path / "fusions"
    shutil.copytree(tiny_fusions, root)
    with pytest.raises(FusionFormatError, match=r"index\.json: holds the view pairs with overlap >= 0\.3"):
        FusionIndex.load(root).view_pairs(0.1)
    d = json.loads((root / "index.json").read_text())
    del d["view_pairs"]
    (root / "index.json").write_text(json.dumps(d))
    with pytest.raises(
        FusionFormatError, match=r"index\.json: no view pairs .* rerun python -m pixvox.prep fusions"
    ):
        FusionIndex.load(root).view_pairs(0.3)


def test_view_pairs_json_groups_by_scene():
    coords = _random_fusions(0, 4)
    table = view_pairs_json({"s1": [("b", coords[0]), ("a", coords[1])], "s2": [("c", coords[2])]}, 0.01)
    assert table["min_overlap"] == 0.01 and table["scenes"]["s2"] == []
    for e in table["scenes"]["s1"]:
        assert (e["a"], e["b"]) == ("a", "b")  # sorted by name
        assert (e["shared"], e["overlap"]) == pytest.approx(_brute(coords[1], coords[0]))
