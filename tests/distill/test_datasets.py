from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as F

from distill.datasets import (
    CITYSCAPES_LABEL_TO_KITTI11,
    CITYSCAPES_LABEL_TO_TRAIN_ID,
    PairedViews,
    SyntheticStreets,
    apply_geometry,
    create_dataset,
    list_datasets,
    params_at,
)
from prompt_kit.errors import PromptKitError
from prompt_kit.taxonomy import load_taxonomy
from tests.distill.conftest import FOLDER_CLASSES, HEIGHT, WIDTH, save_image


def read_png(path) -> np.ndarray:
    with Image.open(path) as image:
        return np.array(image)


def one_line_error(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    return message


# --- the factory --------------------------------------------------------------------------------


def test_every_reader_is_listed():
    assert list_datasets() == ["camvid", "cityscapes", "folder", "images", "kitti", "synthetic"]


def test_unknown_reader_names_the_valid_ones():
    with pytest.raises(PromptKitError) as excinfo:
        create_dataset("camvidd:/data", "train")
    message = one_line_error(excinfo)
    assert "camvidd" in message
    for example in ("camvid:PATH", "kitti:PATH", "cityscapes:PATH", "folder:PATH", "synthetic"):
        assert example in message


def test_a_file_reader_needs_a_path():
    with pytest.raises(PromptKitError, match="needs a path: camvid:PATH"):
        create_dataset("camvid", "train")


# --- CamVid -------------------------------------------------------------------------------------


def test_camvid_reads_images_and_labels_as_stored(camvid_root):
    dataset = create_dataset(f"camvid:{camvid_root}", "train")
    assert (dataset.name, dataset.split, len(dataset)) == ("camvid", "train", 5)
    assert dataset.taxonomy.name == "camvid" and dataset.ignore_index == 11
    image, label = dataset[2]
    assert image.shape == (3, HEIGHT, WIDTH) and image.dtype == torch.float32
    assert float(image.min()) >= 0.0 and float(image.max()) <= 1.0
    assert label.shape == (HEIGHT, WIDTH) and label.dtype == torch.int64
    image_path, label_path = dataset.files[2]
    assert image_path.parent.name == "train" and label_path.parent.name == "trainannot"
    assert image_path.name == label_path.name
    assert torch.equal(label, torch.from_numpy(read_png(label_path).astype(np.int64)))
    assert torch.allclose(image * 255, torch.from_numpy(read_png(image_path)).permute(2, 0, 1).float())
    assert len(create_dataset(f"camvid:{camvid_root}", "val")) == 2


def test_decoded_samples_are_kept_and_read_again_unchanged(camvid_root, tmp_path, monkeypatch):
    import distill.datasets.segmentation_dataset as module

    dataset = create_dataset(f"camvid:{camvid_root}", "train")
    first = dataset[1]
    monkeypatch.setattr(module, "MEMO_BYTES", 0)  # nothing kept: this one reads the disk each time
    uncached = create_dataset(f"camvid:{camvid_root}", "train")
    assert torch.equal(uncached[1][1], first[1])
    image_path, label_path = dataset.files[1]
    hidden = tmp_path / "hidden"
    hidden.mkdir()
    image_path.rename(hidden / "image.png")  # a second read must not need the files
    label_path.rename(hidden / "label.png")
    try:
        again = dataset[1]
        again[0].mul_(0)  # callers may change what they get: the kept copy stays intact
        assert torch.equal(dataset[1][0], first[0]) and torch.equal(dataset[1][1], first[1])
        assert first[1].dtype == torch.int64 and dataset[-4][0].shape == first[0].shape
        with pytest.raises(PromptKitError, match="cannot read sample 1"):
            uncached[1]
    finally:
        (hidden / "image.png").rename(image_path)
        (hidden / "label.png").rename(label_path)


def test_camvid_rejects_an_unknown_split_and_a_foreign_taxonomy(camvid_root):
    with pytest.raises(PromptKitError, match="no split 'training'; choose one of train, val, test"):
        create_dataset(f"camvid:{camvid_root}", "training")
    with pytest.raises(PromptKitError, match="camvid taxonomy"):
        create_dataset(f"camvid:{camvid_root}", "train", taxonomy="kitti11")


# --- KITTI and Cityscapes: label ids -> train ids -----------------------------------------------


def expected_mapping(raw: np.ndarray, table: dict[int, int], ignore: int) -> np.ndarray:
    return np.vectorize(lambda value: table.get(int(value), ignore))(raw).astype(np.int64)


def test_cityscapes_label_table_is_the_official_one():
    official = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11, 25: 12, 26: 13,
                27: 14, 28: 15, 31: 16, 32: 17, 33: 18}  # fmt: skip
    assert official == CITYSCAPES_LABEL_TO_TRAIN_ID
    names = load_taxonomy("cityscapes").class_names
    assert [names[CITYSCAPES_LABEL_TO_TRAIN_ID[label_id]] for label_id in (7, 24, 25, 33)] == [
        "road", "person", "rider", "bicycle"
    ]  # fmt: skip


