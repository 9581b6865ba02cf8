#!/usr/bin/env python
"""S3DIS rooms to labeled clouds: ``python data_prep/s3dis.py -h``, same as ``python -m pixvox.prep s3dis``."""

from _shim import run

if __name__ == "__main__":
    run("s3dis")
