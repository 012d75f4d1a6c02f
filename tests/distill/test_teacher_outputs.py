"""The teacher-output cache: the same logits as the live teacher, cropped like each sample, keyed honestly."""

from __future__ import annotations

import json

import pytest
import torch
from accelerate import Accelerator

from distill.datasets import PairedViews, create_dataset
from distill.datasets.paired_views import apply_geometry
from distill.kd.teacher_outputs import (
    CACHE_FOLDER,
    LOGITS_KEY,
    CachedTeacherViews,
    cache_key,
    cached_teacher_outputs,
)
from prompt_kit.class_embeddings import ClassEmbeddings
from prompt_kit.errors import PromptKitError
from teacher import PromptConditionedTeacher, TeacherFolder, load_teacher
from tests.distill.conftest import DATA

SIZE = (32, 48)


@pytest.fixture(scope="module")
def loaded(trained_teacher):
    folder = TeacherFolder(trained_teacher)
    return folder.load(), folder.class_embeddings()


def test_cached_logits_equal_the_live_teacher_on_whole_images(trained_teacher, loaded, tmp_path):
    teacher, embeddings = loaded
    data = create_dataset(DATA, "train")
    logits = cached_teacher_outputs(teacher, trained_teacher, DATA, data, SIZE, Accelerator(cpu=True))[LOGITS_KEY]
    assert logits.dtype == torch.float16 and logits.shape == (len(data), 11, 8, 12)
    views = CachedTeacherViews(PairedViews(data, teacher_size=SIZE, student_size=(16, 24), train=False), logits)
    item = views[3]
    with torch.no_grad():
        live = teacher(item["teacher_image"][None])[0]
    assert torch.allclose(item["teacher_logits"], live, atol=2e-2, rtol=1e-2)


def test_cache_is_computed_once_and_reused(trained_teacher, loaded, monkeypatch):
    teacher, embeddings = loaded
    data = create_dataset(DATA, "train")
    accelerator = Accelerator(cpu=True)
    first = cached_teacher_outputs(teacher, trained_teacher, DATA, data, SIZE, accelerator)[LOGITS_KEY]
    import distill.kd.teacher_outputs as outputs

    def not_again(*args, **kwargs):
        raise AssertionError("the cache was recomputed")

    monkeypatch.setattr(outputs, "compute_teacher_outputs", not_again)
    second = cached_teacher_outputs(teacher, trained_teacher, DATA, data, SIZE, accelerator)[LOGITS_KEY]
    assert torch.equal(first, second)
    files = list((trained_teacher / CACHE_FOLDER).glob("*.safetensors"))
    assert files and all(path.stat().st_size > 0 for path in files)


def test_cache_key_follows_embeddings_data_and_size(trained_teacher, loaded):
    teacher, embeddings = loaded
    key = cache_key(teacher, DATA, SIZE)
    other = ClassEmbeddings(
        tokens=embeddings.tokens.flip(0),
        attention_mask=embeddings.attention_mask.flip(0),
        pooled=embeddings.pooled.flip(0),
        class_names=embeddings.class_names,
        encoder=embeddings.encoder,
        prompt_set_hash=embeddings.prompt_set_hash,
        style=embeddings.style,
        extra=embeddings.extra,
    )
    folder = TeacherFolder(trained_teacher)
    conditioned_otherwise = PromptConditionedTeacher(load_teacher(trained_teacher), other, folder.identity(other))
    assert cache_key(conditioned_otherwise, DATA, SIZE) != key
    assert cache_key(teacher, DATA + ",seed=1", SIZE) != key
    assert cache_key(teacher, DATA, (48, 64)) != key
    assert cache_key(folder.load(), DATA, SIZE) == key


def test_an_in_memory_teacher_identity_follows_its_weights(trained_teacher, loaded):
    _, embeddings = loaded
    first = PromptConditionedTeacher(load_teacher(trained_teacher), embeddings)
    second = PromptConditionedTeacher(load_teacher(trained_teacher), embeddings)
    assert first.identity == second.identity
    with torch.no_grad():
        next(second.parameters()).add_(1e-3)
    third = PromptConditionedTeacher(second.model, embeddings)
    assert third.identity != first.identity


def test_augmented_views_crop_the_cached_map_like_the_image(trained_teacher, loaded):
    """A cached map that encodes its own coordinates comes back cropped and flipped like the sample."""
    data = create_dataset(DATA, "train")
    height, width = 8, 12
    rows = torch.arange(height, dtype=torch.float32)[:, None].expand(height, width)
    cols = torch.arange(width, dtype=torch.float32)[None, :].expand(height, width)
    coordinates = torch.stack([rows, cols]).expand(len(data), 2, height, width).contiguous()
    views = CachedTeacherViews(PairedViews(data, teacher_size=SIZE, student_size=SIZE, train=True, seed=3), coordinates)
    for index in range(6):
        item = views[index]
        expected = apply_geometry(coordinates[index], item["params"], (height, width))
        assert torch.equal(item["teacher_logits"], expected)
        if bool(item["params"]["flip"]):
            # flipped: columns decrease from left to right
            assert item["teacher_logits"][1, 0, 0] > item["teacher_logits"][1, 0, -1]


