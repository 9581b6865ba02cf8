#!/usr/bin/env python
"""The synthetic default dataset (frames + labeled clouds): ``python data_prep/synthetic.py -h``, same as ``python -m pixvox.prep synthetic``."""

from _shim import run

if __name__ == "__main__":
    run("synthetic")
