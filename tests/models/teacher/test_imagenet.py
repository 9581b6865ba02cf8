"""The bundled ImageNet-1k class list."""

from __future__ import annotations

from pixvox.models.teacher import imagenet_class_names, imagenet_classes


def test_class_list_is_the_ilsvrc_order():
    classes = imagenet_classes()
    wnids = [w for w, _ in classes]
    assert len(wnids) == 1000 and len(set(wnids)) == 1000
    # ILSVRC-2012 numbers its classes by sorted WordNet id
    assert wnids == sorted(wnids)
    assert all(w.startswith("n") and len(w) == 9 and w[1:].isdigit() for w in wnids)
    names = imagenet_class_names()
    assert (names[0], names[1], names[526], names[999]) == ("tench", "goldfish", "desk", "toilet tissue")
