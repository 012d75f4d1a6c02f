"""``SPEC@map=FILE.csv,to=TAXONOMY``: a reader's labels read in another label space."""

from __future__ import annotations

import json

import pytest
import torch

from cli.distill_cli import distill
from distill.datasets import create_dataset
from distill.datasets.remapped import RemappedLabels
from prompt_kit.errors import PromptKitError
from prompt_kit.label_space import read_label_map
from prompt_kit.taxonomy import load_taxonomy

SYNTHETIC = "synthetic:count=6,size=32x48"
# CamVid's 11 classes into Cityscapes' 19: Tree under vegetation and terrain (ambiguous), Bicyclist void
CAMVID_TO_CITYSCAPES = """0,road,Road
1,sidewalk,Pavement
2,building,Building
3,wall
4,fence,Fence
5,pole,Pole
6,traffic light
7,traffic sign,SignSymbol
8,vegetation,Tree
9,terrain,Tree
10,sky,Sky
11,person,Pedestrian
12,rider
13,car,Car
14,truck
15,bus
16,train
17,motorcycle
18,bicycle
255,void,Bicyclist
"""


@pytest.fixture()
def map_file(tmp_path):
    path = tmp_path / "camvid_to_cityscapes.csv"
    path.write_text(CAMVID_TO_CITYSCAPES)
    return path


def test_labels_are_read_through_the_map_into_the_target_taxonomy(map_file):
    source = create_dataset(SYNTHETIC, "train")
    dataset = create_dataset(f"{SYNTHETIC}@map={map_file},to=cityscapes", "train")
    assert isinstance(dataset, RemappedLabels) and len(dataset) == len(source)
    assert dataset.taxonomy.class_names == load_taxonomy("cityscapes").class_names
    label_map = read_label_map(map_file, source.taxonomy.class_names, dataset.taxonomy.class_names, 11, 255)
    names = source.taxonomy.class_names
    for index in range(len(source)):
        image, label = source[index]
        mapped_image, mapped = dataset[index]
        torch.testing.assert_close(mapped_image, image)
        torch.testing.assert_close(mapped, torch.as_tensor(label_map.remap_labels(label.numpy())))
    _, label = source[0]
    _, mapped = dataset[0]
    assert (mapped[label == names.index("Car")] == 13).all()
    assert (mapped[label == names.index("Tree")] == 255).all()  # under vegetation and terrain: undecided
    assert (mapped[label == source.ignore_index] == 255).all()


def test_a_remapped_dataset_mixes_with_one_of_the_target_taxonomy(map_file, tmp_path):
    spec = f"{SYNTHETIC}@map={map_file},to=cityscapes+images:{tmp_path}"
    from PIL import Image

    for index in range(2):
        Image.new("RGB", (48, 32), (index * 40, 90, 20)).save(tmp_path / f"frame{index}.png")
    mixed = create_dataset(spec, "train")
    assert mixed.taxonomy.name == "cityscapes" and len(mixed) == 6 + 2


@pytest.mark.parametrize(
    ("suffix", "message"),
    [
        ("@map={map}", "needs to="),
        ("@map={map},to=cityscapes,colour=red", "'colour=red' is not a label-map option"),
        ("@map={missing},to=cityscapes", "label map file not found"),
        ("@map={map},to=kitti11", "line 1, column 2: target 0 is .sky. in the target classes"),
    ],
)
def test_a_bad_label_map_option_is_a_one_line_error(map_file, tmp_path, suffix, message):
    spec = SYNTHETIC + suffix.format(map=map_file, missing=tmp_path / "missing.csv")
    with pytest.raises(PromptKitError, match=message) as error:
        create_dataset(spec, "train")
    assert "\n" not in str(error.value)


def test_distill_run_trains_a_student_in_the_target_label_space(runner, map_file, tmp_path):
    out = tmp_path / "run"
    args = ["run", "--student", "tiny", "--kd", "none", "--data", f"{SYNTHETIC}@map={map_file},to=cityscapes"]
    args += ["--out", str(out), "--steps", "2", "--student-size", "32x48", "--set", "batch_size=2"]
    args += ["--set", "eval_every=2", "--set", "val_images=2"]
    result = runner.invoke(distill, args)
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["per_class_iou"]) == 19
