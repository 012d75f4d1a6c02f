"""Teachers: one interface (``Teacher``) for prompt-conditioned teachers and any segmentation network.

``TeacherFolder`` reads every kind of teacher folder. The prompt-conditioned models take
ClassEmbeddings (never strings): ``DiffusionSegTeacher`` (a UNet pass, then a head) and
``EmbeddingClassifiedNetwork`` (a pretrained network whose classifier is the class embeddings).
"""

from __future__ import annotations

from teacher.checkpoint import build_teacher, load_teacher, save_teacher
from teacher.config import DiffusionTeacherConfig, NetworkTeacherConfig, TeacherConfig, parse_teacher_config
from teacher.embedding_classified_network import EmbeddingClassifiedNetwork
from teacher.folder import TeacherFolder, write_network_descriptor
from teacher.interface import FeatureInfo, Teacher, freeze
from teacher.model import DiffusionSegTeacher
from teacher.network import NetworkTeacher
from teacher.prompt_conditioned import PromptConditionedTeacher

__all__ = [
    "DiffusionSegTeacher",
    "DiffusionTeacherConfig",
    "EmbeddingClassifiedNetwork",
    "FeatureInfo",
    "NetworkTeacher",
    "NetworkTeacherConfig",
    "PromptConditionedTeacher",
    "Teacher",
    "TeacherConfig",
    "TeacherFolder",
    "build_teacher",
    "freeze",
    "load_teacher",
    "parse_teacher_config",
    "save_teacher",
    "write_network_descriptor",
]
