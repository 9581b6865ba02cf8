// CPU back-projection and pixel → voxel matching, one sampled image row at a time.
//
// A first pass counts the valid pixels of every row and prefix-sums the counts, so each row writes
// its kept pixels at known positions: the output order is (frame, row, column) whatever the thread
// count. The second pass runs three steps per row:
//   1. geometry: the world point and voxel key of every sampled column, branch-free over the row
//      (four columns per instruction with AVX2; the same float64 operations in the same order as
//      pixel_geometry.h, so every path and the CUDA kernel produce the same bits);
//   2. matching: a pixel reuses the voxel of its left neighbour or of one of the three pixels above
//      it when the key is the same (92% of the pixels on the benchmark: a voxel spans several
//      pixels); the other keys (8%, about one per voxel and frame) are probed in the hash at the
//      end of the row, all their table slots and then all their entries prefetched first, so
//      their cache misses overlap instead of queueing behind branches. (A per-thread cache of
//      recent lookups in front of the hash, and deferring the probes by one more row, measured
//      no faster.)
//   3. output: the kept pixels' (frame, v, u), points and voxel rows, written in order.
// Profiled on 8 frames of 480x640 at 2.5 cm (perf, one thread): the per-pixel scalar geometry took
// half the time and the old two-pass run detection a third; computing the geometry four columns at
// a time and matching against the row above in the same pass as the output removed most of both.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <cfloat>
#include <type_traits>
#include <vector>

#include "cpu/isa.h"
#if defined(PIXVOX_X86)
#include <immintrin.h>
#endif

#include "cpu/large_alloc.h"
#include "cpu/prefetch.h"
#include "pixel_geometry.h"
#include "pixvox_ops.h"

namespace pixvox {
namespace {

// A voxel row not known yet: kFirstPending - m waits for the m-th hash probe of the row.
constexpr int64_t kFirstPending = -3;

struct FrameParams {
  const double* intrinsics;  // fx, fy, cx, cy (pixels)
  const double* transform;   // 3x4 camera-to-world, metres
  double depth_min, depth_max, voxel_size;
  bool keys;  // compute voxel keys (pixel_to_voxel) or only points (backproject)
};

// Per-column results of one row (scratch reused across rows).
struct RowGeometry {
  std::vector<double> depth, x, y, z;
  std::vector<int64_t> key;  // -1 where the point leaves the key range
  std::vector<uint8_t> valid;

