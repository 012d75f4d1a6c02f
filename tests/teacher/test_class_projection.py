"""class_projection: frozen keeps the prompts' geometry through training; mlp and linear can erase it."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from teacher import DiffusionSegTeacher, DiffusionTeacherConfig
from teacher.head import CLASS_PROJECTIONS, EmbeddingClassifier
from tests.teacher.conftest import random_embeddings
from tests.teacher.test_teacher import TINY, swapped


def tiny_teacher(**overrides) -> DiffusionSegTeacher:
    torch.manual_seed(0)
    return DiffusionSegTeacher(DiffusionTeacherConfig(num_classes=5, embedding_dim=24, **{**TINY, **overrides})).eval()


def with_copied_class(embeddings, source: int, target: int):
    """Class ``target`` gets class ``source``'s embeddings, every token of them."""
    tokens, pooled, mask = embeddings.tokens.clone(), embeddings.pooled.clone(), embeddings.attention_mask.clone()
    tokens[target], pooled[target], mask[target] = tokens[source], pooled[source], mask[source]
    return dataclasses.replace(embeddings, tokens=tokens, pooled=pooled, attention_mask=mask)


@pytest.mark.parametrize("projection", CLASS_PROJECTIONS)
@pytest.mark.parametrize("conditioning", ["tokens", "pooled"])
def test_swapping_two_class_embeddings_swaps_their_predictions(projection, conditioning):
    teacher = tiny_teacher(class_projection=projection, conditioning=conditioning)
    images, embeddings = torch.rand(2, 3, 32, 32), random_embeddings()
    with torch.no_grad():
        logits = teacher(images, embeddings)
        logits_swapped = teacher(images, swapped(embeddings, 1, 3))
    torch.testing.assert_close(logits_swapped, logits[:, [0, 3, 2, 1, 4]], atol=1e-4, rtol=1e-4)
    assert not torch.allclose(logits_swapped, logits, atol=1e-3)


@pytest.mark.parametrize("conditioning", ["tokens", "pooled"])
def test_frozen_cannot_tell_apart_two_classes_with_identical_embeddings(conditioning):
    teacher = tiny_teacher(class_projection="frozen", conditioning=conditioning)
    with torch.no_grad():
        logits = teacher(torch.rand(2, 3, 32, 32), with_copied_class(random_embeddings(), 1, 3))
    torch.testing.assert_close(logits[:, 1], logits[:, 3])
    assert not torch.allclose(logits[:, 1], logits[:, 2], atol=1e-3)


def test_frozen_logits_are_scaled_cosines_with_the_embeddings_themselves():
    classifier = EmbeddingClassifier(8, 24, 16, class_projection="frozen", logit_scale=14.0)
    assert not any(p.requires_grad for p in classifier.class_projection.parameters())
    assert "log_scale" not in dict(classifier.named_parameters())  # fixed: a buffer, not trained
    pixels, classes = torch.randn(2, 8, 4, 5), torch.randn(5, 24)
    with torch.no_grad():
        logits = classifier(pixels, classes)
        projected = F.normalize(classifier.pixel_projection(pixels), dim=1)
    expected = 14.0 * torch.einsum("behw,ce->bchw", projected, F.normalize(classes, dim=-1))
    torch.testing.assert_close(logits, expected)


def train_to_separate(projection: str, steps: int = 150) -> tuple[float, float]:
    """Train a classifier alone to tell two classes apart whose embeddings have cosine ~0.995.

    Returns (largest logit gap it reaches, the gap a frozen head can reach at its scale at most:
    ``s * |e0/|e0| - e1/|e1||``, since the two logits are ``s * cos(p, e_i)`` for a unit ``p``).
    """
    torch.manual_seed(0)
    base = torch.randn(24)
    classes = torch.stack([base, base + 0.1 * torch.randn(24)])
    classifier = EmbeddingClassifier(8, 24, 16, class_projection=projection, logit_scale=10.0)
    pixels = torch.randn(64, 8, 1, 1)
    labels = (pixels[:, 0, 0, 0] > 0).long()  # separable from the pixels: class 1 where channel 0 > 0
    optimizer = torch.optim.Adam(classifier.parameters(), lr=0.02)
    for _ in range(steps):
        loss = F.cross_entropy(classifier(pixels, classes)[:, :, 0, 0], labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        logits = classifier(pixels, classes)[:, :, 0, 0]
    bound = classifier.scale * float((F.normalize(classes[0], dim=0) - F.normalize(classes[1], dim=0)).norm())
    return float((logits[:, 0] - logits[:, 1]).abs().max()), bound


def test_frozen_keeps_near_identical_embeddings_near_identical_after_training():
    gap, bound = train_to_separate("frozen")
    assert gap <= bound + 1e-4


@pytest.mark.parametrize("projection", ["mlp", "linear"])
def test_a_learned_projection_separates_what_the_prompts_made_near_identical(projection):
    gap, bound = train_to_separate(projection)
    assert gap > 3 * bound


def test_older_teacher_configs_keep_the_mlp():
    config = DiffusionTeacherConfig.model_validate({"num_classes": 5, "embedding_dim": 24})
    assert config.class_projection == "mlp" and config.logit_scale is None
    with pytest.raises(ValueError, match="class_projection"):
        DiffusionTeacherConfig(num_classes=5, embedding_dim=24, class_projection="frozn")
