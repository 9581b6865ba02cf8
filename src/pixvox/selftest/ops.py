"""Every compiled ``cuda_ext`` op (through :mod:`pixvox.ops`) on the device against
:mod:`pixvox.ops.reference` in float64 on the CPU.

The scene: two scene samples of the synthetic room (3 frames of 60x80, the first two viewing
sample 0 and the third sample 1), each with its own rigid augmentation, voxelized at 10 cm with 5%
of the voxels dropped (so some pixels match nothing), depth with holes, NaN and inf.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from pixvox import ops
from pixvox.ops import reference
from pixvox.selftest.report import CheckResult, Comparison, compare, judge
from pixvox.selftest.synthetic import render_room
from pixvox.sparse import batched_coordinates

VOXEL_SIZE = 0.1  #: metres
DEPTH_MIN, DEPTH_MAX = 0.2, 6.0  #: metres
CHANNELS = 8
#: A voxel index may differ from the reference only for a point this close to a voxel face (in voxels):
#: both sides compute in float64, but in a different order of operations.
FACE_TIE = 1e-9


@dataclass
class OpsScene:
    depth: torch.Tensor  #: [F, H, W] float32 metres
    K: torch.Tensor  #: [F, 3, 3] float64
    cam_to_world: torch.Tensor  #: [F, 4, 4] float64
    frame_batch: torch.Tensor  #: [F] int64 scene sample of each frame
    extra: torch.Tensor  #: [S, 4, 4] float64 per-sample augmentation
    coords: torch.Tensor  #: [V, 4] int32 (batch, x, y, z) scene voxels


def _rigid(gen: torch.Generator) -> torch.Tensor:
    angle = float(torch.rand((), generator=gen)) * 2 * math.pi
    E = torch.eye(4, dtype=torch.float64)
    E[:2, :2] = torch.tensor([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    E[:3, 3] = (torch.rand(3, generator=gen, dtype=torch.float64) - 0.5) * 4
    return E


def make_scene(seed: int) -> OpsScene:
    gen = torch.Generator().manual_seed(seed)
    fr = render_room(3, 60, 80, seed=seed)
    depth = fr.depth.float()
    flat = depth.view(-1)
    bad = torch.randperm(flat.numel(), generator=gen)[: flat.numel() // 50]
    flat[bad[0::3]] = math.nan
    flat[bad[1::3]] = math.inf
    flat[bad[2::3]] = -1.0
    frame_batch = torch.tensor([0, 0, 1])
    extra = torch.stack([_rigid(gen), _rigid(gen)])
    K = fr.K.expand(3, 3, 3).clone()
    points = reference.reference_points_float64(
        depth, K, fr.cam_to_world, DEPTH_MIN, DEPTH_MAX, extra_transform=extra, frame_batch=frame_batch
    )
    _, pixels = reference.backproject_reference(
        depth, K, fr.cam_to_world, DEPTH_MIN, DEPTH_MAX, extra_transform=extra, frame_batch=frame_batch
    )
    batches = frame_batch[pixels[:, 0]]
    per_sample = []
    for s in range(2):
        vox = torch.unique(torch.floor(points[batches == s] / VOXEL_SIZE).long(), dim=0)
        keep = torch.rand(vox.shape[0], generator=gen) >= 0.05
        per_sample.append(vox[keep])
    coords = batched_coordinates(per_sample)
    order = torch.randperm(coords.shape[0], generator=gen)  # rows in no particular order
    return OpsScene(depth, K, fr.cam_to_world, frame_batch, extra, coords[order].contiguous())


def _voxel_index_comparison(
    what: str, got: torch.Tensor, ref: torch.Tensor, scaled_points: torch.Tensor
) -> Comparison:
    """Exact voxel rows, except where the float64 point lies on a voxel face (either side is right)."""
    got = got.cpu()
    differ = got != ref
    on_face = ((scaled_points - scaled_points.round()).abs() < FACE_TIE).any(dim=1)
    wrong = int((differ & ~on_face).sum())
    ties = int((differ & on_face).sum())
    detail = f"{wrong} of {ref.numel()} differ" + (f", {ties} face ties" if ties else "")
    return Comparison(
        what, wrong == 0, 0.0 if wrong == 0 else math.inf, 0.0 if wrong == 0 else math.inf, detail
    )


def check_voxel_hash(device: torch.device, seed: int) -> CheckResult:
    scene = make_scene(seed)
    gen = torch.Generator().manual_seed(seed + 1)
    table = ops.VoxelHash(scene.coords.to(device))
    ref = reference.ReferenceVoxelHash(scene.coords)
    absent = scene.coords.clone()
    absent[:, 1:] += torch.randint(-2, 3, absent[:, 1:].shape, generator=gen, dtype=torch.int32)
    queries = torch.cat([scene.coords[torch.randperm(scene.coords.shape[0], generator=gen)], absent])
    got = table.lookup(queries.to(device))
    want = ref.lookup(queries[:, 0], queries[:, 1:])
    return judge("ops.voxel_hash", str(device), [compare("lookup rows", got, want, 0, 0)], "exact")


def check_backproject(device: torch.device, seed: int) -> CheckResult:
    s = make_scene(seed)
    args = (s.depth.to(device), s.K.to(device), s.cam_to_world.to(device), DEPTH_MIN, DEPTH_MAX)
    got = ops.backproject(*args, extra_transform=s.extra.to(device), frame_batch=s.frame_batch.to(device))
    _, ref_pixels = reference.backproject_reference(
        s.depth, s.K, s.cam_to_world, DEPTH_MIN, DEPTH_MAX, extra_transform=s.extra, frame_batch=s.frame_batch
    )
    ref64 = reference.reference_points_float64(
        s.depth, s.K, s.cam_to_world, DEPTH_MIN, DEPTH_MAX, extra_transform=s.extra, frame_batch=s.frame_batch
    )
    comparisons = [compare("pixel_bvu", got.pixel_bvu, ref_pixels, 0, 0)]
    if comparisons[0].ok:
        comparisons.append(compare("points (m)", got.points, ref64, 1e-6, 1e-6))
    return judge("ops.backproject", str(device), comparisons, "1e-6 m")


def _match(s: OpsScene, device: torch.device) -> tuple[ops.PixelVoxelMatch, tuple[torch.Tensor, ...]]:
    got = ops.pixel_to_voxel(
        s.depth.to(device),
        s.K.to(device),
        s.cam_to_world.to(device),
        VOXEL_SIZE,
        ops.VoxelHash(s.coords.to(device)),
        s.extra.to(device),
        frame_batch=s.frame_batch.to(device),
        depth_min=DEPTH_MIN,
        depth_max=DEPTH_MAX,
    )
    ref = reference.pixel_to_voxel_reference(
        s.depth,
        s.K,
        s.cam_to_world,
        VOXEL_SIZE,
        reference.ReferenceVoxelHash(s.coords),
        s.extra,
        frame_batch=s.frame_batch,
        depth_min=DEPTH_MIN,
        depth_max=DEPTH_MAX,
    )
    return got, ref


def check_pixel_to_voxel(device: torch.device, seed: int) -> CheckResult:
    s = make_scene(seed)
    got, (ref_pixels, ref_index, _) = _match(s, device)
    ref64 = reference.reference_points_float64(
        s.depth, s.K, s.cam_to_world, DEPTH_MIN, DEPTH_MAX, extra_transform=s.extra, frame_batch=s.frame_batch
    )
    comparisons = [compare("pixel_bvu", got.pixel_bvu, ref_pixels, 0, 0)]
    if comparisons[0].ok:
        comparisons.append(
            _voxel_index_comparison("voxel_index", got.voxel_index, ref_index, ref64 / VOXEL_SIZE)
        )
        comparisons.append(compare("points (m)", got.points, ref64, 1e-6, 1e-6))
    result = judge("ops.pixel_to_voxel", str(device), comparisons, "exact rows")
    matched = int((ref_index >= 0).sum())
    result.figure += f"; {matched}/{ref_index.numel()} px matched"
    return result


def _scatter_inputs(seed: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    s = make_scene(seed)
    _, (_, index, _) = _match(s, torch.device("cpu"))
    gen = torch.Generator().manual_seed(seed + 2)
    feats = torch.randn(index.shape[0], CHANNELS, generator=gen)
    return feats, index, int(s.coords.shape[0])


def check_scatter(reduce: str) -> Callable[[torch.device, int], CheckResult]:
    """The check of ``scatter_to_voxels(..., reduce)``: features, counts and the input gradient."""

    def run(device: torch.device, seed: int) -> CheckResult:
        feats, index, V = _scatter_inputs(seed)
        x = feats.to(device).requires_grad_(True)
        got = ops.scatter_to_voxels(x, index.to(device), V, reduce)
        x_ref = feats.double().requires_grad_(True)
        ref, ref_counts = reference.scatter_to_voxels_reference(x_ref, index, V, reduce)
        upstream = torch.randn(
            ref.shape, generator=torch.Generator().manual_seed(seed + 3), dtype=torch.float64
        )
        (g,) = torch.autograd.grad((got.features * upstream.to(device, got.features.dtype)).sum(), [x])
        (r,) = torch.autograd.grad((ref * upstream).sum(), [x_ref])
        exact = reduce == "max"  # a maximum is one of the inputs: no rounding
        tol = (0.0, 0.0) if exact else (1e-5, 1e-5)
        return judge(
            f"ops.scatter_{reduce}",
            str(device),
            [
                compare("features", got.features, ref, *tol),
                compare("counts", got.counts, ref_counts, 0, 0),
                compare("grad", g, r, 1e-6, 1e-6),
            ],
            "exact" if exact else "fp32 1e-5",
        )

    return run


def check_gather(device: torch.device, seed: int) -> CheckResult:
    _, index, V = _scatter_inputs(seed)
    gen = torch.Generator().manual_seed(seed + 4)
    voxel_feats = torch.randn(V, CHANNELS, generator=gen)
    x = voxel_feats.to(device).requires_grad_(True)
    got = ops.gather_from_voxels(x, index.to(device))
    x_ref = voxel_feats.double().requires_grad_(True)
    ref = reference.gather_from_voxels_reference(x_ref, index)
    upstream = torch.randn(ref.shape, generator=gen, dtype=torch.float64)
    (g,) = torch.autograd.grad((got * upstream.to(device, got.dtype)).sum(), [x])
    (r,) = torch.autograd.grad((ref * upstream).sum(), [x_ref])
    return judge(
        "ops.gather",
        str(device),
        [compare("features", got, ref, 0, 0), compare("grad (sum-scatter)", g, r, 1e-5, 1e-5)],
        "exact fwd",
    )


#: name → check, in the order they run
OP_CHECKS: dict[str, Callable[[torch.device, int], CheckResult]] = {
    "ops.voxel_hash": check_voxel_hash,
    "ops.backproject": check_backproject,
    "ops.pixel_to_voxel": check_pixel_to_voxel,
    "ops.scatter_sum": check_scatter("sum"),
    "ops.scatter_mean": check_scatter("mean"),
    "ops.scatter_max": check_scatter("max"),
    "ops.gather": check_gather,
}
