"""Teachers: one interface (``Teacher``) for a prompt-conditioned diffusion teacher and any segmentation network.

``TeacherFolder`` reads every kind of teacher folder; ``DiffusionSegTeacher`` is the
text-conditioned model, conditioned on ClassEmbeddings (never on strings).
"""

from __future__ import annotations

from teacher.checkpoint import build_teacher, load_teacher, save_teacher
from teacher.config import TeacherConfig
from teacher.folder import TeacherFolder, write_network_descriptor
from teacher.interface import FeatureInfo, Teacher, freeze
from teacher.model import DiffusionSegTeacher
from teacher.network import NetworkTeacher
from teacher.prompt_conditioned import PromptConditionedTeacher

__all__ = [
    "DiffusionSegTeacher",
    "FeatureInfo",
    "NetworkTeacher",
    "PromptConditionedTeacher",
    "Teacher",
    "TeacherConfig",
    "TeacherFolder",
    "build_teacher",
    "freeze",
    "load_teacher",
    "save_teacher",
    "write_network_descriptor",
]
