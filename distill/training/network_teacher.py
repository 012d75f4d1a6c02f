"""`distill teacher --model NAME`: any registered segmentation network trained as a teacher.

A network teacher is trained by the same trainer as the students (``distill run`` with no KD),
with teacher-sized defaults: a larger input than the student's, more steps, and ImageNet
weights where they ship offline. Its taxonomy comes from the data, not from a prompt set. The
folder it writes is a run folder, which ``TeacherFolder`` reads as a network teacher; so is any
other finished ``distill run``.

``--pretrained``: ``imagenet`` (backbone weights that ship, the default where they exist), or
the path of a whole trained network (a torchvision-style state dict, a ``.safetensors`` file,
or a transformers folder for SegFormer) loaded with ``weights_only`` reading; with
``--steps 0`` that checkpoint is used as the teacher as it is, evaluated but not trained.
"""

from __future__ import annotations

from typing import Any

from distill.training.configuration import load_config
from distill.training.run_config import RunConfig, require_student
from networks.registry import OFFLINE_IMAGENET_NETWORKS

# Sized for two CPU cores: EfficientNet-Lite2 at 192x256 trains at ~2 steps/s, 2000 steps in ~20 min, to val
# mIoU 0.667 on CamVid (README, "Real CamVid: a network teacher above the student"). Evaluated once, at the end:
# the teacher's weights are not chosen on val.
NETWORK_TEACHER_DEFAULTS: dict[str, Any] = {
    "student_size": (192, 256),
    "steps": 2000,
    "eval_every": 2000,
    "checkpoint_every": 250,
}


def network_teacher_config(
    model: str,
    options: dict[str, Any],
    config_file: str | None = None,
    overrides: list[str] | None = None,
) -> RunConfig:
    """The RunConfig that trains ``model`` as a teacher: no KD, teacher-sized defaults, the user's options on top.

    Args:
        model: a registered network name (``networks.list_networks``).
        options: command-line values (None: not given): ``data``, ``out``, ``steps``, ``image_size``,
            ``batch_size``, ``seed``, ``pretrained``.
    """
    require_student(model)
    options = dict(options)
    pretrained = options.pop("pretrained", None)
    weights = {"student_pretrained": "imagenet"} if pretrained == "imagenet" else {"init_weights": pretrained}
    size = options.pop("image_size", None)
    base = {**options, "student": model, "kd": "none", **weights, "student_size": size}
    imagenet = "imagenet" if model in OFFLINE_IMAGENET_NETWORKS else None
    defaults = {**NETWORK_TEACHER_DEFAULTS, "student_pretrained": imagenet}
    return load_config(RunConfig, config_file, list(overrides or []), base, defaults=defaults)


__all__ = ["NETWORK_TEACHER_DEFAULTS", "network_teacher_config"]
