"""Networks: sparse 3D students (``student/``), frozen 2D teachers (``teacher/``), projection heads.

The pretraining and fine-tuning engines use:
- :func:`build_student` / :data:`STUDENT_VARIANTS`, :func:`load_student_weights` → :class:`LoadReport`,
- :func:`build_teacher` (``FrozenTeacher``: ``forward``, ``trainable_parameters``, ``classify``),
- :class:`ProjectionHead3D`, :class:`ProjectionHead2D`, :func:`convert_sync_batchnorm`.
See docs/models.md.
"""

from __future__ import annotations

from pixvox.models.batchnorm import convert_sync_batchnorm
from pixvox.models.heads import ProjectionHead2D, ProjectionHead3D, l2_normalize
from pixvox.models.student import (
    STUDENT_VARIANTS,
    LoadReport,
    Res16UNet,
    build_student,
    extract_student_state_dict,
    load_student_weights,
)
from pixvox.models.teacher import (
    TEACHER_BACKBONES,
    FrozenTeacher,
    TeacherWeightsError,
    build_teacher,
    build_teacher_backbone,
    imagenet_class_names,
)

__all__ = [
    "STUDENT_VARIANTS",
    "TEACHER_BACKBONES",
    "Res16UNet",
    "build_student",
    "load_student_weights",
    "extract_student_state_dict",
    "LoadReport",
    "convert_sync_batchnorm",
    "FrozenTeacher",
    "build_teacher",
    "build_teacher_backbone",
    "TeacherWeightsError",
    "imagenet_class_names",
    "ProjectionHead3D",
    "ProjectionHead2D",
    "l2_normalize",
]
