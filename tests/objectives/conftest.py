from tests.pretrain.conftest import tiny_fusions  # noqa: F401  (the shared tiny fusion dataset)
