"""Which scenes of a labeled dataset form a split: glob patterns or a list file (``data.train``,
``data.val``). The data-efficient fraction of the training scenes is
:func:`pixvox.prep.scannet.benchmark.select_scenes`."""

from __future__ import annotations

import fnmatch
from pathlib import Path

from pixvox.config.finetune import SceneSplitConfig
from pixvox.io.clouds import CloudFormatError, LabeledScenes
from pixvox.prep.scannet.benchmark import read_scene_list


def resolve_split(index: LabeledScenes, split: SceneSplitConfig, what: str = "split") -> list[str]:
    """Scene names of ``index`` selected by ``split`` (in index order); unknown listed names raise."""
    names = index.names()
    if split.list_file:
        path = Path(split.list_file)
        if not path.is_absolute() and not path.is_file():
            path = index.root / path
        if not path.is_file():
            raise FileNotFoundError(
                f"{what}: list file {split.list_file} not found (also looked in {index.root})"
            )
        wanted = read_scene_list(path)
        missing = sorted(set(wanted) - set(names))
        if missing:
            raise CloudFormatError(
                f"{path}: {len(missing)} scenes are not in {index.root} (e.g. {missing[:3]}); "
                "prepare them or fix the list"
            )
        chosen = set(wanted)
        return [n for n in names if n in chosen]
    return [
        n for n in names
        if any(fnmatch.fnmatchcase(n, p) for p in split.include)
        and not any(fnmatch.fnmatchcase(n, p) for p in split.exclude)
    ]  # fmt: skip
