"""Tiny datasets written in each reader's exact on-disk layout, and the real CamVid when present."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REAL_CAMVID = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "camvid"

HEIGHT, WIDTH = 12, 16  # small but not square, so a transposed size would show


def save_image(path: Path, array: np.ndarray) -> Path:
    """Write a uint8 array (``[H, W]`` or ``[H, W, 3]``) in the format the suffix names, making folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(path)
    return path


def random_image(rng: np.random.Generator, height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    return rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)


@pytest.fixture()
def camvid_root(tmp_path: Path) -> Path:
    """SegNet layout: train (5 images), val (2), labels 0..10 plus some 11 (unlabelled)."""
    rng = np.random.default_rng(0)
    root = tmp_path / "camvid"
    for split, count in (("train", 5), ("val", 2)):
        for index in range(count):
            name = f"0001TP_{index:06d}.png"
            save_image(root / split / name, random_image(rng))
            save_image(root / f"{split}annot" / name, rng.integers(0, 12, size=(HEIGHT, WIDTH)))
    return root


@pytest.fixture()
def kitti_root(tmp_path: Path) -> Path:
    """KITTI semantics layout, 10 images; every label holds all Cityscapes label ids 0..33."""
    rng = np.random.default_rng(1)
    root = tmp_path / "kitti"
    ids = np.resize(np.arange(34, dtype=np.uint8), HEIGHT * WIDTH).reshape(HEIGHT, WIDTH)
    for index in range(10):
        name = f"{index:06d}_10.png"
        save_image(root / "training" / "image_2" / name, random_image(rng))
        save_image(root / "training" / "semantic" / name, rng.permuted(ids, axis=1))
    save_image(root / "testing" / "image_2" / "000000_10.png", random_image(rng))  # unlabelled, must be skipped
    return root


@pytest.fixture()
def cityscapes_root(tmp_path: Path) -> Path:
    """Cityscapes layout, two cities in train, one in val, with the colour/instance files beside."""
    rng = np.random.default_rng(2)
    root = tmp_path / "cityscapes"
    ids = np.resize(np.arange(34, dtype=np.uint8), HEIGHT * WIDTH).reshape(HEIGHT, WIDTH)
    for split, cities in (("train", ("aachen", "bochum")), ("val", ("frankfurt",))):
        for city in cities:
            for index in range(2):
                stem = f"{city}_000000_{index:06d}"
                save_image(root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png", random_image(rng))
                label_dir = root / "gtFine" / split / city
                save_image(label_dir / f"{stem}_gtFine_labelIds.png", ids)
                save_image(label_dir / f"{stem}_gtFine_color.png", random_image(rng))
                save_image(label_dir / f"{stem}_gtFine_instanceIds.png", ids)
                (label_dir / f"{stem}_gtFine_polygons.json").write_text("{}")
    return root


FOLDER_CLASSES = (
    "name: shapes\nignore_index: 255\nclasses:\n  - {name: background}\n  - {name: disc}\n  - {name: box}\n"
)


@pytest.fixture()
def folder_root(tmp_path: Path) -> Path:
    """``images/`` + ``labels/`` (10 pairs, values 0..2 and 255) and a ``classes.yaml``."""
    rng = np.random.default_rng(3)
    root = tmp_path / "shapes"
    for index in range(10):
        save_image(root / "images" / f"img{index}.jpg", random_image(rng))
        save_image(root / "labels" / f"img{index}.png", rng.choice([0, 1, 2, 255], size=(HEIGHT, WIDTH)))
    (root / "classes.yaml").write_text(FOLDER_CLASSES)
    return root


@pytest.fixture()
def real_camvid() -> Path:
    """The shared CamVid copy (never part of the repository); tests using it skip without it."""
    if not (REAL_CAMVID / "train").is_dir():
        pytest.skip(f"real CamVid not found at {REAL_CAMVID} (../shared/data/camvid from the repository root)")
    return REAL_CAMVID


# a tiny teacher trained once per session on tiny synthetic scenes (as `distill teacher` runs it)
DATA = "synthetic:count=24,size=32x48"
TINY_TEACHER = [
    "--set",
    "model.block_out_channels=[16, 32, 32]",
    "--set",
    "model.head_channels=16",
    "--set",
    "model.class_dim=16",
    "--set",
    "val_images=8",
    "--set",
    "eval_every=15",
]


def tiny_teacher_args(out, steps: int = 30, extra=()) -> list[str]:
    """`distill teacher` arguments for the tiny teacher on tiny synthetic scenes (5 denoiser steps, 32x48)."""
    from prompt_kit.resources import prompts_dir

    return [
        "teacher",
        "--prompts",
        str(prompts_dir() / "camvid" / "label.yaml"),
        "--data",
        DATA,
        "--out",
        str(out),
        "--steps",
        str(steps),
        "--pretrain-denoiser",
        "5",
        "--size",
        "32x48",
        "--batch-size",
        "4",
        *TINY_TEACHER,
        *extra,
    ]


@pytest.fixture(scope="session")
def trained_teacher(tmp_path_factory):
    from click.testing import CliRunner

    from cli.distill_cli import distill

    out = tmp_path_factory.mktemp("teacher")
    result = CliRunner().invoke(distill, tiny_teacher_args(out))
    assert result.exit_code == 0, result.output
    return out


def kill_after_checkpoint(monkeypatch, step: int, folder_name: str = "last") -> None:
    """Make training die (KeyboardInterrupt) right after writing its ``folder_name`` checkpoint at ``step``."""
    from distill.training.core import Checkpoints

    original = Checkpoints.save

    def save_then_die(self, state):
        original(self, state)
        if state.step == step and self.folder.name == folder_name:
            raise KeyboardInterrupt

    monkeypatch.setattr(Checkpoints, "save", save_then_die)
