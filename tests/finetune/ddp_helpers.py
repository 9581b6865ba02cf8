"""Worker of the two-process loss test, in a module that does not import MinkowskiEngine (fast spawn)."""

from __future__ import annotations

import torch

from pixvox.datasets.segmentation import IGNORE
from pixvox.finetune.step import SegmentationStep


class TinyNet(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.lin = torch.nn.Linear(3, 4).double()

    def forward(self, feats: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
        return self.lin(feats)


def two_rank_batches(seed: int) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for n, labeled in ((50, 30), (40, 0)):  # the second process has no labeled voxel at all
        labels = torch.full((n,), IGNORE)
        labels[:labeled] = torch.randint(0, 4, (labeled,), generator=g)
        out.append(
            {
                "feats": torch.randn(n, 3, generator=g, dtype=torch.float64),
                "coords": torch.zeros(n, 4, dtype=torch.int32),
                "labels": labels,
            }
        )
    return out


def ddp_worker(rank: int, seed: int, out: str) -> None:
    net = TinyNet()
    ddp = torch.nn.parallel.DistributedDataParallel(net)
    res = SegmentationStep(ddp, torch.device("cpu"))(two_rank_batches(seed)[rank], 0)
    res.loss.backward()
    if rank == 0:
        torch.save({"grad": net.lin.weight.grad, "loss": res.metrics["loss"]}, out)
