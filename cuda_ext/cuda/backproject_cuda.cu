// CUDA back-projection and pixel → voxel matching; same arithmetic (pixel_geometry.h), same hash and
// same (frame, row, column) output order as the CPU kernel. Compaction: a validity flag per sampled
// pixel, an inclusive prefix sum (at::cumsum), then every kept pixel writes at its prefix position.
#include <ATen/Dispatch.h>

#include "cuda/launch.cuh"
#include "pixel_geometry.h"
#include "pixvox_ops.h"

namespace pixvox {
namespace {

struct SampledGrid {
  int64_t height, width, stride, rows_per_frame, cols_per_row;

  __device__ __forceinline__ int64_t offset(int64_t i, int64_t* frame, int64_t* v, int64_t* u) const {
    const int64_t per_frame = rows_per_frame * cols_per_row;
    *frame = i / per_frame;
    const int64_t rest = i - *frame * per_frame;
    *v = (rest / cols_per_row) * stride;
    *u = (rest % cols_per_row) * stride;
    return (*frame * height + *v) * width + *u;
  }
};

template <typename scalar_t>
__global__ void valid_depth_kernel(const scalar_t* __restrict__ depth, SampledGrid grid, int64_t n, double depth_min,
                                   double depth_max, int32_t* __restrict__ valid) {
  PIXVOX_GRID_STRIDE_LOOP(i, n) {
    int64_t frame, v, u;
    valid[i] = depth_is_valid(static_cast<double>(depth[grid.offset(i, &frame, &v, &u)]), depth_min, depth_max);
  }
}

template <typename scalar_t>
__global__ void pixel_to_voxel_kernel(const scalar_t* __restrict__ depth, SampledGrid grid, int64_t n,
                                      double depth_min, double depth_max, const int64_t* __restrict__ position,
                                      const double* __restrict__ intrinsics, const double* __restrict__ transforms,
                                      const int64_t* __restrict__ frame_batch, double voxel_size,
                                      const int32_t* __restrict__ table, uint64_t mask,
                                      const int64_t* __restrict__ entries, bool lookup, int64_t* __restrict__ bvu,
                                      int64_t* __restrict__ voxel_index, scalar_t* __restrict__ points) {
  PIXVOX_GRID_STRIDE_LOOP(i, n) {
    int64_t frame, v, u;
    const double z = static_cast<double>(depth[grid.offset(i, &frame, &v, &u)]);
    if (!depth_is_valid(z, depth_min, depth_max)) continue;
    const int64_t out = position[i] - 1;  // inclusive prefix sum → 0-based slot
    double xyz[3];
    pixel_to_world(intrinsics + 4 * frame, transforms + 12 * frame, v, u, z, xyz);
    bvu[3 * out] = frame;
    bvu[3 * out + 1] = v;
    bvu[3 * out + 2] = u;
    points[3 * out] = static_cast<scalar_t>(xyz[0]);
    points[3 * out + 1] = static_cast<scalar_t>(xyz[1]);
    points[3 * out + 2] = static_cast<scalar_t>(xyz[2]);
    if (lookup) {
      const int64_t key = world_to_voxel_key(xyz, voxel_size);
      voxel_index[out] = key >= 0 ? hash_find(table, mask, entries, key, frame_batch[frame]) : -1;
    }
  }
}

}  // namespace

std::vector<at::Tensor> pixel_to_voxel_cuda(const at::Tensor& depth_in, const at::Tensor& intrinsics_in,
                                            const at::Tensor& transforms_in, const at::Tensor& frame_batch_in,
                                            double depth_min, double depth_max, int64_t stride, double voxel_size,
                                            const at::Tensor& table, const at::Tensor& entries, bool lookup) {
  check_pixel_to_voxel_args(depth_in, intrinsics_in, transforms_in, frame_batch_in, stride, voxel_size, lookup);
  TORCH_CHECK(depth_in.is_cuda(), "pixel_to_voxel_cuda needs CUDA tensors");
  if (lookup) {
    check_hash_tensors(table, entries);
    TORCH_CHECK(table.device() == depth_in.device(), "the voxel hash is on ", table.device(), ", depth on ",
                depth_in.device());
  }
  const c10::cuda::CUDAGuard guard(depth_in.device());
  const auto stream = c10::cuda::getCurrentCUDAStream();
  const at::Tensor depth = depth_in.contiguous();
  const at::Tensor intrinsics = intrinsics_in.contiguous();
  const at::Tensor transforms = transforms_in.contiguous();
  const at::Tensor frame_batch = frame_batch_in.contiguous();

  const int64_t frames = depth.size(0), height = depth.size(1), width = depth.size(2);
  const SampledGrid grid{height, width, stride, (height + stride - 1) / stride, (width + stride - 1) / stride};
  const int64_t n = frames * grid.rows_per_frame * grid.cols_per_row;

  at::Tensor position;
  int64_t kept_total = 0;
  if (n > 0) {
    at::Tensor valid = at::empty({n}, depth.options().dtype(at::kInt));
    AT_DISPATCH_FLOATING_TYPES(depth.scalar_type(), "valid_depth_cuda", [&] {
      valid_depth_kernel<scalar_t><<<grid_for(n), kThreadsPerBlock, 0, stream>>>(
          depth.data_ptr<scalar_t>(), grid, n, depth_min, depth_max, valid.data_ptr<int32_t>());
    });
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    position = at::cumsum(valid, 0, at::kLong);
    kept_total = position[n - 1].item<int64_t>();
  }

  at::Tensor pixel_bvu = at::empty({kept_total, 3}, depth.options().dtype(at::kLong));
  at::Tensor points = at::empty({kept_total, 3}, depth.options());
  at::Tensor voxel_index = at::empty({lookup ? kept_total : 0}, depth.options().dtype(at::kLong));
  if (kept_total == 0) return {pixel_bvu, voxel_index, points};

  AT_DISPATCH_FLOATING_TYPES(depth.scalar_type(), "pixel_to_voxel_cuda", [&] {
    pixel_to_voxel_kernel<scalar_t><<<grid_for(n), kThreadsPerBlock, 0, stream>>>(
        depth.data_ptr<scalar_t>(), grid, n, depth_min, depth_max, position.data_ptr<int64_t>(),
        intrinsics.data_ptr<double>(), transforms.data_ptr<double>(), frame_batch.data_ptr<int64_t>(), voxel_size,
        lookup ? table.data_ptr<int32_t>() : nullptr, lookup ? static_cast<uint64_t>(table.size(0) - 1) : 0,
        lookup ? entries.data_ptr<int64_t>() : nullptr, lookup, pixel_bvu.data_ptr<int64_t>(),
        lookup ? voxel_index.data_ptr<int64_t>() : nullptr, points.data_ptr<scalar_t>());
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {pixel_bvu, voxel_index, points};
}

}  // namespace pixvox
