// Entry points of the pixel-to-voxel kernels, one set per device. Python (pixvox.ops) validates
// arguments and picks the device; these functions still check what would corrupt memory.
//
// Shapes and dtypes (P kept pixels, V voxels, C channels, B frames):
//   build_voxel_hash(coords int32 [N, 4] (batch, x, y, z))
//       -> {table int32 [capacity], entries int64 [N, 2], duplicate_rows int64 [2] (-1 if none)}
//   voxel_hash_lookup(table, entries, coords int32 [M, 4]) -> int64 [M] row of the hash's coords or -1
//   pixel_to_voxel(depth float [B, H, W] metres, intrinsics float64 [B, 4] (fx, fy, cx, cy),
//                  transforms float64 [B, 3, 4] camera-to-world (augmentation applied), frame_batch int64 [B],
//                  depth_min, depth_max, stride, voxel_size, table, entries, lookup)
//       -> {pixel_bvu int64 [P, 3], voxel_index int64 [P] (empty unless lookup), points depth-dtype [P, 3]}
//   scatter_to_voxels(pixel_feats [P, C], voxel_index int64 [P], num_voxels, reduce (see voxel_key.h),
//                     with_argmax)
//       -> {voxel_feats [V, C], counts int64 [V], argmax int64 [V, C] (max with with_argmax, else empty):
//           the winning pixel of each voxel and channel, -1 for empty voxels}
//   gather_from_voxels(voxel_feats [V, C], voxel_index int64 [P]) -> [P, C], zero rows where index is -1
#pragma once

#include <ATen/ATen.h>

#include <vector>

namespace pixvox {

std::vector<at::Tensor> build_voxel_hash_cpu(const at::Tensor& coords);
at::Tensor voxel_hash_lookup_cpu(const at::Tensor& table, const at::Tensor& entries, const at::Tensor& coords);
std::vector<at::Tensor> pixel_to_voxel_cpu(const at::Tensor& depth, const at::Tensor& intrinsics,
                                           const at::Tensor& transforms, const at::Tensor& frame_batch,
                                           double depth_min, double depth_max, int64_t stride, double voxel_size,
                                           const at::Tensor& table, const at::Tensor& entries, bool lookup);
std::vector<at::Tensor> scatter_to_voxels_cpu(const at::Tensor& pixel_feats, const at::Tensor& voxel_index,
                                              int64_t num_voxels, int64_t reduce, bool with_argmax);
at::Tensor gather_from_voxels_cpu(const at::Tensor& voxel_feats, const at::Tensor& voxel_index);

#ifdef PIXVOX_WITH_CUDA
std::vector<at::Tensor> build_voxel_hash_cuda(const at::Tensor& coords);
at::Tensor voxel_hash_lookup_cuda(const at::Tensor& table, const at::Tensor& entries, const at::Tensor& coords);
std::vector<at::Tensor> pixel_to_voxel_cuda(const at::Tensor& depth, const at::Tensor& intrinsics,
                                            const at::Tensor& transforms, const at::Tensor& frame_batch,
                                            double depth_min, double depth_max, int64_t stride, double voxel_size,
                                            const at::Tensor& table, const at::Tensor& entries, bool lookup);
std::vector<at::Tensor> scatter_to_voxels_cuda(const at::Tensor& pixel_feats, const at::Tensor& voxel_index,
                                               int64_t num_voxels, int64_t reduce, bool with_argmax);
at::Tensor gather_from_voxels_cuda(const at::Tensor& voxel_feats, const at::Tensor& voxel_index);
#endif

// Argument checks shared by both devices (defined in checks.cpp).
void check_hash_tensors(const at::Tensor& table, const at::Tensor& entries);
void check_pixel_to_voxel_args(const at::Tensor& depth, const at::Tensor& intrinsics, const at::Tensor& transforms,
                               const at::Tensor& frame_batch, int64_t stride, double voxel_size, bool lookup);
void check_scatter_args(const at::Tensor& pixel_feats, const at::Tensor& voxel_index, int64_t num_voxels,
                        int64_t reduce);
void check_gather_args(const at::Tensor& voxel_feats, const at::Tensor& voxel_index);

}  // namespace pixvox
