"""Visual DNA: per-neuron histograms, the 1-D Earth Mover's distance, rankings, and the command."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from scipy.stats import wasserstein_distance

from cli.distill_cli import distill
from distill.unlabelled.vdna import VisualDNA, compute_vdna, earth_movers_distance, histogram, vdna_distance
from prompt_kit.errors import PromptKitError
from tests.distill.conftest import save_image


def test_the_emd_of_two_histograms_is_scipys_wasserstein_distance():
    rng = np.random.default_rng(0)
    bins = 50
    centres = np.linspace(-1, 1, bins, endpoint=False) + 1 / bins
    for _ in range(5):
        p, q = rng.random(bins), rng.random(bins)
        p, q = p / p.sum(), q / q.sum()
        ours = earth_movers_distance(torch.tensor(p)[None], torch.tensor(q)[None])[0]
        theirs = wasserstein_distance(centres, centres, p, q)
        assert abs(float(ours) - theirs) < 1e-9


def test_histograms_count_every_position_of_each_neuron_in_its_range():
    features = torch.tensor([[[[0.0, 0.5], [1.0, 2.0]], [[-1.0, -1.0], [-1.0, 5.0]]]])  # [1, 2, 2, 2]
    ranges = torch.tensor([[0.0, 1.0], [-1.0, 1.0]])
    counts = histogram(features, ranges, bins=4)
    assert counts.sum(1).tolist() == [4, 4]
    assert counts[0].tolist() == [1, 0, 1, 2]  # 2.0 lies above the range: the last bin
    assert counts[1].tolist() == [3, 0, 0, 1]


def features_of(images: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"mean": images.mean(1, keepdim=True), "red": images[:, :1]}


def test_a_shifted_dataset_is_further_than_one_like_the_source_and_images_rank_by_it():
    generator = torch.Generator().manual_seed(0)
    source = [torch.rand(4, 3, 8, 8, generator=generator) * 0.5 for _ in range(4)]
    like = [torch.rand(4, 3, 8, 8, generator=generator) * 0.5 for _ in range(2)]
    shifted = [torch.rand(4, 3, 8, 8, generator=generator) * 0.5 + 0.3 for _ in range(2)]
    reference, _ = compute_vdna(features_of, source, ["mean", "red"], bins=100, range_images=8)
    assert reference.images == 16 and reference.histograms["mean"].sum() == 16 * 64
    near, _ = compute_vdna(features_of, like, ["mean", "red"], bins=100, reference=reference)
    far, _ = compute_vdna(features_of, shifted, ["mean", "red"], bins=100, reference=reference)
    assert vdna_distance(near, reference) < vdna_distance(far, reference) / 3
    mixed = [torch.cat([like[0][:2], shifted[0][:2]])]
    _, distances = compute_vdna(features_of, mixed, ["mean", "red"], bins=100, per_image_against=reference)
    assert max(distances[:2]) < min(distances[2:])  # the shifted images are the far ones


def test_vdnas_on_other_bins_cannot_be_compared():
    generator = torch.Generator().manual_seed(1)
    first, _ = compute_vdna(features_of, [torch.rand(8, 3, 4, 4, generator=generator)], ["mean", "red"], bins=10)
    second, _ = compute_vdna(features_of, [torch.rand(8, 3, 4, 4, generator=generator) + 1], ["mean", "red"], bins=10)
    with pytest.raises(PromptKitError, match="not taken on the same bins"):
        vdna_distance(first, second)


def test_distill_vdna_writes_a_file_and_a_ranking(runner, trained_teacher, tmp_path):
    rng = np.random.default_rng(0)
    dark, bright = tmp_path / "dark", tmp_path / "mixed"
    for index in range(8):
        save_image(dark / f"d{index}.png", rng.integers(0, 90, size=(32, 48, 3)))
    for index in range(3):
        save_image(bright / f"dark{index}.png", rng.integers(0, 90, size=(32, 48, 3)))
        save_image(bright / f"bright{index}.png", rng.integers(170, 256, size=(32, 48, 3)))
    source = tmp_path / "dark.safetensors"
    args = ["vdna", "--model", str(trained_teacher), "--layers", "decoder,up0", "--bins", "200"]
    result = runner.invoke(distill, [*args, "--data", str(dark), "--out", str(source)])
    assert result.exit_code == 0, result.output
    assert VisualDNA.load(source).images == 8
    ranking = tmp_path / "ranking.csv"
    result = runner.invoke(
        distill,
        [
            *args,
            "--data",
            str(bright),
            "--out",
            str(tmp_path / "m.safetensors"),
            "--against",
            str(source),
            "--ranking",
            str(ranking),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "distance to" in result.output
    rows = list(csv.DictReader(ranking.open()))
    assert [row["rank"] for row in rows] == ["1", "2", "3", "4", "5", "6"]
    assert {row["image"] for row in rows[:3]} == {"dark0", "dark1", "dark2"}  # nearest to the dark source first
    bad = runner.invoke(
        distill, [*args, "--data", str(dark), "--out", str(tmp_path / "x.safetensors"), "--ranking", "r.csv"]
    )
    assert bad.exit_code == 2 and "--ranking needs --against" in bad.output
    wrong = runner.invoke(
        distill,
        [
            "vdna",
            "--model",
            str(trained_teacher),
            "--layers",
            "neck",
            "--data",
            str(dark),
            "--out",
            str(tmp_path / "y.safetensors"),
        ],
    )
    assert wrong.exit_code == 2 and "no feature map 'neck'" in wrong.stderr
    assert not (tmp_path / "y.safetensors").exists()
