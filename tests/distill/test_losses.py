"""Every registered KD loss against an independent float64 reference written here with plain loops.

The references use numpy and the textbook formulas only (no helper of ``distill.kd.losses``), on small
random inputs with some ignored pixels. Shared behaviour (zero for identical inputs, gradients,
ignored pixels, alignment) is checked for every name in ``list_losses()``, so a new loss is tested
the moment it is registered.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from distill.kd.losses import KDLoss, create_loss, list_losses, parse_kd_spec
from distill.kd.terms import build_terms, kd_loss, shorthand_specs
from prompt_kit.errors import PromptKitError

B, C, H, W = 2, 4, 5, 6


# ---------------------------------------------------------------------------------------------
# References: numpy float64, one pixel / channel / row at a time.


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


def kl(p: np.ndarray, q: np.ndarray) -> float:
    return float(sum(p[i] * math.log(p[i] / q[i]) for i in range(len(p))))


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    dx, dy = x - x.mean(), y - y.mean()
    return float((dx * dy).sum() / (math.sqrt((dx * dx).sum() * (dy * dy).sum()) + 1e-8))  # DIST_KD's epsilon


def valid_pixels(mask: np.ndarray) -> list[tuple[int, int, int]]:
    return [
        (b, h, w)
        for b in range(mask.shape[0])
        for h in range(mask.shape[1])
        for w in range(mask.shape[2])
        if mask[b, h, w]
    ]


def reference_kl(s, t, mask, temperature=1.0):
    pixels = valid_pixels(mask)
    total = sum(kl(softmax(t[b, :, h, w] / temperature), softmax(s[b, :, h, w] / temperature)) for b, h, w in pixels)
    return temperature**2 * total / len(pixels)


def reference_mse(s, t, mask):
    pixels = valid_pixels(mask)
    total = sum(((s[b, c, h, w] - t[b, c, h, w]) ** 2) for b, h, w in pixels for c in range(s.shape[1]))
    return total / (len(pixels) * s.shape[1])


def reference_cwd(s, t, mask, tau=4.0):
    total, images = 0.0, 0
    for b in range(s.shape[0]):
        if not mask[b].any():
            continue
        images += 1
        for c in range(s.shape[1]):
            total += kl(softmax(t[b, c][mask[b]] / tau), softmax(s[b, c][mask[b]] / tau))
    return tau**2 * total / (images * s.shape[1])


def reference_cgd(s, t, mask, tau=2.0, group_size=10):
    total, images = 0.0, 0
    groups = [list(range(start, min(start + group_size, s.shape[1]))) for start in range(0, s.shape[1], group_size)]
    for b in range(s.shape[0]):
        if not mask[b].any():
            continue
        images += 1
        for group in groups:
            p_s = softmax(np.concatenate([s[b, c][mask[b]] for c in group]) / tau)
            p_t = softmax(np.concatenate([t[b, c][mask[b]] for c in group]) / tau)
            total += kl(p_t, p_s)
    return total / (images * len(groups))


def reference_at(s, t, mask, p=2.0):
    total, images = 0.0, 0
    for b in range(s.shape[0]):
        positions = [(h, w) for h in range(s.shape[2]) for w in range(s.shape[3]) if mask[b, h, w]]
        if not positions:
            continue
        images += 1
        a_s = np.array([np.mean(np.abs(s[b, :, h, w]) ** p) for h, w in positions])
        a_t = np.array([np.mean(np.abs(t[b, :, h, w]) ** p) for h, w in positions])
        a_s, a_t = a_s / np.linalg.norm(a_s), a_t / np.linalg.norm(a_t)
        total += float(((a_s - a_t) ** 2).sum()) / len(positions)
    return total / images


def reference_dist(s, t, mask, beta=1.0, gamma=1.0, tau=1.0):
    pixels = valid_pixels(mask)
    p_s = np.array([softmax(s[b, :, h, w] / tau) for b, h, w in pixels])  # [N, C]
    p_t = np.array([softmax(t[b, :, h, w] / tau) for b, h, w in pixels])
    inter = 1 - np.mean([pearson(p_s[n], p_t[n]) for n in range(len(pixels))])
    intra = 1 - np.mean([pearson(p_s[:, c], p_t[:, c]) for c in range(s.shape[1])])
    return tau**2 * (beta * inter + gamma * intra)


def masked_adaptive_pool(f: np.ndarray, mask: np.ndarray, out_h: int, out_w: int):
    """Cells as torch's adaptive pooling defines them: rows floor(i H / oh) to ceil((i + 1) H / oh)."""
    cells, valid = [], []
    for i in range(out_h):
        for j in range(out_w):
            rows = range(math.floor(i * f.shape[1] / out_h), math.ceil((i + 1) * f.shape[1] / out_h))
            cols = range(math.floor(j * f.shape[2] / out_w), math.ceil((j + 1) * f.shape[2] / out_w))
            inside = [f[:, r, q] for r in rows for q in cols if mask[r, q]]
            valid.append(bool(inside))
            cells.append(np.mean(inside, axis=0) if inside else np.zeros(f.shape[0]))
    return cells, valid


