"""Generic RGB-D sequences (TUM, 7-Scenes, SUN3D, Redwood/Open3D, ICL-NUIM, ScanNet exports, NYU, your
own) → exported frames.

Modules: :mod:`.trajectories` (pose, timestamp and intrinsics files), :mod:`.layouts` (which files make a
frame in each layout), :mod:`.export` (depth encodings, the exporter and its CLI).
"""

from pixvox.prep.sequence.export import export_sequence, main
from pixvox.prep.sequence.layouts import LAYOUTS, find_sequences, load_layout
from pixvox.prep.sequence.trajectories import SequenceError, read_trajectory_log, read_tum_trajectory

__all__ = [
    "LAYOUTS",
    "SequenceError",
    "export_sequence",
    "find_sequences",
    "load_layout",
    "main",
    "read_trajectory_log",
    "read_tum_trajectory",
]
