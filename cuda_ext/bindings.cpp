// Python module pixvox._ext: the CPU kernels always, the CUDA kernels when built with
// PIXVOX_WITH_CUDA. pixvox.ops picks the variant by the device of its inputs.
#include <torch/extension.h>

#include "cpu/isa.h"
#include "cpu/large_alloc.h"
#include "pixvox_ops.h"

namespace {

bool with_cuda() {
#ifdef PIXVOX_WITH_CUDA
  return true;
#else
  return false;
#endif
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "pixvox compiled kernels: voxel hash, pixel-to-voxel back-projection, scatter and gather";
  m.def("with_cuda", &with_cuda, "True when the CUDA kernels were compiled in");
  m.def("cpu_isa", &pixvox::cpu_isa_name, "Instruction set of the CPU kernels in use: 'avx2' or 'generic'");
  m.def("set_cpu_isa", &pixvox::set_cpu_isa, py::arg("name"),
        "Choose the CPU kernels' instruction set ('auto', 'generic', 'avx2'); returns the previous one");
  m.def(
      "cpu_cache_stats",
      [] {
        const pixvox::CpuCacheStats s = pixvox::cpu_cache_stats();
        return py::dict(py::arg("cached_bytes") = s.cached_bytes, py::arg("limit_bytes") = s.limit_bytes,
                        py::arg("hits") = s.hits, py::arg("misses") = s.misses);
      },
      "Block cache of large CPU outputs: cached_bytes, limit_bytes, hits, misses");
  m.def("release_cached_cpu_memory", &pixvox::release_cached_cpu_memory,
        "Return the cached blocks of large CPU outputs to the OS; returns the bytes released");

  m.def("build_voxel_hash_cpu", &pixvox::build_voxel_hash_cpu, py::arg("coords"));
  m.def("voxel_hash_lookup_cpu", &pixvox::voxel_hash_lookup_cpu, py::arg("table"), py::arg("entries"),
        py::arg("coords"));
  m.def("pixel_to_voxel_cpu", &pixvox::pixel_to_voxel_cpu, py::arg("depth"), py::arg("intrinsics"),
        py::arg("transforms"), py::arg("frame_batch"), py::arg("depth_min"), py::arg("depth_max"), py::arg("stride"),
        py::arg("voxel_size"), py::arg("table"), py::arg("entries"), py::arg("lookup"));
  m.def("scatter_to_voxels_cpu", &pixvox::scatter_to_voxels_cpu, py::arg("pixel_feats"), py::arg("voxel_index"),
        py::arg("num_voxels"), py::arg("reduce"), py::arg("with_argmax"));
  m.def("gather_from_voxels_cpu", &pixvox::gather_from_voxels_cpu, py::arg("voxel_feats"), py::arg("voxel_index"));

#ifdef PIXVOX_WITH_CUDA
  m.def("build_voxel_hash_cuda", &pixvox::build_voxel_hash_cuda, py::arg("coords"));
  m.def("voxel_hash_lookup_cuda", &pixvox::voxel_hash_lookup_cuda, py::arg("table"), py::arg("entries"),
        py::arg("coords"));
  m.def("pixel_to_voxel_cuda", &pixvox::pixel_to_voxel_cuda, py::arg("depth"), py::arg("intrinsics"),
        py::arg("transforms"), py::arg("frame_batch"), py::arg("depth_min"), py::arg("depth_max"), py::arg("stride"),
        py::arg("voxel_size"), py::arg("table"), py::arg("entries"), py::arg("lookup"));
  m.def("scatter_to_voxels_cuda", &pixvox::scatter_to_voxels_cuda, py::arg("pixel_feats"), py::arg("voxel_index"),
        py::arg("num_voxels"), py::arg("reduce"), py::arg("with_argmax"));
  m.def("gather_from_voxels_cuda", &pixvox::gather_from_voxels_cuda, py::arg("voxel_feats"), py::arg("voxel_index"));
#endif
}
