"""The benchmark's data: the contiguous held-out tail, the room split check, both room layouts."""

from __future__ import annotations

import numpy as np
import pytest

from pixvox.evaluation.transfer.data import (
    RoomSplitError,
    check_disjoint,
    contiguous_split,
    prepare_rooms,
    read_room,
)


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


def _pointcept_room(folder, n=50, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    np.save(folder / "coord.npy", rng.uniform(0, 2, (n, 3)).astype(np.float32))
    np.save(folder / "color.npy", rng.integers(0, 256, (n, 3)).astype(np.uint8))
    np.save(folder / "segment20.npy", rng.integers(-1, 20, n).astype(np.int64))


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