def test_kitti_maps_label_ids_to_cityscapes_train_ids(kitti_root):
    dataset = create_dataset(f"kitti:{kitti_root}", "train")
    assert dataset.taxonomy.name == "cityscapes" and dataset.ignore_index == 255
    _, label = dataset[0]
    raw = read_png(dataset.files[0][1])
    assert torch.equal(label, torch.from_numpy(expected_mapping(raw, CITYSCAPES_LABEL_TO_TRAIN_ID, 255)))
    assert set(label.unique().tolist()) == set(range(19)) | {255}


def test_kitti_maps_label_ids_to_kitti11(kitti_root):
    dataset = create_dataset(f"kitti:{kitti_root}", "val", taxonomy="kitti11")
    names = dataset.taxonomy.class_names
    _, label = dataset[0]
    raw = torch.from_numpy(read_png(dataset.files[0][1]).astype(np.int64))
    assert torch.equal(label, torch.from_numpy(expected_mapping(raw.numpy(), CITYSCAPES_LABEL_TO_KITTI11, 255)))
    assert set(label[raw == 25].tolist()) == set(label[raw == 33].tolist()) == {names.index("cyclist")}
    assert set(label[raw == 24].tolist()) == {names.index("pedestrian")}
    assert set(label[raw == 20].tolist()) == {names.index("sign")}
    assert set(label[raw == 19].tolist()) == {255}  # a traffic light is not a sign in kitti11
    assert set(label.unique().tolist()) == set(range(11)) | {255}


def test_kitti_split_is_every_fifth_image(kitti_root):
    train = create_dataset(f"kitti:{kitti_root}", "train")
    val = create_dataset(f"kitti:{kitti_root}", "val")
    assert [path.name for path, _ in val.files] == ["000004_10.png", "000009_10.png"]
    assert len(train) == 8
    assert not {path for path, _ in train.files} & {path for path, _ in val.files}
    assert all("testing" not in str(path) for path, _ in train.files)


def test_kitti_refuses_a_taxonomy_it_cannot_map_to(kitti_root):
    with pytest.raises(PromptKitError, match="cityscapes or the kitti11 taxonomy; 'camvid' matches neither"):
        create_dataset(f"kitti:{kitti_root}", "train", taxonomy="camvid")


def test_cityscapes_pairs_only_label_id_files_across_cities(cityscapes_root):
    train = create_dataset(f"cityscapes:{cityscapes_root}", "train")
    assert len(train) == 4 and len(create_dataset(f"cityscapes:{cityscapes_root}", "val")) == 2
    for image_path, label_path in train.files:
        assert image_path.name.endswith("_leftImg8bit.png") and label_path.name.endswith("_gtFine_labelIds.png")
        assert image_path.name.removesuffix("_leftImg8bit.png") == label_path.name.removesuffix("_gtFine_labelIds.png")
    _, label = train[3]
    raw = read_png(train.files[3][1])
    assert torch.equal(label, torch.from_numpy(expected_mapping(raw, CITYSCAPES_LABEL_TO_TRAIN_ID, 255)))


