#!/usr/bin/env python
"""SUN RGB-D images to one-frame exported scenes: ``python data_prep/sunrgbd.py -h``, same as ``python -m pixvox.prep sunrgbd``."""

from _shim import run

if __name__ == "__main__":
    run("sunrgbd")
