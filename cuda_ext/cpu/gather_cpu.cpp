// CPU gather (voxels → pixels): out[p] = voxel_feats[voxel_index[p]], zero rows where it is -1.
//
// Rows are copied as bytes, so every dtype works. Outputs larger than the last-level cache are
// written with AVX2 streaming stores, which skip reading each output line before overwriting it
// and keep the output from evicting the voxel rows still to be read. On the benchmark (2.4M x 64
// float32, one thread) the op had spent 58% of its time in the kernel zeroing fresh output pages
// (now served by the block cache of large_alloc.h) and 9% in a libc memcpy call per row.
#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cstring>

#include "cpu/isa.h"
#if defined(PIXVOX_X86)
#include <immintrin.h>
#include <unistd.h>
#endif

#include "cpu/large_alloc.h"
#include "cpu/prefetch.h"
#include "pixvox_ops.h"

namespace pixvox {

namespace {

#if defined(PIXVOX_X86)
size_t last_level_cache_bytes() {
  static const size_t bytes = [] {
    const long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
    return l3 > 0 ? static_cast<size_t>(l3) : size_t(32) << 20;
  }();
  return bytes;
}

// Rows of row_bytes (a multiple of 32) into a 32-byte aligned output, with streaming stores.
PIXVOX_TARGET_AVX2 void gather_rows_stream(const char* src, char* dst, const int64_t* idx, int64_t begin,
                                           int64_t end, int64_t voxels, size_t row_bytes,
                                           std::atomic<int64_t>& bad_pixel) {
  const __m256i zero = _mm256_setzero_si256();
  for (int64_t p = begin; p < end; ++p) {
    if (p + kPrefetchAhead < end) {
      const int64_t ahead = idx[p + kPrefetchAhead];
      if (ahead >= 0 && ahead < voxels) prefetch_row(src + ahead * row_bytes, row_bytes);
    }
    const int64_t v = idx[p];
    char* o = dst + p * row_bytes;
    if (v >= 0 && v < voxels) {
      const char* s = src + v * row_bytes;
      for (size_t b = 0; b < row_bytes; b += 32) {
        _mm256_stream_si256(reinterpret_cast<__m256i*>(o + b),
                            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + b)));
      }
    } else {
      if (v != -1) bad_pixel.store(p);
      for (size_t b = 0; b < row_bytes; b += 32) _mm256_stream_si256(reinterpret_cast<__m256i*>(o + b), zero);
    }
  }
  _mm_sfence();  // streaming stores are weakly ordered: publish them before the parallel region ends
}
#endif

void gather_rows(const char* src, char* dst, const int64_t* idx, int64_t begin, int64_t end, int64_t voxels,
                 size_t row_bytes, std::atomic<int64_t>& bad_pixel) {
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
}

}  // namespace

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
#if defined(PIXVOX_X86)
  const bool stream = cpu_isa() == Isa::kAvx2 && row_bytes % 32 == 0 && row_bytes > 0 &&
                      reinterpret_cast<uintptr_t>(dst) % 32 == 0 && out.nbytes() > last_level_cache_bytes();
#else
  const bool stream = false;
#endif
  at::parallel_for(0, pixels, grain, [&](int64_t begin, int64_t end) {
#if defined(PIXVOX_X86)
    if (stream) {
      gather_rows_stream(src, dst, idx, begin, end, voxels, row_bytes, bad_pixel);
      return;
    }
#endif
    gather_rows(src, dst, idx, begin, end, voxels, row_bytes, bad_pixel);
  });
  const int64_t bad = bad_pixel.load();
  TORCH_CHECK_INDEX(bad < 0, "voxel_index[", bad, "] = ", bad < 0 ? 0 : idx[bad], " is outside [-1, ", voxels, ")");
  return out;
}

}  // namespace pixvox
