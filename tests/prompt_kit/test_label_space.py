"""Master-labels CSVs: validated on load, labels remapped, priors, probabilities summed; the proposal from prompts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cli.promptkit_cli import promptkit
from prompt_kit.class_embeddings import ClassEmbeddings
from prompt_kit.errors import PromptKitError
from prompt_kit.label_space import LabelSpaceMap, read_label_map
from prompt_kit.label_space_proposal import propose_label_map

SOURCE = ["road", "sidewalk", "vehicle", "person", "rider", "unlabeled"]
TARGET = ["road", "sidewalk", "car", "truck", "person"]
CSV = """0,road,road
1,sidewalk,sidewalk
2,car,vehicle
3,truck,vehicle
4,person,person,rider
255,void,unlabeled
"""


@pytest.fixture()
def mapping(tmp_path) -> LabelSpaceMap:
    path = tmp_path / "master_labels.csv"
    path.write_text(CSV)
    return read_label_map(path, SOURCE, TARGET)


def test_one_source_may_sit_under_several_targets(mapping):
    assert mapping.allowed[2].tolist() == [False, False, True, True, False]  # vehicle: car and truck
    assert mapping.allowed[4].tolist() == [False, False, False, False, True]  # rider -> person
    assert not mapping.allowed[5].any()  # void


def test_labels_remap_where_the_target_is_certain_and_are_ignored_where_not(mapping):
    labels = np.array([[0, 1, 2], [3, 4, 5]])
    assert mapping.remap_labels(labels).tolist() == [[0, 1, 255], [4, 4, 255]]
    assert mapping.remap_labels(torch.tensor([[255, 3]])).tolist() == [[255, 4]]


def test_priors_restrict_each_pixel_to_what_its_source_label_allows(mapping):
    probabilities = torch.tensor([0.1, 0.1, 0.2, 0.3, 0.3])[None, :, None, None].expand(1, 5, 1, 3).clone()
    source = torch.tensor([[[2, 0, 5]]])  # vehicle, road, unlabeled
    restricted = mapping.restrict(probabilities, source)
    assert torch.allclose(restricted[0, :, 0, 0], torch.tensor([0, 0, 0.4, 0.6, 0]))  # car or truck only
    assert torch.allclose(restricted[0, :, 0, 1], torch.tensor([1.0, 0, 0, 0, 0]))
    assert restricted[0, :, 0, 2].sum() == 0  # void: nothing allowed, the pseudo-label ignores it


def test_a_teacher_in_the_source_space_gives_target_probabilities(mapping):
    source = torch.tensor([0.1, 0.1, 0.4, 0.2, 0.1, 0.1])[None, :, None, None]
    target = mapping.target_probabilities(source)[0, :, 0, 0]
    # vehicle counts for car and truck; person + rider for person; the void class's mass is dropped
    expected = torch.tensor([0.1, 0.1, 0.4, 0.4, 0.3])
    assert torch.allclose(target, expected / expected.sum())


def test_the_csv_round_trips(mapping, tmp_path):
    path = mapping.save(tmp_path / "again.csv")
    again = read_label_map(path, SOURCE, TARGET)
    assert np.array_equal(again.allowed, mapping.allowed)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (CSV.replace("2,car,vehicle", "2,car,vehicel"), "line 3, column 3: 'vehicel' is not a source class"),
        (CSV.replace("3,truck", "2,truck"), "line 4, column 1: target id 2 repeats line 3"),
        (CSV.replace("3,truck", "3,lorry"), "line 4, column 2: target 3 is 'truck' in the target classes, not 'lorry'"),
        (CSV.replace("1,sidewalk", "x,sidewalk"), "line 2, column 1: target id 'x' is not an integer"),
        (CSV.replace("1,sidewalk,sidewalk\n", ""), "no row for target class 'sidewalk'"),
        (CSV.replace("255,void,unlabeled", "255,void,unlabeled,road"), "'road' is both void and mapped"),
        ("", "is empty"),
    ],
)
def test_a_bad_mapping_file_is_one_line_naming_line_and_column(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(PromptKitError, match=message) as caught:
        read_label_map(path, SOURCE, TARGET)
    assert "\n" not in str(caught.value)


def embeddings(names: list[str], vectors: list[list[float]]) -> ClassEmbeddings:
    pooled = torch.tensor(vectors)
    return ClassEmbeddings(
        tokens=pooled[:, None, :],
        attention_mask=torch.ones(len(names), 1, dtype=torch.long),
        pooled=pooled,
        class_names=names,
        encoder="test",
        prompt_set_hash="h",
        style="label",
        extra={},
    )


def test_the_proposal_maps_each_source_to_its_nearest_target_and_flags_close_calls():
    source = embeddings(["lane", "cyclist", "ufo"], [[1, 0, 0], [0, 0.7, 0.69], [-1, -1, -1]])
    target = embeddings(["road", "rider", "bicycle"], [[1, 0.1, 0], [0, 1, 0], [0, 0, 1]])
    mapping, matches = propose_label_map(source, target, min_similarity=0.3, close=0.05)
    assert [m.best for m in matches[:2]] == ["road", "rider"]
    assert not matches[0].close and matches[1].close and matches[1].second == "bicycle"
    assert matches[2].void and not mapping.allowed[2].any()
    assert mapping.allowed[0, 0] and mapping.allowed[1, 1]


def test_promptkit_map_writes_a_csv_that_loads_back(runner, tmp_path):
    from prompt_kit.taxonomy import load_taxonomy

    out = tmp_path / "camvid_to_cityscapes.csv"
    result = runner.invoke(promptkit, ["map", "--from", "camvid", "--to", "cityscapes", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "| Car | car |" in result.stdout and "to review" in result.stderr
    camvid, cityscapes = load_taxonomy("camvid"), load_taxonomy("cityscapes")
    mapping = read_label_map(out, camvid.class_names, cityscapes.class_names)
    assert mapping.allowed[camvid.class_names.index("Car"), cityscapes.class_names.index("car")]
    bad = runner.invoke(promptkit, ["map", "--from", "camvid", "--to", "ade20k", "--out", str(tmp_path / "x.csv")])
    assert bad.exit_code == 2 and "no shipped label prompt set for 'ade20k'" in bad.stderr
    assert not (tmp_path / "x.csv").exists()
