"""Every registered teacher-size network behind the Teacher interface: forward, features, a KD step, the cache."""

from __future__ import annotations

import pytest
import torch
from accelerate import Accelerator

from distill.kd.losses import create_loss
from networks import create_network, list_teacher_networks, normalize_images
from teacher import FeatureInfo, NetworkTeacher, PromptConditionedTeacher, freeze
from tests.teacher.conftest import random_embeddings

CLASSES = [f"class{i}" for i in range(5)]
HEIGHT, WIDTH = 64, 96  # multiples of 16 (DeepLabV3+), not square


def _images(batch: int = 2) -> torch.Tensor:
    return torch.rand(batch, 3, HEIGHT, WIDTH, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module", params=list_teacher_networks())
def network_teacher(request) -> NetworkTeacher:
    torch.manual_seed(0)
    return freeze(NetworkTeacher(create_network(request.param, len(CLASSES)), CLASSES, name=request.param))


def test_registry_holds_the_teacher_sizes_the_issue_names():
    assert {
        "efficientnet_lite2",
        "deeplabv3_resnet50",
        "deeplabv3_resnet101",
        "deeplabv3plus_resnet101",
        "segformer_b2",
    } <= set(list_teacher_networks())


def test_forward_gives_logits_and_the_features_feature_info_describes(network_teacher):
    images = _images()
    with torch.no_grad():
        logits, features = network_teacher(images, return_features=True)
        plain = network_teacher(images)
    torch.testing.assert_close(logits, plain)
    assert logits.shape[:2] == (2, len(CLASSES)) and torch.isfinite(logits).all()
    stride = HEIGHT // logits.shape[-2]
    assert HEIGHT % logits.shape[-2] == 0 and WIDTH // logits.shape[-1] == stride and stride in (1, 4, 8, 16)
    assert network_teacher.output_info.logits_stride == stride  # declared, as a run reads it before any forward
    info = {entry.name: entry for entry in network_teacher.feature_info}
    assert set(info) == set(features) >= {"encoder", "decoder"}
    for name, feature in features.items():
        assert isinstance(info[name], FeatureInfo)
        assert feature.shape[1] == info[name].channels, name
        assert feature.shape[-2] * info[name].stride == HEIGHT, name
    assert network_teacher.class_names == CLASSES
    assert not any(p.requires_grad for p in network_teacher.parameters()) and not network_teacher.training


def test_a_kd_step_moves_the_student_and_not_the_teacher(network_teacher):
    images = _images()
    student = create_network("tiny", len(CLASSES)).train()
    before = [p.detach().clone() for p in network_teacher.parameters()]
    with torch.no_grad():
        teacher_logits = network_teacher(images)
    student_logits = student(normalize_images(images))
    loss = create_loss("kl", align="downsample_teacher")(student_logits, teacher_logits, None)
    loss.backward()
    assert torch.isfinite(loss) and loss > 0
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in student.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, network_teacher.parameters(), strict=True))


def test_cached_outputs_equal_the_live_teacher(network_teacher):
    from distill.datasets import PairedViews, create_dataset
    from distill.kd.teacher_outputs import LOGITS_KEY, compute_teacher_outputs

    data = create_dataset("synthetic:count=3,size=32x48", "train")
    names = data.taxonomy.class_names
    torch.manual_seed(0)
    teacher = freeze(NetworkTeacher(create_network(network_teacher.name, len(names)), names, name=network_teacher.name))
    cached = compute_teacher_outputs(teacher, data, (HEIGHT, WIDTH), Accelerator(cpu=True), batch_size=2)[LOGITS_KEY]
    assert cached.dtype == torch.float16 and cached.shape[:2] == (3, len(names))
    image = PairedViews(data, teacher_size=(HEIGHT, WIDTH), student_size=None, train=False)[1]["teacher_image"]
    with torch.no_grad():
        live = teacher(image[None])[0]
    torch.testing.assert_close(cached[1].float(), live, atol=2e-2, rtol=1e-2)


def test_identity_follows_the_weights():
    torch.manual_seed(0)
    same = NetworkTeacher(create_network("tiny", len(CLASSES)), CLASSES)
    torch.manual_seed(0)
    again = NetworkTeacher(create_network("tiny", len(CLASSES)), CLASSES)
    torch.manual_seed(1)
    other = NetworkTeacher(create_network("tiny", len(CLASSES)), CLASSES)
    assert same.identity == again.identity != other.identity


def test_a_size_off_the_input_multiple_is_a_one_line_error():
    from prompt_kit.errors import PromptKitError

    teacher = NetworkTeacher(create_network("deeplabv3plus_resnet101", len(CLASSES)), CLASSES)
    assert teacher.input_multiple == 16
    with pytest.raises(PromptKitError, match="not a multiple of 16") as error:
        teacher(torch.rand(1, 3, 40, 48))
    assert "\n" not in str(error.value)


def test_the_diffusion_teacher_reads_like_any_other():
    from tests.teacher.test_teacher import tiny_teacher

    embeddings = random_embeddings(classes=5, dim=24)
    teacher = freeze(PromptConditionedTeacher(tiny_teacher(), embeddings))
    images = torch.rand(1, 3, 32, 48)
    with torch.no_grad():
        logits, features = teacher(images, return_features=True)
        direct = teacher.model(images, embeddings)
    torch.testing.assert_close(logits, direct)
    info = {entry.name: entry for entry in teacher.feature_info}
    assert info["decoder"].stride == 4 and info["decoder"].channels == features["decoder"].shape[1]
    assert teacher.output_info.logits_stride == 32 // logits.shape[-2]  # measured once on a small image
    assert teacher.class_names == embeddings.class_names and teacher.kind == "diffusion"
