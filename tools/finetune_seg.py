#!/usr/bin/env python
"""Fine-tuning CLI (thin; tools/finetune_seg.sh is the launcher), the same code path as ``pixvox finetune``:
``python tools/finetune_seg.py [CONFIG] [key=value ...] [--resume auto|PATH|none|force]``.

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
            return 2
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
    try:
        from pixvox.cli import main
    except ImportError as err:  # run outside the environment
        sys.exit(
            f"pixvox is not importable ({err}): run `bash tools/setup_env.sh` and `source .venv/bin/activate`"
        )
    sys.exit(main(["finetune", *argv]))
