#!/usr/bin/env python
"""Fine-tuning CLI (thin; tools/finetune_seg.sh is the launcher):
``python tools/finetune_seg.py [CONFIG] [key=value ...] [--resume auto|PATH|none]``.

``--prepare-data CONFIG [key=value ...]`` only makes sure the configured labeled clouds exist
(converting ScanNet .npy scans or generating the synthetic dataset when the config says so), then
exits; tools/finetune_seg.sh runs it before torchrun. ``--compare RUN_DIR ...`` prints finished runs
side by side (from their eval/metrics.json).
"""

from __future__ import annotations

import sys
from pathlib import Path


def compare(run_dirs: list[str]) -> int:
    import json

    import numpy as np

    from pixvox.evaluation import SegmentationMetrics, comparison_table

    results = {}
    for d in run_dirs:
        path = Path(d) / "eval" / "metrics.json"
        if not path.is_file():
            print(f"{path}: not found (did the run finish?)", file=sys.stderr)
            return 1
        doc = json.loads(path.read_text())
        label = f"{Path(d).name} ({doc.get('init', '?')})"
        results[label] = SegmentationMetrics.from_confusion(np.asarray(doc["confusion"]), doc["class_names"])
    print(comparison_table(results))
    return 0


if __name__ == "__main__":
    argv = sys.argv[1:]
    if "--compare" in argv:
        argv.remove("--compare")
        sys.exit(compare(argv))
    if "--prepare-data" in argv:
        argv.remove("--prepare-data")
        import logging

        from pixvox.config import FinetuneConfig, load_config
        from pixvox.finetune.cli import parse_args
        from pixvox.prep.ensure import ensure_segmentation_data

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        args = parse_args(argv)
        ensure_segmentation_data(load_config(FinetuneConfig, args.config, args.overrides))
    else:
        from pixvox.finetune.cli import set_thread_environment

        set_thread_environment(argv)  # before torch is imported
        from pixvox.finetune.run import main

        main(argv)
