"""`distill adapt-summary`: adaptations grouped by setting, final gains with intervals, paired differences."""

from __future__ import annotations

import json
import statistics

import pytest
from scipy import stats

from cli.distill_cli import distill
from distill.unlabelled.adaptation_summary import paired_differences, read_adaptation, summarise, summary_table


def write_record(folder, gains, *, seed=0, world="w0", order="asc", guard=None, skipped=(), buckets=None):
    """An ``adapt.json`` in the layout `distill adapt` writes, with these per-bucket target gains."""
    config = {
        "teacher": f"runs/{world}/teacher", "student": f"runs/{world}/student", "source": f"synthetic:seed={world}",
        "target": f"synthetic:seed={world},domain=target", "out": str(folder), "buckets": buckets or len(gains),
        "order": order, "layers": ["encoder"], "replay": True, "min_kept_share": guard, "seed": seed,
    }  # fmt: skip
    rows = [
        {"bucket": i, "images": 10, "mean_distance": 0.1 * i, "kept_share": 0.5, "skipped": i in skipped,
         "source_miou": 0.5, "target_miou": 0.4 + gain, "target_gain": gain, "source_forgetting": 0.01 * (i + 1)}
        for i, gain in enumerate(gains)
    ]  # fmt: skip
    record = {"config": config, "unadapted": {"source_miou": 0.51, "target_miou": 0.4}, "order": {}, "buckets": rows}
    folder.mkdir(parents=True)
    (folder / "adapt.json").write_text(json.dumps(record))
    return folder


@pytest.fixture
def three_worlds(tmp_path):
    """asc and guarded asc on three worlds, random on two of them."""
    finals = {"asc": [-0.02, -0.03, 0.01], "guard": [0.01, 0.02, 0.015], "random": [-0.01, 0.0]}
    folders = []
    for k, final in enumerate(finals["asc"]):
        folders.append(write_record(tmp_path / f"w{k}" / "asc", [0.02, final], world=f"w{k}"))
    for k, final in enumerate(finals["guard"]):
        guarded = tmp_path / f"w{k}" / "guard"
        folders.append(write_record(guarded, [final, final], world=f"w{k}", guard=0.5, skipped={1}))
    for k, final in enumerate(finals["random"]):
        folders.append(write_record(tmp_path / f"w{k}" / "random", [0.0, final], world=f"w{k}", order="random"))
    return folders, finals


def test_settings_are_grouped_and_their_final_gains_get_t_intervals(three_worlds):
    folders, finals = three_worlds
    summaries = summarise(read_adaptation(folder) for folder in folders)
    assert [s.label for s in summaries] == [
        "min_kept_share=none, order=asc", "min_kept_share=0.5, order=asc", "min_kept_share=none, order=random"
    ]  # fmt: skip
    asc, guard, _ = summaries
    assert asc.gain.mean == pytest.approx(statistics.mean(finals["asc"]))
    assert asc.gain.sd == pytest.approx(statistics.stdev(finals["asc"]))
    half = stats.t.ppf(0.975, 2) * statistics.stdev(finals["asc"]) / 3**0.5
    assert asc.gain.low == pytest.approx(asc.gain.mean - half) and asc.gain.high == pytest.approx(asc.gain.mean + half)
    assert asc.forgetting.mean == pytest.approx(0.02)  # the last bucket's, not the mean over buckets
    assert asc.ended_above_start == 1 and guard.ended_above_start == 3
    assert [run.trained for run in guard.runs] == [1, 1, 1] and asc.runs[0].best_gain == 0.02
    table = summary_table(summaries)
    assert "| min_kept_share=0.5, order=asc | 3 | 1.0 of 2 | +0.015, +0.015 |" in table and "3 of 3" in table
    assert f"| 3 | 2.0 of 2 | +0.020, {statistics.mean(finals['asc']):+.3f} |" in table


def test_settings_are_compared_on_the_replicates_they_share(three_worlds):
    folders, finals = three_worlds
    pairs = {(a, b): d for a, b, d in paired_differences(summarise(read_adaptation(f) for f in folders))}
    guard_vs_asc = pairs[("min_kept_share=none, order=asc", "min_kept_share=0.5, order=asc")]
    assert guard_vs_asc.replicates == 3
    expected = statistics.mean(a - g for a, g in zip(finals["asc"], finals["guard"], strict=True))
    assert guard_vs_asc.mean == pytest.approx(expected)
    random_vs_asc = pairs[("min_kept_share=none, order=asc", "min_kept_share=none, order=random")]
    assert random_vs_asc.replicates == 2  # the third world has no random run
    expected = statistics.mean(a - r for a, r in zip(finals["asc"][:2], finals["random"], strict=True))
    assert random_vs_asc.mean == pytest.approx(expected)


def test_the_command_prints_both_tables(runner, three_worlds):
    folders, _ = three_worlds
    result = runner.invoke(distill, ["adapt-summary", *map(str, folders)])
    assert result.exit_code == 0, result.output
    assert "| setting | runs |" in result.output and "| a | b | final gain a - b [95%] |" in result.output


def test_one_run_has_no_interval(runner, tmp_path):
    folder = write_record(tmp_path / "only", [0.01, 0.02])
    result = runner.invoke(distill, ["adapt-summary", str(folder)])
    assert result.exit_code == 0, result.output
    assert "+0.020 (one run: no interval)" in result.output and "no paired differences" in result.output


def test_bad_folders_are_one_line_errors(runner, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    unfinished = write_record(tmp_path / "unfinished", [0.01], buckets=4)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "adapt.json").write_text("{}")
    twice = write_record(tmp_path / "a", [0.01]), write_record(tmp_path / "b", [0.02])
    cases = [
        ([empty], "holds no adapt.json"),
        ([unfinished], "is unfinished (1 of 4 buckets)"),
        ([broken], "is not an adaptation record"),
        (list(twice), "repeats another folder's run"),
    ]
    for folders, message in cases:
        result = runner.invoke(distill, ["adapt-summary", *map(str, folders)])
        assert result.exit_code == 2 and message in result.stderr, result.output
        assert "Traceback" not in result.output and len(result.stderr.strip().splitlines()) == 1
