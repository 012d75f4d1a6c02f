"""The view bank: views drawn ahead, the teacher's outputs on them stored once, read by every run."""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict, replace

import pytest
import torch
import torch.nn.functional as F
from accelerate import Accelerator

import distill.kd.view_bank as view_bank
from distill.datasets import PairedViews, create_dataset
from distill.datasets.paired_views import apply_geometry
from distill.kd.view_bank import BankedTeacherViews, BankSpec, ViewBank, bank_folder, ensure_view_bank
from distill.training.run_config import RunConfig
from prompt_kit.errors import PromptKitError
from teacher import TeacherFolder
from tests.distill.conftest import DATA
from tests.distill.test_training import run_args

SIZE = (32, 48)
LABELS = (16, 24)


@pytest.fixture()
def teacher_dir(trained_teacher, tmp_path):
    """A copy of the tiny teacher with no bank yet (the session's teacher is shared by other tests)."""
    copy = tmp_path / "teacher"
    shutil.copytree(trained_teacher, copy, ignore=shutil.ignore_patterns("view_bank", "teacher_cache"))
    return copy


def spec_for(data, views: int = 3, outputs=(("logits", None),), **changes) -> BankSpec:
    spec = BankSpec(
        data=DATA,
        images=len(data),
        teacher_size=SIZE,
        views=views,
        view_seed=0,
        augment=True,
        scale_range=(0.75, 1.5),
        flip=True,
        outputs=tuple(outputs),
    )
    return replace(spec, **changes)


def paired(data, views: int, seed: int = 0, view_seed: int = 0, train: bool = True, teacher_size=None) -> PairedViews:
    return PairedViews(
        data, teacher_size, student_size=LABELS, train=train, seed=seed, views=views, view_seed=view_seed
    )


# -- the views -------------------------------------------------------------------------------------


def test_each_view_is_read_once_per_cycle_in_an_order_the_student_seed_draws():
    data = create_dataset(DATA, "train")
    first, other = paired(data, views=4, seed=0), paired(data, views=4, seed=1)
    for index in range(6):
        schedule = [first.view_of(index, epoch) for epoch in range(12)]
        for cycle in range(3):
            assert sorted(schedule[4 * cycle : 4 * cycle + 4]) == [0, 1, 2, 3]
    orders = {index: [first.view_of(index, e) for e in range(4)] for index in range(8)}
    assert any(orders[index] != [other.view_of(index, e) for e in range(4)] for index in range(8))
    assert len({tuple(order) for order in orders.values()}) > 1  # not one order for every image


def test_a_views_geometry_depends_on_view_seed_and_not_on_the_student_seed():
    data = create_dataset(DATA, "train")
    source = (32, 48)
    a, b, c = paired(data, 4, seed=0), paired(data, 4, seed=7), paired(data, 4, seed=0, view_seed=1)
    for view in range(4):
        pa, pb, pc = (views.view_params(2, view, source) for views in (a, b, c))
        assert torch.equal(pa["crop_box"], pb["crop_box"]) and pa["flip"] == pb["flip"] and pa["scale"] == pb["scale"]
    boxes = [tuple(a.view_params(2, v, source)["crop_box"].tolist()) for v in range(4)]
    assert len(set(boxes)) > 1  # the views of one image differ
    assert any(
        not torch.equal(a.view_params(2, v, source)["crop_box"], c.view_params(2, v, source)["crop_box"])
        for v in range(4)
    )
    with pytest.raises(ValueError, match="views 0..3, not 4"):
        a.view_params(2, 4, source)


def test_colour_jitter_is_drawn_per_visit_and_the_teacher_reads_the_view_unjittered():
    data = create_dataset(DATA, "train")
    views = paired(data, 2, seed=3, teacher_size=SIZE)
    views.set_epoch(0)
    visit = views[1]
    epoch = next(e for e in range(2, 20) if views.view_of(1, e) == visit["params"]["view"])
    views.set_epoch(epoch)
    again = views[1]
    assert torch.equal(visit["params"]["crop_box"], again["params"]["crop_box"])
    assert visit["params"]["brightness"] != again["params"]["brightness"]
    assert torch.equal(visit["teacher_image"], again["teacher_image"])  # no jitter on the teacher's side
    image, _ = data[1]
    assert torch.equal(visit["teacher_image"], apply_geometry(image, visit["params"], SIZE))


