// Process-wide cache of large, huge-page CPU blocks for the kernels' outputs (see large_alloc.h).
#include "cpu/large_alloc.h"

#include <c10/core/CPUAllocator.h>
#include <c10/util/accumulate.h>
#include <c10/util/strides.h>

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <new>
#include <vector>

#if defined(__linux__)
#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>
#define PIXVOX_BLOCK_CACHE 1
#endif

namespace pixvox {

#if defined(PIXVOX_BLOCK_CACHE)
namespace {

constexpr size_t kHugePage = size_t(2) << 20;
constexpr size_t kMinCachedBytes = 4 * kHugePage;

size_t cache_limit_from_env() {
  if (const char* env = std::getenv("PIXVOX_CPU_CACHE_MB")) {
    char* end = nullptr;
    const long long mb = std::strtoll(env, &end, 10);
    if (end != env && *end == '\0' && mb >= 0) return static_cast<size_t>(mb) << 20;
    TORCH_WARN("PIXVOX_CPU_CACHE_MB=", env, " is not a number of megabytes >= 0; using the default");
  }
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  const size_t physical = pages > 0 && page > 0 ? static_cast<size_t>(pages) * static_cast<size_t>(page) : 0;
  return std::min<size_t>(physical / 8, size_t(4096) << 20);
}

struct Block {
  void* ptr;
  size_t bytes;
};

class BlockCache {
 public:
  // Leaked on purpose: a tensor may die after static destructors have run.
  static BlockCache& get() {
    static BlockCache* cache = new BlockCache();
    return *cache;
  }

  // A block of at least `bytes` (2 MiB-aligned, huge-page advised), or {nullptr, 0} if mmap fails.
  Block acquire(size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      // The smallest cached block that fits and is at most twice the request, so a small request
      // does not pin a huge block.
      auto best = blocks_.end();
      for (auto it = blocks_.begin(); it != blocks_.end(); ++it) {
        if (it->bytes >= bytes && it->bytes <= 2 * bytes && (best == blocks_.end() || it->bytes < best->bytes)) {
          best = it;
        }
      }
      if (best != blocks_.end()) {
        const Block b = *best;
        blocks_.erase(best);
        cached_ -= b.bytes;
        ++hits_;
        return b;
      }
      ++misses_;
    }
    const size_t size = (bytes + kHugePage - 1) & ~(kHugePage - 1);
    // Over-map by one huge page and trim, so the block starts on a 2 MiB boundary and every page of
    // it can be a huge page.
    void* raw = mmap(nullptr, size + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) return {nullptr, 0};
    const uintptr_t start = reinterpret_cast<uintptr_t>(raw);
    const uintptr_t aligned = (start + kHugePage - 1) & ~(uintptr_t(kHugePage) - 1);
    if (aligned > start) munmap(raw, aligned - start);
    const uintptr_t tail = start + size + kHugePage - (aligned + size);
    if (tail > 0) munmap(reinterpret_cast<void*>(aligned + size), tail);
#if defined(MADV_HUGEPAGE)
    madvise(reinterpret_cast<void*>(aligned), size, MADV_HUGEPAGE);
#endif
    return {reinterpret_cast<void*>(aligned), size};
  }

  void release(Block b) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (cached_ + b.bytes <= limit_) {
        blocks_.push_back(b);
        cached_ += b.bytes;
        return;
      }
    }
    munmap(b.ptr, b.bytes);
  }

  int64_t release_all() {
    std::vector<Block> drop;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      drop.swap(blocks_);
      cached_ = 0;
    }
    int64_t released = 0;
    for (const Block& b : drop) {
      munmap(b.ptr, b.bytes);
      released += static_cast<int64_t>(b.bytes);
    }
    return released;
  }

  CpuCacheStats stats() {
    std::lock_guard<std::mutex> lock(mutex_);
    return {static_cast<int64_t>(cached_), static_cast<int64_t>(limit_), hits_, misses_};
  }

  // In a forked child (DataLoader workers) only the forking thread exists: a mutex held by another
  // thread at fork time would never be released, so the child starts with a fresh one.
  void reset_after_fork() { new (&mutex_) std::mutex(); }

 private:
  BlockCache() : limit_(cache_limit_from_env()) {
    pthread_atfork(nullptr, nullptr, [] { BlockCache::get().reset_after_fork(); });
  }

  std::mutex mutex_;
  std::vector<Block> blocks_;
  size_t cached_ = 0;
  const size_t limit_;
  int64_t hits_ = 0, misses_ = 0;
};

void delete_block(void* context) {
  Block* b = static_cast<Block*>(context);
  BlockCache::get().release(*b);
  delete b;
}

}  // namespace

at::Tensor empty_large(at::IntArrayRef sizes, const at::TensorOptions& options) {
  const size_t bytes = static_cast<size_t>(c10::multiply_integers(sizes)) * options.dtype().itemsize();
  if (!options.device().is_cpu() || bytes < kMinCachedBytes) return at::empty(sizes, options);
  const Block block = BlockCache::get().acquire(bytes);
  if (block.ptr == nullptr) return at::empty(sizes, options);
  c10::DataPtr data(block.ptr, new Block(block), &delete_block, at::Device(at::kCPU));
  // Resizable through the default allocator: a later resize_ copies out and returns the block.
  c10::Storage storage(c10::Storage::use_byte_size_t(), static_cast<int64_t>(bytes), std::move(data),
                       c10::GetCPUAllocator(), /*resizable=*/true);
  return at::empty({0}, options).set_(storage, 0, sizes, c10::contiguous_strides(sizes));
}

CpuCacheStats cpu_cache_stats() { return BlockCache::get().stats(); }

int64_t release_cached_cpu_memory() { return BlockCache::get().release_all(); }

#else  // no mmap: plain allocations

at::Tensor empty_large(at::IntArrayRef sizes, const at::TensorOptions& options) { return at::empty(sizes, options); }
CpuCacheStats cpu_cache_stats() { return {0, 0, 0, 0}; }
int64_t release_cached_cpu_memory() { return 0; }

#endif

}  // namespace pixvox