def reference_cirkd(s, t, mask, tau=0.1, max_size=None, softmax_over="image_pair"):
    max_size = max_size or max(s.shape[2:])
    out_h, out_w = min(s.shape[2], max_size), min(s.shape[3], max_size)
    images_s, images_t, images_valid = [], [], []
    for b in range(s.shape[0]):
        cells_s, valid = masked_adaptive_pool(s[b], mask[b], out_h, out_w)
        cells_t, _ = masked_adaptive_pool(t[b], mask[b], out_h, out_w)
        images_s.append([x / np.linalg.norm(x) for x, ok in zip(cells_s, valid, strict=True) if ok])
        images_t.append([x / np.linalg.norm(x) for x, ok in zip(cells_t, valid, strict=True) if ok])
        images_valid.append(any(valid))
    if softmax_over == "batch":
        images_s = [[x for image in images_s for x in image]]
        images_t = [[x for image in images_t for x in image]]
    total, rows = 0.0, 0
    for i in range(len(images_s)):
        for a in range(len(images_s[i])):
            for j in range(len(images_s)):
                if not images_s[j]:
                    continue
                sim_s = np.array([images_s[i][a] @ other for other in images_s[j]]) / tau
                sim_t = np.array([images_t[i][a] @ other for other in images_t[j]]) / tau
                total += kl(softmax(sim_t), softmax(sim_s))
                rows += 1
    return total / rows


def reference_none(s, t, mask):
    return 0.0


REFERENCES = {
    "kl": reference_kl,
    "mse": reference_mse,
    "cwd": reference_cwd,
    "cgd": reference_cgd,
    "at": reference_at,
    "dist": reference_dist,
    "cirkd": reference_cirkd,
    "none": reference_none,
}

CASES = [
    ("kl", {}),
    ("kl", {"temperature": 2.5}),
    ("mse", {}),
    ("cwd", {}),
    ("cwd", {"tau": 1.0}),
    ("cgd", {}),
    ("cgd", {"group_size": 2}),
    ("cgd", {"group_size": 3, "tau": 1.0}),
    ("at", {}),
    ("at", {"p": 1.0}),
    ("dist", {}),
    ("dist", {"beta": 1.5, "gamma": 0.5, "tau": 2.0}),
    ("cirkd", {}),
    ("cirkd", {"tau": 0.5, "max_size": 4}),
    ("cirkd", {"softmax_over": "batch", "max_size": 3}),
    ("none", {}),
]


# ---------------------------------------------------------------------------------------------
# Inputs


def make_inputs(seed: int = 0, dtype: torch.dtype = torch.float64, channels: int = C):
    generator = torch.Generator().manual_seed(seed)
    student = 2 * torch.randn(B, channels, H, W, generator=generator, dtype=dtype)
    teacher = 2 * torch.randn(B, channels, H, W, generator=generator, dtype=dtype)
    mask = torch.rand(B, H, W, generator=generator) > 0.3
    mask[:, 0, 0] = False  # some ignored pixels in every image, for sure
    mask[:, 1, 1] = True
    return student, teacher, mask


def call(loss, student, teacher, mask) -> torch.Tensor:
    value = loss(student, teacher, mask)
    assert value.ndim == 0
    return value


# ---------------------------------------------------------------------------------------------
# Against the references


