// CPU back-projection and pixel → voxel matching in one pass over the depth images.
//
// Two passes over sampled image rows: count the valid pixels of each row, prefix-sum the counts,
// then write every kept pixel at its row-major position. The output order is (frame, row, column)
// whatever the thread count.
//
// Voxel lookups are resolved a row at a time: neighbouring pixels usually share a voxel (one lookup
// per run of equal keys), and the hash slots and entries of all runs are prefetched before probing.
// Probing inline, pixel by pixel, serialises the cache misses behind data-dependent branches; on a
// 480x640 frame at 2.5 cm voxels that made the lookups cost twice the whole back-projection.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <vector>

#include "cpu/large_alloc.h"
#include "cpu/prefetch.h"
#include "pixel_geometry.h"
#include "pixvox_ops.h"

namespace pixvox {
namespace {

// Per-thread memory of recent lookups: a row mostly revisits the voxels of the row above it, and a
// hit here costs one L2 access instead of two misses into the hash (table, then entries).
class LookupCache {
 public:
  static constexpr int kBits = 12;

  LookupCache() : slots_(size_t(1) << kBits, Slot{-1, -1, -1}) {}

  // Position for a key whose slot_hash is `hash` (its top bits, independent of the table slot).
  static size_t position(uint64_t hash) { return static_cast<size_t>(hash >> (64 - kBits)); }

  bool find(size_t pos, int64_t key, int64_t batch, int64_t* index) const {
    const Slot& s = slots_[pos];
    if (s.key != key || s.batch != batch) return false;
    *index = s.index;
    return true;
  }

  void store(size_t pos, int64_t key, int64_t batch, int64_t index) { slots_[pos] = Slot{key, batch, index}; }

 private:
  struct Slot {
    int64_t key, batch, index;
  };
  std::vector<Slot> slots_;
};

// Scratch reused across the rows of one thread.
struct RowScratch {
  std::vector<int64_t> run_index;  // voxel row of each run of equal keys (-1 none); -2 = not yet known
  std::vector<int64_t> miss_run;   // runs to look up in the hash
  std::vector<uint64_t> miss_hash;
  LookupCache cache;
};

// keys[0, n): voxel keys of one image row (-1 = outside the key range), replaced in place by the
// row of the hash's coordinates each pixel falls in (-1 if none).
void resolve_row(int64_t* keys, int64_t n, int64_t batch, const int32_t* table, uint64_t mask,
                 const int64_t* entries, RowScratch& scratch) {
  scratch.run_index.clear();
  scratch.miss_run.clear();
  scratch.miss_hash.clear();
  int64_t prev_key = -1;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t key = keys[i];
    if (key >= 0 && key != prev_key) {
      const uint64_t hash = slot_hash(key, batch);
      int64_t index = -2;
      if (!scratch.cache.find(LookupCache::position(hash), key, batch, &index)) {
        scratch.miss_run.push_back(static_cast<int64_t>(scratch.run_index.size()));
        scratch.miss_hash.push_back(hash);
        prefetch(table + (hash & mask));
      }
      scratch.run_index.push_back(index);
    }
    prev_key = key;
  }
  // Issue every miss's second load before waiting on any of them.
  for (const uint64_t hash : scratch.miss_hash) {
    const int32_t row = table[hash & mask];
    if (row != kEmptySlot) prefetch(entries + 2 * static_cast<int64_t>(row));
  }
  // Runs are numbered in key order, so run r's key is found again by walking the row below.
  for (size_t m = 0; m < scratch.miss_run.size(); ++m) scratch.run_index[scratch.miss_run[m]] = -3 - int64_t(m);
  int64_t run = -1;
  prev_key = -1;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t key = keys[i];
    if (key >= 0 && key != prev_key) {
      ++run;
      int64_t& index = scratch.run_index[run];
      if (index <= -3) {
        const uint64_t hash = scratch.miss_hash[-3 - index];
        index = hash_find_from(table, mask, entries, key, batch, hash & mask);
        scratch.cache.store(LookupCache::position(hash), key, batch, index);
      }
    }
    keys[i] = key >= 0 ? scratch.run_index[run] : -1;
    prev_key = key;
  }
}

}  // namespace

