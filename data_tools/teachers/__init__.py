"""Teachers: pose models that produce pseudo-labels on a person crop.

A teacher is anything with ``name`` and ``__call__(crop_rgb) -> TeacherOutput`` giving the 21
gaitpose keypoints in the crop's pixels. ``make_teacher`` builds one by name.
"""

from __future__ import annotations

from data_tools.teachers.base import Teacher, TeacherOutput, make_teacher

__all__ = ["Teacher", "TeacherOutput", "make_teacher"]
