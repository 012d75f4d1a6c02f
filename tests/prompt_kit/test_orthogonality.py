"""Each metric against an independent float64 reference written here with plain loops."""

from __future__ import annotations

import math

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from prompt_kit.orthogonality import (
    centered,
    cos_sim,
    effective_rank,
    max_offdiag,
    mean_offdiag,
    min_angle_degrees,
    most_confusable_pairs,
    nearest_classes,
    score_vectors,
)


def reference_cosines(x: np.ndarray) -> np.ndarray:
    n = x.shape[0]
    out = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            out[i, j] = x[i] @ x[j] / (np.linalg.norm(x[i]) * np.linalg.norm(x[j]))
    return out


def test_metrics_match_a_float64_double_loop():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(7, 12)) + 0.5
    ref = reference_cosines(x)
    off = [ref[i, j] for i in range(7) for j in range(7) if i != j]
    sim = cos_sim(torch.tensor(x), torch.tensor(x))
    assert np.allclose(sim.numpy(), ref, atol=1e-5)
    assert math.isclose(mean_offdiag(sim), np.mean(off), abs_tol=1e-5)
    assert math.isclose(max_offdiag(sim), max(off), abs_tol=1e-5)
    assert math.isclose(min_angle_degrees(sim), math.degrees(math.acos(max(off))), abs_tol=1e-3)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    s = np.linalg.svd(unit, compute_uv=False)
    p = s / s.sum()
    assert math.isclose(effective_rank(torch.tensor(x)), float(np.exp(-(p * np.log(p)).sum())), rel_tol=1e-9)


def test_orthonormal_classes_are_perfect_and_identical_ones_are_rank_one():
    eye = torch.eye(5)
    assert max_offdiag(cos_sim(eye, eye)) == 0.0
    assert math.isclose(effective_rank(eye), 5.0, rel_tol=1e-9)
    same = torch.ones(4, 3)
    assert math.isclose(effective_rank(same), 1.0, rel_tol=1e-6)
    assert math.isclose(max_offdiag(cos_sim(same, same)), 1.0, rel_tol=1e-6)


@settings(max_examples=25, deadline=None)
@given(st.integers(3, 12), st.integers(16, 40), st.integers(0, 10_000))
def test_centred_vectors_sum_to_zero_so_their_gram_matrix_does(classes, dim, seed):
    """After centring, sum_i c_i = 0, so sum_ij <c_i, c_j> = 0: why the centred mean sits near -1/(C-1)."""
    x = torch.randn(classes, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    c = centered(x).double()
    sim = cos_sim(c, c).double()
    norms = c.norm(dim=1)
    gram_total = (sim * norms[:, None] * norms[None, :]).sum()
    assert abs(float(gram_total)) < 1e-9 * classes**2


def test_confusable_pairs_and_nearest_classes():
    vectors = torch.tensor([[1.0, 0.0, 0.0], [0.9, 0.1, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    names = ["road", "sidewalk", "car", "sky"]
    pairs = most_confusable_pairs(cos_sim(vectors, vectors), names, k=2)
    assert pairs[0][:2] == ("road", "sidewalk")
    assert pairs[0][2] > pairs[1][2]
    nearest = {row[0]: row for row in nearest_classes(cos_sim(vectors, vectors), names)}
    assert nearest["road"][1] == "sidewalk"
    assert math.isclose(nearest["road"][3], 1 - nearest["road"][2])


def test_score_vectors_reports_both_raw_and_centred_maximum():
    shared = torch.ones(1, 8) * 3
    vectors = shared + torch.eye(6, 8)  # a large common component hides orthogonal parts
    scores = score_vectors(vectors, [f"c{i}" for i in range(6)])
    assert scores.max_offdiag > 0.8
    assert scores.max_offdiag_centered < 0.0
    assert math.isclose(scores.mean_offdiag_centered, -1 / 5, abs_tol=1e-5)