def test_every_registered_loss_has_a_reference_and_a_case():
    assert set(REFERENCES) == set(list_losses())
    assert {name for name, _ in CASES} == set(list_losses())


@pytest.mark.parametrize(("name", "params"), CASES, ids=[f"{n}-{p}" for n, p in CASES])
def test_matches_float64_reference(name, params):
    student, teacher, mask = make_inputs(seed=1)
    value = call(create_loss(name, **params), student, teacher, mask)
    expected = REFERENCES[name](student.numpy(), teacher.numpy(), mask.numpy(), **params)
    assert value.dtype == torch.float64
    assert float(value) == pytest.approx(expected, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("name", list_losses())
def test_float32_agrees_with_reference(name):
    student, teacher, mask = make_inputs(seed=2, dtype=torch.float32)
    value = call(create_loss(name), student, teacher, mask)
    expected = REFERENCES[name](student.double().numpy(), teacher.double().numpy(), mask.numpy())
    assert value.dtype == torch.float32
    assert float(value) == pytest.approx(expected, rel=1e-4, abs=1e-6)


def test_cirkd_compares_feature_maps_with_different_channel_counts():
    generator = torch.Generator().manual_seed(3)
    student = torch.randn(B, 3, H, W, generator=generator, dtype=torch.float64)
    teacher = torch.randn(B, 8, H, W, generator=generator, dtype=torch.float64)
    _, _, mask = make_inputs()
    for params in ({}, {"max_size": 4}, {"softmax_over": "batch"}):
        value = create_loss("cirkd", **params)(student, teacher, mask)
        expected = reference_cirkd(student.numpy(), teacher.numpy(), mask.numpy(), **params)
        assert float(value) == pytest.approx(expected, rel=1e-9)


# ---------------------------------------------------------------------------------------------
# Behaviour shared by every loss


@pytest.mark.parametrize("name", list_losses())
def test_zero_for_identical_inputs_and_positive_otherwise(name):
    student, teacher, mask = make_inputs(seed=4, dtype=torch.float32)
    loss = create_loss(name)
    assert abs(float(call(loss, teacher.clone(), teacher, mask))) < 1e-6
    if name != "none":
        assert float(call(loss, student, teacher, mask)) > 1e-3


@pytest.mark.parametrize("name", list_losses())
def test_gradient_reaches_the_student_only(name):
    student, teacher, mask = make_inputs(seed=5, dtype=torch.float32)
    student.requires_grad_(True)
    teacher.requires_grad_(True)  # a teacher that requires grad is still a fixed target (detached)
    call(create_loss(name), student, teacher, mask).backward()
    assert student.grad is not None
    assert torch.isfinite(student.grad).all()
    assert (student.grad.abs().sum() > 0) == (name != "none")
    assert teacher.grad is None


@pytest.mark.parametrize("name", list_losses())
def test_ignored_pixels_do_not_contribute(name):
    student, teacher, mask = make_inputs(seed=6)
    loss = create_loss(name)
    before = call(loss, student, teacher, mask)
    noise = 10 * torch.randn(B, C, H, W, dtype=torch.float64)
    ignored = ~mask[:, None].expand(B, C, H, W)
    changed_student = torch.where(ignored, student + noise, student)
    changed_teacher = torch.where(ignored, teacher - noise, teacher)
    after = call(loss, changed_student, changed_teacher, mask)
    assert float(after) == pytest.approx(float(before), rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("name", list_losses())
def test_no_valid_pixel_gives_zero_and_finite_gradients(name):
    student, teacher, mask = make_inputs(seed=7)
    student.requires_grad_(True)
    value = call(create_loss(name), student, teacher, torch.zeros_like(mask))
    value.backward()
    assert float(value.detach()) == 0.0
    assert torch.isfinite(student.grad).all()


@pytest.mark.parametrize("name", list_losses())
def test_an_image_without_valid_pixels_is_left_out(name):
    student, teacher, mask = make_inputs(seed=8)
    student.requires_grad_(True)
    mask[1] = False
    value = call(create_loss(name), student, teacher, mask)
    alone = call(create_loss(name), student[:1], teacher[:1], mask[:1])
    value.backward()
    assert torch.isfinite(student.grad).all()
    assert float(value.detach()) == pytest.approx(float(alone.detach()), rel=1e-9, abs=1e-12)


def test_none_is_a_zero_connected_to_the_student():
    student, teacher, mask = make_inputs()
    student.requires_grad_(True)
    value = create_loss("none")(student, teacher, mask)
    assert value.requires_grad
    assert float(value.detach()) == 0.0


# ---------------------------------------------------------------------------------------------
# Alignment


def repeat2(x: torch.Tensor) -> torch.Tensor:
    """Nearest-neighbour x2 upsampling of the last two axes, written out."""
    return x.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)


@pytest.mark.parametrize("name", list_losses())
@pytest.mark.parametrize("mask_at", ["student", "teacher"])
def test_upsample_student_computes_at_the_teacher_resolution(name, mask_at):
    small, _, small_mask = make_inputs(seed=9)  # student [B, C, 5, 6]
    large = torch.randn(B, C, 2 * H, 2 * W, dtype=torch.float64)  # teacher [B, C, 10, 12]
    large_mask = torch.rand(B, 2 * H, 2 * W) > 0.3
    mask = small_mask if mask_at == "student" else large_mask
    expected_mask = repeat2(small_mask) if mask_at == "student" else large_mask  # nearest, x2
    upsampled = F.interpolate(small, size=(2 * H, 2 * W), mode="bilinear", align_corners=False)
    value = create_loss(name, align="upsample_student")(small, large, mask)
    expected = create_loss(name)(upsampled, large, expected_mask)
    assert float(value) == pytest.approx(float(expected), rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("name", list_losses())
@pytest.mark.parametrize("mask_at", ["student", "teacher"])
def test_downsample_teacher_computes_at_the_student_resolution(name, mask_at):
    small, _, small_mask = make_inputs(seed=11)
    large = torch.randn(B, C, 2 * H, 2 * W, dtype=torch.float64)
    large_mask = torch.rand(B, 2 * H, 2 * W) > 0.3
    mask = small_mask if mask_at == "student" else large_mask
    expected_mask = small_mask if mask_at == "student" else large_mask[:, ::2, ::2]  # nearest, x1/2
    downsampled = F.avg_pool2d(large, 2)  # bilinear x1/2 without align_corners is a 2x2 mean
    value = create_loss(name, align="downsample_teacher")(small, large, mask)
    expected = create_loss(name)(small, downsampled, expected_mask)
    assert float(value) == pytest.approx(float(expected), rel=1e-12, abs=1e-12)


def test_upsample_student_also_shrinks_a_larger_student():
    large = torch.randn(B, C, 2 * H, 2 * W, dtype=torch.float64)
    small, _, mask = make_inputs(seed=12)
    value = create_loss("kl", align="upsample_student")(large, small, mask)
    expected = reference_kl(F.avg_pool2d(large, 2).numpy(), small.numpy(), mask.numpy())
    assert float(value) == pytest.approx(expected, rel=1e-9)


def test_class_count_mismatch_is_a_clear_error():
    student, _, mask = make_inputs()
    teacher = torch.randn(B, 7, H, W, dtype=torch.float64)
    for name in ("kl", "mse", "cwd", "dist"):
        with pytest.raises(ValueError, match="teacher has 7 classes, student 4"):
            create_loss(name)(student, teacher, mask)


@pytest.mark.parametrize(
    ("kwargs", "inputs", "message"),
    [
        ({"align": "bilinear"}, None, "align must be one of upsample_student, downsample_teacher"),
        ({}, "float_mask", "valid_mask must be a bool tensor"),
        ({}, "short_mask", r"valid_mask must be \[B, H, W\]"),
        ({}, "3d_logits", r"\[B, C, H, W\]"),
        ({}, "batch", "student batch has 2 images, teacher batch 1"),
    ],
)
def test_bad_inputs_are_clear_errors(kwargs, inputs, message):
    student, teacher, mask = make_inputs()
    if inputs == "float_mask":
        mask = mask.double()
    elif inputs == "short_mask":
        mask = mask[:1]
    elif inputs == "3d_logits":
        student = student[0]
    elif inputs == "batch":
        teacher = teacher[:1]
    with pytest.raises(ValueError, match=message):
        create_loss("kl", **kwargs)(student, teacher, mask)


# ---------------------------------------------------------------------------------------------
# Specs, the factory and weighted sums


def test_weighted_terms_are_the_weighted_sum_of_their_losses():
    """``--kd kl=1.0,cwd=3.0,dist=0.5`` with shared and per-loss parameters, as a run computes it."""
    student, teacher, mask = make_inputs(seed=13)
    params = {"temperature": 2.0, "tau": 3.0, "dist": {"tau": 1.0}}
    terms = build_terms(shorthand_specs("kl=1.0, cwd=3.0,dist=0.5", params), align="upsample_student")
    total, logged = kd_loss(terms, (student, {}), (teacher, {}), mask, step=0, steps=1)
    parts = {
        "kl": create_loss("kl", temperature=2.0)(student, teacher, mask),
        "cwd": create_loss("cwd", tau=3.0)(student, teacher, mask),
        "dist": create_loss("dist", tau=1.0)(student, teacher, mask),
    }
    # a run computes its losses in float32 (the inputs here are float64)
    assert float(total) == pytest.approx(float(parts["kl"] + 3.0 * parts["cwd"] + 0.5 * parts["dist"]), rel=1e-6)
    assert logged == pytest.approx({name: float(value) for name, value in parts.items()}, rel=1e-6)


def test_create_loss_builds_one_named_loss_and_refuses_a_weighted_spec():
    assert type(create_loss("kl")).__name__ == "KLDivergence"
    assert isinstance(create_loss(" dist "), KDLoss)
    with pytest.raises(ValueError, match="create_loss takes one loss name, not the spec 'kl=2.0'"):
        create_loss("kl=2.0")


def test_parameters_reach_the_terms_that_take_them():
    specs = shorthand_specs("kl=1,cwd=3,cirkd=1", {"temperature": 2.0, "tau": 5.0, "cirkd": {"tau": 0.2}})
    losses = {term.spec.loss: term.loss for term in build_terms(specs, align="downsample_teacher")}
    assert losses["kl"].temperature == 2.0
    assert losses["cwd"].tau == 5.0
    assert losses["cirkd"].tau == 0.2
    assert {loss.align for loss in losses.values()} == {"downsample_teacher"}


@pytest.mark.parametrize(
    ("spec", "params", "message"),
    [
        ("cwd", {"temperature": 2.0}, "'temperature' is not a parameter of cwd"),
        ("kl", {"temperature": 0.0}, "temperature must be > 0"),
        ("cirkd", {"softmax_over": "image"}, "softmax_over must be one of image_pair, batch"),
        ("kl", {"align": "nearest"}, "align must be one of upsample_student, downsample_teacher"),
    ],
)
def test_bad_parameters_are_clear_errors(spec, params, message):
    with pytest.raises(ValueError, match=message):
        create_loss(spec, **params)


@pytest.mark.parametrize(
    ("kd", "params", "message"),
    [
        ("kl=1,cwd=1", {"beta": 2.0}, "kd_params.beta: no term of --kd 'kl=1,cwd=1' takes it"),
        ("kl", {"cwd": {"tau": 2.0}}, "kd_params.cwd: cwd is not a term of --kd 'kl'"),
        ("kl=1,cwd=1", {"cwd": {"temperature": 2.0}}, "kd_params.cwd.temperature: cwd does not take it"),
    ],
)
def test_bad_term_parameters_are_clear_errors(kd, params, message):
    with pytest.raises(PromptKitError, match=message):
        shorthand_specs(kd, params)


def test_unknown_loss_lists_the_valid_names():
    with pytest.raises(ValueError, match="unknown KD loss 'kd'; valid names: kl, mse, cwd, cgd, at, dist, cirkd, none"):
        create_loss("kd")


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("kl=1.0,cwd=3.0", [("kl", 1.0), ("cwd", 3.0)]),
        (" kl = 1 , dist=0.5 ", [("kl", 1.0), ("dist", 0.5)]),
        ("kl", [("kl", 1.0)]),
        ("mse,none=0", [("mse", 1.0), ("none", 0.0)]),
    ],
)
def test_parse_kd_spec(spec, expected):
    assert parse_kd_spec(spec) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("kl=abc", "the weight of kl ('abc') is not a number"),
        ("kl=", "the weight of kl ('') is not a number"),
        ("kl=-1", "the weight of kl must be >= 0"),
        ("kl=nan", "the weight of kl must be >= 0"),
        ("kl=1,,cwd=2", "a term has no loss name"),
        ("=1", "a term has no loss name"),
        ("kl=1,kl=2", "kl appears twice"),
        ("", "empty KD loss spec"),
        ("foo=1", "unknown KD loss 'foo'; valid names: kl, mse"),
    ],
)
def test_bad_specs_are_one_line_errors_that_say_how_to_write_one(spec, message):
    with pytest.raises(ValueError, match=re.escape(message)) as error:
        parse_kd_spec(spec)
    text = str(error.value)
    assert "\n" not in text
    if "unknown" not in message:
        assert "e.g. 'kl=1.0,cwd=3.0'" in text


