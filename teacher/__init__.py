"""The diffusion-feature segmentation teacher, conditioned on ClassEmbeddings (never on strings)."""

from __future__ import annotations

from teacher.checkpoint import build_teacher, load_teacher, save_teacher
from teacher.config import TeacherConfig
from teacher.model import DiffusionSegTeacher

__all__ = ["DiffusionSegTeacher", "TeacherConfig", "build_teacher", "load_teacher", "save_teacher"]
