"""Conformance of the installed MinkowskiEngine to the engine's own upstream test suite.

pixvox builds MinkowskiEngine 0.5.4 from source with the patches in ``patches/minkowskiengine/``.
This package runs the engine's Python test suite (``tests/python`` of NVIDIA/MinkowskiEngine, kept
outside the repository, by default in ``../shared/third_party/minkowskiengine_tests``) against that
build, with shims for the test harness only (never for the engine):

- the room scan the suite downloads (``1.ply``) is written from a real ScanNet room instead;
- ``open3d``, which the suite uses only to read that file, is stood in for by a PLY reader when it
  is not installed;
- ``tests.common``, an import path the upstream repository no longer has, points at
  ``tests.python.common``.

Tests that need a CUDA GPU are skipped where none is visible; a few upstream tests are excluded,
each with its written reason (:mod:`pixvox.conformance.exclusions`). Run it with
``bash tools/me_conformance.sh`` or ``python -m pixvox.conformance``; it needs pytest (the test
extras).
"""
