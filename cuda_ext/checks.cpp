// Checks of the arguments that would otherwise corrupt memory or loop forever inside a kernel.
// The Python wrappers (pixvox.ops) give the user-facing messages; these guard direct calls.
#include "pixvox_ops.h"
#include "voxel_key.h"

namespace pixvox {

void check_hash_tensors(const at::Tensor& table, const at::Tensor& entries) {
  TORCH_CHECK(table.dim() == 1 && table.scalar_type() == at::kInt && table.is_contiguous(),
              "voxel hash table must be a contiguous int32 vector");
  TORCH_CHECK(entries.dim() == 2 && entries.size(1) == 2 && entries.scalar_type() == at::kLong &&
                  entries.is_contiguous(),
              "voxel hash entries must be a contiguous int64 [N, 2] tensor");
  TORCH_CHECK(table.device() == entries.device(), "voxel hash table and entries are on different devices");
  const int64_t capacity = table.size(0);
  // Power of two (mask arithmetic) and at most half full, so every probe sequence meets an empty slot.
  TORCH_CHECK(capacity > 0 && (capacity & (capacity - 1)) == 0 && capacity >= 2 * entries.size(0),
              "voxel hash table capacity ", capacity, " must be a power of two >= 2 * ", entries.size(0));
}

void check_pixel_to_voxel_args(const at::Tensor& depth, const at::Tensor& intrinsics, const at::Tensor& transforms,
                               const at::Tensor& frame_batch, int64_t stride, double voxel_size, bool lookup) {
  TORCH_CHECK_VALUE(depth.dim() == 3, "depth must be [B, H, W], got ", depth.sizes());
  TORCH_CHECK_TYPE(depth.scalar_type() == at::kFloat || depth.scalar_type() == at::kDouble,
                   "depth must be float32 or float64 metres, got ", depth.scalar_type());
  const int64_t frames = depth.size(0);
  TORCH_CHECK_VALUE(intrinsics.scalar_type() == at::kDouble && intrinsics.dim() == 2 &&
                        intrinsics.size(0) == frames && intrinsics.size(1) == 4,
                    "intrinsics must be float64 [B, 4] (fx, fy, cx, cy) with B = ", frames);
  TORCH_CHECK_VALUE(transforms.scalar_type() == at::kDouble && transforms.dim() == 3 &&
                        transforms.size(0) == frames && transforms.size(1) == 3 && transforms.size(2) == 4,
                    "transforms must be float64 [B, 3, 4] with B = ", frames);
  TORCH_CHECK_VALUE(frame_batch.scalar_type() == at::kLong && frame_batch.dim() == 1 && frame_batch.size(0) == frames,
                    "frame_batch must be int64 [B] with B = ", frames);
  TORCH_CHECK_VALUE(stride >= 1, "stride must be >= 1, got ", stride);
  TORCH_CHECK_VALUE(!lookup || (voxel_size > 0.0 && std::isfinite(voxel_size)),
                    "voxel_size must be a positive finite number of metres, got ", voxel_size);
  const auto device = depth.device();
  TORCH_CHECK(intrinsics.device() == device && transforms.device() == device && frame_batch.device() == device,
              "depth, intrinsics, transforms and frame_batch must be on one device");
}

void check_scatter_args(const at::Tensor& pixel_feats, const at::Tensor& voxel_index, int64_t num_voxels,
                        int64_t reduce) {
  TORCH_CHECK_VALUE(pixel_feats.dim() == 2, "pixel features must be [P, C], got ", pixel_feats.sizes());
  TORCH_CHECK_TYPE(at::isFloatingType(pixel_feats.scalar_type()), "pixel features must be floating point, got ",
                   pixel_feats.scalar_type());
  TORCH_CHECK_VALUE(voxel_index.dim() == 1 && voxel_index.size(0) == pixel_feats.size(0),
                    "voxel_index must be [P] with P = ", pixel_feats.size(0), ", got ", voxel_index.sizes());
  TORCH_CHECK_TYPE(voxel_index.scalar_type() == at::kLong, "voxel_index must be int64, got ",
                   voxel_index.scalar_type());
  TORCH_CHECK_VALUE(num_voxels >= 0 && num_voxels <= INT64_MAX / 2, "num_voxels must be >= 0, got ", num_voxels);
  TORCH_CHECK_VALUE(reduce >= 0 && reduce <= 2, "unknown reduction code ", reduce);
  TORCH_CHECK(pixel_feats.device() == voxel_index.device(), "pixel features and voxel_index are on different devices");
}

void check_gather_args(const at::Tensor& voxel_feats, const at::Tensor& voxel_index) {
  TORCH_CHECK_VALUE(voxel_feats.dim() == 2, "voxel features must be [V, C], got ", voxel_feats.sizes());
  TORCH_CHECK_VALUE(voxel_index.dim() == 1, "voxel_index must be [P], got ", voxel_index.sizes());
  TORCH_CHECK_TYPE(voxel_index.scalar_type() == at::kLong, "voxel_index must be int64, got ",
                   voxel_index.scalar_type());
  TORCH_CHECK(voxel_feats.device() == voxel_index.device(), "voxel features and voxel_index are on different devices");
}

}  // namespace pixvox
