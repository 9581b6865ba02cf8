// Per-pixel back-projection arithmetic, shared by the CPU and CUDA kernels so both produce the same
// bits. Everything is float64 with one rounding per operation in a fixed order; on the GPU the
// explicit _rn intrinsics stop nvcc from contracting into FMAs (setup.py passes --use_fast_math),
// which would move points across voxel faces relative to the CPU and the PyTorch reference.
#pragma once

#include <cfloat>
#include <cmath>
#include <cstdint>

#include "voxel_key.h"

namespace pixvox {

PIXVOX_HOST_DEVICE double mul_rn(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dmul_rn(a, b);
#else
  return a * b;
#endif
}

PIXVOX_HOST_DEVICE double add_rn(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dadd_rn(a, b);
#else
  return a + b;
#endif
}

PIXVOX_HOST_DEVICE double sub_rn(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dsub_rn(a, b);
#else
  return a - b;
#endif
}

PIXVOX_HOST_DEVICE double div_rn(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __ddiv_rn(a, b);
#else
  return a / b;
#endif
}

// Valid depth: finite, > 0 and inside [depth_min, depth_max] (metres). NaN fails every comparison.
PIXVOX_HOST_DEVICE bool depth_is_valid(double d, double depth_min, double depth_max) {
  return d > 0.0 && d <= DBL_MAX && d >= depth_min && d <= depth_max;
}

// Pixel (v = row, u = column) with z-depth `z` → world point.
//   intrinsics: fx, fy, cx, cy (pixels)
//   transform:  3x4 row-major camera-to-world (already composed with any augmentation), metres
PIXVOX_HOST_DEVICE void pixel_to_world(const double* intrinsics, const double* transform, int64_t v, int64_t u,
                                       double z, double* xyz) {
  const double xc = div_rn(mul_rn(sub_rn(static_cast<double>(u), intrinsics[2]), z), intrinsics[0]);
  const double yc = div_rn(mul_rn(sub_rn(static_cast<double>(v), intrinsics[3]), z), intrinsics[1]);
  for (int i = 0; i < 3; ++i) {
    const double* row = transform + 4 * i;
    xyz[i] = add_rn(add_rn(add_rn(mul_rn(row[0], xc), mul_rn(row[1], yc)), mul_rn(row[2], z)), row[3]);
  }
}

// World point → packed voxel key, or -1 where a coordinate leaves the ±2^20 key range (such a
// voxel cannot be in any scene, so the pixel simply matches nothing).
PIXVOX_HOST_DEVICE int64_t world_to_voxel_key(const double* xyz, double voxel_size) {
  int64_t c[3];
  for (int i = 0; i < 3; ++i) {
    const double f = floor(div_rn(xyz[i], voxel_size));
    if (!(f > -static_cast<double>(kMaxVoxelCoord) && f < static_cast<double>(kMaxVoxelCoord))) return -1;
    c[i] = static_cast<int64_t>(f);
  }
  return pack_voxel_key(c[0], c[1], c[2]);
}

}  // namespace pixvox
