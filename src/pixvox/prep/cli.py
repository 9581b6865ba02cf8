"""``python -m pixvox.prep <dataset> [args]``: one entry point for every preparer.

Each preparer's command line lives in its module (a ``main(argv) -> int``); this only dispatches, so
the scripts in the repository and a ``pixvox prep`` console verb share one parser per dataset.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

#: command → (module with ``main(argv)``, one-line help). Modules are imported only when used.
PREPARERS = {
    "synthetic": (
        "pixvox.prep.synthetic.generate",
        "generate the synthetic default dataset (frames + clouds)",
    ),
    "sequence": (
        "pixvox.prep.sequence.export",
        "export RGB-D sequences (TUM, 7-Scenes, SUN3D, Redwood, ...)",
    ),
    "scannet": ("pixvox.prep.scannet.cli", "ScanNet v2: .sens frames, labeled clouds, splits and subsets"),
    "sunrgbd": ("pixvox.prep.sunrgbd", "SUN RGB-D images as one-frame scenes"),
    "s3dis": ("pixvox.prep.s3dis", "S3DIS rooms as labeled clouds"),
    "fusions": ("pixvox.prep.fusion", "fuse exported frames into voxelized RGB-D samples (pretraining data)"),
}
#: The repository's script names (make_fusions.py, rgbd_sequence.py), accepted as well.
ALIASES = {"rgbd_sequence": "sequence", "make_fusions": "fusions"}


def usage() -> str:
    lines = [
        "usage: python -m pixvox.prep <dataset> [args]   (<dataset> -h for its options)",
        "",
        "datasets:",
    ]
    lines += [f"  {name:<10} {text}" for name, (_, text) in PREPARERS.items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``<dataset> [args]``; returns the preparer's exit status (2 for an unknown dataset)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(usage())
        return 0 if args else 2
    name = ALIASES.get(args[0], args[0])
    if name not in PREPARERS:
        print(f"unknown dataset {args[0]!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(PREPARERS[name][0])
    return int(module.main(args[1:]) or 0)
