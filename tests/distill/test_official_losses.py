"""Golden tests against transcriptions of the official implementations, not only our own references.

Each ``official_*`` function below is a minimal port of the official code, keeping its arithmetic
(epsilon, reductions, order of operations); the repository, commit, file and lines are cited in
its docstring. The losses must agree with them to float64 precision under the documented
conventions (all pixels valid, maps of one size, CGD's weight outside the loss).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from distill.kd.losses import create_loss
from distill.kd.terms import WeightSchedule

# -- DIST: hunto/DIST_KD @ 2418f18b1fedd7c2646a7b1b9a27d5c674c2170b ------------------------------------------


def official_pearson(x: torch.Tensor, y: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """``segmentation/losses/dist_kd.py`` L4-9: centre along dim 1, ``(x*y).sum(1) / (|x| |y| + eps)``."""
    x, y = x - x.mean(1).unsqueeze(1), y - y.mean(1).unsqueeze(1)
    return (x * y).sum(1) / (x.norm(dim=1) * y.norm(dim=1) + eps)


def official_dist(logits_s: torch.Tensor, logits_t: torch.Tensor, tau: float = 1.0) -> torch.Tensor:
    """``segmentation/losses/dist_kd.py`` L20-37 (``transpose(1, 3).reshape(-1, C)``, beta = gamma = 1) with the
    temperature of the classification DIST it comes from (hunto/image_classification_sota @ d9662f7d,
    ``lib/models/losses/dist_kd.py`` L21-34: ``softmax(z / tau)``, ``tau**2`` on both relations)."""
    classes = logits_s.shape[1]
    y_s = (logits_s.transpose(1, 3).reshape(-1, classes) / tau).softmax(dim=1)
    y_t = (logits_t.transpose(1, 3).reshape(-1, classes) / tau).softmax(dim=1)
    inter = 1 - official_pearson(y_s, y_t).mean()
    intra = 1 - official_pearson(y_s.transpose(0, 1), y_t.transpose(0, 1)).mean()
    return tau**2 * inter + tau**2 * intra


# -- CIRKD: winycg/CIRKD, CriterionMiniBatchCrossImagePair ------------------------------------------------------


def _official_cirkd_pairs(feat_s: torch.Tensor, feat_t: torch.Tensor, tau: float) -> torch.Tensor:
    feat_s, feat_t = F.normalize(feat_s, p=2, dim=1), F.normalize(feat_t, p=2, dim=1)
    batch = feat_s.shape[0]
    total = feat_s.new_zeros(())  # the official accumulator is float32; float64 here keeps the test exact
    for i in range(batch):
        for j in range(batch):
            s_sim = feat_s[i].flatten(1).T @ feat_s[j].flatten(1)  # pair_wise_sim_map: [HW, HW]
            t_sim = feat_t[i].flatten(1).T @ feat_t[j].flatten(1)
            total = total + F.kl_div(
                F.log_softmax(s_sim / tau, dim=1), F.softmax(t_sim / tau, dim=1), reduction="batchmean"
            )
    return total / (batch * batch)


def official_cirkd_7e0d21f(feat_s: torch.Tensor, feat_t: torch.Tensor, tau: float = 0.1) -> torch.Tensor:
    """7e0d21fe24ba9f09446e5bcef4797e199177b0fc ``losses/loss.py`` L62-119: no pooling (L95-102 is a string)."""
    return _official_cirkd_pairs(feat_s, feat_t, tau)


def official_cirkd_head(feat_s: torch.Tensor, feat_t: torch.Tensor, tau: float = 0.1) -> torch.Tensor:
    """dab64dbb5e4172141166cf8434a80ce55d9d3aa7 ``losses/cirkd_mini_batch.py`` L57-88: when the student's map is
    at least 256 on both sides (L62), ``AvgPool2d(kernel_size=4, stride=4, padding=0, ceil_mode=True)``."""
    if feat_s.shape[2] >= 256 and feat_s.shape[3] >= 256:
        feat_s = F.avg_pool2d(feat_s, kernel_size=4, stride=4, padding=0, ceil_mode=True)
        feat_t = F.avg_pool2d(feat_t, kernel_size=4, stride=4, padding=0, ceil_mode=True)
    return _official_cirkd_pairs(feat_s, feat_t, tau)


# -- SegDistill: wzpscott/SegDistill @ 382213a641d68c09516f7182122a52faa05a5121 -------------------------------


def official_cgd(s: torch.Tensor, t: torch.Tensor, tau: float = 2.0, group_size: int = 10, perm=None) -> torch.Tensor:
    """``mmseg/models/distillation/losses.py`` KLDLoss L35-59 and L95-113 (transform ``channel``), alpha 1:
    consecutive channel groups, the last padded with -1e9 maps, ``KLDivLoss(sum) / (B * groups)``."""
    if perm is not None:  # KLDLoss.shuffle: x[:, idx, :, :] with one idx for student and teacher
        s, t = s[:, perm], t[:, perm]

    def transform(x: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        if channels % group_size:
            pad = group_size - channels % group_size
            x = torch.cat([x, -1e9 * torch.ones(batch, pad, height, width, dtype=x.dtype)], dim=1)
        return x.reshape(batch, x.shape[1] // group_size, -1)

    x_s = F.log_softmax(transform(s) / tau, dim=-1)
    x_t = F.softmax(transform(t) / tau, dim=-1)
    return F.kl_div(x_s, x_t, reduction="sum") / (x_s.numel() / x_s.shape[-1])


def official_shuffle_fires(n_iter: int, interval: int) -> bool:
    """KLDLoss.shuffle L35-42: ``if n_iter % interval == 0``, ``n_iter`` counted from 1 (SD_structure.py L55-62)."""
    return n_iter % interval == 0


def official_schedule(step: int, warmup: int, start: int, end: int) -> float:
    """KLDLoss.warmup L61-75 then earlydecay L77-92, replayed on the 1-based calls up to ``step + 1`` (linear)."""
    alpha = 1.0
    for n_iter in range(1, step + 2):
        if n_iter < warmup:
            alpha = n_iter / warmup
        elif n_iter == warmup:
            alpha = 1.0
        if start < n_iter < end:
            alpha = (end - n_iter) / (end - start)
        elif n_iter >= end:
            alpha = 0.0
    return alpha


def logits(seed: int, shape=(2, 19, 8, 8), scale: float = 1.0) -> torch.Tensor:
    return scale * torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize(("tau", "scale"), [(1.0, 1.0), (4.0, 1.0), (1.0, 1e-3), (1.0, 1e-6)])
def test_dist_equals_the_official_code_even_for_nearly_uniform_probabilities(tau, scale):
    """Before: ``F.cosine_similarity``'s clamped norms put it 2e-3 (1.7e-2) off at logits x1e-3 (1e-6)."""
    student, teacher = logits(0, scale=scale).requires_grad_(), logits(1, scale=scale)
    ours = create_loss("dist", tau=tau)(student, teacher)
    theirs_input = student.detach().clone().requires_grad_()
    theirs = official_dist(theirs_input, teacher, tau)
    assert float(ours.detach()) == pytest.approx(float(theirs.detach()), rel=1e-12, abs=1e-15)
    ours.backward()
    theirs.backward()
    assert torch.allclose(student.grad, theirs_input.grad, rtol=1e-6, atol=1e-12)  # rounding grows near uniform p