def test_without_views_each_epoch_draws_a_fresh_crop():
    data = create_dataset(DATA, "train")
    views = paired(data, views=0)
    boxes = set()
    for epoch in range(6):
        views.set_epoch(epoch)
        params = views[0]["params"]
        assert params["view"] == -1
        boxes.add(tuple(params["crop_box"].tolist()))
    assert len(boxes) > 2


# -- the bank --------------------------------------------------------------------------------------


def test_banked_outputs_equal_the_live_teacher_on_the_same_view_within_float16(teacher_dir):
    teacher = TeacherFolder(teacher_dir).load()
    data = create_dataset(DATA, "train")
    outputs = (("logits", None), ("feature.decoder", None), ("feature.up0", (2, 3)), ("feature.up1", (64, 96)))
    spec = spec_for(data, views=3, outputs=outputs, dtype="float16")
    views = paired(data, 3, seed=4, teacher_size=SIZE)
    report = ensure_view_bank(teacher, teacher_dir, views, spec, Accelerator(cpu=True))
    assert report.built and report.teacher_forward_images == 3 * len(data)
    banked = BankedTeacherViews(views, ViewBank(report.folder, spec))
    for epoch, index in ((0, 5), (1, 5), (2, 17)):
        banked.set_epoch(epoch)
        item = banked[index]
        assert item["params"]["view"] >= 0
        with torch.no_grad():
            logits, named = teacher(item["teacher_image"][None], return_features=True)
        assert torch.allclose(item["teacher_logits"], logits[0], atol=1e-2, rtol=1e-2)
        assert torch.allclose(item["teacher_features"]["decoder"], named["decoder"][0], atol=1e-2, rtol=1e-2)
        # stored at the student's size, resized as the loss resizes the live map
        up0 = F.interpolate(named["up0"], size=(2, 3), mode="bilinear", align_corners=False)[0]
        assert item["teacher_features"]["up0"].shape[-2:] == (2, 3)
        assert torch.allclose(item["teacher_features"]["up0"], up0, atol=1e-2, rtol=1e-2)
        # a map the loss would enlarge is stored at its own size
        assert item["teacher_features"]["up1"].shape == named["up1"][0].shape
    record = json.loads((report.folder / "bank.json").read_text())
    assert record["teacher_forward_images"] == 3 * len(data) and record["bytes"] > 0


def test_a_float32_bank_the_default_equals_the_live_teacher_to_float32_rounding(teacher_dir):
    assert RunConfig().view_bank_dtype == "float32"
    teacher = TeacherFolder(teacher_dir).load()
    data = create_dataset(DATA, "train")
    spec = spec_for(data, views=2, dtype="float32")
    views = paired(data, 2, seed=1, teacher_size=SIZE)
    report = ensure_view_bank(teacher, teacher_dir, views, spec, Accelerator(cpu=True))
    banked = BankedTeacherViews(views, ViewBank(report.folder, spec))
    for epoch, index in ((0, 2), (1, 9)):
        banked.set_epoch(epoch)
        item = banked[index]
        with torch.no_grad():
            live = teacher(item["teacher_image"][None])[0]
        assert torch.allclose(item["teacher_logits"], live, atol=1e-5, rtol=1e-5)
        assert not torch.allclose(item["teacher_logits"], live.half().float(), atol=1e-7, rtol=0)


