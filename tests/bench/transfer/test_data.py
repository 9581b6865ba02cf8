"""The benchmark's data: the contiguous held-out tail, F-frame fusions kept before it, the room split
check, both room layouts."""

from __future__ import annotations

import numpy as np
import pytest

from pixvox.bench.transfer.data import (
    RoomSplitError,
    before_heldout,
    check_disjoint,
    contiguous_split,
    prepare_fusions,
    prepare_rooms,
    read_room,
    sample_frame_ids,
    sample_scene,
)

from .synthetic import pointcept_room as _pointcept_room
from .synthetic import seven_scenes_sequence as _seven_scenes_sequence


def test_contiguous_split_holds_out_the_last_fifth_of_every_scene():
    names = [f"a_{i:06d}" for i in range(10)] + [f"b_c_{i:06d}" for i in range(0, 50, 10)] + ["solo_000003"]
    train, held = contiguous_split(names[::-1], 0.2)  # input order must not matter
    assert sorted(held) == ["a_000008", "a_000009", "b_c_000040"]
    assert sorted(train) == sorted(set(names) - set(held))
    # every held-out frame comes after every training frame of its scene
    for scene in ("a", "b_c"):
        last_train = max(int(n.rsplit("_", 1)[1]) for n in train if n.rsplit("_", 1)[0] == scene)
        assert all(int(n.rsplit("_", 1)[1]) > last_train for n in held if n.rsplit("_", 1)[0] == scene)


def test_a_room_in_train_and_test_is_an_error_naming_it():
    with pytest.raises(RoomSplitError, match="scene0025_00"):
        check_disjoint(["x/scene0011_00", "y/scene0025_00"], ["z/scene0025_00_vert_all.npy"])


def test_both_layouts_are_read_and_written_once(tmp_path):
    _pointcept_room(tmp_path / "pc" / "scene0011_00")
    verts = np.random.default_rng(1).uniform(0, 255, (40, 6)).astype(np.float32)
    np.save(tmp_path / "scene0000_00_vert_all.npy", verts)
    np.save(tmp_path / "scene0000_00_sem_label_all.npy", np.full(40, 5, np.uint32))  # NYU40 5 = chair
    index = prepare_rooms([tmp_path / "pc" / "scene0011_00"], [tmp_path / "scene0000_00"], tmp_path / "rooms")
    assert index.names() == ["scene0000_00", "scene0011_00"]
    chair = index.class_names.index("chair")
    assert (index.load_scene("scene0000_00").labels == chair).all()
    np.testing.assert_array_equal(
        index.load_scene("scene0011_00").labels, np.load(tmp_path / "pc" / "scene0011_00" / "segment20.npy")
    )


def test_an_unknown_room_path_is_an_error_naming_it(tmp_path):
    with pytest.raises(RoomSplitError, match="nowhere/scene0099_00"):
        read_room(tmp_path / "nowhere" / "scene0099_00")


def test_a_damaged_room_file_is_an_error_naming_it(tmp_path):
    from pixvox.errors import UserError

    np.save(tmp_path / "scene0000_00_vert_all.npy", np.zeros((10, 6), np.float32))
    np.save(tmp_path / "scene0000_00_sem_label_all.npy", np.zeros(7, np.uint32))  # 7 labels for 10 points
    with pytest.raises(UserError, match="scene0000_00_sem_label_all.npy"):
        read_room(tmp_path / "scene0000_00")
    _pointcept_room(tmp_path / "pc" / "scene0011_00")
    np.save(tmp_path / "pc" / "scene0011_00" / "color.npy", np.zeros((3, 3), np.uint8))
    with pytest.raises(UserError, match="color.npy"):
        read_room(tmp_path / "pc" / "scene0011_00")


def test_before_heldout_keeps_only_samples_entirely_before_each_scenes_tail():
    samples = [
        ("a_000000", [0, 1, 2]),
        ("a_000001", [1, 2, 3]),
        ("a_000002", [2, 3, 4]),
        ("b_000000", [0, 1]),
    ]
    # a's tail starts at frame 3: a sample holding frame 3 or later is out; b holds nothing out
    assert before_heldout(samples, [("a_000003", [3]), ("a_000004", [4])]) == ["a_000000", "b_000000"]


def test_multi_frame_fusions_are_made_apart_and_never_reach_the_heldout_frames(tmp_path, seed):
    from pixvox.io.fusions import FusionIndex

    rng = np.random.default_rng(seed)
    _seven_scenes_sequence(tmp_path / "seqs" / "seq-01", 10, rng)
    _seven_scenes_sequence(tmp_path / "seqs" / "seq-02", 7, rng)
    kw = {"voxel_size": 0.1, "image_size": None, "depth_max": 6.0, "heldout_fraction": 0.2}
    single = prepare_fusions([tmp_path / "seqs"], tmp_path / "work", **kw)
    # F = 3, stride 1: overlapping samples, so some straddle the cut and must be dropped
    multi = prepare_fusions([tmp_path / "seqs"], tmp_path / "work", frames_per_sample=3, frame_stride=1, **kw)
    assert (multi.frames_per_sample, multi.frame_stride) == (3, 1)
    assert multi.heldout == single.heldout and multi.train != single.train  # one held-out view for all arms
    held = FusionIndex.load(single.heldout)
    assert [s.name for s in held.samples] == ["seq-01_000008", "seq-01_000009", "seq-02_000006"]
    first_held = {"seq-01": 8, "seq-02": 6}
    train = FusionIndex.load(multi.train)
    assert train.frames_per_sample == 3 and train.root.name.startswith("train_f3_s1_")
    assert all(s.num_frames == 3 for s in train.samples)
    frames = {s.name: sample_frame_ids(s.source, "x") for s in train.samples}
    # every sample whose 3 frames all come before its scene's tail, and no other
    expect = [f"seq-01_{i:06d}" for i in range(0, 6)] + [f"seq-02_{i:06d}" for i in range(0, 4)]
    assert sorted(frames) == expect
    for name, ids in frames.items():
        assert ids == list(range(ids[0], ids[0] + 3))
        assert max(ids) < first_held[sample_scene(name)]
    # every training file exists and was fused from 3 frames (not the single-frame folder's files)
    for s in train.samples:
        path = (train.root / s.file).resolve()
        assert path.is_file() and "all_f3_s1" in path.parts
    # the single-frame split is untouched by the multi-frame one, and F = 1 is its own layout
    again = prepare_fusions([tmp_path / "seqs"], tmp_path / "work", **kw)
    assert again == single


def test_a_sample_source_without_frames_is_an_error_naming_the_index():
    from pixvox.errors import MissingDataError

    assert sample_frame_ids("seq-01 frames 4,5,6", "idx.json") == [4, 5, 6]
    with pytest.raises(MissingDataError, match="idx.json"):
        sample_frame_ids("seq-01", "idx.json")