@pytest.mark.parametrize("shape", [(2, 16, 8, 8), (2, 8, 48, 40), (3, 5, 33, 7)])
def test_cirkd_by_default_equals_the_official_code_at_7e0d21f(shape):
    """Before: the default pooled every map to 32x32, 3.2% off the official code at 48x40."""
    student, teacher = logits(2, shape), logits(3, (shape[0], 12, *shape[2:]))
    ours = create_loss("cirkd")(student, teacher)
    assert float(ours) == pytest.approx(float(official_cirkd_7e0d21f(student, teacher)), rel=1e-12)


def test_cirkd_pool_from_256_equals_the_official_code_at_head():
    student, teacher = logits(4, (1, 3, 257, 258)).float(), logits(5, (1, 4, 257, 258)).float()
    ours = create_loss("cirkd", pool_from=256)(student, teacher)
    assert float(ours) == pytest.approx(float(official_cirkd_head(student, teacher)), rel=1e-4)
    small_s, small_t = logits(6, (2, 3, 48, 40)), logits(7, (2, 4, 48, 40))
    below = create_loss("cirkd", pool_from=256)(small_s, small_t)  # below 256 the official code does not pool
    assert float(below) == pytest.approx(float(official_cirkd_head(small_s, small_t)), rel=1e-12)


