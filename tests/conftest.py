"""Shared pytest fixtures: seeds, the real data in ../shared/data, device selection."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("PIXVOX_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` (real RGB-D frames and ScanNet scans); skips the test where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real test data not found at {SHARED_DATA} (set PIXVOX_SHARED_DATA to its path)")
    return SHARED_DATA


#: the seed every test's ``seed`` fixture returns: fixed, so a run is reproducible and thresholds
#: were checked on the data a run draws; PIXVOX_TEST_SEED=N draws other data (run a few to look
#: for flakiness)
DEFAULT_TEST_SEED = 1234
SEED_ENV = "PIXVOX_TEST_SEED"


def current_seed() -> int:
    raw = os.environ.get(SEED_ENV, "").strip()
    try:
        return int(raw) if raw else DEFAULT_TEST_SEED
    except ValueError:
        raise pytest.UsageError(f"{SEED_ENV}={raw!r} is not an integer") from None


@pytest.fixture
def seed(request) -> int:
    """The test seed (:data:`DEFAULT_TEST_SEED`, or PIXVOX_TEST_SEED); a failing test reports it."""
    value = current_seed()
    request.node.user_properties.append(("seed", value))
    return value


def pytest_report_header(config) -> str:
    source = SEED_ENV if os.environ.get(SEED_ENV, "").strip() else "default"
    return f"pixvox test seed: {current_seed()} ({source}; set {SEED_ENV} to change it)"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and "seed" in getattr(item, "fixturenames", ()):
        value = dict(item.user_properties).get("seed", current_seed())
        report.sections.append(
            (
                "seed",
                f"{item.nodeid} ran with seed {value}; replay: {SEED_ENV}={value} python -m pytest {item.nodeid}",
            )
        )


def pytest_configure(config):
    # Keep kernels single-threaded per process except where a test opts in: the CI box has 2 cores.
    import torch

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


def pytest_collection_modifyitems(config, items):
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU; none is visible to torch")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def engine_permutes_rows(monkeypatch):
    """Make MinkowskiEngine store every new input coordinate map in a shuffled row order.

    The CPU map keeps the order the coordinates were given in; the CUDA map keeps its hash table's
    order. This reproduces the latter on the CPU: ``insert_and_map`` inserts the coordinates
    permuted and translates the returned (unique_index, inverse_mapping) back to the caller's rows,
    so ``SparseTensor`` stores features and coordinates in the shuffled order, as ME would on a GPU.
    Returns the list of permutations applied (one per inserted map).
    """
    import torch

    from pixvox.sparse import ME

    original = ME.CoordinateManager.insert_and_map
    applied: list[torch.Tensor] = []
    gen = torch.Generator().manual_seed(1234)

    def shuffled_insert(self, coordinates, tensor_stride=1, string_id=""):
        n = coordinates.shape[0]
        perm = torch.randperm(n, generator=gen).to(coordinates.device)
        key, (unique_index, inverse) = original(self, coordinates[perm], tensor_stride, string_id)
        if inverse.numel() == 0:  # ME's shortcut for unique input rows: map row j = (permuted) row j
            inverse = torch.arange(n, device=coordinates.device)
        inverse_for_caller = torch.empty_like(inverse)
        inverse_for_caller[perm] = inverse
        applied.append(perm.cpu())
        return key, (perm[unique_index.long()], inverse_for_caller)

    monkeypatch.setattr(ME.CoordinateManager, "insert_and_map", shuffled_insert)
    return applied