  void resize(int64_t n) {
    for (auto* v : {&depth, &x, &y, &z}) v->resize(n);
    key.resize(n);
    valid.resize(n);
  }
};

// Column i of the row through pixel_geometry.h (the reference arithmetic of every path).
PIXVOX_ALWAYS_INLINE void column_geometry(RowGeometry& g, int64_t i, int64_t stride, int64_t v,
                                          const FrameParams& f) {
  const double d = g.depth[i];
  g.valid[i] = depth_is_valid(d, f.depth_min, f.depth_max);
  if (!g.valid[i]) return;
  double xyz[3];
  pixel_to_world(f.intrinsics, f.transform, v, i * stride, d, xyz);
  g.x[i] = xyz[0];
  g.y[i] = xyz[1];
  g.z[i] = xyz[2];
  if (f.keys) g.key[i] = world_to_voxel_key(xyz, f.voxel_size);
}

template <typename scalar_t>
PIXVOX_ALWAYS_INLINE void load_depth(const scalar_t* row, int64_t n, int64_t stride, double* depth) {
  if (stride == 1) {
    for (int64_t i = 0; i < n; ++i) depth[i] = static_cast<double>(row[i]);
  } else {
    for (int64_t i = 0; i < n; ++i) depth[i] = static_cast<double>(row[i * stride]);
  }
}

template <typename scalar_t>
void row_geometry_generic(const scalar_t* row, int64_t n, int64_t stride, int64_t v, const FrameParams& f,
                          RowGeometry& g) {
  load_depth(row, n, stride, g.depth.data());
  for (int64_t i = 0; i < n; ++i) column_geometry(g, i, stride, v, f);
}

template <typename scalar_t>
PIXVOX_ALWAYS_INLINE int64_t count_valid_body(const scalar_t* row, int64_t n, int64_t stride, double lo, double hi) {
  int64_t kept = 0;
  if (stride == 1) {  // a separate loop, so that it vectorizes
    for (int64_t i = 0; i < n; ++i) kept += depth_is_valid(static_cast<double>(row[i]), lo, hi);
  } else {
    for (int64_t i = 0; i < n; ++i) kept += depth_is_valid(static_cast<double>(row[i * stride]), lo, hi);
  }
  return kept;
}

#if defined(PIXVOX_X86)
// Four columns per step: the operations of pixel_to_world and world_to_voxel_key, lane by lane
// (explicit mul/add/div, never FMA; floor is exact; |coordinate| < 2^20 fits int32).
template <typename scalar_t>
PIXVOX_TARGET_AVX2 void row_geometry_avx2(const scalar_t* row, int64_t n, int64_t stride, int64_t v,
                                          const FrameParams& f, RowGeometry& g) {
  load_depth(row, n, stride, g.depth.data());
  const double* in = f.intrinsics;
  const double* t = f.transform;
  const __m256d zero = _mm256_setzero_pd(), finite_max = _mm256_set1_pd(DBL_MAX);
  const __m256d lo = _mm256_set1_pd(f.depth_min), hi = _mm256_set1_pd(f.depth_max);
  const __m256d fx = _mm256_set1_pd(in[0]), fy = _mm256_set1_pd(in[1]), cx = _mm256_set1_pd(in[2]);
  const __m256d v_cy = _mm256_set1_pd(sub_rn(static_cast<double>(v), in[3]));
  __m256d r[12];
  for (int k = 0; k < 12; ++k) r[k] = _mm256_set1_pd(t[k]);
  const __m256d voxel = _mm256_set1_pd(f.voxel_size);
  const __m256d coord_max = _mm256_set1_pd(static_cast<double>(kMaxVoxelCoord));
  const __m256d coord_min = _mm256_set1_pd(-static_cast<double>(kMaxVoxelCoord));
  const __m256i offset = _mm256_set1_epi64x(kMaxVoxelCoord), none = _mm256_set1_epi64x(-1);
  const double s = static_cast<double>(stride);
  __m256d u = _mm256_set_pd(3 * s, 2 * s, s, 0.0);
  const __m256d u_step = _mm256_set1_pd(4 * s);
  const int64_t n4 = n & ~int64_t(3);
  for (int64_t i = 0; i < n4; i += 4, u = _mm256_add_pd(u, u_step)) {
    const __m256d d = _mm256_loadu_pd(g.depth.data() + i);
    const __m256d ok = _mm256_and_pd(
        _mm256_and_pd(_mm256_cmp_pd(d, zero, _CMP_GT_OQ), _mm256_cmp_pd(d, finite_max, _CMP_LE_OQ)),
        _mm256_and_pd(_mm256_cmp_pd(d, lo, _CMP_GE_OQ), _mm256_cmp_pd(d, hi, _CMP_LE_OQ)));
    const int mask = _mm256_movemask_pd(ok);
    for (int k = 0; k < 4; ++k) g.valid[i + k] = (mask >> k) & 1;
    if (mask == 0) continue;
    const __m256d xc = _mm256_div_pd(_mm256_mul_pd(_mm256_sub_pd(u, cx), d), fx);
    const __m256d yc = _mm256_div_pd(_mm256_mul_pd(v_cy, d), fy);
    __m256d world[3];
    for (int a = 0; a < 3; ++a) {
      world[a] = _mm256_add_pd(
          _mm256_add_pd(_mm256_add_pd(_mm256_mul_pd(r[4 * a], xc), _mm256_mul_pd(r[4 * a + 1], yc)),
                        _mm256_mul_pd(r[4 * a + 2], d)),
          r[4 * a + 3]);
    }
    _mm256_storeu_pd(g.x.data() + i, world[0]);
    _mm256_storeu_pd(g.y.data() + i, world[1]);
    _mm256_storeu_pd(g.z.data() + i, world[2]);
    if (!f.keys) continue;
    __m256i key = _mm256_setzero_si256();
    __m256d inside = ok;
    for (int a = 0; a < 3; ++a) {
      const __m256d c = _mm256_floor_pd(_mm256_div_pd(world[a], voxel));
      inside = _mm256_and_pd(inside, _mm256_and_pd(_mm256_cmp_pd(c, coord_min, _CMP_GT_OQ),
                                                   _mm256_cmp_pd(c, coord_max, _CMP_LT_OQ)));
      const __m256i field = _mm256_add_epi64(_mm256_cvtepi32_epi64(_mm256_cvttpd_epi32(c)), offset);
      key = _mm256_or_si256(key, _mm256_slli_epi64(field, kAxisBits * (2 - a)));
    }
    const __m256i in_range = _mm256_castpd_si256(inside);
    key = _mm256_or_si256(_mm256_and_si256(in_range, key), _mm256_andnot_si256(in_range, none));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(g.key.data() + i), key);
  }
  for (int64_t i = n4; i < n; ++i) column_geometry(g, i, stride, v, f);
}

// The compiler does not vectorize the float → double compare-and-count loop (14 instructions
// per pixel under callgrind); four pixels per step here.
template <typename scalar_t>
PIXVOX_TARGET_AVX2 int64_t count_valid_avx2(const scalar_t* row, int64_t n, int64_t stride, double lo, double hi) {
  if (stride != 1) return count_valid_body(row, n, stride, lo, hi);
  const __m256d zero = _mm256_setzero_pd(), finite_max = _mm256_set1_pd(DBL_MAX);
  const __m256d low = _mm256_set1_pd(lo), high = _mm256_set1_pd(hi);
  int64_t kept = 0, i = 0;
  for (; i + 4 <= n; i += 4) {
    __m256d d;
    if constexpr (std::is_same<scalar_t, float>::value) {
      d = _mm256_cvtps_pd(_mm_loadu_ps(row + i));
    } else {
      d = _mm256_loadu_pd(row + i);
    }
    const __m256d ok = _mm256_and_pd(
        _mm256_and_pd(_mm256_cmp_pd(d, zero, _CMP_GT_OQ), _mm256_cmp_pd(d, finite_max, _CMP_LE_OQ)),
        _mm256_and_pd(_mm256_cmp_pd(d, low, _CMP_GE_OQ), _mm256_cmp_pd(d, high, _CMP_LE_OQ)));
    kept += __builtin_popcount(static_cast<unsigned>(_mm256_movemask_pd(ok)));
  }
  return kept + count_valid_body(row + i, n - i, 1, lo, hi);
}
#endif

template <typename scalar_t>
int64_t count_valid(const scalar_t* row, int64_t n, int64_t stride, double lo, double hi, Isa isa) {
#if defined(PIXVOX_X86)
  if (isa == Isa::kAvx2) return count_valid_avx2(row, n, stride, lo, hi);
#endif
  return count_valid_body(row, n, stride, lo, hi);
}

struct Hash {
  const int32_t* table;
  uint64_t mask;
  const int64_t* entries;
};

// Matching state of one thread: the row above (its keys and voxel rows) and the hash probes of the
// row being matched.
struct Matcher {
  std::vector<int64_t> above_key, above_index, next_key, next_index;
  bool have_above = false;
  struct Miss {
    uint64_t hash;
    int64_t key;
  };
  std::vector<Miss> misses;  // keys of the row to probe in the hash: [0, num_misses)
  struct Pending {
    int64_t out, column;  // an output waiting for probe kFirstPending - vidx[out]
  };
  std::vector<Pending> pending;  // [0, num_pending)
  int64_t num_misses = 0, num_pending = 0;
  std::vector<int64_t> resolved;

