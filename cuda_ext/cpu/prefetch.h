// Software prefetch for the CPU kernels' random row accesses (voxel rows of [V, C] tensors that do not
// fit in cache): issuing the loads some pixels ahead overlaps cache misses that would otherwise be
// waited for one at a time.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace pixvox {

// How many pixels ahead the row loops prefetch.
constexpr int64_t kPrefetchAhead = 16;

inline void prefetch(const void* address) {
#if defined(__GNUC__)
  __builtin_prefetch(address);
#endif
}

// Prefetch the first cache lines of a row (the adjacent-line prefetcher fetches beyond long rows).
inline void prefetch_row(const void* row, size_t bytes) {
  const char* p = static_cast<const char*>(row);
  const size_t lines = std::min<size_t>((bytes + 63) / 64, 8);
  for (size_t i = 0; i < lines; ++i) prefetch(p + 64 * i);
}

}  // namespace pixvox
