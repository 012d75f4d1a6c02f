"""The embedded demo: the whole comparison on synthetic streets, sized for two CPU cores.

Everything comes from the package (synthetic scenes, the four curated CamVid prompt sets, the
MiniLM encoder shipped on PyPI), so it runs on a fresh install with no data and no network. The
sizes are chosen for a ten-minute budget on two cores (``benchmarks/bench_demo.py`` measures it):
scenes of 96x128, a teacher with pooled conditioning on the whole 96x128 scene (the teacher sees
more pixels than the student, as in the seed project), the tiny student at 48x64, two seeds. Beside
the four prompt styles, one network teacher (the ImageNet-pretrained EfficientNet-Lite0, trained
on the same scenes) shows what distillation is for: a teacher clearly above its student, and the
gain it gives. The numbers show the workflow, not the ceiling: ``distill compare`` with the
defaults trains longer and larger.
"""

from __future__ import annotations

from typing import Any

DEMO_SETTINGS: dict[str, Any] = {
    "data": "synthetic:size=96x128",
    "student": "tiny",
    "seeds": 2,
    "teacher": {
        "image_size": (96, 128),
        "steps": 240,
        "pretrain_denoiser": 40,
        "eval_every": 240,
        "model": {"conditioning": "pooled"},
    },
    "teachers": ["efficientnet_lite0"],
    "network_teacher": {"student_size": (96, 128), "steps": 300, "eval_every": 300, "checkpoint_every": 300},
    "run": {"student_size": (48, 64), "steps": 300, "eval_every": 100, "checkpoint_every": 100, "lr": 3e-3},
}


__all__ = ["DEMO_SETTINGS"]
