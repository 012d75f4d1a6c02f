"""Differences between two styles' students with 95% intervals, over teacher and student seeds.

The method: a paired t-interval whose unit is the teacher seed. A comparison trains, for every
style, teacher seeds ``t = 0..T-1`` and for each teacher the same student seeds ``s = 0..S-1``
(same student initialisation and batch order whatever the teacher). Two styles are compared
through ``d_t = mean_s(A[t, s]) - mean_s(B[t, s])``: averaging over student seeds first removes
most of the student noise, and taking the teacher seed as the unit keeps the teacher's own
variance in the interval, the larger of the two (a style's teachers differ more between seeds
than its students do between seeds). The interval is ``mean(d) +- t_{0.975, T-1} * sd(d) /
sqrt(T)``. With 2-3 seeds this is wide, and it should be: a bootstrap over 2-3 values gives
intervals that are far too narrow (its percentile interval can never leave the range of the
values seen). With one teacher seed the unit falls back to the student seed, and the result says
so: the teachers' own variance is then not in the interval at all.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass

from scipy import stats

SeedGrid = Mapping[tuple[int, int], float]  # (teacher seed, student seed) -> student mIoU


@dataclass(frozen=True)
class Difference:
    """``a - b`` with its 95% interval; ``unit`` says what was treated as the independent replicate."""

    mean: float
    low: float
    high: float
    replicates: int
    unit: str  # "teacher seed" or "student seed"
    sd: float  # of the per-replicate differences

    @property
    def distinguishable(self) -> bool:
        """The interval excludes zero (never with a single replicate)."""
        return self.replicates > 1 and (self.low > 0 or self.high < 0)

    def replicates_for(self, effect: float = 0.01, power: float = 0.8, most: int = 1000) -> int | None:
        """Replicates a paired t-test needs to detect ``effect`` at this spread with ``power``.

        The smallest ``n >= 2`` with ``(t_{0.975, n-1} + t_{power, n-1}) * sd / sqrt(n) <= effect``
        (the usual t-based approximation; with the t quantiles rather than the normal ones a
        small spread still needs more than two replicates). None without a spread to go on, or
        when even ``most`` would not do.
        """
        if self.replicates < 2 or not math.isfinite(self.sd):
            return None
        for n in range(2, most + 1):
            if (stats.t.ppf(0.975, n - 1) + stats.t.ppf(power, n - 1)) * self.sd / math.sqrt(n) <= effect:
                return n
        return None  # not within ``most``: no honest number to give


@dataclass(frozen=True)
class RankCorrelation:
    """Spearman's rho with a 95% interval (Fisher z, standard error sqrt(1.06 / (n - 3)), Fieller et al. 1957)."""

    rho: float
    low: float
    high: float
    points: int

    def text(self) -> str:
        if math.isnan(self.rho):
            return f"n/a ({self.points} points)"
        interval = " (no interval below 4 points)" if math.isinf(self.low) else f" [{self.low:+.2f}, {self.high:+.2f}]"
        return f"{self.rho:+.2f}{interval} ({self.points} points)"


