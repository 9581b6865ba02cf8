// CPU scatter (pixels → voxels); gather is in gather_cpu.cpp.
//
// Scatter is deterministic by ownership: every voxel belongs to one thread, which walks the pixels in
// increasing order and reduces those of its own voxels. Each voxel's pixels are therefore reduced in
// pixel order, by one thread, with no atomics: the result is bitwise identical for any thread count
// (and matches the CUDA segment kernel).
//
// The pixels are cut into one contiguous chunk per thread, and a voxel belongs to the thread whose
// chunk holds most of its pixels (ties: the first such chunk). Each thread then reads its own chunk's
// feature rows densely and other chunks' rows sparsely. Splitting by voxel id instead makes every
// thread stream through all [P, C] features (the hardware prefetcher fetches the other threads'
// rows too), doubling memory traffic; owning by first pixel unbalances the work when later frames
// revisit earlier voxels (2:1 on the 8-frame benchmark, 57:43 by majority).
//
// Sums and means go a run at a time: neighbouring pixels mostly share a voxel, so a run of pixels of
// one voxel is added into a block of channels held in registers, and the voxel's row is read and
// written once per run instead of once per pixel (the same additions in the same order, so the same
// bits). On the benchmark that made the sum 1.5-1.7x the time of merely reading the features, from
// 2-2.3x.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "cpu/isa.h"
#if defined(PIXVOX_X86)
#include <immintrin.h>
#endif

#include "cpu/large_alloc.h"
#include "cpu/prefetch.h"
#include "pixvox_ops.h"
#include "voxel_key.h"

