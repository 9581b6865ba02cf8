"""What re-hashing a fusion sample on every read costs (``data.verify_checksums``), per sample.

``python tools/bench_checksum.py FUSIONS_ROOT [--samples 60] [--json PATH]``

For each sample (page cache warm, alternating order): SHA-256 of the file; the read alone
(``np.load`` and the index checks); the training dataset's ``__getitem__`` without the checksum
(read, checks, 2D/3D augmentation at the default config). Prints a table of medians with the
2.5-97.5% range of the per-sample ratios and writes JSON (docs/reliability.md).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path
from typing import Any

from pixvox.config.pretrain import PretrainDataConfig
from pixvox.datasets.fusion import FusionPretrainDataset
from pixvox.io.atomic import atomic_write_json


def _seconds(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def measure(root: str | Path, samples: int) -> dict[str, Any]:
    root = Path(root)
    probe = FusionPretrainDataset(root, PretrainDataConfig(root=str(root)), augment=False)
    cfg = PretrainDataConfig(root=str(root), voxel_size=probe.index.voxel_size, verify_checksums=False)
    ds = FusionPretrainDataset(root, cfg, augment=True)
    index = ds.index
    n = min(samples, len(index))
    rows = {"sha256": [], "read": [], "getitem": []}
    for i in range(n):
        index.path(i).read_bytes()  # warm the page cache: every variant reads from memory
        jobs = {
            "sha256": lambda i=i: index.verify(i),
            "read": lambda i=i: index.load_sample(i),
            "getitem": lambda i=i: ds[(i, i)],
        }
        order = list(jobs) if i % 2 == 0 else list(reversed(jobs))
        for name in order:
            rows[name].append(_seconds(jobs[name]))

    def spread(ratios: list[float]) -> list[float]:
        q = statistics.quantiles(ratios, n=40) if len(ratios) > 1 else ratios * 2
        return [q[0], q[-1]]

    over_get = [s / g for s, g in zip(rows["sha256"], rows["getitem"])]
    over_read = [s / r for s, r in zip(rows["sha256"], rows["read"])]
    return {
        "root": str(root),
        "samples": n,
        "mean_file_bytes": sum(index.path(i).stat().st_size for i in range(n)) / n,
        "median_s": {k: statistics.median(v) for k, v in rows.items()},
        "sha256_over_getitem": {"median": statistics.median(over_get), "p2.5_p97.5": spread(over_get)},
        "sha256_over_read": {"median": statistics.median(over_read), "p2.5_p97.5": spread(over_read)},
        "load_average": os.getloadavg(),
        "per_sample_s": rows,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", help="a fusion dataset (index.json + samples/)")
    ap.add_argument("--samples", type=int, default=60)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    r = measure(args.root, args.samples)
    m = r["median_s"]
    print(f"{r['samples']} samples of {r['mean_file_bytes'] / 1e6:.2f} MB, load {r['load_average']}")
    print(f"{'per sample':<34} {'median':>10}")
    for key, label in (
        ("sha256", "SHA-256 of the file"),
        ("read", "read + checks"),
        ("getitem", "__getitem__"),
    ):
        print(f"{label:<34} {1e3 * m[key]:>8.1f} ms")
    for key, label in (
        ("sha256_over_getitem", "SHA-256 / __getitem__"),
        ("sha256_over_read", "SHA-256 / read"),
    ):
        lo, hi = r[key]["p2.5_p97.5"]
        print(f"{label:<34} {100 * r[key]['median']:>8.1f} %  (2.5-97.5%: {100 * lo:.1f}-{100 * hi:.1f} %)")
    if args.json:
        atomic_write_json(args.json, r)
    return r


if __name__ == "__main__":
    main()
