"""Intervals over seeds: exact on a hand example, ~95% coverage when teachers vary, honest with one seed."""

from __future__ import annotations

import math
import random

import pytest
from scipy import stats

from distill.evaluation.seed_statistics import mean_std, paired_difference, t_interval


def test_t_interval_of_two_teacher_seeds_by_hand():
    difference = t_interval([0.01, 0.03], "teacher seed")
    half = 12.7062 * math.sqrt(0.0002) / math.sqrt(2)  # t_{0.975, 1} * sd / sqrt(n)
    assert difference.mean == pytest.approx(0.02)
    assert difference.low == pytest.approx(0.02 - half, abs=1e-4)
    assert difference.high == pytest.approx(0.02 + half, abs=1e-4)
    assert not difference.distinguishable


def test_paired_difference_averages_student_seeds_within_each_teacher():
    a = {(0, 0): 0.50, (0, 1): 0.52, (1, 0): 0.60, (1, 1): 0.62, (2, 0): 0.55, (2, 1): 0.57}
    b = {cell: value - 0.05 + 0.001 * cell[0] for cell, value in a.items()}
    difference = paired_difference(a, b)
    assert difference.unit == "teacher seed" and difference.replicates == 3
    assert difference.mean == pytest.approx(0.049)
    assert difference.distinguishable  # 0.05 against a spread of 0.001 between teachers


def test_one_teacher_seed_falls_back_to_student_seeds_and_says_so():
    a = {(0, 0): 0.50, (0, 1): 0.52, (0, 2): 0.51}
    b = {(0, 0): 0.49, (0, 1): 0.50, (0, 2): 0.505}
    difference = paired_difference(a, b)
    assert difference.unit == "student seed" and difference.replicates == 3


def test_a_single_cell_has_no_interval():
    difference = paired_difference({(0, 0): 0.5}, {(0, 0): 0.4})
    assert difference.low == -math.inf and difference.high == math.inf
    assert not difference.distinguishable and difference.replicates_for() is None


def simulated_grid(rng: random.Random, teachers: int, students: int, shift: float) -> dict:
    """Student mIoU = style shift + teacher noise (sd 0.01) + student noise (sd 0.004)."""
    grid = {}
    for t in range(teachers):
        teacher = rng.gauss(0, 0.01)
        for s in range(students):
            grid[(t, s)] = 0.5 + shift + teacher + rng.gauss(0, 0.004)
    return grid


def test_interval_covers_a_zero_difference_about_95_percent_of_the_time():
    rng = random.Random(0)
    trials = 600
    covered = sum(
        (d := paired_difference(simulated_grid(rng, 3, 2, 0), simulated_grid(rng, 3, 2, 0))).low <= 0 <= d.high
        for _ in range(trials)
    )
    assert 0.92 <= covered / trials <= 0.98


def test_pooling_every_cell_as_independent_would_be_overconfident():
    """Why the teacher seed is the unit: treating all T x S cells as replicates covers far less often."""
    rng = random.Random(1)
    trials = 600
    covered = 0
    for _ in range(trials):
        a, b = simulated_grid(rng, 3, 3, 0), simulated_grid(rng, 3, 3, 0)
        naive = t_interval([a[cell] - b[cell] for cell in a], "cell")
        covered += naive.low <= 0 <= naive.high
    assert covered / trials < 0.85


def test_seeds_needed_for_an_effect_grows_with_the_spread():
    narrow = t_interval([0.010, 0.012, 0.008], "teacher seed")
    wide = t_interval([0.03, -0.01, 0.01], "teacher seed")
    assert narrow.replicates_for(0.01) < wide.replicates_for(0.01)
    n = wide.replicates_for(0.01)
    assert n >= math.ceil(((1.959964 + 0.841621) * wide.sd / 0.01) ** 2)  # t quantiles: more than the normal's
    assert (stats.t.ppf(0.975, n - 1) + stats.t.ppf(0.8, n - 1)) * wide.sd / math.sqrt(n) <= 0.01
    assert (stats.t.ppf(0.975, n - 2) + stats.t.ppf(0.8, n - 2)) * wide.sd / math.sqrt(n - 1) > 0.01
    assert t_interval([0.01, 0.01], "teacher seed").replicates_for(0.01) == 2  # no spread at all


def test_mean_std():
    assert mean_std([0.5]) == (0.5, 0.0)
    assert mean_std([0.4, 0.6])[1] == pytest.approx(0.141421, abs=1e-6)


def test_rank_correlation_with_its_fisher_interval():
    from distill.evaluation.seed_statistics import rank_correlation

    x = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
    y = [0.30, 0.31, 0.35, 0.33, 0.36, 0.40, 0.39, 0.42]
    result = rank_correlation(x, y)
    assert result.rho == pytest.approx(0.952381, abs=1e-5)  # two swapped neighbours: 1 - 6 * 4 / (8 * 63)
    half = 1.959964 * math.sqrt(1.06 / 5)
    assert result.low == pytest.approx(math.tanh(math.atanh(result.rho) - half), abs=1e-5)
    assert result.low < result.rho < result.high <= 1
    assert "8 points" in result.text()
    few = rank_correlation([0.1, 0.2, 0.3], [0.3, 0.1, 0.2])
    assert math.isinf(few.low)  # 3 points: a rho, no interval
    assert math.isnan(rank_correlation([0.1, 0.1, 0.1, 0.1], [0.1, 0.2, 0.3, 0.4]).rho)


def test_gain_with_one_teacher_is_the_paired_interval_over_student_seeds():
    from distill.evaluation.seed_statistics import gain_over_baseline

    kd = {(0, 0): 0.52, (0, 1): 0.55, (0, 2): 0.53}
    base = {0: 0.50, 1: 0.51, 2: 0.515}
    gain = gain_over_baseline(kd, base)
    reference = t_interval([0.02, 0.04, 0.015], "student seed")
    assert gain.mean == pytest.approx(reference.mean)
    assert (gain.low, gain.high) == (pytest.approx(reference.low), pytest.approx(reference.high))
    assert "teachers' spread not included" in gain.unit


def test_gain_with_one_student_seed_says_the_baseline_noise_is_left_out():
    from distill.evaluation.seed_statistics import gain_over_baseline

    gain = gain_over_baseline({(0, 0): 0.52, (1, 0): 0.54, (2, 0): 0.50}, {0: 0.50})
    reference = t_interval([0.02, 0.04, 0.0], "teacher seed")
    assert (gain.low, gain.high) == (pytest.approx(reference.low), pytest.approx(reference.high))
    assert "baseline's own noise not included" in gain.unit


def test_gain_interval_covers_about_95_percent_with_teacher_and_baseline_noise():
    from distill.evaluation.seed_statistics import gain_over_baseline

    rng = random.Random(2)
    trials, covered = 600, 0
    for _ in range(trials):
        kd = simulated_grid(rng, 3, 3, 0)
        base = {s: 0.5 + rng.gauss(0, 0.004) for s in range(3)}
        gain = gain_over_baseline(kd, base)
        covered += gain.low <= 0 <= gain.high
    assert 0.92 <= covered / trials <= 0.995