# --- folder -------------------------------------------------------------------------------------


def test_folder_uses_its_classes_yaml_and_splits_every_fifth(folder_root):
    train = create_dataset(f"folder:{folder_root}", "train")
    val = create_dataset(f"folder:{folder_root}", "val")
    assert train.taxonomy.class_names == ["background", "disc", "box"]
    assert (len(train), len(val)) == (8, 2)
    assert [path.stem for path, _ in val.files] == ["img4", "img9"]  # sorted names: img0, img1, ..., img9
    image, label = val[0]
    assert image.shape == (3, HEIGHT, WIDTH)
    assert set(label.unique().tolist()) <= {0, 1, 2, 255}


def test_folder_uses_train_and_val_roots_when_both_exist(tmp_path):
    rng = np.random.default_rng(0)
    for split, count in (("train", 3), ("val", 1)):
        for index in range(count):
            save_image(tmp_path / split / "images" / f"{index}.png", rng.integers(0, 256, (HEIGHT, WIDTH, 3)))
            save_image(tmp_path / split / "labels" / f"{index}.png", rng.integers(0, 3, (HEIGHT, WIDTH)))
    taxonomy_file = tmp_path.parent / "shapes.yaml"
    taxonomy_file.write_text(FOLDER_CLASSES)
    taxonomy = load_taxonomy(taxonomy_file)
    assert len(create_dataset(f"folder:{tmp_path}", "train", taxonomy=taxonomy)) == 3
    assert len(create_dataset(f"folder:{tmp_path}", "val", taxonomy=taxonomy)) == 1


def test_folder_needs_a_taxonomy_and_refuses_a_disagreeing_one(folder_root):
    with pytest.raises(PromptKitError, match="disagree"):
        create_dataset(f"folder:{folder_root}", "train", taxonomy="camvid")
    (folder_root / "classes.yaml").unlink()
    with pytest.raises(PromptKitError, match="no classes.yaml"):
        create_dataset(f"folder:{folder_root}", "train")


# --- bad data -----------------------------------------------------------------------------------


def test_missing_dataset_folder(tmp_path):
    with pytest.raises(PromptKitError) as excinfo:
        create_dataset(f"camvid:{tmp_path / 'nowhere'}", "train")
    assert "not found; expected the SegNet layout" in one_line_error(excinfo)


def test_missing_split_folder(camvid_root):
    (camvid_root / "valannot").rename(camvid_root / "val_labels")
    with pytest.raises(PromptKitError, match=r"valannot not found"):
        create_dataset(f"camvid:{camvid_root}", "val")


def test_images_without_labels_are_counted_and_the_first_named(camvid_root):
    for name in ("0001TP_000003.png", "0001TP_000001.png"):
        (camvid_root / "trainannot" / name).unlink()
    with pytest.raises(PromptKitError) as excinfo:
        create_dataset(f"camvid:{camvid_root}", "train")
    assert "2 images have no label file in trainannot, first: train/0001TP_000001.png" in one_line_error(excinfo)


def test_labels_without_images_are_counted(camvid_root):
    (camvid_root / "val" / "0001TP_000000.png").unlink()
    with pytest.raises(PromptKitError) as excinfo:
        create_dataset(f"camvid:{camvid_root}", "val")
    assert "1 label file has no image in val, first: valannot/0001TP_000000.png" in one_line_error(excinfo)


def test_empty_split_folder(camvid_root):
    for path in [*(camvid_root / "val").iterdir(), *(camvid_root / "valannot").iterdir()]:
        path.unlink()
    with pytest.raises(PromptKitError, match="no images in val"):
        create_dataset(f"camvid:{camvid_root}", "val")


