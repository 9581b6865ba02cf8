"""ImageNet-1k class names (index → WordNet id, synonyms) from the bundled ``imagenet_classes.tsv``."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

__all__ = ["imagenet_classes", "imagenet_class_names"]

NUM_IMAGENET_CLASSES = 1000


@lru_cache(maxsize=1)
def imagenet_classes() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The 1000 classes in training order: ``(wnid, (synonym, ...))``, e.g. ``("n03179701", ("desk",))``."""
    text = (
        resources.files("pixvox.models.teacher").joinpath("imagenet_classes.tsv").read_text(encoding="utf-8")
    )
    rows = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        index, wnid, names = line.split("\t")
        if int(index) != len(rows):
            raise ValueError(f"imagenet_classes.tsv: expected index {len(rows)}, found {index}")
        rows.append((wnid, tuple(n.strip() for n in names.split(","))))
    if len(rows) != NUM_IMAGENET_CLASSES:
        raise ValueError(f"imagenet_classes.tsv holds {len(rows)} classes, expected {NUM_IMAGENET_CLASSES}")
    return tuple(rows)


def imagenet_class_names() -> list[str]:
    """The first (most common) name of each class, e.g. ``names[526] == "desk"``."""
    return [names[0] for _, names in imagenet_classes()]
