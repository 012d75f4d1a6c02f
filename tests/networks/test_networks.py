"""Networks: every registered name builds, trains and returns what the contract and its entry promise."""

from __future__ import annotations

import socket

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from networks import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    NETWORKS,
    STUDENTS,
    TEACHER_NETWORKS,
    create_network,
    list_networks,
    list_students,
    normalize_images,
)
from networks.efficientnet_lite import CLASSIFIER_KEYS, imagenet_weights_path
from networks.feature_info import map_size

NUM_CLASSES = 5
HEIGHT, WIDTH = 64, 96  # divisible by 32 in neither the same way: catches height/width mix-ups


def _images(batch: int = 2) -> torch.Tensor:
    return torch.randn(batch, 3, HEIGHT, WIDTH, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("name", list_networks())
def test_forward_backward(name):
    torch.manual_seed(0)
    model = create_network(name, NUM_CLASSES).train()
    logits = model(_images())
    assert logits.shape == (2, NUM_CLASSES, HEIGHT, WIDTH)
    assert torch.isfinite(logits).all()

    target = torch.randint(0, NUM_CLASSES, (2, HEIGHT, WIDTH), generator=torch.Generator().manual_seed(1))
    F.cross_entropy(logits, target).backward()
    first_layer = next(model.backbone.parameters())
    assert first_layer.grad is not None and first_layer.grad.abs().sum() > 0
    # Every parameter takes part (a parameter without a gradient breaks DistributedDataParallel).
    without_grad = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert without_grad == []
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("name", list_networks())
def test_features_are_named_and_sized(name):
    torch.manual_seed(0)
    model = create_network(name, NUM_CLASSES).eval()
    images = _images(batch=1)  # a single image works at inference
    with torch.no_grad():
        logits, features = model(images, return_features=True)
        plain_logits = model(images)
    torch.testing.assert_close(logits, plain_logits)
    assert {"encoder", "decoder"} <= set(features)
    declared = {info.name: info for info in model.feature_info}
    assert set(features) == set(declared) == set(model.feature_channels)
    for feature_name, feature in features.items():
        assert feature.ndim == 4, feature_name
        assert feature.shape[:2] == (1, declared[feature_name].channels), feature_name
        # the declared stride is the map's, to the rounding of padded or "same" convolutions
        stride = declared[feature_name].stride
        assert feature.shape[2:] == (-(-HEIGHT // stride), -(-WIDTH // stride)), (feature_name, stride)
    assert model.num_classes == NUM_CLASSES
    # what a run sizes connectors and banks from, without a forward, is what the forward returns
    placeholder_logits, placeholder_features = model.output_info.placeholders((HEIGHT, WIDTH))
    assert placeholder_logits.shape == logits.shape
    assert {n: f.shape for n, f in placeholder_features.items()} == {n: f.shape for n, f in features.items()}
    with torch.no_grad():
        raw_logits, _ = model.forward_features(images)
    assert raw_logits.shape[2:] == map_size((HEIGHT, WIDTH), model.logits_stride)


@pytest.mark.parametrize("name", list_networks())
def test_entry_says_role_weights_and_input_multiple(name):
    entry = NETWORKS[name]
    assert entry.role in {"student", "teacher"}
    assert (name in STUDENTS) == (entry.role == "student") != (name in TEACHER_NETWORKS)
    assert entry.input_multiple == create_network(name, NUM_CLASSES).input_multiple
    if entry.imagenet_package:  # the package it names is the one installed and read
        assert entry.imagenet_package.replace("-", "_") in str(imagenet_weights_path(int(name[-1])))


def test_registry_is_a_plain_dict_of_every_student():
    assert list_students() == sorted(STUDENTS)
    assert {"tiny", "efficientnet_lite0", "segformer_b0", "lraspp_mobilenetv3"} <= set(list_students())


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="unknown student 'resnet9000'") as error:
        create_network("resnet9000", NUM_CLASSES)
    message = str(error.value)
    assert "\n" not in message
    assert all(name in message for name in list_students())


def test_num_classes_must_be_positive():
    with pytest.raises(ValueError, match="num_classes"):
        create_network("tiny", 0)


@pytest.mark.parametrize("name", list_students())
def test_pretrained_round_trip_through_safetensors(name, tmp_path, recwarn):
    torch.manual_seed(0)
    source = create_network(name, NUM_CLASSES).eval()
    path = tmp_path / "backbone.safetensors"
    save_file({key: value.contiguous() for key, value in source.backbone.state_dict().items()}, str(path))

    torch.manual_seed(1)  # another initialisation: only the loaded backbone can agree with the source
    loaded = create_network(name, NUM_CLASSES, pretrained=path).eval()

    for key, value in source.backbone.state_dict().items():
        torch.testing.assert_close(loaded.backbone.state_dict()[key], value, rtol=0, atol=0, msg=key)
    source_head, loaded_head = _head_weights(source), _head_weights(loaded)
    assert any(not torch.equal(source_head[key], loaded_head[key]) for key in source_head)
    with torch.no_grad():
        expected = source(_images(1), return_features=True)[1]["encoder"]
        got = loaded(_images(1), return_features=True)[1]["encoder"]
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    assert not [w for w in recwarn if "backbone tensors" in str(w.message)]  # a full match says nothing


def _head_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {key: value for key, value in model.state_dict().items() if not key.startswith("backbone.")}


def test_whole_student_checkpoint_loads_its_backbone_and_reports_the_rest(tmp_path):
    torch.manual_seed(0)
    source = create_network("tiny", NUM_CLASSES)
    path = tmp_path / "student.pt"
    torch.save({"state_dict": source.state_dict()}, path)
    head_tensors = len([key for key in source.state_dict() if not key.startswith("backbone.")])

    with pytest.warns(UserWarning, match=f"0 missing, {head_tensors} unexpected"):
        loaded = create_network("tiny", NUM_CLASSES, pretrained=str(path))
    for key, value in source.backbone.state_dict().items():
        torch.testing.assert_close(loaded.backbone.state_dict()[key], value, rtol=0, atol=0, msg=key)


def test_partial_match_reports_missing_count(tmp_path):
    source = create_network("tiny", NUM_CLASSES)
    partial = {key: value for key, value in source.backbone.state_dict().items() if key.startswith("stem.")}
    path = tmp_path / "stem.safetensors"
    save_file(partial, str(path))
    with pytest.warns(UserWarning, match=r"loaded \d+ of \d+ backbone tensors .*[1-9]\d* missing"):
        create_network("tiny", NUM_CLASSES, pretrained=path)


def test_weights_matching_nothing_are_an_error(tmp_path):
    path = tmp_path / "other.safetensors"
    save_file({"transformer.wte.weight": torch.zeros(4, 4)}, str(path))
    with pytest.raises(ValueError, match="no tensor of .* matches the backbone"):
        create_network("tiny", NUM_CLASSES, pretrained=path)


def test_weights_of_another_shape_are_an_error(tmp_path):
    state = create_network("tiny", NUM_CLASSES).backbone.state_dict()
    state["stem.0.weight"] = torch.zeros(8, 3, 3, 3)
    path = tmp_path / "wrong.pth"
    torch.save(state, path)
    with pytest.raises(ValueError, match="do not fit the backbone.*stem.0.weight"):
        create_network("tiny", NUM_CLASSES, pretrained=path)


def test_missing_weights_file_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no weights file"):
        create_network("tiny", NUM_CLASSES, pretrained=tmp_path / "absent.safetensors")


def test_segformer_loads_a_local_transformers_folder(tmp_path):
    torch.manual_seed(0)
    source = create_network("segformer_b0", NUM_CLASSES)
    source.backbone.save_pretrained(tmp_path / "mit-b0")
    loaded = create_network("segformer_b0", NUM_CLASSES, pretrained=tmp_path / "mit-b0")
    for key, value in source.backbone.state_dict().items():
        torch.testing.assert_close(loaded.backbone.state_dict()[key], value, rtol=0, atol=0, msg=key)


@pytest.fixture()
def no_network(monkeypatch):
    """Any attempt to open a connection fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("a student tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.mark.parametrize("variant", [0, 2])
def test_efficientnet_lite_imagenet_weights_ship_offline(variant, no_network, recwarn):
    name = f"efficientnet_lite{variant}"
    torch.manual_seed(0)
    random_init = create_network(name, NUM_CLASSES)
    torch.manual_seed(0)
    pretrained = create_network(name, NUM_CLASSES, pretrained="imagenet")

    shipped = torch.load(imagenet_weights_path(variant), map_location="cpu", weights_only=True)
    encoder_keys = [key for key in shipped if not key.startswith(CLASSIFIER_KEYS)]
    assert set(encoder_keys) == set(pretrained.backbone.state_dict())
    for key in encoder_keys:
        torch.testing.assert_close(pretrained.backbone.state_dict()[key], shipped[key], rtol=0, atol=0, msg=key)
    stem = "_conv_stem.weight"
    assert not torch.allclose(pretrained.backbone.state_dict()[stem], random_init.backbone.state_dict()[stem])
    assert not [w for w in recwarn if "backbone tensors" in str(w.message)]


@pytest.mark.parametrize("name", [name for name in list_networks() if not name.startswith("efficientnet_lite")])
def test_imagenet_without_offline_weights_is_an_error(name, no_network):
    with pytest.raises(ValueError, match="no offline ImageNet weights.*pass the path of a local state dict"):
        create_network(name, NUM_CLASSES, pretrained="imagenet")


def test_normalize_images_uses_imagenet_statistics():
    images = torch.stack([torch.full((2, 3), value) for value in IMAGENET_MEAN])[None]  # [1, 3, 2, 3]
    torch.testing.assert_close(normalize_images(images), torch.zeros_like(images))
    ones = normalize_images(torch.ones(3, 4, 4))
    for channel, (mean, std) in enumerate(zip(IMAGENET_MEAN, IMAGENET_STD, strict=True)):
        torch.testing.assert_close(ones[channel], torch.full((4, 4), (1 - mean) / std))


@pytest.mark.parametrize(
    ("images", "message"),
    [
        (torch.zeros(1, 3, 8, 8, dtype=torch.uint8), "float images"),
        (torch.full((1, 3, 8, 8), 255.0), "divide by 255"),
        (torch.zeros(1, 4, 8, 8), r"\[\.\.\., 3, H, W\]"),
    ],
)
def test_normalize_images_refuses_what_it_cannot_mean(images, message):
    with pytest.raises(ValueError, match=message):
        normalize_images(images)


@pytest.mark.parametrize(
    ("images", "message"),
    [(torch.zeros(1, 3, 32, 32, dtype=torch.uint8), "float images"), (torch.zeros(1, 1, 32, 32), r"\[B, 3, H, W\]")],
)
def test_forward_refuses_images_it_cannot_read(images, message):
    with pytest.raises(ValueError, match=message):
        create_network("tiny", NUM_CLASSES)(images)


def test_tiny_learns_a_street_like_layout():
    """Sky above buildings above road, with a car: the tiny student fits it in 30 steps."""
    generator = torch.Generator().manual_seed(0)
    labels = torch.zeros(4, HEIGHT, WIDTH, dtype=torch.long)
    labels[:, 20:40] = 1  # buildings
    labels[:, 40:] = 2  # road
    for index in range(4):
        left = 10 + 15 * index
        labels[index, 36:50, left : left + 20] = 3  # a car
    colours = torch.tensor([[0.5, 0.7, 0.9], [0.5, 0.4, 0.3], [0.3, 0.3, 0.3], [0.8, 0.1, 0.1]])
    images = colours[labels].permute(0, 3, 1, 2) + 0.05 * torch.randn(4, 3, HEIGHT, WIDTH, generator=generator)
    images = normalize_images(images.clamp(0, 1))

    torch.manual_seed(0)
    model = create_network("tiny", 4).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(30):
        optimizer.zero_grad()
        F.cross_entropy(model(images), labels).backward()
        optimizer.step()
    with torch.no_grad():
        accuracy = (model.eval()(images).argmax(1) == labels).float().mean()
    assert accuracy > 0.95
