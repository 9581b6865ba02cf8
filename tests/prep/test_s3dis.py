"""S3DIS annotation folders written by the test: value-exact clouds, malformed lines reported by file
and line, unknown classes counted as clutter."""

from __future__ import annotations

import numpy as np

from pixvox.io.clouds import CloudIndex
from pixvox.prep import s3dis


def write_annotation(path, pts):
    path.write_text(
        "".join(f"{x:.6f} {y:.6f} {z:.6f} {int(r)} {int(g)} {int(b)}\n" for x, y, z, r, g, b in pts)
    )


def random_points(rng, n):
    return np.column_stack([rng.uniform(0, 8, (n, 3)).round(6), rng.integers(0, 256, (n, 3))])


def test_rooms_to_clouds(tmp_path, seed):
    rng = np.random.default_rng(seed)
    root = tmp_path / "Stanford3dDataset_v1.2_Aligned_Version"
    rooms = {
        "Area_1/office_1": ["chair_1", "wall_2", "board_1", "stairs_1"],
        "Area_2/hallway_3": ["floor_1"],
        "Area_5/WC_1": ["ceiling_1", "column_1"],
    }
    expected = {}
    n_stairs = 0
    for room, objs in rooms.items():
        ann = root / room / "Annotations"
        ann.mkdir(parents=True)
        xyz, labels = [], []
        for obj in sorted(objs):  # a room's points are its annotation files in name order
            pts = random_points(rng, int(rng.integers(1, 300)))
            write_annotation(ann / f"{obj}.txt", pts)
            xyz.append(pts)
            cls = obj.rsplit("_", 1)[0]
            labels.append(np.full(len(pts), s3dis.CLASS_NAMES.index(cls if cls != "stairs" else "clutter")))
            if cls == "stairs":
                n_stairs = len(pts)
        expected[room.replace("/", "_")] = (np.concatenate(xyz), np.concatenate(labels))
        (root / room / f"{room.split('/')[1]}.txt").write_text("ignored whole-room file\n")
    # A malformed line as in the release (a control character inside a number) in one file.
    bad_file = root / "Area_2/hallway_3/Annotations/floor_1.txt"
    lines = bad_file.read_text().splitlines(keepends=True)
    lines.insert(1, "1.000 2.0\x1000 3.000 10 20 30\n")
    bad_file.write_text("".join(lines))
    summary = s3dis.convert(root, tmp_path / "out", areas=[1, 2, 5], progress=False)
    assert summary["rooms"] == 3 and summary["malformed_lines"] == 1 and summary["failed"] == []
    assert summary["unknown_classes_as_clutter"] == {"stairs": n_stairs}
    index = CloudIndex.load(tmp_path / "out")
    assert index.class_names == list(s3dis.CLASS_NAMES)
    assert index.extra["malformed_lines"][0]["line"] == 2
    assert index.extra["malformed_lines"][0]["file"].endswith("Area_2/hallway_3/Annotations/floor_1.txt")
    for name, (pts, labels) in expected.items():
        c = index.load_scene(name)
        np.testing.assert_allclose(c.xyz, pts[:, :3].astype(np.float32))
        np.testing.assert_array_equal(c.rgb, pts[:, 3:].astype(np.uint8))
        np.testing.assert_array_equal(c.labels, labels)
    # Only area 1 again: nothing new to do, the index keeps all rooms.
    assert s3dis.convert(root, tmp_path / "out", areas=[1], progress=False)["new"] == 0


def test_parse_annotation_fallback_reports_every_bad_line(tmp_path, seed):
    rng = np.random.default_rng(seed)
    pts = random_points(rng, 50)
    write_annotation(tmp_path / "a_1.txt", pts)
    text = (tmp_path / "a_1.txt").read_text().splitlines()
    text[10] = "1 2 3 4 5"  # too few values
    text[20] = "nan 2 3 4 5 6"  # not finite
    (tmp_path / "a_1.txt").write_text("\n".join(text) + "\n\n")
    arr, bad = s3dis.parse_annotation(tmp_path / "a_1.txt")
    assert [b["line"] for b in bad] == [11, 21]
    np.testing.assert_allclose(arr, np.delete(pts, [10, 20], axis=0))
