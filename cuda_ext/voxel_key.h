// Voxel keys and the open-addressing voxel hash, shared by the CPU (.cpp) and CUDA (.cu) kernels.
//
// A voxel is (batch, x, y, z). Its 63-bit key packs x, y, z + 2^20 into 21 bits each, so
// |x|, |y|, |z| < 2^20 (pixvox.geometry.MAX_VOXEL_COORD) and keys are non-negative int64.
// The batch index does not fit beside them; the hash compares it as a second field.
//
// Hash layout (identical on both devices):
//   table   int32 [capacity]  row of `coords` stored in each slot, -1 = empty; capacity is a power
//                             of two >= 2 N, so probing always reaches an empty slot.
//   entries int64 [N, 2]      (key, batch) of every row of `coords`, compared on each probe.
// Lookups return the row of `coords` (the caller's voxel order), whatever the slot layout, so the
// result is deterministic even though the CUDA build fills slots in a racy order.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define PIXVOX_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define PIXVOX_HOST_DEVICE inline
#endif

namespace pixvox {

constexpr int kAxisBits = 21;
constexpr int64_t kMaxVoxelCoord = int64_t(1) << 20;  // |coordinate| must stay below this
constexpr int32_t kEmptySlot = -1;

PIXVOX_HOST_DEVICE bool coord_in_range(int64_t c) { return c > -kMaxVoxelCoord && c < kMaxVoxelCoord; }

// Callers check coord_in_range first; the offset makes every axis field non-negative.
PIXVOX_HOST_DEVICE int64_t pack_voxel_key(int64_t x, int64_t y, int64_t z) {
  return ((x + kMaxVoxelCoord) << (2 * kAxisBits)) | ((y + kMaxVoxelCoord) << kAxisBits) |
         (z + kMaxVoxelCoord);
}

// splitmix64 finaliser: consecutive keys (neighbouring voxels) land in unrelated slots, which keeps
// linear-probing clusters short.
PIXVOX_HOST_DEVICE uint64_t slot_hash(int64_t key, int64_t batch) {
  uint64_t h = static_cast<uint64_t>(key) ^ (static_cast<uint64_t>(batch) * 0x9E3779B97F4A7C15ull);
  h ^= h >> 30;
  h *= 0xBF58476D1CE4E5B9ull;
  h ^= h >> 27;
  h *= 0x94D049BB133111EBull;
  h ^= h >> 31;
  return h;
}

inline int64_t hash_capacity(int64_t num_voxels) {
  int64_t capacity = 16;
  while (capacity < 2 * num_voxels) capacity <<= 1;
  return capacity;
}

// Row of `coords` holding (key, batch), or -1, probing from `slot` = slot_hash(key, batch) & mask.
PIXVOX_HOST_DEVICE int64_t hash_find_from(const int32_t* table, uint64_t mask, const int64_t* entries, int64_t key,
                                          int64_t batch, uint64_t slot) {
  while (true) {
    const int32_t row = table[slot];
    if (row == kEmptySlot) return -1;
    if (entries[2 * static_cast<int64_t>(row)] == key && entries[2 * static_cast<int64_t>(row) + 1] == batch) {
      return row;
    }
    slot = (slot + 1) & mask;
  }
}

PIXVOX_HOST_DEVICE int64_t hash_find(const int32_t* table, uint64_t mask, const int64_t* entries, int64_t key,
                                     int64_t batch) {
  return hash_find_from(table, mask, entries, key, batch, slot_hash(key, batch) & mask);
}

// Reduction codes shared by Python and both devices.
enum class Reduce : int64_t { kSum = 0, kMean = 1, kMax = 2 };

}  // namespace pixvox
