#!/usr/bin/env python
"""RGB-D sequences (TUM, 7-Scenes, SUN3D, Redwood, ScanNet exports, ...) to exported frames: ``python data_prep/rgbd_sequence.py -h``, same as ``python -m pixvox.prep sequence``."""

from _shim import run

if __name__ == "__main__":
    run("sequence")