def test_validate_reports_size_mismatches(camvid_root):
    save_image(camvid_root / "trainannot" / "0001TP_000002.png", np.zeros((HEIGHT // 2, WIDTH // 2)))
    dataset = create_dataset(f"camvid:{camvid_root}", "train")  # pairing is fine
    with pytest.raises(PromptKitError) as excinfo:
        dataset.validate()
    message = one_line_error(excinfo)
    assert "1 of 5 labels differ in size from their image, first: trainannot/0001TP_000002.png is 8x6" in message
    with pytest.raises(PromptKitError, match="is 8x6 but its image"):
        dataset[2]


def test_validate_reports_values_outside_the_taxonomy(camvid_root):
    for index, bad in ((3, 12), (1, 200)):
        label = np.zeros((HEIGHT, WIDTH), np.uint8)
        label[0, :2] = (bad, 40)
        save_image(camvid_root / "trainannot" / f"0001TP_{index:06d}.png", label)
    dataset = create_dataset(f"camvid:{camvid_root}", "train")
    with pytest.raises(PromptKitError) as excinfo:
        dataset.validate()
    message = one_line_error(excinfo)
    assert "2 of 5 label files have values outside camvid label ids 0..10 and ignore 11" in message
    assert "first: trainannot/0001TP_000001.png (values 40, 200)" in message
    with pytest.raises(PromptKitError, match="has values 12, 40 outside"):
        dataset[3]  # nothing trains on a bad label, validated or not
    dataset.validate(max_files=1)  # a sample of one (the first file) misses both


def test_validate_reports_several_kinds_of_problem_in_one_line(camvid_root):
    save_image(camvid_root / "trainannot" / "0001TP_000000.png", np.full((HEIGHT, WIDTH), 99))
    save_image(camvid_root / "trainannot" / "0001TP_000004.png", np.zeros((3, 3, 3)))  # an RGB label
    with pytest.raises(PromptKitError) as excinfo:
        create_dataset(f"camvid:{camvid_root}", "train").validate()
    message = one_line_error(excinfo)
    assert "1 of 5 files cannot be read, first: trainannot/0001TP_000004.png" in message
    assert "must be one-channel label ids" in message
    assert "values 99" in message


def test_kitti_values_must_be_cityscapes_label_ids(kitti_root):
    save_image(kitti_root / "training" / "semantic" / "000000_10.png", np.full((HEIGHT, WIDTH), 40))
    with pytest.raises(PromptKitError, match="values outside Cityscapes label ids 0..33, first: training/semantic"):
        create_dataset(f"kitti:{kitti_root}", "train").validate()


def test_validate_passes_on_good_data(camvid_root, kitti_root, cityscapes_root, folder_root):
    for spec in (
        f"camvid:{camvid_root}",
        f"kitti:{kitti_root}",
        f"cityscapes:{cityscapes_root}",
        f"folder:{folder_root}",
    ):
        create_dataset(spec, "train").validate()


# --- the real CamVid ----------------------------------------------------------------------------


def test_real_camvid(real_camvid):
    train = create_dataset(f"camvid:{real_camvid}", "train")
    val = create_dataset(f"camvid:{real_camvid}", "val")
    assert (len(train), len(val)) == (367, 101)
    start = time.perf_counter()
    train.validate()  # every label's values within 0..11, every size matching its image
    assert time.perf_counter() - start < 10.0
    image, label = val[0]
    assert image.shape == (3, 360, 480) and label.shape == (360, 480)
    assert int(label.min()) >= 0 and int(label.max()) <= 11


# --- paired views -------------------------------------------------------------------------------


@pytest.fixture()
def scenes() -> SyntheticStreets:
    return SyntheticStreets("train", count=6, size=(48, 64), seed=0)


def test_paired_views_have_the_requested_sizes(scenes):
    item = PairedViews(scenes, teacher_size=(40, 56), student_size=(24, 32), seed=1)[0]
    assert item["teacher_image"].shape == (3, 40, 56) and item["teacher_image"].dtype == torch.float32
    assert item["teacher_label"].shape == (40, 56) and item["teacher_label"].dtype == torch.int64
    assert item["student_image"].shape == (3, 24, 32) and item["student_label"].shape == (24, 32)


def test_applying_the_params_to_the_source_reproduces_both_views(scenes):
    views = PairedViews(scenes, teacher_size=(40, 56), student_size=(24, 32), seed=3, scale_range=(0.6, 1.8))
    for index in range(len(views)):
        item = views[index]
        image, label = scenes[index]
        params = item["params"]
        for role, size in (("teacher", (40, 56)), ("student", (24, 32))):
            again = apply_geometry(label, params, size, InterpolationMode.NEAREST_EXACT, fill=scenes.ignore_index)
            assert torch.equal(again, item[f"{role}_label"])
        assert item["teacher_label"].unique().tolist() != [scenes.ignore_index]


def test_views_show_the_same_region(scenes):
    """The student label is (nearly) the teacher label resampled: same crop, same flip."""
    views = PairedViews(scenes, teacher_size=(48, 64), student_size=(24, 32), seed=5)
    for index in range(len(views)):
        item = views[index]
        shrunk = F.resize(item["teacher_label"][None], [24, 32], interpolation=InterpolationMode.NEAREST_EXACT)[0]
        assert (shrunk == item["student_label"]).float().mean() > 0.85


def test_equal_sizes_give_identical_views(scenes):
    item = PairedViews(scenes, teacher_size=(32, 40), student_size=(32, 40), seed=2)[1]
    assert torch.equal(item["teacher_image"], item["student_image"])
    assert torch.equal(item["teacher_label"], item["student_label"])


def test_views_are_deterministic_per_seed_epoch_and_index(scenes):
    def make(seed):
        return PairedViews(scenes, teacher_size=(32, 40), student_size=(16, 20), seed=seed)

    first, again, other_seed = make(0), make(0), make(1)
    assert torch.equal(first[2]["teacher_image"], again[2]["teacher_image"])
    assert torch.equal(first[2]["params"]["crop_box"], again[2]["params"]["crop_box"])
    assert first[2]["params"]["brightness"] == again[2]["params"]["brightness"]
    boxes = {tuple(make(seed)[2]["params"]["crop_box"].tolist()) for seed in range(6)}
    assert len(boxes) > 1
    before = first[2]["params"]["crop_box"].clone()
    first.set_epoch(1)
    assert not torch.equal(first[2]["teacher_image"], again[2]["teacher_image"])
    first.set_epoch(0)
    assert torch.equal(first[2]["params"]["crop_box"], before)
    assert not torch.equal(other_seed[2]["teacher_image"], again[2]["teacher_image"])


def test_eval_views_resize_the_whole_image(scenes):
    views = PairedViews(scenes, teacher_size=(24, 32), student_size=(12, 16), train=False)
    item = views[0]
    image, label = scenes[0]
    assert item["params"]["crop_box"].tolist() == [0, 0, 48, 64] and item["params"]["flip"] is False
    expected = F.resize(image, [24, 32], interpolation=InterpolationMode.BILINEAR, antialias=True)
    assert torch.allclose(item["teacher_image"], expected)
    expected_label = F.resize(label[None], [12, 16], interpolation=InterpolationMode.NEAREST_EXACT)[0]
    assert torch.equal(item["student_label"], expected_label)


def test_zooming_out_pads_with_ignore_and_black(scenes):
    views = PairedViews(scenes, (48, 64), (48, 64), scale_range=(0.5, 0.5), flip=False, color_jitter=0.0)
    item = views[0]
    top, left, height, width = item["params"]["crop_box"].tolist()
    assert (height, width) == (96, 128) and -48 <= top <= 0 and -64 <= left <= 0
    rows, cols = torch.meshgrid(torch.arange(48), torch.arange(64), indexing="ij")

    def image_area(margin: int) -> torch.Tensor:  # where the source image lands (halved: scale 0.5)
        return (
            (rows >= -top // 2 - margin)
            & (rows < (48 - top) // 2 + margin)
            & (cols >= -left // 2 - margin)
            & (cols < (64 - left) // 2 + margin)
        )

    inside, outside = image_area(0), ~image_area(1)  # one pixel of blurred edge between the two
    assert outside.float().mean() > 0.6  # three quarters of the view is padding
    assert set(item["teacher_label"][~inside].tolist()) == {scenes.ignore_index}
    assert float(item["teacher_image"][:, outside].abs().max()) == 0.0


def test_flip_mirrors_the_view(scenes):
    views = PairedViews(scenes, (48, 64), (48, 64), scale_range=(1.0, 1.0), color_jitter=0.0, seed=1)
    flips = []
    for index in range(len(views)):
        item = views[index]
        _, label = scenes[index]
        expected = torch.flip(label, dims=[-1]) if item["params"]["flip"] else label
        assert torch.equal(item["teacher_label"], expected)
        flips.append(item["params"]["flip"])
    assert any(flips) and not all(flips)


def test_params_survive_the_default_collate(scenes):
    views = PairedViews(scenes, teacher_size=(32, 40), student_size=(16, 20), seed=4)
    batch = next(iter(DataLoader(views, batch_size=3)))
    assert batch["teacher_image"].shape == (3, 3, 32, 40)
    assert batch["params"]["crop_box"].shape == (3, 4) and batch["params"]["flip"].dtype == torch.bool
    _, label = scenes[1]
    again = apply_geometry(label, params_at(batch["params"], 1), (16, 20), InterpolationMode.NEAREST_EXACT, fill=11)
    assert torch.equal(again, batch["student_label"][1])


def test_apply_geometry_on_a_coarser_map_follows_the_crop_exactly():
    """A map at 1/4 of the source resolution whose value is the source column: the crop must read it right."""
    source = (64, 96)
    columns = (torch.arange(source[1] // 4, dtype=torch.float64) + 0.5) * 4  # source x of each coarse pixel centre
    coarse = columns.expand(source[0] // 4, -1)[None].clone()  # [1, 16, 24]
    params = {"source_size": torch.tensor(source), "crop_box": torch.tensor([10, 20, 32, 48]), "flip": True}
    out = apply_geometry(coarse, params, (8, 12))
    expected = 20 + (torch.arange(12, dtype=torch.float64) + 0.5) * 48 / 12  # centre of each output pixel
    assert out.shape == (1, 8, 12)
    assert torch.allclose(out[0, 4], expected.flip(0), atol=1e-6)
    with pytest.raises(ValueError, match="resample labels at the source"):
        apply_geometry(coarse.long(), params, (8, 12), InterpolationMode.NEAREST_EXACT)


def test_a_view_left_out_is_not_drawn_and_the_other_is_unchanged(scenes):
    both = PairedViews(scenes, teacher_size=(24, 32), student_size=(12, 16), seed=6)[3]
    student_only = PairedViews(scenes, teacher_size=None, student_size=(12, 16), seed=6)[3]
    teacher_only = PairedViews(scenes, teacher_size=(24, 32), student_size=None, seed=6)[3]
    assert "teacher_image" not in student_only and "teacher_label" not in student_only
    assert "student_image" not in teacher_only
    assert torch.equal(student_only["student_image"], both["student_image"])
    assert torch.equal(teacher_only["teacher_label"], both["teacher_label"])
    with pytest.raises(ValueError, match="teacher_size, a student_size or both"):
        PairedViews(scenes, teacher_size=None, student_size=None)


def test_flips_only_views_are_the_whole_image_or_its_mirror():
    from torchvision.transforms.v2 import functional as TF

    data = create_dataset("synthetic:count=6,size=24x32", "train")
    flips_only = PairedViews(data, None, (24, 32), train=True, seed=1, scale_range=(1.0, 1.0), color_jitter=0.0)
    plain = PairedViews(data, None, (24, 32), train=False)
    flipped = 0
    for index in range(len(data)):
        view, whole = flips_only[index], plain[index]
        if view["params"]["flip"]:
            flipped += 1
            whole = {key: TF.horizontal_flip(whole[key]) for key in ("student_image", "student_label")}
        assert torch.allclose(view["student_image"], whole["student_image"], atol=1e-6)
        assert torch.equal(view["student_label"], whole["student_label"])
    assert 0 < flipped < len(data)
