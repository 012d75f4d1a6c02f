from __future__ import annotations

import numpy as np
import pytest
import torch

from distill.datasets import SyntheticStreets, create_dataset, draw_street_scene, write_synthetic
from prompt_kit.errors import PromptKitError
from prompt_kit.taxonomy import load_taxonomy

CAMVID = load_taxonomy("camvid").class_names
IGNORE = 11


def test_the_same_scene_every_time():
    first, again = SyntheticStreets("train", count=3, seed=7), SyntheticStreets("train", count=3, seed=7)
    for index in range(3):
        assert torch.equal(first[index][0], again[index][0]) and torch.equal(first[index][1], again[index][1])
    assert not torch.equal(first[0][0], first[1][0])


def test_a_larger_count_extends_a_split_without_changing_its_first_scenes():
    # README: a teacher on synthetic:count=2000 has seen the student's 200 train scenes and the usual val
    small, large = SyntheticStreets("val", count=2, size=(40, 56)), SyntheticStreets("val", count=5, size=(40, 56))
    for index in range(2):
        assert torch.equal(small[index][0], large[index][0]) and torch.equal(small[index][1], large[index][1])
    assert not torch.equal(large[2][0], large[0][0])


def test_splits_and_seeds_never_share_a_scene():
    images = {
        (split, seed): SyntheticStreets(split, count=2, seed=seed)[0][0]
        for split in ("train", "val", "test")
        for seed in (0, 1)
    }
    keys = list(images)
    for i, a in enumerate(keys):
        for b in keys[i + 1 :]:
            assert not torch.equal(images[a], images[b]), (a, b)


def test_items_are_camvid_tensors_at_any_size():
    for size in ((128, 176), (37, 53), (200, 96)):
        dataset = SyntheticStreets("val", count=1, size=size)
        image, label = dataset[0]
        assert image.shape == (3, *size) and image.dtype == torch.float32
        assert float(image.min()) >= 0.0 and float(image.max()) <= 1.0
        assert label.shape == size and label.dtype == torch.int64
        assert set(label.unique().tolist()) <= set(range(12))
    assert dataset.taxonomy.class_names == CAMVID and dataset.ignore_index == IGNORE


def test_class_statistics_look_like_a_street():
    """Every class shows up, road is the biggest, small things stay small, ignore is rare."""
    counts = np.zeros(12)
    for index in range(20):
        _, label = draw_street_scene(128, 176, np.random.default_rng([0, 0, index]))
        counts += np.bincount(label.ravel(), minlength=12)
    share = dict(zip([*CAMVID, "ignore"], counts / counts.sum(), strict=True))
    assert all(share[name] > 0 for name in CAMVID), share
    assert max(share, key=share.get) == "Road"
    assert 0.2 < share["Road"] < 0.5 and 0.1 < share["Building"] < 0.35 and 0.05 < share["Sky"] < 0.3
    for small in ("Pole", "SignSymbol", "Fence", "Pedestrian", "Bicyclist"):
        assert share[small] < 0.03, (small, share[small])
    assert 0 < share["ignore"] < 0.05


def test_colour_alone_does_not_name_the_class():
    """Mean colours of one class vary a lot between scenes (roads are not always the same grey)."""
    means = {3: [], 8: [], 1: []}  # road, car, building
    for index in range(12):
        image, label = draw_street_scene(96, 128, np.random.default_rng([5, 0, index]))
        for class_id in means:
            if (label == class_id).any():
                means[class_id].append(image[label == class_id].mean(0))
    for class_id, colours in means.items():
        assert np.ptp(np.array(colours), axis=0).max() > 40, CAMVID[class_id]


