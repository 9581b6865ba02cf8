"""Sparse 3D students: the Res16UNet family on MinkowskiEngine."""

from __future__ import annotations

from pixvox.models.student.res16unet import Res16UNet
from pixvox.models.student.variants import STUDENT_VARIANTS, StudentSpec, build_student
from pixvox.models.student.weights import LoadReport, extract_student_state_dict, load_student_weights

__all__ = [
    "Res16UNet",
    "STUDENT_VARIANTS",
    "StudentSpec",
    "build_student",
    "LoadReport",
    "load_student_weights",
    "extract_student_state_dict",
]