def test_cirkd_refuses_similarities_that_do_not_fit_in_memory():
    from distill.kd.losses.cirkd import CrossImagePixelPairs

    huge = torch.zeros(64, 2, 512, 512)  # 16.7M pixels: (1.7e7)^2 similarities
    with pytest.raises(Exception, match="max_size=32"):
        CrossImagePixelPairs()(huge, huge)


@pytest.mark.parametrize(("channels", "group_size"), [(150, 10), (19, 10), (20, 5), (7, 1)])
def test_cgd_equals_the_official_code(channels, group_size):
    student, teacher = logits(8, (2, channels, 8, 8)), logits(9, (2, channels, 8, 8))
    loss = create_loss("cgd", group_size=group_size).eval()
    expected = official_cgd(student, teacher, group_size=group_size)
    assert float(loss(student, teacher)) == pytest.approx(float(expected), rel=1e-12)


def test_cgd_segdistill_schedule_shuffles_one_call_in_n_as_the_official_code():
    student, teacher = logits(10, (2, 20, 6, 6)), logits(11, (2, 20, 6, 6))
    loss = create_loss("cgd", group_size=5, shuffle_every=3, shuffle_schedule="segdistill").train()
    shuffled = 0
    for call in range(1, 10):
        order = loss.permutation(20)
        assert (order is not None) == official_shuffle_fires(call, 3)
        expected = official_cgd(student, teacher, group_size=5, perm=order)
        assert float(loss(student, teacher)) == pytest.approx(float(expected), rel=1e-12)
        shuffled += order is not None
    assert shuffled == 3  # calls 3, 6 and 9
    held = create_loss("cgd", group_size=5, shuffle_every=3).train()
    orders = []
    for _ in range(6):  # the held schedule: every call permuted, a new permutation every 3 calls
        orders.append(held.permutation(20))
        held(student, teacher)
    assert all(order is not None for order in orders)
    assert torch.equal(orders[0], orders[2]) and not torch.equal(orders[2], orders[3])


def test_cgd_refuses_an_unknown_shuffle_schedule():
    with pytest.raises(ValueError, match="shuffle_schedule must be one of held, segdistill"):
        create_loss("cgd", shuffle_schedule="sometimes")


@pytest.mark.parametrize(
    ("steps", "warmup", "decay_start", "decay_end"),
    [(20, 4, 0.5, 0.75), (40, 0, 0.25, 1.0), (16, 8, 0.5, 0.5)],
)
def test_the_weight_schedule_equals_segdistills_warmup_and_earlydecay(steps, warmup, decay_start, decay_end):
    """Before: the decay ran one step behind (1.0 against 0.8 at the first decay step of the first case)."""
    schedule = WeightSchedule(warmup_steps=warmup, decay_start=decay_start, decay_end=decay_end)
    start, end = decay_start * steps, decay_end * steps
    ours = [schedule.factor(step, steps) for step in range(steps)]
    theirs = [official_schedule(step, warmup or 1, start, end) for step in range(steps)]
    assert ours == pytest.approx(theirs, abs=1e-12)


def test_the_weight_schedule_matches_segdistill_at_its_own_160k_setting():
    """CGDLossWS (L160-173): warm-up 2000, decay from iteration 110000 to 120000 of 160000."""
    schedule = WeightSchedule(warmup_steps=2000, decay_start=110_000 / 160_000, decay_end=120_000 / 160_000)
    for step in (0, 1998, 1999, 2000, 109_998, 109_999, 110_000, 115_000, 119_998, 119_999, 159_999):
        n = step + 1  # the official closed form on the 1-based call count
        expected = min(1.0, n / 2000) if n <= 110_000 else (120_000 - n) / 10_000 if n < 120_000 else 0.0
        assert schedule.factor(step, 160_000) == pytest.approx(expected, abs=1e-12), step