def test_spec_options():
    dataset = create_dataset("synthetic:count=7,size=40x56,seed=3", "val")
    assert (len(dataset), dataset.size, dataset.seed, dataset.split) == (7, (40, 56), 3, "val")
    assert len(create_dataset("synthetic", "train")) == 200 and len(create_dataset("synthetic", "val")) == 50
    with pytest.raises(PromptKitError, match="option 'colour=red' not understood"):
        create_dataset("synthetic:colour=red", "train")
    with pytest.raises(PromptKitError, match="expected HEIGHTxWIDTH"):
        create_dataset("synthetic:size=128", "train")
    with pytest.raises(PromptKitError, match="no split 'dev'"):
        create_dataset("synthetic", "dev")
    with pytest.raises(IndexError):
        dataset[7]


def test_written_scenes_read_back_through_the_camvid_reader(tmp_path):
    folder = write_synthetic(tmp_path / "streets", count_train=3, count_val=2, size=(40, 56), seed=4)
    assert sorted(path.name for path in folder.iterdir()) == ["train", "trainannot", "val", "valannot"]
    for split, count in (("train", 3), ("val", 2)):
        written = create_dataset(f"camvid:{folder}", split)
        drawn = SyntheticStreets(split, count=count, size=(40, 56), seed=4)
        assert len(written) == count
        written.validate()
        for index in range(count):
            assert torch.equal(written[index][0], drawn[index][0])  # PNG is lossless
            assert torch.equal(written[index][1], drawn[index][1])


def test_write_synthetic_refuses_a_folder_in_use(tmp_path):
    (tmp_path / "old.txt").write_text("keep me")
    with pytest.raises(PromptKitError, match="not an empty folder"):
        write_synthetic(tmp_path, count_train=1, count_val=1)


def test_the_target_domain_shifts_appearance_and_layout_but_keeps_the_classes():
    source = create_dataset("synthetic:count=12,size=64x96", "train")
    target = create_dataset("synthetic:count=12,size=64x96,domain=target", "train")
    again = create_dataset("synthetic:count=12,size=64x96,domain=target", "train")
    assert np.array_equal(target.scene(3)[0], again.scene(3)[0])  # deterministic
    source_images = np.stack([source.scene(i)[0] for i in range(12)]).astype(np.float32)
    target_images = np.stack([target.scene(i)[0] for i in range(12)]).astype(np.float32)
    assert target_images.mean() < 0.8 * source_images.mean()  # darker
    assert (
        target_images[..., 2].mean() / target_images[..., 0].mean()
        > source_images[..., 2].mean() / source_images[..., 0].mean()
    )
    labels = np.stack([target.scene(i)[1] for i in range(12)])
    assert set(np.unique(labels)) <= set(range(12)) and len(np.unique(labels)) >= 8
    with pytest.raises(PromptKitError, match="domain=.winter.: expected one of source, target, night"):
        create_dataset("synthetic:domain=winter", "train")


def test_the_night_domain_is_a_second_shift_of_light_only():
    source = create_dataset("synthetic:count=12,size=64x96", "train")
    night = create_dataset("synthetic:count=12,size=64x96,domain=night", "train")
    target = create_dataset("synthetic:count=12,size=64x96,domain=target", "train")
    assert np.array_equal(
        night.scene(5)[0], create_dataset("synthetic:count=12,size=64x96,domain=night", "train").scene(5)[0]
    )
    scenes = {
        name: [d.scene(i) for i in range(12)] for name, d in [("source", source), ("night", night), ("target", target)]
    }
    images = {name: np.stack([image for image, _ in drawn]).astype(np.float32) for name, drawn in scenes.items()}
    labels = {name: np.stack([label for _, label in drawn]) for name, drawn in scenes.items()}
    assert images["night"].mean() < 0.6 * images["source"].mean()  # night
    assert not np.array_equal(images["night"], images["target"])  # another shift than the first
    assert set(np.unique(labels["night"])) <= set(range(12)) and len(np.unique(labels["night"])) >= 8
    # the source's layout statistics: as many building pixels as the source has, while the target has fewer
    building = {name: np.mean(label == 1) for name, label in labels.items()}
    assert abs(building["night"] - building["source"]) < abs(building["target"] - building["source"])
