// CUDA voxel hash: same layout as the CPU one (voxel_key.h), slots claimed with atomicCAS. The slot
// layout depends on thread timing, lookups do not: they return rows of `coords`.
#include <climits>

#include "cuda/launch.cuh"
#include "pixvox_ops.h"
#include "voxel_key.h"

namespace pixvox {
namespace {

__global__ void voxel_entries_kernel(const int32_t* __restrict__ coords, int64_t n, int64_t* __restrict__ entries,
                                     unsigned long long* __restrict__ bad_row) {
  PIXVOX_GRID_STRIDE_LOOP(i, n) {
    const int32_t* r = coords + 4 * i;
    if (r[0] < 0 || !coord_in_range(r[1]) || !coord_in_range(r[2]) || !coord_in_range(r[3])) {
      atomicMin(bad_row, static_cast<unsigned long long>(i));
      entries[2 * i] = -1;
      entries[2 * i + 1] = -1;
      continue;
    }
    entries[2 * i] = pack_voxel_key(r[1], r[2], r[3]);
    entries[2 * i + 1] = r[0];
  }
}

// `duplicate` keeps the smallest (first row << 32 | second row) of all duplicate pairs found.
__global__ void voxel_insert_kernel(const int64_t* __restrict__ entries, int64_t n, int32_t* __restrict__ table,
                                    uint64_t mask, unsigned long long* __restrict__ duplicate) {
  PIXVOX_GRID_STRIDE_LOOP(i, n) {
    const int64_t key = entries[2 * i], batch = entries[2 * i + 1];
    uint64_t slot = slot_hash(key, batch) & mask;
    while (true) {
      const int32_t prev = atomicCAS(table + slot, kEmptySlot, static_cast<int32_t>(i));
      if (prev == kEmptySlot) break;
      // `entries` is complete before this kernel starts, so reading another row's key is race-free.
      if (entries[2 * static_cast<int64_t>(prev)] == key && entries[2 * static_cast<int64_t>(prev) + 1] == batch) {
        const unsigned long long lo = min(static_cast<int64_t>(prev), i), hi = max(static_cast<int64_t>(prev), i);
        atomicMin(duplicate, (lo << 32) | hi);
        break;
      }
      slot = (slot + 1) & mask;
    }
  }
}

__global__ void voxel_lookup_kernel(const int32_t* __restrict__ table, uint64_t mask,
                                    const int64_t* __restrict__ entries, const int32_t* __restrict__ coords,
                                    int64_t m, int64_t* __restrict__ out) {
  PIXVOX_GRID_STRIDE_LOOP(i, m) {
    const int32_t* r = coords + 4 * i;
    const bool storable = r[0] >= 0 && coord_in_range(r[1]) && coord_in_range(r[2]) && coord_in_range(r[3]);
    out[i] = storable ? hash_find(table, mask, entries, pack_voxel_key(r[1], r[2], r[3]), r[0]) : -1;
  }
}

}  // namespace

std::vector<at::Tensor> build_voxel_hash_cuda(const at::Tensor& coords_in) {
  TORCH_CHECK(coords_in.is_cuda(), "build_voxel_hash_cuda needs CUDA coordinates");
  TORCH_CHECK_VALUE(coords_in.dim() == 2 && coords_in.size(1) == 4, "coords must be [N, 4] (batch, x, y, z), got ",
                    coords_in.sizes());
  TORCH_CHECK_TYPE(coords_in.scalar_type() == at::kInt, "coords must be int32, got ", coords_in.scalar_type());
  const c10::cuda::CUDAGuard guard(coords_in.device());
  const at::Tensor coords = coords_in.contiguous();
  const int64_t n = coords.size(0);
  TORCH_CHECK_VALUE(n < INT32_MAX, "a voxel hash holds at most 2^31 - 2 voxels, got ", n);
  const auto stream = c10::cuda::getCurrentCUDAStream();

  const int64_t capacity = hash_capacity(n);
  at::Tensor table = at::full({capacity}, kEmptySlot, coords.options());
  at::Tensor entries = at::empty({n, 2}, coords.options().dtype(at::kLong));
  at::Tensor duplicate = at::full({2}, -1, coords.options().dtype(at::kLong).device(at::kCPU));
  if (n == 0) return {table, entries, duplicate};

  // -1 as unsigned long long is the "none" sentinel of both atomicMin flags.
  at::Tensor bad_row = at::full({1}, -1, entries.options());
  voxel_entries_kernel<<<grid_for(n), kThreadsPerBlock, 0, stream>>>(
      coords.data_ptr<int32_t>(), n, entries.data_ptr<int64_t>(),
      reinterpret_cast<unsigned long long*>(bad_row.data_ptr<int64_t>()));
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  const int64_t bad = bad_row.item<int64_t>();
  if (bad >= 0) {
    const at::Tensor row = coords[bad].cpu();
    const int32_t* r = row.data_ptr<int32_t>();
    TORCH_CHECK_VALUE(false, "voxel coordinate row ", bad, " = (", r[0], ", ", r[1], ", ", r[2], ", ", r[3],
                      ") is outside the key range: batch >= 0 and |x|, |y|, |z| < ", kMaxVoxelCoord);
  }

  at::Tensor pair = at::full({1}, -1, entries.options());
  voxel_insert_kernel<<<grid_for(n), kThreadsPerBlock, 0, stream>>>(
      entries.data_ptr<int64_t>(), n, table.data_ptr<int32_t>(), static_cast<uint64_t>(capacity - 1),
      reinterpret_cast<unsigned long long*>(pair.data_ptr<int64_t>()));
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  const int64_t packed = pair.item<int64_t>();
  if (packed != -1) {
    duplicate.data_ptr<int64_t>()[0] = packed >> 32;
    duplicate.data_ptr<int64_t>()[1] = packed & 0xFFFFFFFFll;
  }
  return {table, entries, duplicate};
}

at::Tensor voxel_hash_lookup_cuda(const at::Tensor& table, const at::Tensor& entries, const at::Tensor& coords_in) {
  check_hash_tensors(table, entries);
  TORCH_CHECK(table.is_cuda() && coords_in.device() == table.device(),
              "voxel_hash_lookup_cuda needs the hash and the queries on one CUDA device");
  TORCH_CHECK_VALUE(coords_in.dim() == 2 && coords_in.size(1) == 4, "query coords must be [M, 4], got ",
                    coords_in.sizes());
  TORCH_CHECK_TYPE(coords_in.scalar_type() == at::kInt, "query coords must be int32, got ", coords_in.scalar_type());
  const c10::cuda::CUDAGuard guard(table.device());
  const at::Tensor coords = coords_in.contiguous();
  const int64_t m = coords.size(0);
  at::Tensor out = at::empty({m}, coords.options().dtype(at::kLong));
  if (m == 0) return out;
  voxel_lookup_kernel<<<grid_for(m), kThreadsPerBlock, 0, c10::cuda::getCurrentCUDAStream()>>>(
      table.data_ptr<int32_t>(), static_cast<uint64_t>(table.size(0) - 1), entries.data_ptr<int64_t>(),
      coords.data_ptr<int32_t>(), m, out.data_ptr<int64_t>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

}  // namespace pixvox
