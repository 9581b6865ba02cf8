"""Generic RGB-D sequences (7-Scenes, Redwood/Open3D, ICL-NUIM, TUM, NYU, your own) → exported frames.

Modules: :mod:`.trajectories` (pose, timestamp and intrinsics files), :mod:`.layouts` (which files make a
frame in each layout), :mod:`.export` (depth encodings, the exporter and its CLI).
"""

from pixvox.prep.sequence.export import export_sequence, main
from pixvox.prep.sequence.layouts import LAYOUTS, load_layout
from pixvox.prep.sequence.trajectories import SequenceError, read_trajectory_log

__all__ = [
    "LAYOUTS",
    "SequenceError",
    "export_sequence",
    "load_layout",
    "main",
    "read_trajectory_log",
]
