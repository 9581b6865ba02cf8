#!/usr/bin/env python
"""ScanNet v2 (.sens frames, labeled clouds, splits and data-efficient subsets): ``python data_prep/scannet.py -h``, same as ``python -m pixvox.prep scannet``."""

from _shim import run

if __name__ == "__main__":
    run("scannet")