  // Room for a row of n columns (at most one miss and one pending output per column).
  void resize(int64_t n) {
    for (auto* v : {&above_key, &above_index, &next_key, &next_index, &resolved}) v->resize(n);
    misses.resize(n);
    pending.resize(n);
  }

  // Probe the row's keys in the hash; patch its waiting outputs and the row-above arrays.
  void resolve(const Hash& h, int64_t batch, int64_t* vidx) {
    // Issue every probe's second load (the slots were prefetched while the row was matched)
    // before waiting on any of them.
    for (int64_t k = 0; k < num_misses; ++k) {
      const int32_t row = h.table[misses[k].hash & h.mask];
      if (row != kEmptySlot) prefetch(h.entries + 2 * static_cast<int64_t>(row));
    }
    for (int64_t k = 0; k < num_misses; ++k) {
      resolved[k] = hash_find_from(h.table, h.mask, h.entries, misses[k].key, batch, misses[k].hash & h.mask);
    }
    for (int64_t k = 0; k < num_pending; ++k) {
      const Pending& p = pending[k];
      const int64_t index = resolved[kFirstPending - vidx[p.out]];
      vidx[p.out] = index;
      above_index[p.column] = index;
    }
    num_misses = num_pending = 0;
  }
};

// Steps 2 and 3 for one row: writes the row's kept pixels from position `out` on. A key that needs
// the hash gets a pending row (kFirstPending - m) until Matcher::resolve, right after.
template <typename scalar_t>
void write_row(const RowGeometry& g, int64_t n, int64_t stride, int64_t frame, int64_t v, int64_t batch,
               int64_t out, int64_t* bvu, scalar_t* pts, int64_t* vidx, const Hash* hash, Matcher& m) {
  int64_t prev_key = -1, prev_index = -1;
  const int64_t* above_key = m.above_key.data();
  const int64_t* above_index = m.above_index.data();
  int64_t* next_key = m.next_key.data();
  int64_t* next_index = m.next_index.data();
  Matcher::Miss* misses = m.misses.data();
  Matcher::Pending* pending = m.pending.data();
  int64_t num_misses = 0, num_pending = 0;
  const bool above = m.have_above;
  for (int64_t i = 0; i < n; ++i) {
    if (!g.valid[i]) {
      if (hash != nullptr) next_key[i] = -1;
      continue;
    }
    bvu[3 * out] = frame;
    bvu[3 * out + 1] = v;
    bvu[3 * out + 2] = i * stride;
    pts[3 * out] = static_cast<scalar_t>(g.x[i]);
    pts[3 * out + 1] = static_cast<scalar_t>(g.y[i]);
    pts[3 * out + 2] = static_cast<scalar_t>(g.z[i]);
    if (hash != nullptr) {
      const int64_t key = g.key[i];
      int64_t index;
      if (key < 0) {
        index = -1;
      } else if (key == prev_key) {
        index = prev_index;
      } else if (above && key == above_key[i]) {
        index = above_index[i];
      } else if (above && i + 1 < n && key == above_key[i + 1]) {  // voxel faces cross rows diagonally
        index = above_index[i + 1];
      } else if (above && i > 0 && key == above_key[i - 1]) {
        index = above_index[i - 1];
      } else {
        const uint64_t h = slot_hash(key, batch);
        index = kFirstPending - num_misses;
        misses[num_misses++] = {h, key};
        prefetch(hash->table + (h & hash->mask));
      }
      if (index <= kFirstPending) pending[num_pending++] = {out, i};
      vidx[out] = index;
      next_key[i] = key;
      next_index[i] = index;
      prev_key = key;
      prev_index = index;
    }
    ++out;
  }
  if (hash == nullptr) return;
  m.num_misses = num_misses;
  m.num_pending = num_pending;
  m.above_key.swap(m.next_key);
  m.above_index.swap(m.next_index);
  m.have_above = true;
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
  const int64_t columns = (width + stride - 1) / stride;
  const int64_t rows = frames * rows_per_frame;
  std::vector<int64_t> offsets(rows + 1, 0);
  const Isa isa = cpu_isa();

  at::Tensor pixel_bvu, voxel_index, points;
  AT_DISPATCH_FLOATING_TYPES(depth.scalar_type(), "pixel_to_voxel_cpu", [&] {
    const scalar_t* d = depth.data_ptr<scalar_t>();
    auto row_ptr = [&](int64_t r) {
      const int64_t frame = r / rows_per_frame, v = (r % rows_per_frame) * stride;
      return d + (frame * height + v) * width;
    };

    at::parallel_for(0, rows, 8, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        offsets[r + 1] = count_valid(row_ptr(r), columns, stride, depth_min, depth_max, isa);
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
    Hash hash{nullptr, 0, nullptr};
    if (lookup) {
      hash = {table.data_ptr<int32_t>(), static_cast<uint64_t>(table.size(0) - 1), entries.data_ptr<int64_t>()};
    }

    at::parallel_for(0, rows, 8, [&](int64_t begin, int64_t end) {
      RowGeometry g;
      g.resize(columns);
      Matcher m;
      if (lookup) m.resize(columns);
      for (int64_t r = begin; r < end; ++r) {
        const int64_t frame = r / rows_per_frame, v = (r % rows_per_frame) * stride;
        if (offsets[r + 1] == offsets[r]) {  // nothing kept: the row above does not carry over
          m.have_above = false;
          continue;
        }
        // The row above must be this frame's previous sampled row (skipped rows reset it above).
        if (r == begin || r % rows_per_frame == 0) m.have_above = false;
        const FrameParams f{intr + 4 * frame, tr + 12 * frame, depth_min, depth_max, voxel_size, lookup};
#if defined(PIXVOX_X86)
        if (isa == Isa::kAvx2) {
          row_geometry_avx2(row_ptr(r), columns, stride, v, f, g);
        } else {
          row_geometry_generic(row_ptr(r), columns, stride, v, f, g);
        }
#else
        row_geometry_generic(row_ptr(r), columns, stride, v, f, g);
#endif
        write_row(g, columns, stride, frame, v, fb[frame], offsets[r], bvu, pts, vidx, lookup ? &hash : nullptr, m);
        if (lookup) m.resolve(hash, fb[frame], vidx);
      }
    });
  });
  return {pixel_bvu, voxel_index, points};
}

}  // namespace pixvox
