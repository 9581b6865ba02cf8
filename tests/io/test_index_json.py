"""The shared index.json checks: each bad file gives the caller's error type, naming the file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pixvox.io.index_json import read_index_json


class IndexError_(Exception):
    pass


def _read(path: Path) -> dict:
    return read_index_json(path, "pixvox-test", 3, IndexError_, "run the preparation first")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "missing; run the preparation first"),
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object, found list"),
        ('{"format": "other", "version": 3}', "format is 'other', expected 'pixvox-test'"),
        ('{"format": "pixvox-test", "version": 2}', "version 2 is not supported (this pixvox reads 3)"),
    ],
)
def test_bad_index_names_the_file(tmp_path, text, message):
    p = tmp_path / "index.json"
    if text is not None:
        p.write_text(text)
    with pytest.raises(IndexError_) as err:
        _read(p)
    assert str(err.value).startswith(f"{p}: ")
    assert message in str(err.value)


def test_good_index_is_returned_whole(tmp_path):
    want = {"format": "pixvox-test", "version": 3, "samples": [{"name": "a"}], "extra": 1.5}
    p = tmp_path / "index.json"
    p.write_text(json.dumps(want))
    assert _read(p) == want