def test_cached_and_live_kd_runs_both_train(runner, trained_teacher, tmp_path):
    from cli.distill_cli import distill
    from tests.distill.test_training import run_args

    for name, cache in (("cached", "true"), ("live", "false")):
        args = run_args(tmp_path / name, trained_teacher, kd="kl", steps=4, extra=["--set", f"teacher_cache={cache}"])
        result = runner.invoke(distill, args)
        assert result.exit_code == 0, result.output
    cached = json.loads((tmp_path / "cached" / "metrics.json").read_text())
    live = json.loads((tmp_path / "live" / "metrics.json").read_text())
    # same teacher, same student init and batches; only the teacher outputs' source differs
    assert cached["teacher"]["miou"] == live["teacher"]["miou"]
    assert 0 <= cached["miou"] <= 1 and 0 <= live["miou"] <= 1


def test_a_held_out_part_of_train_gets_its_own_cached_logits(trained_teacher, loaded):
    from distill.datasets.holdout import holdout_split

    teacher, embeddings = loaded
    data = create_dataset(DATA, "train")
    accelerator = Accelerator(cpu=True)
    whole = cached_teacher_outputs(teacher, trained_teacher, DATA, data, SIZE, accelerator)[LOGITS_KEY]
    kept, _ = holdout_split(data, 4)
    part = cached_teacher_outputs(teacher, trained_teacher, DATA, kept, SIZE, accelerator)[LOGITS_KEY]
    assert part.shape[0] == len(kept) == len(data) - 4
    assert torch.allclose(part.float(), whole[kept.indices].float(), atol=1e-2)  # same images, other batches


def test_cached_feature_maps_equal_the_live_teacher_and_are_cropped_like_the_logits(trained_teacher, loaded):
    teacher, _ = loaded
    data = create_dataset(DATA, "train")
    outputs = cached_teacher_outputs(
        teacher, trained_teacher, DATA, data, SIZE, Accelerator(cpu=True), ("decoder", "up0")
    )
    assert set(outputs) == {"logits", "feature.decoder", "feature.up0"}
    assert all(value.dtype == torch.float16 and value.shape[0] == len(data) for value in outputs.values())
    whole = CachedTeacherViews(PairedViews(data, teacher_size=SIZE, student_size=(16, 24), train=False), outputs)
    item = whole[2]
    with torch.no_grad():
        live_logits, live = teacher(item["teacher_image"][None], return_features=True)
    for name in ("decoder", "up0"):
        assert torch.allclose(item["teacher_features"][name], live[name][0], atol=2e-2, rtol=1e-2), name
    # augmented: every map is cropped at its own resolution with the sample's box
    views = CachedTeacherViews(PairedViews(data, teacher_size=SIZE, student_size=SIZE, train=True, seed=5), outputs)
    item = views[1]
    decoder = outputs["feature.decoder"][1].float()
    expected = apply_geometry(decoder, item["params"], tuple(decoder.shape[-2:]))
    assert torch.equal(item["teacher_features"]["decoder"], expected)


def test_a_cache_with_features_has_its_own_key_and_a_logits_entry_keeps_its_key(trained_teacher, loaded):
    teacher, _ = loaded
    plain = cache_key(teacher, DATA, SIZE)
    assert cache_key(teacher, DATA, SIZE, ()) == plain
    assert cache_key(teacher, DATA, SIZE, ("decoder",)) != plain
    assert cache_key(teacher, DATA, SIZE, ("decoder",)) != cache_key(teacher, DATA, SIZE, ("decoder", "up0"))


def test_caching_a_feature_the_teacher_does_not_have_names_the_ones_it_has(trained_teacher, loaded):
    teacher, _ = loaded
    data = create_dataset(DATA, "train")
    with pytest.raises(PromptKitError, match="no feature map 'neck' to cache: it offers up0, up1"):
        cached_teacher_outputs(teacher, trained_teacher, DATA, data, SIZE, Accelerator(cpu=True), ("neck",))


def test_a_feature_term_trains_from_the_cache_and_live(runner, trained_teacher, tmp_path):
    from tests.distill.test_kd_terms import run_with_terms

    term = [{"loss": "mse", "student": "decoder", "teacher": "decoder", "connector": "conv1x1"}]
    for name, cache in (("cached", True), ("live", False)):
        result = run_with_terms(
            runner, tmp_path, name, trained_teacher, term, extra=["--set", f"teacher_cache={cache}"]
        )
        assert result.exit_code == 0, result.output
    entries = list((trained_teacher / CACHE_FOLDER).glob("*.safetensors"))
    assert any("feature.decoder" in load_keys(path) for path in entries)
    cached = json.loads((tmp_path / "cached" / "metrics.json").read_text())
    live = json.loads((tmp_path / "live" / "metrics.json").read_text())
    assert cached["teacher"]["miou"] == live["teacher"]["miou"]
    assert 0 <= cached["miou"] <= 1 and 0 <= live["miou"] <= 1


def load_keys(path) -> set[str]:
    from safetensors import safe_open

    with safe_open(str(path), "pt") as handle:
        return set(handle.keys())
