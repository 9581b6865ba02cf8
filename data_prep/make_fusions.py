#!/usr/bin/env python
"""Voxelized RGB-D fusions (pretraining data) from exported frames: ``python data_prep/make_fusions.py -h``, same as ``python -m pixvox.prep fusions``."""

from _shim import run

if __name__ == "__main__":
    run("fusions")
