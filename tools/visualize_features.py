#!/usr/bin/env python
"""Show whether pretraining transferred the teacher's features: color | teacher PCA | student PCA.

Usage: python tools/visualize_features.py CHECKPOINT SAMPLE [--frame F] [--out PNG] [--data-root DIR]
"""

from __future__ import annotations

import argparse

from pixvox.pretrain.visualize import render

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint")
    p.add_argument("sample", type=int, help="index of the sample in the fusion dataset")
    p.add_argument("--frame", type=int, default=0, help="frame of the sample (default 0)")
    p.add_argument("--out", default=None, help="PNG path (default: next to the checkpoint)")
    p.add_argument(
        "--data-root", default=None, help="fusion dataset (default: the checkpoint config's data.root)"
    )
    a = p.parse_args()
    out = a.out or f"{a.checkpoint.rsplit('.', 1)[0]}_sample{a.sample}_frame{a.frame}.png"
    print(render(a.checkpoint, a.sample, out, a.frame, a.data_root))
