#!/usr/bin/env python
"""Cost of re-hashing fusion samples on every read; see pixvox.bench.checksum."""

from pixvox.bench.checksum import main

if __name__ == "__main__":
    main()