# ---------------------------------------------------------------------------------------------
# Channel Group Distillation


def test_cgd_with_groups_of_one_is_cwd_without_its_tau_squared():
    student, teacher, mask = make_inputs()
    cgd = create_loss("cgd", tau=3.0, group_size=1)(student, teacher, mask)
    cwd = create_loss("cwd", tau=3.0)(student, teacher, mask)
    assert float(cgd) == pytest.approx(float(cwd) / 9.0, rel=1e-12)


def test_cgd_shuffle_is_the_same_for_both_sides_reproducible_and_resumable():
    student, teacher, mask = make_inputs()
    one_group = create_loss("cgd", group_size=C, shuffle_every=1)
    plain = create_loss("cgd", group_size=C)
    assert float(one_group(student, teacher, mask)) == pytest.approx(float(plain(student, teacher, mask)), rel=1e-12)

    def values(loss, calls):
        return [float(loss(student, teacher, mask)) for _ in range(calls)]

    first = create_loss("cgd", group_size=2, shuffle_every=2, shuffle_seed=5)
    sequence = values(first, 6)
    assert sequence[0] == sequence[1] and sequence[2] == sequence[3]  # a new order every 2 calls
    assert len({round(v, 12) for v in sequence}) > 1  # and the orders differ
    assert values(create_loss("cgd", group_size=2, shuffle_every=2, shuffle_seed=5), 6) == sequence
    resumed = create_loss("cgd", group_size=2, shuffle_every=2, shuffle_seed=5)
    values(resumed, 3)
    state = resumed.state_dict()
    assert int(state["calls"]) == 3
    again = create_loss("cgd", group_size=2, shuffle_every=2, shuffle_seed=5)
    again.load_state_dict(state)
    assert values(again, 3) == sequence[3:]
    again.eval()
    assert values(again, 2)[0] == float(create_loss("cgd", group_size=2)(student, teacher, mask))
    assert int(again.calls) == 6  # evaluation neither shuffles nor counts


