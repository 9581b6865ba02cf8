// CUDA scatter and gather. Scatter is deterministic by segments: a stable sort of voxel_index groups
// each voxel's pixels in increasing pixel order, and one thread per (voxel, channel) reduces its
// segment in that order — the same order as the CPU ownership loop, so both give the same bits
// (apart from denormals, which --use_fast_math flushes to zero). No float atomics anywhere.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>

#include "cuda/launch.cuh"
#include "pixvox_ops.h"
#include "voxel_key.h"

namespace pixvox {
namespace {

// Correctly rounded division even under --use_fast_math (which makes float `/` approximate).
__device__ __forceinline__ float div_exact(float a, float b) { return __fdiv_rn(a, b); }
__device__ __forceinline__ double div_exact(double a, double b) { return __ddiv_rn(a, b); }

template <typename T>
__device__ __forceinline__ bool is_nan(T x) {
  return x != x;
}

__global__ void count_pixels_kernel(const int64_t* __restrict__ index, int64_t pixels,
                                    unsigned long long* __restrict__ counts) {
  PIXVOX_GRID_STRIDE_LOOP(p, pixels) {
    const int64_t v = index[p];
    if (v >= 0) atomicAdd(counts + v, 1ull);  // integer atomics: order-independent
  }
}

template <Reduce R, typename scalar_t>
__global__ void segment_reduce_kernel(const scalar_t* __restrict__ feats, const int64_t* __restrict__ order,
                                      const int64_t* __restrict__ starts, const int64_t* __restrict__ counts,
                                      int64_t voxels, int64_t channels, scalar_t* __restrict__ out,
                                      int64_t* __restrict__ argmax) {
  using acc_t = at::opmath_type<scalar_t>;
  PIXVOX_GRID_STRIDE_LOOP(t, voxels * channels) {
    const int64_t v = t / channels, c = t - v * channels;
    const int64_t begin = starts[v], n = counts[v];
    if (n == 0) continue;  // out is zero-initialised, argmax -1
    if constexpr (R == Reduce::kMax) {
      int64_t best_pixel = order[begin];
      acc_t best = static_cast<acc_t>(feats[best_pixel * channels + c]);
      for (int64_t j = begin + 1; j < begin + n; ++j) {
        const int64_t p = order[j];
        const acc_t x = static_cast<acc_t>(feats[p * channels + c]);
        if (!is_nan(best) && (x > best || is_nan(x))) {
          best = x;
          best_pixel = p;
        }
      }
      out[t] = static_cast<scalar_t>(best);
      if (argmax != nullptr) argmax[t] = best_pixel;
    } else {
      acc_t sum = 0;
      for (int64_t j = begin; j < begin + n; ++j) sum += static_cast<acc_t>(feats[order[j] * channels + c]);
      if constexpr (R == Reduce::kMean) sum = div_exact(sum, static_cast<acc_t>(n));
      out[t] = static_cast<scalar_t>(sum);
    }
  }
}

template <typename scalar_t>
__global__ void gather_kernel(const scalar_t* __restrict__ feats, const int64_t* __restrict__ index, int64_t pixels,
                              int64_t channels, scalar_t* __restrict__ out) {
  PIXVOX_GRID_STRIDE_LOOP(t, pixels * channels) {
    const int64_t p = t / channels;
    const int64_t v = index[p];
    out[t] = v >= 0 ? feats[v * channels + (t - p * channels)] : scalar_t(0);
  }
}

// Device-side indices out of range would read or write out of bounds: check first (one sync).
void check_index_range(const at::Tensor& index, int64_t num_voxels) {
  if (index.numel() == 0) return;
  const auto range = at::aminmax(index);
  const int64_t lo_v = std::get<0>(range).item<int64_t>(), hi_v = std::get<1>(range).item<int64_t>();
  TORCH_CHECK_INDEX(lo_v >= -1 && hi_v < num_voxels, "voxel_index holds values in [", lo_v, ", ", hi_v,
                    "], outside [-1, ", num_voxels, ")");
}

}  // namespace

std::vector<at::Tensor> scatter_to_voxels_cuda(const at::Tensor& pixel_feats_in, const at::Tensor& voxel_index_in,
                                               int64_t num_voxels, int64_t reduce_code, bool with_argmax) {
  check_scatter_args(pixel_feats_in, voxel_index_in, num_voxels, reduce_code);
  TORCH_CHECK(pixel_feats_in.is_cuda(), "scatter_to_voxels_cuda needs CUDA tensors");
  const c10::cuda::CUDAGuard guard(pixel_feats_in.device());
  const auto stream = c10::cuda::getCurrentCUDAStream();
  const at::Tensor feats = pixel_feats_in.contiguous();
  const at::Tensor index = voxel_index_in.contiguous();
  const auto reduce = static_cast<Reduce>(reduce_code);
  const int64_t pixels = feats.size(0), channels = feats.size(1);
  check_index_range(index, num_voxels);

  at::Tensor out = at::zeros({num_voxels, channels}, feats.options());
  at::Tensor counts = at::zeros({num_voxels}, index.options());
  const bool track_argmax = reduce == Reduce::kMax && with_argmax;
  at::Tensor argmax =
      track_argmax ? at::full({num_voxels, channels}, -1, index.options()) : at::empty({0}, index.options());
  if (num_voxels == 0 || pixels == 0) return {out, counts, argmax};

  count_pixels_kernel<<<grid_for(pixels), kThreadsPerBlock, 0, stream>>>(
      index.data_ptr<int64_t>(), pixels, reinterpret_cast<unsigned long long*>(counts.data_ptr<int64_t>()));
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  // Stable: equal voxel ids keep increasing pixel order. Pixels with index -1 sort first, unused.
  const auto sorted = at::sort(index, /*stable=*/true, /*dim=*/0, /*descending=*/false);
  const at::Tensor& sorted_index = std::get<0>(sorted);
  const at::Tensor& order = std::get<1>(sorted);
  const at::Tensor starts = at::searchsorted(sorted_index, at::arange(num_voxels, index.options()));

  const int64_t elements = num_voxels * channels;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, feats.scalar_type(), "scatter_to_voxels_cuda", [&] {
    const scalar_t* f = feats.data_ptr<scalar_t>();
    const int64_t* o = order.data_ptr<int64_t>();
    const int64_t* s = starts.data_ptr<int64_t>();
    const int64_t* n = counts.data_ptr<int64_t>();
    scalar_t* dst = out.data_ptr<scalar_t>();
    switch (reduce) {
      case Reduce::kSum:
        segment_reduce_kernel<Reduce::kSum, scalar_t><<<grid_for(elements), kThreadsPerBlock, 0, stream>>>(
            f, o, s, n, num_voxels, channels, dst, nullptr);
        break;
      case Reduce::kMean:
        segment_reduce_kernel<Reduce::kMean, scalar_t><<<grid_for(elements), kThreadsPerBlock, 0, stream>>>(
            f, o, s, n, num_voxels, channels, dst, nullptr);
        break;
      case Reduce::kMax:
        segment_reduce_kernel<Reduce::kMax, scalar_t><<<grid_for(elements), kThreadsPerBlock, 0, stream>>>(
            f, o, s, n, num_voxels, channels, dst, track_argmax ? argmax.data_ptr<int64_t>() : nullptr);
        break;
    }
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {out, counts, argmax};
}

at::Tensor gather_from_voxels_cuda(const at::Tensor& voxel_feats_in, const at::Tensor& voxel_index_in) {
  check_gather_args(voxel_feats_in, voxel_index_in);
  TORCH_CHECK(voxel_feats_in.is_cuda(), "gather_from_voxels_cuda needs CUDA tensors");
  const c10::cuda::CUDAGuard guard(voxel_feats_in.device());
  const at::Tensor feats = voxel_feats_in.contiguous();
  const at::Tensor index = voxel_index_in.contiguous();
  const int64_t channels = feats.size(1), pixels = index.size(0);
  check_index_range(index, feats.size(0));
  at::Tensor out = at::empty({pixels, channels}, feats.options());
  if (pixels * channels == 0) return out;
  AT_DISPATCH_ALL_TYPES_AND3(at::kHalf, at::kBFloat16, at::kBool, feats.scalar_type(), "gather_from_voxels_cuda", [&] {
    gather_kernel<scalar_t><<<grid_for(pixels * channels), kThreadsPerBlock, 0, c10::cuda::getCurrentCUDAStream()>>>(
        feats.data_ptr<scalar_t>(), index.data_ptr<int64_t>(), pixels, channels, out.data_ptr<scalar_t>());
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

}  // namespace pixvox
