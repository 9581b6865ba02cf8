// Launch helpers shared by the CUDA kernels: grid-stride loops over int64 ranges.
#pragma once

#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>

#include <algorithm>
#include <cstdint>

namespace pixvox {

constexpr int kThreadsPerBlock = 256;

// Enough blocks to cover n with one element per thread, capped (loops stride over the rest).
inline unsigned int grid_for(int64_t n) {
  const int64_t blocks = (n + kThreadsPerBlock - 1) / kThreadsPerBlock;
  return static_cast<unsigned int>(std::max<int64_t>(1, std::min<int64_t>(blocks, int64_t(1) << 20)));
}

#define PIXVOX_GRID_STRIDE_LOOP(i, n)                                                               \
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < (n);             \
       i += static_cast<int64_t>(blockDim.x) * gridDim.x)

}  // namespace pixvox