namespace pixvox {
namespace {

template <typename T>
inline bool is_nan(T x) {
  return x != x;
}

// Max over pixels [first, pixels) whose voxel is owned by `self` (all voxels if owner is null) into
// acc ([V, C], zero-initialised). argmax may be null when no gradient is needed.
template <typename scalar_t, typename acc_t>
void scatter_max_owned(const scalar_t* feats, const int64_t* index, int64_t pixels, int64_t channels,
                       const int32_t* owner, int32_t self, acc_t* acc, int64_t* counts, int64_t* argmax) {
  const size_t row_bytes = static_cast<size_t>(channels) * sizeof(acc_t);
  for (int64_t p = 0; p < pixels; ++p) {
    if (p + kPrefetchAhead < pixels) {
      const int64_t ahead = index[p + kPrefetchAhead];
      if (ahead >= 0 && (owner == nullptr || owner[ahead] == self)) prefetch_row(acc + ahead * channels, row_bytes);
    }
    const int64_t v = index[p];
    if (v < 0 || (owner != nullptr && owner[v] != self)) continue;
    const scalar_t* f = feats + p * channels;
    acc_t* a = acc + v * channels;
    const int64_t seen = counts[v]++;
    if (seen == 0) {
      for (int64_t c = 0; c < channels; ++c) a[c] = static_cast<acc_t>(f[c]);
      if (argmax != nullptr) std::fill(argmax + v * channels, argmax + (v + 1) * channels, p);
    } else if (argmax == nullptr) {
      // First maximum wins ties; a NaN wins and then stays (as torch's amax propagates NaN).
      // Non-short-circuit operators keep the loop branch-free so it vectorizes.
      for (int64_t c = 0; c < channels; ++c) {
        const acc_t x = static_cast<acc_t>(f[c]), cur = a[c];
        a[c] = ((x > cur) | (is_nan(x) & !is_nan(cur))) ? x : cur;
      }
    } else {
      int64_t* am = argmax + v * channels;
      for (int64_t c = 0; c < channels; ++c) {
        const acc_t x = static_cast<acc_t>(f[c]), cur = a[c];
        const bool take = (x > cur) | (is_nan(x) & !is_nan(cur));
        a[c] = take ? x : cur;
        am[c] = take ? p : am[c];
      }
    }
  }
}

// Channels summed in registers per pass over a run (4 AVX2 registers of float32).
constexpr int64_t kBlock = 32;

// acc_row = (fresh ? 0 : acc_row) + rows p0, p0 + 1, ..., p1 - 1 of feats, added in that order.
template <typename scalar_t, typename acc_t>
PIXVOX_ALWAYS_INLINE void add_run(const scalar_t* feats, int64_t p0, int64_t p1, int64_t channels, bool fresh,
                                  acc_t* acc_row) {
  int64_t c0 = 0;
  for (; c0 + kBlock <= channels; c0 += kBlock) {
    acc_t local[kBlock];
    for (int64_t c = 0; c < kBlock; ++c) local[c] = fresh ? acc_t(0) : acc_row[c0 + c];
    for (int64_t p = p0; p < p1; ++p) {
      const scalar_t* f = feats + p * channels + c0;
      for (int64_t c = 0; c < kBlock; ++c) local[c] += static_cast<acc_t>(f[c]);
    }
    for (int64_t c = 0; c < kBlock; ++c) acc_row[c0 + c] = local[c];
  }
  for (int64_t c = c0; c < channels; ++c) {
    acc_t s = fresh ? acc_t(0) : acc_row[c];
    for (int64_t p = p0; p < p1; ++p) s += static_cast<acc_t>(feats[p * channels + c]);
    acc_row[c] = s;
  }
}

#if defined(PIXVOX_X86)
// add_run for float32 with the 32-channel blocks spelled out in four AVX2 registers (the compiler
// kept the generic block in memory, which made the loop twice as slow on the benchmark).
PIXVOX_TARGET_AVX2 PIXVOX_ALWAYS_INLINE void add_run_f32_avx2(const float* feats, int64_t p0, int64_t p1, int64_t channels,
                                                     bool fresh, float* acc_row) {
  int64_t c0 = 0;
  for (; c0 + kBlock <= channels; c0 += kBlock) {
    float* a = acc_row + c0;
    __m256 l0, l1, l2, l3;
    if (fresh) {
      l0 = l1 = l2 = l3 = _mm256_setzero_ps();
    } else {
      l0 = _mm256_loadu_ps(a);
      l1 = _mm256_loadu_ps(a + 8);
      l2 = _mm256_loadu_ps(a + 16);
      l3 = _mm256_loadu_ps(a + 24);
    }
    for (int64_t p = p0; p < p1; ++p) {
      const float* f = feats + p * channels + c0;
      l0 = _mm256_add_ps(l0, _mm256_loadu_ps(f));
      l1 = _mm256_add_ps(l1, _mm256_loadu_ps(f + 8));
      l2 = _mm256_add_ps(l2, _mm256_loadu_ps(f + 16));
      l3 = _mm256_add_ps(l3, _mm256_loadu_ps(f + 24));
    }
    _mm256_storeu_ps(a, l0);
    _mm256_storeu_ps(a + 8, l1);
    _mm256_storeu_ps(a + 16, l2);
    _mm256_storeu_ps(a + 24, l3);
  }
  for (int64_t c = c0; c < channels; ++c) {
    float s = fresh ? 0.0f : acc_row[c];
    for (int64_t p = p0; p < p1; ++p) s += feats[p * channels + c];
    acc_row[c] = s;
  }
}

#endif

// End of the run of equal voxel index starting at pixel p; prefetches the accumulator row of a pixel
// further ahead (about eight runs), so its lines arrive while this run is added.
template <typename acc_t>
PIXVOX_ALWAYS_INLINE int64_t run_end(const int64_t* index, int64_t p, int64_t pixels, const int32_t* owner,
                                     int32_t self, const acc_t* acc, const int64_t* counts, int64_t channels) {
  const int64_t v = index[p];
  int64_t end = p + 1;
  while (end < pixels && index[end] == v) ++end;
  const int64_t ahead_pixel = end + 2 * kPrefetchAhead;
  if (ahead_pixel < pixels) {
    const int64_t ahead = index[ahead_pixel];
    if (ahead >= 0 && (owner == nullptr || owner[ahead] == self)) {
      prefetch_row(acc + ahead * channels, static_cast<size_t>(channels) * sizeof(acc_t));
      prefetch(counts + ahead);
    }
  }
  return end;
}

// Sum over the pixels of owned voxels (all if owner is null), a run of equal voxel at a time; rows
// of voxels not yet seen are overwritten, not read.
template <typename scalar_t, typename acc_t>
void scatter_sum_runs(const scalar_t* feats, const int64_t* index, int64_t pixels, int64_t channels,
                      const int32_t* owner, int32_t self, acc_t* acc, int64_t* counts) {
  for (int64_t p = 0; p < pixels;) {
    const int64_t v = index[p], end = run_end(index, p, pixels, owner, self, acc, counts, channels);
    if (v >= 0 && (owner == nullptr || owner[v] == self)) {
      add_run(feats, p, end, channels, counts[v] == 0, acc + v * channels);
      counts[v] += end - p;
    }
    p = end;
  }
}

#if defined(PIXVOX_X86)
PIXVOX_TARGET_AVX2 void scatter_sum_runs_f32_avx2(const float* feats, const int64_t* index, int64_t pixels,
                                                  int64_t channels, const int32_t* owner, int32_t self, float* acc,
                                                  int64_t* counts) {
  for (int64_t p = 0; p < pixels;) {
    const int64_t v = index[p], end = run_end(index, p, pixels, owner, self, acc, counts, channels);
    if (v >= 0 && (owner == nullptr || owner[v] == self)) {
      add_run_f32_avx2(feats, p, end, channels, counts[v] == 0, acc + v * channels);
      counts[v] += end - p;
    }
    p = end;
  }
}
#endif

template <typename scalar_t, typename acc_t>
void scatter_sum(Isa isa, const scalar_t* feats, const int64_t* index, int64_t pixels, int64_t channels,
                 const int32_t* owner, int32_t self, acc_t* acc, int64_t* counts) {
#if defined(PIXVOX_X86)
  if constexpr (std::is_same<scalar_t, float>::value && std::is_same<acc_t, float>::value) {
    if (isa == Isa::kAvx2) return scatter_sum_runs_f32_avx2(feats, index, pixels, channels, owner, self, acc, counts);
  }
#endif
  scatter_sum_runs(feats, index, pixels, channels, owner, self, acc, counts);
}

// Owned voxel rows after the reduction: empty ones set to 0, means divided by their counts.
template <typename acc_t>
void finish_rows(acc_t* acc, const int64_t* counts, int64_t voxels, int64_t channels, const int32_t* owner,
                 int32_t self, bool mean) {
  for (int64_t v = 0; v < voxels; ++v) {
    if (owner != nullptr && owner[v] != self) continue;
    acc_t* a = acc + v * channels;
    if (counts[v] == 0) {
      std::fill(a, a + channels, acc_t(0));
    } else if (mean) {
      const acc_t n = static_cast<acc_t>(counts[v]);
      for (int64_t c = 0; c < channels; ++c) a[c] = a[c] / n;
    }
  }
}

}  // namespace

std::vector<at::Tensor> scatter_to_voxels_cpu(const at::Tensor& pixel_feats_in, const at::Tensor& voxel_index_in,
                                              int64_t num_voxels, int64_t reduce_code, bool with_argmax) {
  check_scatter_args(pixel_feats_in, voxel_index_in, num_voxels, reduce_code);
  TORCH_CHECK(pixel_feats_in.device().is_cpu(), "scatter_to_voxels_cpu needs CPU tensors");
  const at::Tensor feats = pixel_feats_in.contiguous();
  const at::Tensor index = voxel_index_in.contiguous();
  const auto reduce = static_cast<Reduce>(reduce_code);
  const int64_t pixels = feats.size(0), channels = feats.size(1);
  const Isa isa = cpu_isa();

  // Sums and means write every row they own (finish_rows zeroes the empty ones); max needs zeros.
  at::Tensor out = reduce == Reduce::kMax ? zeros_large({num_voxels, channels}, feats.options())
                                          : empty_large({num_voxels, channels}, feats.options());
  at::Tensor counts = at::zeros({num_voxels}, index.options());
  const bool track_argmax = reduce == Reduce::kMax && with_argmax;
  at::Tensor argmax =
      track_argmax ? empty_large({num_voxels, channels}, index.options()).fill_(-1) : at::empty({0}, index.options());
  const int64_t* idx = index.data_ptr<int64_t>();

  // One pixel chunk per thread; small problems run on one thread, and the per-chunk pixel counts
  // below (chunks x V int32) stay under 256 MB.
  const int64_t work = pixels * std::max<int64_t>(channels, 1);
  int64_t chunks = work < (int64_t(1) << 16) ? 1 : std::min<int64_t>(at::get_num_threads(), num_voxels);
  chunks = std::max<int64_t>(1, std::min<int64_t>(chunks, (int64_t(64) << 20) / std::max<int64_t>(num_voxels, 1)));
  auto chunk_begin = [&](int64_t c) { return pixels * c / chunks; };

  // Validate the index and count each chunk's pixels per voxel (in parallel), then give every voxel
  // to the chunk holding most of its pixels.
  std::vector<int32_t> chunk_counts(chunks > 1 ? chunks * num_voxels : 0, 0);
  std::vector<int64_t> first_bad(chunks, -1);
  at::parallel_for(0, chunks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      int32_t* mine = chunks > 1 ? chunk_counts.data() + c * num_voxels : nullptr;
      for (int64_t p = chunk_begin(c), stop = chunk_begin(c + 1); p < stop; ++p) {
        const int64_t v = idx[p];
        if (v < -1 || v >= num_voxels) {
          first_bad[c] = p;
          break;
        }
        if (mine != nullptr && v >= 0) ++mine[v];
      }
    }
  });
  for (const int64_t p : first_bad) {
    TORCH_CHECK_INDEX(p < 0, "voxel_index[", p, "] = ", p < 0 ? 0 : idx[p], " is outside [-1, ", num_voxels, ")");
  }
  if (num_voxels == 0 || pixels == 0) return {out.zero_(), counts, argmax};
  std::vector<int32_t> owner(chunks > 1 ? num_voxels : 0, 0);
  if (chunks > 1) {
    at::parallel_for(0, num_voxels, 16384, [&](int64_t begin, int64_t end) {
      for (int64_t v = begin; v < end; ++v) {
        int32_t best = 0;
        for (int64_t c = 1; c < chunks; ++c) {
          if (chunk_counts[c * num_voxels + v] > chunk_counts[best * num_voxels + v]) best = static_cast<int32_t>(c);
        }
        owner[v] = best;
      }
    });
  }
  const int32_t* own = chunks > 1 ? owner.data() : nullptr;

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, feats.scalar_type(), "scatter_to_voxels_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    constexpr bool in_place = std::is_same<acc_t, scalar_t>::value;
    const auto acc_dtype = c10::CppTypeToScalarType<acc_t>::value;
    at::Tensor acc_tensor = in_place ? out
                            : reduce == Reduce::kMax
                                ? zeros_large({num_voxels, channels}, feats.options().dtype(acc_dtype))
                                : empty_large({num_voxels, channels}, feats.options().dtype(acc_dtype));
    acc_t* acc = acc_tensor.data_ptr<acc_t>();
    const scalar_t* f = feats.data_ptr<scalar_t>();
    int64_t* cnt = counts.data_ptr<int64_t>();
    int64_t* am = track_argmax ? argmax.data_ptr<int64_t>() : nullptr;

    at::parallel_for(0, chunks, 1, [&](int64_t begin, int64_t end) {
      for (int64_t c = begin; c < end; ++c) {
        // A voxel's pixels may lie in any chunk, so every thread scans the whole (cheap) index.
        const auto self = static_cast<int32_t>(c);
        if (reduce == Reduce::kMax) {
          scatter_max_owned(f, idx, pixels, channels, own, self, acc, cnt, am);
          continue;
        }
        scatter_sum(isa, f, idx, pixels, channels, own, self, acc, cnt);
        finish_rows(acc, cnt, num_voxels, channels, own, self, reduce == Reduce::kMean);
      }
    });
    if (!in_place) out.copy_(acc_tensor);
  });
  return {out, counts, argmax};
}

}  // namespace pixvox
