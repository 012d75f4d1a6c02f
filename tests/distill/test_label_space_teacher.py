"""A teacher in another label space: its probabilities summed over the classes a master-labels map names."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml

from cli.distill_cli import distill
from prompt_kit.label_space import read_label_map
from teacher import TeacherFolder
from teacher.label_space import LabelSpaceTeacher
from tests.distill.conftest import random_image, save_image

THREE = ["ground", "vehicle", "other"]
MAP = """0,ground,Road,Pavement
1,vehicle,Car,Bicyclist
2,other,Sky,Building,Pole,Tree,SignSymbol,Fence
255,void,Pedestrian
"""


@pytest.fixture()
def three_class_folder(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "three"
    for index in range(10):
        save_image(root / "images" / f"{index:03d}.png", random_image(rng, 32, 48))
        save_image(root / "labels" / f"{index:03d}.png", rng.integers(0, 3, size=(32, 48)))
    classes = [{"name": name, "label": name, "color": [40 * i, 80, 120]} for i, name in enumerate(THREE)]
    (root / "classes.yaml").write_text(yaml.safe_dump({"name": "three", "ignore_index": 255, "classes": classes}))
    (tmp_path / "map.csv").write_text(MAP)
    return root


def test_the_mapped_teacher_sums_its_probabilities_per_target_class(trained_teacher, three_class_folder):
    teacher = TeacherFolder(trained_teacher).load()
    mapping = read_label_map(three_class_folder.parent / "map.csv", teacher.class_names, THREE)
    mapped = LabelSpaceTeacher(teacher, mapping)
    images = torch.rand(2, 3, 32, 48)
    with torch.no_grad():
        source = teacher(images).softmax(1)
        target = mapped(images).exp()
    assert mapped.class_names == THREE and mapped.identity != teacher.identity
    names = teacher.class_names
    ground = source[:, names.index("Road")] + source[:, names.index("Pavement")]
    kept = 1 - source[:, names.index("Pedestrian")]  # the void class's mass is dropped
    assert torch.allclose(target[:, 0], ground / kept, atol=1e-4)
    assert torch.allclose(target.sum(1), torch.ones(2, 8, 12), atol=1e-4)


def test_kd_from_a_teacher_in_another_label_space(runner, trained_teacher, three_class_folder, tmp_path):
    args = ["run", "--teacher", str(trained_teacher), "--data", f"folder:{three_class_folder}", "--student", "tiny"]
    args += ["--kd", "kl", "--steps", "3", "--student-size", "32x48", "--set", "batch_size=4"]
    refused = runner.invoke(distill, [*args, "--out", str(tmp_path / "refused")])
    assert refused.exit_code == 2 and "teacher_label_map" in refused.stderr
    mapped = runner.invoke(
        distill,
        [
            *args,
            "--out",
            str(tmp_path / "mapped"),
            "--set",
            f"teacher_label_map={three_class_folder.parent / 'map.csv'}",
        ],
    )
    assert mapped.exit_code == 0, mapped.output
    metrics = json.loads((tmp_path / "mapped" / "metrics.json").read_text())
    assert list(metrics["teacher"]["per_class_iou"]) == THREE
