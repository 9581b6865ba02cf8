"""The ScanNet benchmark in one place: class tables, NYU40 → ScanNet-20, scene lists, and the
data-efficient subsets of Contrastive Scene Contexts (CSC) with one seeded scheme.

Data-efficient subsets (used by ``python -m pixvox.prep scannet splits`` *and* by fine-tuning at run
time, so a written file and a config drawing at random with the same seed pick the same labels):

- scenes: each scene gets the key ``sha256("<seed>:<scene>")``; the fraction-f subset of N scenes is
  the ``max(1, round(f·N))`` scenes with the smallest keys, so 1% ⊂ 5% ⊂ 10% ⊂ 20% and a scene's rank
  does not depend on which other scenes are listed;
- points: the labeled points (label ≥ 0) of a scene in the order of a permutation drawn from
  ``numpy.random.default_rng(<first 8 bytes of sha256("<seed>:<scene>")>)``; the k-point subset is the
  first k, so 20 ⊂ 50 ⊂ 100 ⊂ 200.

Point-selection files read by :func:`load_points_file` (``data.subset.points_file``):

- ``limited_points.json`` written by ``splits`` (``"format": "pixvox.limited_points"``): nested
  per-scene orders; the budget ``data.subset.points_per_scene`` takes the first k;
- plain JSON ``{"scene": [point indices]}``: the exact selection;
- CSC's published ``points20`` / ``points50`` / ``points100`` / ``points200`` (a ``torch.save``'d dict
  ``{"scene0000_00": int64 array of point indices}``; indices into the vertices of
  ``<scene>_vh_clean_2.ply``, i.e. of the prepared cloud): the exact selection.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pixvox.io.clouds import CloudFormatError

#: NYU40 ids of the 20 ScanNet benchmark classes, in class-id order 0..19 (the benchmark's VALID_CLASS_IDS).
SCANNET20_NYU40_IDS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 16, 24, 28, 33, 34, 36, 39)
SCANNET20_CLASS_NAMES = (
    "wall", "floor", "cabinet", "bed", "chair", "sofa", "table", "door", "window", "bookshelf",
    "picture", "counter", "desk", "curtain", "refrigerator", "shower curtain", "toilet", "sink",
    "bathtub", "otherfurniture",
)  # fmt: skip
#: The ScanNet-200 benchmark classes in class-id order 0..199 (Pointcept's ``segment200``).
SCANNET200_CLASS_NAMES = tuple(
    name.strip()
    for name in """wall|chair|floor|table|door|couch|cabinet|shelf|desk|office chair|bed|pillow|sink|picture|window|
    toilet|bookshelf|monitor|curtain|book|armchair|coffee table|box|refrigerator|lamp|kitchen cabinet|
    towel|clothes|tv|nightstand|counter|dresser|stool|cushion|plant|ceiling|bathtub|end table|
    dining table|keyboard|bag|backpack|toilet paper|printer|tv stand|whiteboard|blanket|shower curtain|
    trash can|closet|stairs|microwave|stove|shoe|computer tower|bottle|bin|ottoman|bench|board|
    washing machine|mirror|copier|basket|sofa chair|file cabinet|fan|laptop|shower|paper|person|
    paper towel dispenser|oven|blinds|rack|plate|blackboard|piano|suitcase|rail|radiator|recycling bin|
    container|wardrobe|soap dispenser|telephone|bucket|clock|stand|light|laundry basket|pipe|
    clothes dryer|guitar|toilet paper holder|seat|speaker|column|bicycle|ladder|bathroom stall|
    shower wall|cup|jacket|storage bin|coffee maker|dishwasher|paper towel roll|machine|mat|windowsill|
    bar|toaster|bulletin board|ironing board|fireplace|soap dish|kitchen counter|doorframe|
    toilet paper dispenser|mini fridge|fire extinguisher|ball|hat|shower curtain rod|water cooler|
    paper cutter|tray|shower door|pillar|ledge|toaster oven|mouse|toilet seat cover dispenser|furniture|
    cart|storage container|scale|tissue box|light switch|crate|power outlet|decoration|sign|projector|
    closet door|vacuum cleaner|candle|plunger|stuffed animal|headphones|dish rack|broom|guitar case|
    range hood|dustpan|hair dryer|water bottle|handicap bar|purse|vent|shower floor|water pitcher|
    mailbox|bowl|paper bag|alarm clock|music stand|projector screen|divider|laundry detergent|
    bathroom counter|object|bathroom vanity|closet wall|laundry hamper|bathroom stall door|
    ceiling light|trash bin|dumbbell|stair rail|tube|bathroom cabinet|cd case|closet rod|coffee kettle|
    structure|shower head|keyboard piano|case of water bottles|coat rack|storage organizer|folded chair|
    fire alarm|power strip|calendar|poster|potted plant|luggage|mattress""".split("|")
)
SCENE_FRACTIONS = (0.01, 0.05, 0.10, 0.20)
POINTS_PER_SCENE = (20, 50, 100, 200)
LIMITED_POINTS_FORMAT = "pixvox.limited_points"
IGNORE = -1


class ScanNetFormatError(CloudFormatError):
    """A ScanNet mesh/label/list/selection file is missing data (the message names the file and the fix)."""


def nyu40_to_scannet20(nyu40: np.ndarray, source: str = "labels") -> np.ndarray:
    """NYU40 ids ``[N]`` (0 = unannotated) → int32 ScanNet-20 class ids 0..19, -1 for every other id.

    Ids outside [0, 255] are no NYU40 ids: an error naming ``source`` (the file they came from).
    """
    nyu40 = np.asarray(nyu40)
    if nyu40.dtype.kind not in "iu":
        raise ScanNetFormatError(f"{source}: NYU40 labels must be integers, got {nyu40.dtype}")
    if nyu40.size and (int(nyu40.min()) < 0 or int(nyu40.max()) > 255):
        raise ScanNetFormatError(f"{source}: label ids span [{nyu40.min()}, {nyu40.max()}], not NYU40 ids")
    table = np.full(256, IGNORE, dtype=np.int32)
    table[list(SCANNET20_NYU40_IDS)] = np.arange(len(SCANNET20_NYU40_IDS), dtype=np.int32)
    return table[nyu40.astype(np.int64)]


# ------------------------------------------------------------------------------------------- scene lists


def read_scene_list(path: str | Path) -> list[str]:
    """One scene name per line (blank lines and ``#`` comments ignored): the official
    ``scannetv2_*.txt`` lists, the ``train_*pct.txt`` subsets and CSC's published scene lists."""
    path = Path(path)
    if not path.is_file():
        raise ScanNetFormatError(f"{path}: scene list not found (download the official ScanNet split files)")
    lines = (ln.strip() for ln in path.read_text().splitlines())
    return [ln for ln in lines if ln and not ln.startswith("#")]


def _digest(seed: int, scene: str) -> bytes:
    return hashlib.sha256(f"{seed}:{scene}".encode()).digest()


def select_scenes(names: Sequence[str], fraction: float, seed: int) -> list[str]:
    """The ``max(1, round(fraction · N))`` scenes of ``names`` with the smallest seeded keys, in the input
    order (all of them for ``fraction >= 1``). Nested across fractions for one seed."""
    unique = list(dict.fromkeys(names))
    if fraction >= 1.0 or not unique:
        return unique
    k = max(1, round(fraction * len(unique)))
    chosen = set(sorted(unique, key=lambda n: (_digest(seed, n), n))[:k])
    return [n for n in unique if n in chosen]


def point_order(labels: np.ndarray, scene: str, seed: int) -> np.ndarray:
    """int64 indices of the labeled points (label ≥ 0) of ``scene`` in a seeded random order; the
    k-point subset is the first k."""
    candidates = np.flatnonzero(np.asarray(labels) >= 0)
    rng = np.random.default_rng(int.from_bytes(_digest(seed, scene)[:8], "little"))
    return candidates[rng.permutation(candidates.size)].astype(np.int64)


def apply_point_subset(labels: np.ndarray, indices: np.ndarray, scene: str) -> np.ndarray:
    """``labels`` ``[N]`` with every point outside ``indices`` set to -1 (ignored). Indices beyond the scene
    are an ``IndexError`` naming it (a selection made for another version of the cloud)."""
    idx = np.asarray(indices, dtype=np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= labels.shape[0]):
        raise IndexError(
            f"scene {scene}: labeled point indices span [{idx.min()}, {idx.max()}]; the scene has "
            f"{labels.shape[0]} points (a selection made for another version of the cloud?)"
        )
    out = np.full_like(labels, IGNORE)
    out[idx] = labels[idx]
    return out


# -------------------------------------------------------------------------------------- selection files


@dataclass
class PointSelection:
    """Labeled points per scene from a file: ``scenes`` maps names to int64 indices; ``nested`` means
    each list is an order whose first k entries are the k-point subset (pixvox's ``limited_points.json``),
    otherwise each list is the exact selection (CSC's files, plain JSON)."""

    path: Path
    scenes: dict[str, np.ndarray]
    nested: bool
    counts: tuple[int, ...] = ()

    def indices(self, scene: str, budget: int) -> np.ndarray | None:
        """The indices training uses for ``scene`` at ``budget`` points per scene (0 = the file's choice);
        None when the file does not list the scene."""
        if scene not in self.scenes:
            return None
        idx = self.scenes[scene]
        if self.nested:
            if budget <= 0:
                raise ValueError(
                    f"{self.path} holds nested subsets (counts {list(self.counts)}): set "
                    "data.subset.points_per_scene to the budget to train with, e.g. 20"
                )
            return idx[:budget]
        if budget > 0 and idx.size != budget:
            raise ValueError(
                f"{self.path}: scene {scene} has {idx.size} selected points but data.subset.points_per_scene="
                f"{budget}; use the file made for {budget} points, or points_per_scene: 0 to use it as given"
            )
        return idx


def _as_indices(values: Any, path: Path, scene: str) -> np.ndarray:
    arr = np.asarray(values.numpy() if hasattr(values, "numpy") else values)
    if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
        raise ScanNetFormatError(
            f"{path}: scene {scene}: expected a list of integer point indices, got {arr.dtype}"
        )
    if arr.size and arr.min() < 0:
        raise ScanNetFormatError(f"{path}: scene {scene}: negative point index {int(arr.min())}")
    return arr.astype(np.int64)


def _load_torch_dict(path: Path) -> Any:
    """A ``torch.save``'d dict of numpy arrays or tensors, loaded with ``weights_only=True`` (numpy's array
    reconstruction allowed, under its numpy 1 and numpy 2 names; nothing else executes)."""
    import torch

    rec = np._core.multiarray._reconstruct if hasattr(np, "_core") else np.core.multiarray._reconstruct
    dtypes = [type(np.dtype(t)) for t in (np.int64, np.int32, np.int16, np.uint64, np.uint32, np.uint16)]
    allowed = [rec, (rec, "numpy.core.multiarray._reconstruct"), np.ndarray, np.dtype, *dtypes]
    with torch.serialization.safe_globals(allowed):
        return torch.load(path, map_location="cpu", weights_only=True)


def load_points_file(path: str | Path) -> PointSelection:
    """Read a point-selection file (pixvox ``limited_points.json``, plain JSON, or CSC's torch file)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"data.subset.points_file {path} not found (write it with `python -m pixvox.prep scannet splits "
            "--clouds ...`, or download CSC's points files)"
        )
    raw = path.read_bytes()
    if zipfile.is_zipfile(path) or raw[:2] == b"\x80\x02":  # torch.save: zip archive or legacy pickle
        try:
            data = _load_torch_dict(path)
        except (pickle.UnpicklingError, RuntimeError, ValueError, EOFError, OSError) as err:
            raise ScanNetFormatError(f"{path}: not a readable CSC points file ({err})") from err
        if not isinstance(data, dict):
            raise ScanNetFormatError(f"{path}: expected a dict {{scene: indices}}, got {type(data).__name__}")
        scenes = {str(k): _as_indices(v, path, str(k)) for k, v in data.items()}
        return PointSelection(path, scenes, nested=False)
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ScanNetFormatError(f"{path}: neither JSON nor a torch file ({err})") from err
    if isinstance(data, dict) and data.get("format") == LIMITED_POINTS_FORMAT:
        if not isinstance(data.get("scenes"), dict):
            raise ScanNetFormatError(f"{path}: {LIMITED_POINTS_FORMAT} file without a 'scenes' object")
        scenes = {str(k): _as_indices(v, path, str(k)) for k, v in data["scenes"].items()}
        return PointSelection(path, scenes, nested=True, counts=tuple(data.get("counts", ())))
    if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
        raise ScanNetFormatError(
            f'{path}: expected {{"scene": [point indices]}} or a {LIMITED_POINTS_FORMAT} file'
        )
    return PointSelection(path, {str(k): _as_indices(v, path, str(k)) for k, v in data.items()}, nested=False)


def limited_points_document(orders: dict[str, np.ndarray], seed: int) -> dict[str, Any]:
    """The ``limited_points.json`` content for per-scene point orders (cut to the largest budget)."""
    top = max(POINTS_PER_SCENE)
    return {
        "format": LIMITED_POINTS_FORMAT,
        "version": 1,
        "seed": int(seed),
        "counts": list(POINTS_PER_SCENE),
        "note": "the k-point subset of a scene is the first k indices of its list",
        "scenes": {name: [int(i) for i in idx[:top]] for name, idx in sorted(orders.items())},
    }