def test_a_top_k_bank_keeps_each_pixels_largest_logits_and_the_mass_of_the_rest(teacher_dir):
    teacher = TeacherFolder(teacher_dir).load()
    data = create_dataset(DATA, "train")
    views = paired(data, 2, seed=1, teacher_size=SIZE)
    dense = ensure_view_bank(teacher, teacher_dir, views, spec_for(data, views=2), Accelerator(cpu=True))
    spec = spec_for(data, views=2, top_k=2)
    report = ensure_view_bank(teacher, teacher_dir, views, spec, Accelerator(cpu=True))
    assert report.folder != dense.folder
    size = sum(path.stat().st_size for path in report.folder.glob("shard-*"))
    assert size < sum(path.stat().st_size for path in dense.folder.glob("shard-*"))
    item = BankedTeacherViews(views, ViewBank(report.folder, spec))[4]
    with torch.no_grad():
        live = teacher(item["teacher_image"][None])[0]
    banked = item["teacher_logits"]
    assert banked.shape == live.shape and torch.equal(banked.argmax(0), live.argmax(0))
    top = live.topk(2, dim=0)
    assert torch.allclose(banked.gather(0, top.indices), top.values, atol=1e-2, rtol=1e-2)
    p_live, p_banked = live.softmax(0), banked.softmax(0)
    assert torch.allclose(p_banked.gather(0, top.indices), p_live.gather(0, top.indices), atol=2e-3)
    rest = torch.ones_like(live, dtype=torch.bool).scatter_(0, top.indices, False)
    share = (1 - p_live.gather(0, top.indices).sum(0)) / (live.shape[0] - 2)  # the rest share evenly
    assert torch.allclose(p_banked[rest], share.expand_as(live)[rest], atol=2e-3)
    assert torch.allclose(p_banked.sum(0), torch.ones(live.shape[1:]), atol=1e-3)


def test_top_k_of_every_class_is_a_one_line_error(teacher_dir):
    teacher = TeacherFolder(teacher_dir).load()
    data = create_dataset(DATA, "train")
    classes = len(data.taxonomy.class_names)
    spec = spec_for(data, views=1, top_k=classes)
    with pytest.raises(PromptKitError, match=f"keeps every one of the teacher's {classes} classes"):
        ensure_view_bank(teacher, teacher_dir, paired(data, 1, teacher_size=SIZE), spec, Accelerator(cpu=True))


def test_a_finished_bank_is_read_again_without_the_teacher(teacher_dir, monkeypatch):
    teacher = TeacherFolder(teacher_dir).load()
    data = create_dataset(DATA, "train")
    spec = spec_for(data)
    views = paired(data, 3)
    ensure_view_bank(teacher, teacher_dir, views, spec, Accelerator(cpu=True))

    def no_teacher(*args, **kwargs):
        raise AssertionError("the teacher ran again")

    monkeypatch.setattr(view_bank, "_build_shards", no_teacher)
    again = ensure_view_bank(teacher, teacher_dir, views, spec, Accelerator(cpu=True))
    assert not again.built and again.teacher_forward_images == 0


def test_a_killed_build_keeps_its_finished_shards(teacher_dir, monkeypatch):
    monkeypatch.setattr(view_bank, "SHARD_IMAGES", 8)
    teacher = TeacherFolder(teacher_dir).load()
    data = create_dataset(DATA, "train")  # 24 images: shards of 8
    spec = spec_for(data, views=2)
    views = paired(data, 2)
    built = []
    original = view_bank.atomic_write_bytes

    def die_after_two_shards(path, payload):
        original(path, payload)
        built.append(path.name)
        if len(built) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(view_bank, "atomic_write_bytes", die_after_two_shards)
    with pytest.raises(KeyboardInterrupt):
        ensure_view_bank(teacher, teacher_dir, views, spec, Accelerator(cpu=True))
    folder = bank_folder(teacher_dir, teacher, spec)
    assert not (folder / "bank.json").exists() and len(list(folder.glob("shard-*"))) == 2
    kept = {path.name: path.stat().st_mtime_ns for path in folder.glob("shard-*")}
    monkeypatch.setattr(view_bank, "atomic_write_bytes", original)
    report = ensure_view_bank(teacher, teacher_dir, views, spec, Accelerator(cpu=True))
    assert report.built and report.teacher_forward_images == 8 * 2  # the one unfinished shard only
    assert all(folder.joinpath(name).stat().st_mtime_ns == mtime for name, mtime in kept.items())
    # a torn shard is not a finished one: it is computed again
    (folder / "shard-00001.safetensors").write_bytes(b"torn")
    (folder / "bank.json").unlink()
    assert ensure_view_bank(teacher, teacher_dir, views, spec, Accelerator(cpu=True)).teacher_forward_images == 16