@pytest.mark.parametrize(
    ("params", "message"),
    [({"group_size": 0}, "group_size"), ({"shuffle_every": -1}, "shuffle_every"), ({"tau": 0}, "tau")],
)
def test_cgd_bad_parameters(params, message):
    with pytest.raises(ValueError, match=message):
        create_loss("cgd", **params)


def test_attention_transfer_compares_maps_with_different_channel_counts():
    student, _, mask = make_inputs(channels=3)
    _, teacher, _ = make_inputs(seed=1, channels=7)
    loss = create_loss("at")
    value = loss(student, teacher, mask)
    expected = reference_at(student.numpy(), teacher.numpy(), mask.numpy())
    assert float(value) == pytest.approx(expected, rel=1e-9)
    scaled = loss(student, 3.0 * teacher, mask)  # only where activations are strong matters, not how strong
    assert float(scaled) == pytest.approx(float(value), rel=1e-9)


@pytest.mark.parametrize("name", list_losses())
def test_every_loss_keeps_the_base_contract(name):
    """One base class: the registry key is the loss's name, align is taken and checked by every loss."""
    from distill.kd.losses import LOSSES, loss_class

    cls = loss_class(name)
    assert issubclass(cls, KDLoss) and cls is LOSSES[name] and cls.name == name
    assert "align" in cls.parameter_names()
    assert create_loss(name, align="downsample_teacher").align == "downsample_teacher"
    with pytest.raises(ValueError, match="align must be one of"):
        create_loss(name, align="sideways")
