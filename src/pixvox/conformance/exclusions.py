"""Upstream tests that are not run, each with the reason it cannot test the engine as written.

A test lands here only when the test itself is wrong for the engine it targets (it calls an API the
engine replaced, or relies on behaviour newer torch rejects), never because the engine fails it: an
engine bug gets a patch in ``patches/minkowskiengine/`` instead. ``python -m pixvox.conformance
--run-excluded`` runs them anyway, to see whether an exclusion is still needed.
"""

from __future__ import annotations

#: Files of ``tests/python`` that hold no test case: benchmark scripts run as ``python FILE`` with
#: command-line options (their module code parses ``sys.argv`` and downloads a scan), and helpers.
NOT_TESTS: dict[str, str] = {
    "__init__.py": "package marker",
    "common.py": "helpers imported by the tests (data_loader, load_file)",
    "global.py": "benchmark script: parses the command line at import; no test case",
    "network_speed.py": "benchmark script: its test_network(coords, feats, model, ...) is a timing "
    "helper called from __main__, not a test",
    "strided_conv.py": "benchmark script: parses the command line at import; no test case",
}

_COORDS_KW = (
    "written for the 0.4 API: builds SparseTensor(feats, coords=coords), an argument 0.5 renamed "
    "`coordinates` (TypeError: unexpected keyword argument 'coords')"
)
_KERNEL_IN_PLACE = (
    "sets the weights with `conv.kernel[:] = ...` outside torch.no_grad(), an in-place write to a "
    "Parameter that requires grad, which torch refuses; the convolution values it would check are "
    "checked against dense conv3d in tests/test_sparse.py"
)

#: node id below ``tests/python/`` → why the test cannot check this engine as written.
EXCLUDED: dict[str, str] = {
    "chwise_conv.py::TestConvolution::test": _COORDS_KW,
    "conv_on_coords.py::TestConvolution::test": _COORDS_KW,
    "conv_on_coords.py::TestConvolution::test_tr": _COORDS_KW,
    "convolution.py::TestConvolution::test_analytic": _KERNEL_IN_PLACE,
    "convolution.py::TestConvolutionTranspose::test_analytic": _KERNEL_IN_PLACE,
    "convolution.py::TestConvolutionTranspose::test_analytic_odd": _KERNEL_IN_PLACE,
    "kernel_map.py::TestKernelMap::test_kernelmap": (
        "expects 16 (input, output) pairs for kernel_size=3, stride=2 on its 2 x 8 points; 16 is the "
        "pair count of a 2x2 kernel (each input in exactly one output cell). Brute force over the "
        "3x3 offsets gives 26, which the engine returns "
        "(tests/minkowskiengine/test_engine.py::test_kernel_map_matches_brute_force)"
    ),
    "pruning.py::TestPruning::test_with_convtr": (
        "written for the 0.4 API: passes generate_new_coords=True to MinkowskiConvolutionTranspose, "
        "which 0.5 renamed expand_coordinates (TypeError: unexpected keyword argument)"
    ),
    "quantization.py::TestQuantization::test_label_np": (
        "calls the backend's quantize_label_np, removed from the 0.5 backend together with label "
        "collision handling, by the maintainer's decision (NVIDIA/MinkowskiEngine#322, #233)"
    ),
    "quantization.py::TestQuantization::test_collision": (
        "checks 0.4 behaviour of sparse_quantize: numpy coordinates out for numpy in, and "
        "ignore_label for a voxel whose points disagree; 0.5 returns torch tensors and dropped label "
        "collisions by design (NVIDIA/MinkowskiEngine#322: `ignore_label` is accepted and unused)"
    ),
}

#: Soak loops that repeat a checked operation to watch memory; their length is a harness
#: parameter (upstream: 100,000 and 10,000,000 iterations, hours on a CPU), shortened here.
LEAK_TEST_ITER = 20
