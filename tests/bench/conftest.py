"""The pretraining tests' tiny synthetic dataset, shared with the benchmark tests."""

from tests.pretrain.conftest import tiny_fusions  # noqa: F401  (a session fixture)