std::vector<at::Tensor> pixel_to_voxel_cpu(const at::Tensor& depth_in, const at::Tensor& intrinsics_in,
                                           const at::Tensor& transforms_in, const at::Tensor& frame_batch_in,
                                           double depth_min, double depth_max, int64_t stride, double voxel_size,
                                           const at::Tensor& table, const at::Tensor& entries, bool lookup) {
  check_pixel_to_voxel_args(depth_in, intrinsics_in, transforms_in, frame_batch_in, stride, voxel_size, lookup);
  TORCH_CHECK(depth_in.device().is_cpu(), "pixel_to_voxel_cpu needs CPU tensors");
  if (lookup) {
    check_hash_tensors(table, entries);
    TORCH_CHECK(table.device().is_cpu(), "the voxel hash is not on the CPU");
  }
  const at::Tensor depth = depth_in.contiguous();
  const at::Tensor intrinsics = intrinsics_in.contiguous();
  const at::Tensor transforms = transforms_in.contiguous();
  const at::Tensor frame_batch = frame_batch_in.contiguous();

  const int64_t frames = depth.size(0), height = depth.size(1), width = depth.size(2);
  const int64_t rows_per_frame = (height + stride - 1) / stride;
  const int64_t rows = frames * rows_per_frame;
  std::vector<int64_t> offsets(rows + 1, 0);

  at::Tensor pixel_bvu, voxel_index, points;
  AT_DISPATCH_FLOATING_TYPES(depth.scalar_type(), "pixel_to_voxel_cpu", [&] {
    const scalar_t* d = depth.data_ptr<scalar_t>();
    auto row_ptr = [&](int64_t r) {
      const int64_t frame = r / rows_per_frame, v = (r % rows_per_frame) * stride;
      return d + (frame * height + v) * width;
    };

    at::parallel_for(0, rows, 8, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const scalar_t* row = row_ptr(r);
        int64_t kept = 0;
        for (int64_t u = 0; u < width; u += stride) {
          kept += depth_is_valid(static_cast<double>(row[u]), depth_min, depth_max);
        }
        offsets[r + 1] = kept;
      }
    });
    for (int64_t r = 0; r < rows; ++r) offsets[r + 1] += offsets[r];
    const int64_t kept_total = offsets[rows];

    pixel_bvu = empty_large({kept_total, 3}, depth.options().dtype(at::kLong));
    points = empty_large({kept_total, 3}, depth.options());
    voxel_index = empty_large({lookup ? kept_total : 0}, depth.options().dtype(at::kLong));
    int64_t* bvu = pixel_bvu.data_ptr<int64_t>();
    scalar_t* pts = points.data_ptr<scalar_t>();
    int64_t* vidx = voxel_index.data_ptr<int64_t>();
    const double* intr = intrinsics.data_ptr<double>();
    const double* tr = transforms.data_ptr<double>();
    const int64_t* fb = frame_batch.data_ptr<int64_t>();
    const int32_t* t = lookup ? table.data_ptr<int32_t>() : nullptr;
    const int64_t* e = lookup ? entries.data_ptr<int64_t>() : nullptr;
    const uint64_t mask = lookup ? static_cast<uint64_t>(table.size(0) - 1) : 0;

    at::parallel_for(0, rows, 8, [&](int64_t begin, int64_t end) {
      RowScratch scratch;
      for (int64_t r = begin; r < end; ++r) {
        const int64_t frame = r / rows_per_frame, v = (r % rows_per_frame) * stride;
        const scalar_t* row = row_ptr(r);
        const double* frame_intr = intr + 4 * frame;
        const double* frame_tr = tr + 12 * frame;
        const int64_t batch = fb[frame];
        int64_t out = offsets[r];
        for (int64_t u = 0; u < width; u += stride) {
          const double z = static_cast<double>(row[u]);
          if (!depth_is_valid(z, depth_min, depth_max)) continue;
          double xyz[3];
          pixel_to_world(frame_intr, frame_tr, v, u, z, xyz);
          bvu[3 * out] = frame;
          bvu[3 * out + 1] = v;
          bvu[3 * out + 2] = u;
          pts[3 * out] = static_cast<scalar_t>(xyz[0]);
          pts[3 * out + 1] = static_cast<scalar_t>(xyz[1]);
          pts[3 * out + 2] = static_cast<scalar_t>(xyz[2]);
          if (lookup) vidx[out] = world_to_voxel_key(xyz, voxel_size);  // resolved below
          ++out;
        }
        if (lookup) resolve_row(vidx + offsets[r], offsets[r + 1] - offsets[r], batch, t, mask, e, scratch);
      }
    });
  });
  return {pixel_bvu, voxel_index, points};
}

}  // namespace pixvox
