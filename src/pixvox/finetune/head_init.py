"""The classifier's start from a converged linear probe (``init.head=probe``; LP-FT).

With few labels, a new random classifier trained on crops moves the backbone while it is still far
from fitting; LP-FT starts fine-tuning from the classifier that fits the frozen features instead (on
the transfer benchmark's rooms it did not change the result: docs/transfer.md, "Fine-tuning
recipe"). The classifier ``final`` is set to the probe :func:`pixvox.evaluation.probe.fit_linear_probe`
fits on the frozen network's features of the training scenes' labeled voxels (whole scenes,
unaugmented, label budget applied, BatchNorm in eval mode, as evaluation runs); fine-tuning then goes
on from there.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from pixvox.datasets.segmentation import SegmentationDataset, collate_segmentation
from pixvox.engine.logger import log
from pixvox.evaluation.probe import class_counts, fit_linear_probe
from pixvox.finetune.model import SegmentationNet
from pixvox.io.clouds import CloudFormatError
from pixvox.sparse import features_in_input_order, sparse_tensor


@torch.no_grad()
def labeled_features(
    net: SegmentationNet, ds: SegmentationDataset, device: torch.device
) -> tuple[np.ndarray, np.ndarray]:
    """Frozen features and class counts of every labeled voxel of ``ds``'s scenes.

    Returns ``(x [R, F] float32, counts [R, C] float64)``: the rows are the voxels with at least one
    labeled point (budget applied), ``F`` the width ``final`` reads, ``counts`` the voxel's labeled
    points per class."""
    was_training = net.training
    net.to(device).eval()
    xs, cs = [], []
    try:
        for name in dict.fromkeys(ds.scenes):  # each scene once, in order
            try:
                item = ds.whole_scene(name)
            except CloudFormatError as err:  # training skips such a scene too (skip_unreadable)
                log.warning("init.head=probe: scene %s skipped: %s", name, err)
                continue
            b = collate_segmentation([item])
            x = sparse_tensor(b["feats"].to(device), b["coords"].to(device))
            f = features_in_input_order(net.student.forward_features(x), x).float().cpu().numpy()
            counts = class_counts(b["point_labels"].numpy(), b["inverse"].numpy(), f.shape[0], ds.num_classes)
            rows = counts.sum(1) > 0
            xs.append(f[rows])
            cs.append(counts[rows])
    finally:
        net.train(was_training)
    if not xs:
        return np.zeros((0, 0), np.float32), np.zeros((0, ds.num_classes))
    return np.concatenate(xs), np.concatenate(cs)


def init_head_from_probe(
    net: SegmentationNet, ds: SegmentationDataset, device: torch.device, l2: float
) -> dict[str, Any]:
    """Fit the probe on ``ds``'s labeled voxels and copy it into ``net.student.final``; returns what
    init.json records (rows, the probe's convergence, its accuracy on the rows it was fitted on)."""
    x, counts = labeled_features(net, ds, device)
    if x.shape[0] == 0:
        raise ValueError(
            f"init.head=probe: the training scenes {ds.scenes[:3]} have no labeled voxels to fit the "
            "classifier on; check data.subset.points_per_scene and the scenes' labels"
        )
    probe = fit_linear_probe(x, counts, l2=l2)
    a, c = probe.affine()
    final = net.student.final
    with torch.no_grad():
        final.kernel.copy_(torch.from_numpy(a).reshape(final.kernel.shape))
        final.bias.copy_(torch.from_numpy(c).reshape(final.bias.shape))
    hits = counts[np.arange(x.shape[0]), probe.predict(x)].sum()
    info = {
        "rows": int(x.shape[0]),
        "labeled_points": int(counts.sum()),
        "train_point_accuracy": float(hits / counts.sum()),
        "convergence": probe.convergence,
    }
    log.info(
        "classifier from a converged probe: %d labeled voxels, %d L-BFGS iterations, training accuracy %.1f%%",
        info["rows"],
        probe.convergence["iterations"],
        100 * info["train_point_accuracy"],
    )
    return info