def test_the_key_changes_with_everything_a_bank_holds(trained_teacher):
    teacher = TeacherFolder(trained_teacher).load()
    data = create_dataset(DATA, "train")
    spec = spec_for(data)
    changes = [
        {"views": 4},
        {"view_seed": 1},
        {"teacher_size": (64, 96)},
        {"data": DATA + ",seed=1"},
        {"outputs": (("logits", LABELS),)},
        {"outputs": (("logits", None), ("feature.decoder", None))},
        {"augment": False},
        {"scale_range": (1.0, 1.0)},
        {"dtype": "float16"},
        {"top_k": 3},
    ]
    keys = {spec.key(teacher)} | {replace(spec, **change).key(teacher) for change in changes}
    assert len(keys) == len(changes) + 1


def test_a_bank_built_before_dtype_and_top_k_existed_keeps_its_key(trained_teacher):
    teacher = TeacherFolder(trained_teacher).load()
    spec = spec_for(create_dataset(DATA, "train"), dtype="float16")
    before = {name: value for name, value in asdict(spec).items() if name not in ("dtype", "top_k")}
    digest = hashlib.sha256(teacher.identity.encode())
    digest.update(json.dumps([1, before], sort_keys=True).encode())
    assert spec.key(teacher) == digest.hexdigest()[:20]


def test_without_augmentation_the_bank_holds_one_view_the_whole_image(teacher_dir):
    teacher = TeacherFolder(teacher_dir).load()
    data = create_dataset(DATA, "train")
    spec = spec_for(data, views=4, augment=False)
    views = paired(data, 4, train=False, teacher_size=SIZE)
    report = ensure_view_bank(teacher, teacher_dir, views, spec, Accelerator(cpu=True))
    assert report.teacher_forward_images == len(data)
    item = BankedTeacherViews(views, ViewBank(report.folder, spec))[3]
    with torch.no_grad():
        live = teacher(item["teacher_image"][None])[0]
    assert torch.allclose(item["teacher_logits"], live, atol=1e-2, rtol=1e-2)


def test_a_missing_feature_map_names_the_ones_the_teacher_has(teacher_dir):
    from prompt_kit.errors import PromptKitError

    teacher = TeacherFolder(teacher_dir).load()
    data = create_dataset(DATA, "train")
    spec = spec_for(data, outputs=(("logits", None), ("feature.neck", None)))
    with pytest.raises(PromptKitError, match="no feature map 'neck' to bank: it offers"):
        ensure_view_bank(teacher, teacher_dir, paired(data, 3), spec, Accelerator(cpu=True))


# -- runs ------------------------------------------------------------------------------------------


def test_a_second_run_of_the_teacher_reads_the_bank_and_counts_no_teacher_forward(runner, teacher_dir, tmp_path):
    from cli.distill_cli import distill

    metrics = []
    for seed, kd in ((0, "kl"), (1, "kl"), (2, "dist")):
        out = tmp_path / f"run{seed}"
        result = runner.invoke(distill, run_args(out, teacher_dir, kd=kd, steps=4, extra=["--seed", str(seed)]))
        assert result.exit_code == 0, result.output
        metrics.append(json.loads((out / "metrics.json").read_text()))
    first, second, third = metrics
    assert first["teacher_cache"] == "views" and first["teacher_views"] == 16
    assert first["teacher_forward_images"] == 24 * 16 and first["view_bank"]["built"]
    for later in (second, third):  # another seed, another logits loss: the same bank
        assert later["teacher_forward_images"] == 0 and not later["view_bank"]["built"]
        assert later["view_bank"]["folder"] == first["view_bank"]["folder"]


