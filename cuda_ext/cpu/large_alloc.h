// Allocation of large CPU outputs (>= 8 MB) from a small process-wide cache of huge-page blocks.
//
// A fresh multi-hundred-megabyte tensor costs more than the kernel that fills it: the kernel must
// zero every new page on first touch. Measured on the 2.4M x 64 float32 gather output (606 MB),
// zeroing took 58% of the op's CPU time with transparent huge pages, and with torch's default 4 KiB
// pages writing 606 MB of fresh memory took 6-9x the CPU time of writing touched memory (clone vs
// copy_, fill_ on new vs touched memory). Training calls the same
// ops with similar sizes every step, so freed outputs are kept (up to a limit) and handed to the
// next request of a similar size, already faulted in. Blocks are mmap'ed with MADV_HUGEPAGE.
//
// The cache holds at most PIXVOX_CPU_CACHE_MB megabytes (default: 1/8 of physical memory, at most
// 4096; 0 disables it) of blocks no tensor uses; release_cached_cpu_memory() returns them to the OS.
// Tensors from the cache are ordinary resizable CPU tensors; their memory goes back to the cache
// when the last reference dies.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

namespace pixvox {

// Uninitialized CPU tensor (like at::empty); large ones come from the block cache.
at::Tensor empty_large(at::IntArrayRef sizes, const at::TensorOptions& options);

inline at::Tensor zeros_large(at::IntArrayRef sizes, const at::TensorOptions& options) {
  return empty_large(sizes, options).zero_();
}

struct CpuCacheStats {
  int64_t cached_bytes;   // held by the cache, used by no tensor
  int64_t limit_bytes;    // most the cache may hold
  int64_t hits, misses;   // large requests served from the cache / by a new mapping
};

CpuCacheStats cpu_cache_stats();

// Unmap every cached block; returns the bytes released.
int64_t release_cached_cpu_memory();

}  // namespace pixvox
