from __future__ import annotations

import pytest

from prompt_kit import PromptKitError, list_taxonomies, load_taxonomy

CAMVID_SEGNET_ORDER = [
    "Sky", "Building", "Pole", "Road", "Pavement", "Tree",
    "SignSymbol", "Fence", "Car", "Pedestrian", "Bicyclist",
]  # fmt: skip


def test_builtin_taxonomies_are_listed():
    assert {"camvid", "kitti11", "cityscapes"} <= set(list_taxonomies())


def test_camvid_follows_the_segnet_label_ids():
    camvid = load_taxonomy("camvid")
    assert camvid.class_names == CAMVID_SEGNET_ORDER
    assert camvid.ignore_index == 11


@pytest.mark.parametrize(("name", "count"), [("camvid", 11), ("kitti11", 11), ("cityscapes", 19)])
def test_builtin_class_counts_and_distinct_colours(name, count):
    taxonomy = load_taxonomy(name)
    assert taxonomy.num_classes == count
    assert len({info.color for info in taxonomy.classes}) == count


def test_kitti11_order_is_the_seed_projects():
    assert load_taxonomy("kitti11").class_names == [
        "sky", "building", "road", "sidewalk", "fence", "vegetation",
        "pole", "car", "sign", "pedestrian", "cyclist",
    ]  # fmt: skip


def test_user_taxonomy_file(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("name: mine\nclasses:\n  - {name: cat}\n  - {name: dog, label: puppy}\n")
    taxonomy = load_taxonomy(path)
    assert taxonomy.labels == ["cat", "puppy"]
    assert taxonomy.ignore_index == 255


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("name: x\nclasses:\n  - {name: a}\n  - {name: A}\n", "duplicate class name"),
        ("name: x\nignore_index: 1\nclasses:\n  - {name: a}\n  - {name: b}\n", "ignore_index 1 is a class id"),
        ("name: x\nclasses:\n  - {name: a, color: [0, 0, 300]}\n  - {name: b}\n", "0..255"),
        ("name: x\nclasses: [\n", "not valid YAML"),
        ("- just\n- a list\n", "expected a YAML mapping"),
        ("name: x\nclasses:\n  - {name: a}\n", "at least 2"),
    ],
)
def test_malformed_taxonomy_is_a_one_line_error(tmp_path, body, message):
    path = tmp_path / "bad.yaml"
    path.write_text(body)
    with pytest.raises(PromptKitError, match=message) as info:
        load_taxonomy(path)
    assert "\n" not in str(info.value)


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(PromptKitError, match="camvid, cityscapes, kitti11"):
        load_taxonomy("ade21k")