def test_a_live_run_counts_the_teacher_forwards_and_a_run_without_kd_none(runner, teacher_dir, tmp_path):
    from cli.distill_cli import distill

    live = tmp_path / "live"
    extra = ["--set", "teacher_cache=live", "--set", "teacher_views=4"]
    result = runner.invoke(distill, run_args(live, teacher_dir, kd="kl", steps=3, extra=extra))
    assert result.exit_code == 0, result.output
    metrics = json.loads((live / "metrics.json").read_text())
    assert metrics["teacher_forward_images"] == 3 * 4 and metrics["teacher_views"] == 4  # 3 steps of batch 4
    assert not (teacher_dir / "view_bank").exists()
    plain = tmp_path / "plain"
    result = runner.invoke(distill, run_args(plain, kd="none", steps=2))
    assert result.exit_code == 0, result.output
    metrics = json.loads((plain / "metrics.json").read_text())
    assert metrics["teacher_forward_images"] == 0 and metrics["teacher_views"] == 0


def test_distill_cache_builds_the_bank_a_run_then_reads(runner, teacher_dir, tmp_path):
    from cli.distill_cli import distill

    common = ["--student", "tiny", "--student-size", "32x48", "--kd", "kl"]
    result = runner.invoke(distill, ["cache", str(teacher_dir), "--data", DATA, "--views", "2", *common])
    assert result.exit_code == 0, result.output
    assert "24 images x 2 views" in result.output and "48 teacher forwards" in result.output
    result = runner.invoke(distill, ["cache", str(teacher_dir), "--data", DATA, "--views", "2", *common])
    assert result.exit_code == 0 and "already built" in result.output
    out = tmp_path / "run"
    result = runner.invoke(distill, run_args(out, teacher_dir, kd="kl", steps=2, extra=["--set", "teacher_views=2"]))
    assert result.exit_code == 0, result.output
    assert json.loads((out / "metrics.json").read_text())["teacher_forward_images"] == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--kd", "none"], "reads nothing from a teacher"),
        (["--set", "teacher_cache=live"], "reads no view bank"),
        (["--views", "0"], "--views"),
        (["--set", "teacher_vews=2"], "teacher_vews"),
    ],
)
def test_distill_cache_refuses_what_reads_no_bank_in_one_line(runner, teacher_dir, args, message):
    from cli.distill_cli import distill

    result = runner.invoke(distill, ["cache", str(teacher_dir), "--data", DATA, *args])
    assert result.exit_code != 0 and message in result.output
    assert "Traceback" not in result.output
    assert not (teacher_dir / "view_bank").exists()


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        (["--set", "teacher_cache=bank"], "teacher_cache"),
        (["--set", "teacher_views=0"], "teacher_cache=views needs teacher_views >= 1"),
        (["--set", "teacher_views=2000"], "teacher_views"),
        (["--set", "view_bank_dtype=float8"], "view_bank_dtype"),
        (["--set", "view_bank_top_k=-1"], "view_bank_top_k"),
    ],
)
def test_a_bad_teacher_cache_setting_is_a_one_line_error(runner, teacher_dir, tmp_path, setting, message):
    from cli.distill_cli import distill

    result = runner.invoke(distill, run_args(tmp_path / "run", teacher_dir, kd="kl", steps=2, extra=setting))
    assert result.exit_code != 0 and message in result.output
    assert "Traceback" not in result.output and not (tmp_path / "run").exists()


def test_configs_written_before_views_keep_their_meaning():
    assert RunConfig(teacher_cache=True).teacher_cache == "image"
    assert RunConfig(teacher_cache=False).teacher_cache == "live"
    assert RunConfig(teacher_cache=False, teacher_views=0).teacher_views == 0
