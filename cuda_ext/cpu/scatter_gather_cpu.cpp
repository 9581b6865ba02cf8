// CPU scatter (pixels → voxels) and gather (voxels → pixels).
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
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

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

// Reduce pixels [first, pixels) whose voxel is owned by `self` (all voxels if owner is null) into acc
// ([V, C], zero-initialised). argmax may be null for kMax when no gradient is needed.
template <Reduce R, typename scalar_t, typename acc_t>
void scatter_owned(const scalar_t* feats, const int64_t* index, int64_t first, int64_t pixels, int64_t voxels,
                   int64_t channels, const int32_t* owner, int32_t self, acc_t* acc, int64_t* counts,
                   int64_t* argmax) {
  const size_t row_bytes = static_cast<size_t>(channels) * sizeof(acc_t);
  for (int64_t p = first; p < pixels; ++p) {
    if (p + kPrefetchAhead < pixels) {
      const int64_t ahead = index[p + kPrefetchAhead];
      if (ahead >= 0 && (owner == nullptr || owner[ahead] == self)) prefetch_row(acc + ahead * channels, row_bytes);
    }
    const int64_t v = index[p];
    if (v < 0 || (owner != nullptr && owner[v] != self)) continue;
    const scalar_t* f = feats + p * channels;
    acc_t* a = acc + v * channels;
    const int64_t seen = counts[v]++;
    if constexpr (R == Reduce::kMax) {
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
    } else {
      for (int64_t c = 0; c < channels; ++c) a[c] += static_cast<acc_t>(f[c]);
    }
  }
  if constexpr (R == Reduce::kMean) {
    for (int64_t v = 0; v < voxels; ++v) {
      if (counts[v] == 0 || (owner != nullptr && owner[v] != self)) continue;
      const acc_t n = static_cast<acc_t>(counts[v]);
      acc_t* a = acc + v * channels;
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

  at::Tensor out = zeros_large({num_voxels, channels}, feats.options());
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
  if (num_voxels == 0 || pixels == 0) return {out, counts, argmax};
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
    at::Tensor acc_tensor =
        in_place ? out : zeros_large({num_voxels, channels}, feats.options().dtype(c10::CppTypeToScalarType<acc_t>::value));
    acc_t* acc = acc_tensor.data_ptr<acc_t>();
    const scalar_t* f = feats.data_ptr<scalar_t>();
    int64_t* cnt = counts.data_ptr<int64_t>();
    int64_t* am = track_argmax ? argmax.data_ptr<int64_t>() : nullptr;

    at::parallel_for(0, chunks, 1, [&](int64_t begin, int64_t end) {
      for (int64_t c = begin; c < end; ++c) {
        // A voxel's pixels may lie in any chunk, so every thread scans the whole (cheap) index.
        const int64_t first = 0;
        const auto self = static_cast<int32_t>(c);
        switch (reduce) {
          case Reduce::kSum:
            scatter_owned<Reduce::kSum>(f, idx, first, pixels, num_voxels, channels, own, self, acc, cnt, am);
            break;
          case Reduce::kMean:
            scatter_owned<Reduce::kMean>(f, idx, first, pixels, num_voxels, channels, own, self, acc, cnt, am);
            break;
          case Reduce::kMax:
            scatter_owned<Reduce::kMax>(f, idx, first, pixels, num_voxels, channels, own, self, acc, cnt, am);
            break;
        }
      }
    });
    if (!in_place) out.copy_(acc_tensor);
  });
  return {out, counts, argmax};
}

at::Tensor gather_from_voxels_cpu(const at::Tensor& voxel_feats_in, const at::Tensor& voxel_index_in) {
  check_gather_args(voxel_feats_in, voxel_index_in);
  TORCH_CHECK(voxel_feats_in.device().is_cpu(), "gather_from_voxels_cpu needs CPU tensors");
  const at::Tensor feats = voxel_feats_in.contiguous();
  const at::Tensor index = voxel_index_in.contiguous();
  const int64_t voxels = feats.size(0), channels = feats.size(1), pixels = index.size(0);
  at::Tensor out = empty_large({pixels, channels}, feats.options());
  if (pixels == 0) return out;

  // Rows are copied as bytes, so every dtype works (features, labels, masks).
  const size_t row_bytes = static_cast<size_t>(channels) * feats.element_size();
  const char* src = static_cast<const char*>(feats.data_ptr());
  char* dst = static_cast<char*>(out.data_ptr());
  const int64_t* idx = index.data_ptr<int64_t>();
  std::atomic<int64_t> bad_pixel{-1};
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(channels, 1));
  at::parallel_for(0, pixels, grain, [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      if (p + kPrefetchAhead < end) {
        const int64_t ahead = idx[p + kPrefetchAhead];
        if (ahead >= 0 && ahead < voxels) prefetch_row(src + ahead * row_bytes, row_bytes);
      }
      const int64_t v = idx[p];
      char* o = dst + p * row_bytes;
      if (v >= 0 && v < voxels) {
        std::memcpy(o, src + v * row_bytes, row_bytes);
      } else {
        if (v != -1) bad_pixel.store(p);
        std::memset(o, 0, row_bytes);
      }
    }
  });
  const int64_t bad = bad_pixel.load();
  TORCH_CHECK_INDEX(bad < 0, "voxel_index[", bad, "] = ", bad < 0 ? 0 : idx[bad], " is outside [-1, ", voxels, ")");
  return out;
}

}  // namespace pixvox
