from tests.pretrain.conftest import tiny_fusions, tiny_fusions_f3  # noqa: F401  (shared tiny fusion datasets)