def rank_correlation(x: list[float], y: list[float]) -> RankCorrelation:
    """Spearman's rho of two paired lists; the interval needs at least 4 points.

    The points must be independent: compare correlates one point per style (the mean of its
    teacher seeds, which share the style's embeddings), not one per seed.
    """
    pairs = [(a, b) for a, b in zip(x, y, strict=True) if math.isfinite(a) and math.isfinite(b)]
    n = len(pairs)
    if n < 3 or len({a for a, _ in pairs}) < 2 or len({b for _, b in pairs}) < 2:
        return RankCorrelation(math.nan, -math.inf, math.inf, n)
    rho = float(stats.spearmanr([a for a, _ in pairs], [b for _, b in pairs]).statistic)
    if n < 4 or abs(rho) >= 1:
        return RankCorrelation(rho, -math.inf, math.inf, n)
    half = stats.norm.ppf(0.975) * math.sqrt(1.06 / (n - 3))
    z = math.atanh(rho)
    return RankCorrelation(rho, math.tanh(z - half), math.tanh(z + half), n)


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value)."""
    if not values:
        return math.nan, math.nan
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def t_interval(differences: list[float], unit: str) -> Difference:
    """The paired t-interval of a list of per-replicate differences."""
    n = len(differences)
    mean = statistics.mean(differences)
    if n < 2:
        return Difference(mean, -math.inf, math.inf, n, unit, math.nan)
    sd = statistics.stdev(differences)
    half = stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)
    return Difference(mean, mean - half, mean + half, n, unit, sd)


def paired_difference(a: SeedGrid, b: SeedGrid) -> Difference:
    """``a - b`` over the (teacher seed, student seed) cells both have."""
    shared = sorted(set(a) & set(b))
    if not shared:
        raise ValueError("the two styles share no (teacher seed, student seed) cell")
    teachers = sorted({t for t, _ in shared})
    if len(teachers) > 1:
        per_teacher = [statistics.mean(a[cell] - b[cell] for cell in shared if cell[0] == t) for t in teachers]
        return t_interval(per_teacher, "teacher seed")
    return t_interval([a[cell] - b[cell] for cell in shared], "student seed")


def gain_over_baseline(grid: SeedGrid, baseline: Mapping[int, float]) -> Difference:
    """KD students ``grid[(t, s)]`` against the no-KD student ``baseline[s]`` of the same student seed.

    The gain ``mean(A) - mean(B)`` has two sources of noise: which teachers were drawn (the spread
    of the per-teacher means ``a_t`` over teacher seeds, ``var(a_t) / T``) and which student
    seeds (the spread over student seeds of ``mean_t A[t, s] - B[s]``, which holds the baseline's
    own noise, ``var(d_s) / S``). The interval adds both, with Welch-Satterthwaite degrees of
    freedom. A part that cannot be estimated (one teacher seed, or one student seed) is left out
    and ``unit`` says so.
    """
    seeds = sorted(set(baseline) & {s for _, s in grid})
    teachers = sorted({t for t, _ in grid})
    cells = {(t, s): grid[(t, s)] for t in teachers for s in seeds if (t, s) in grid}
    if not cells:
        raise ValueError("no KD student shares a student seed with the no-KD baseline")
    mean = statistics.mean(cells.values()) - statistics.mean(baseline[s] for s in seeds)
    per_teacher = [statistics.mean(v for (t, _), v in cells.items() if t == teacher) for teacher in teachers]
    per_seed = [statistics.mean(v for (_, s), v in cells.items() if s == seed) - baseline[seed] for seed in seeds]
    parts = []  # (variance of the mean, degrees of freedom)
    if len(per_teacher) > 1:
        parts.append((statistics.variance(per_teacher) / len(per_teacher), len(per_teacher) - 1))
    if len(per_seed) > 1:
        parts.append((statistics.variance(per_seed) / len(per_seed), len(per_seed) - 1))
    if len(per_teacher) > 1 and len(per_seed) > 1:
        unit = "teacher and student seeds"
    elif len(per_teacher) > 1:
        unit = "teacher seeds (one student seed: the baseline's own noise not included)"
    elif len(per_seed) > 1:
        unit = "student seeds (one teacher: the teachers' spread not included)"
    else:
        return Difference(mean, -math.inf, math.inf, 1, "one seed", math.nan)
    variance = sum(v for v, _ in parts)
    replicates = max(len(per_teacher), len(per_seed))
    if variance == 0:
        return Difference(mean, mean, mean, replicates, unit, 0.0)
    df = variance**2 / sum(v**2 / d for v, d in parts)
    half = stats.t.ppf(0.975, df) * math.sqrt(variance)
    return Difference(mean, mean - half, mean + half, replicates, unit, math.sqrt(variance * replicates))


__all__ = [
    "Difference",
    "gain_over_baseline",
    "RankCorrelation",
    "SeedGrid",
    "mean_std",
    "paired_difference",
    "rank_correlation",
    "t_interval",
]
