// CPU voxel hash: keys computed in parallel, slots filled serially (a few ms for 200k voxels) so the
// table layout, and the reported duplicate pair, are deterministic.
#include <ATen/Parallel.h>

#include <atomic>

#include "pixvox_ops.h"
#include "voxel_key.h"

namespace pixvox {

std::vector<at::Tensor> build_voxel_hash_cpu(const at::Tensor& coords_in) {
  TORCH_CHECK(coords_in.device().is_cpu(), "build_voxel_hash_cpu needs CPU coordinates");
  TORCH_CHECK_VALUE(coords_in.dim() == 2 && coords_in.size(1) == 4, "coords must be [N, 4] (batch, x, y, z), got ",
                    coords_in.sizes());
  TORCH_CHECK_TYPE(coords_in.scalar_type() == at::kInt, "coords must be int32, got ", coords_in.scalar_type());
  const at::Tensor coords = coords_in.contiguous();
  const int64_t n = coords.size(0);
  TORCH_CHECK_VALUE(n < INT32_MAX, "a voxel hash holds at most 2^31 - 2 voxels, got ", n);

  at::Tensor entries = at::empty({n, 2}, coords.options().dtype(at::kLong));
  const int32_t* c = coords.data_ptr<int32_t>();
  int64_t* e = entries.data_ptr<int64_t>();
  std::atomic<int64_t> bad_row{-1};
  at::parallel_for(0, n, 4096, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int32_t* r = c + 4 * i;
      if (r[0] < 0 || !coord_in_range(r[1]) || !coord_in_range(r[2]) || !coord_in_range(r[3])) {
        bad_row.store(i);
        continue;
      }
      e[2 * i] = pack_voxel_key(r[1], r[2], r[3]);
      e[2 * i + 1] = r[0];
    }
  });
  const int64_t bad = bad_row.load();
  TORCH_CHECK_VALUE(bad < 0, "voxel coordinate row ", bad, " = (", c[4 * bad], ", ", c[4 * bad + 1], ", ",
                    c[4 * bad + 2], ", ", c[4 * bad + 3], ") is outside the key range: batch >= 0 and |x|, |y|, |z| < ",
                    kMaxVoxelCoord);

  const int64_t capacity = hash_capacity(n);
  const uint64_t mask = static_cast<uint64_t>(capacity - 1);
  at::Tensor table = at::full({capacity}, kEmptySlot, coords.options());
  at::Tensor duplicate = at::full({2}, -1, coords.options().dtype(at::kLong));
  int32_t* t = table.data_ptr<int32_t>();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t key = e[2 * i], batch = e[2 * i + 1];
    uint64_t slot = slot_hash(key, batch) & mask;
    while (true) {
      const int32_t row = t[slot];
      if (row == kEmptySlot) {
        t[slot] = static_cast<int32_t>(i);
        break;
      }
      if (e[2 * static_cast<int64_t>(row)] == key && e[2 * static_cast<int64_t>(row) + 1] == batch) {
        duplicate.data_ptr<int64_t>()[0] = row;
        duplicate.data_ptr<int64_t>()[1] = i;
        return {table, entries, duplicate};
      }
      slot = (slot + 1) & mask;
    }
  }
  return {table, entries, duplicate};
}

at::Tensor voxel_hash_lookup_cpu(const at::Tensor& table, const at::Tensor& entries, const at::Tensor& coords_in) {
  check_hash_tensors(table, entries);
  TORCH_CHECK(table.device().is_cpu() && coords_in.device().is_cpu(), "voxel_hash_lookup_cpu needs CPU tensors");
  TORCH_CHECK_VALUE(coords_in.dim() == 2 && coords_in.size(1) == 4, "query coords must be [M, 4], got ",
                    coords_in.sizes());
  TORCH_CHECK_TYPE(coords_in.scalar_type() == at::kInt, "query coords must be int32, got ", coords_in.scalar_type());
  const at::Tensor coords = coords_in.contiguous();
  const int64_t m = coords.size(0);
  at::Tensor out = at::empty({m}, coords.options().dtype(at::kLong));
  const int32_t* c = coords.data_ptr<int32_t>();
  const int32_t* t = table.data_ptr<int32_t>();
  const int64_t* e = entries.data_ptr<int64_t>();
  const uint64_t mask = static_cast<uint64_t>(table.size(0) - 1);
  int64_t* o = out.data_ptr<int64_t>();
  at::parallel_for(0, m, 4096, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int32_t* r = c + 4 * i;
      // A query outside the key range cannot be stored, so it is simply absent.
      const bool storable = r[0] >= 0 && coord_in_range(r[1]) && coord_in_range(r[2]) && coord_in_range(r[3]);
      o[i] = storable ? hash_find(t, mask, e, pack_voxel_key(r[1], r[2], r[3]), r[0]) : -1;
    }
  });
  return out;
}

}  // namespace pixvox
