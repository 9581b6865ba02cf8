"""Readers and writers of pixvox's prepared formats, with atomic writes.

- :mod:`pixvox.io.atomic`: atomic file writes (temp file + ``os.replace``), SHA-256 of files.
- :mod:`pixvox.io.images`: color/depth image codecs with clear errors, resizing.
- :mod:`pixvox.io.frames`: the exported RGB-D frames format (:class:`FrameWriter`, :class:`FrameSequence`).
- :mod:`pixvox.io.fusions`: voxelized RGB-D fusions for pretraining (:class:`FusionIndex`,
  :func:`load_fusion_sample`).
- :mod:`pixvox.io.clouds`: labeled point clouds for segmentation (:class:`CloudIndex`, :func:`load_cloud`).
- :mod:`pixvox.io.jobs`: parallel job runner with a progress bar for the preparation CLIs (:mod:`pixvox.prep`).

The formats are described in docs/data.md. This package does not import torch.
"""

from __future__ import annotations

from pixvox.io.atomic import (
    atomic_save_npz,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    sha256_file,
)
from pixvox.io.clouds import CloudFormatError, CloudIndex, LabeledCloud, load_cloud, write_cloud
from pixvox.io.frames import FrameFormatError, FrameSequence, FrameWriter, RGBDFrame
from pixvox.io.fusions import (
    FusionFormatError,
    FusionIndex,
    FusionSample,
    load_fusion_sample,
    write_fusion_sample,
)
from pixvox.io.images import ImageReadError

__all__ = [
    "CloudFormatError",
    "CloudIndex",
    "FrameFormatError",
    "FrameSequence",
    "FrameWriter",
    "FusionFormatError",
    "FusionIndex",
    "FusionSample",
    "ImageReadError",
    "LabeledCloud",
    "RGBDFrame",
    "atomic_save_npz",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "load_cloud",
    "load_fusion_sample",
    "sha256_file",
    "write_cloud",
    "write_fusion_sample",
]
