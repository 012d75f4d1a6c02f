"""Several ``distill adapt`` runs in one table: where each setting ends, with 95% intervals over runs.

One adaptation is one replicate: a teacher, a student, a source, a target and a seed. A claim
such as "the guard ends higher than no guard" or "nearest-first beats farthest-first" needs
several of them and the spread, so runs are grouped by their *setting* (everything in their
config but the paths and the seed) and each setting gets the mean and spread of its final target
gain and source forgetting over its runs, with a t-interval whose unit is the run. Two settings
are compared on the replicates both ran (same teacher, student, source, target and seed): the
paired difference of their final target gains, again with a t-interval. The final bucket is what
a user deploys; the mean gain after each bucket is shown beside it to show the path, but picking
the best of them would need target labels nobody has.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

from distill.evaluation.seed_statistics import Difference, t_interval
from distill.unlabelled.adaptation import read_record, recorded_config
from prompt_kit.errors import PromptKitError

REPLICATE_KEYS = ("teacher", "student", "source", "target", "seed")  # what makes two runs the same replicate
NOT_SETTING_KEYS = (*REPLICATE_KEYS, "out")


@dataclass(frozen=True)
class AdaptationRun:
    """The end of one finished adaptation, read from its ``adapt.json``."""

    folder: Path
    setting: tuple[tuple[str, Any], ...]  # sorted (key, value) pairs of the config, paths and seed left out
    replicate: tuple[Any, ...]  # teacher, student, source, target, seed
    gains: tuple[float, ...]  # the target gain after each bucket, in the order trained
    final_forgetting: float
    trained: int
    buckets: int

    @property
    def final_gain(self) -> float:
        return self.gains[-1]

    @property
    def best_gain(self) -> float:
        return max(self.gains)


@dataclass(frozen=True)
class SettingSummary:
    """One setting over its runs."""

    label: str
    runs: list[AdaptationRun]
    gain: Difference  # the final target gain over the unadapted student, unit "run"
    forgetting: Difference  # the final source forgetting, unit "run"

    @property
    def ended_above_start(self) -> int:
        return sum(run.final_gain > 0 for run in self.runs)


def read_adaptation(folder: str | Path) -> AdaptationRun:
    """One finished adaptation folder; a missing, foreign or unfinished one is a one-line error."""
    folder = Path(folder)
    path = folder / "adapt.json"
    if not path.is_file():
        raise PromptKitError(f"{folder} holds no adapt.json: give folders written by `distill adapt`")
    record = read_record(path)  # damaged, not UTF-8 or mistyped: one line
    config, buckets = record["config"], record["buckets"]
    config = recorded_config(config, path)  # a record from before a field was added has its default
    if len(buckets) < config["buckets"]:
        raise PromptKitError(
            f"{folder} is unfinished ({len(buckets)} of {config['buckets']} buckets): rerun its `distill adapt` command"
        )
    if any(row.get("target_gain") is None for row in buckets):
        raise PromptKitError(
            f"{folder} adapted to a target without labels (no target gain to summarise): give adaptations whose "
            "target has a labelled val split"
        )
    setting = tuple(sorted((key, _hashable(value)) for key, value in config.items() if key not in NOT_SETTING_KEYS))
    return AdaptationRun(
        folder=folder,
        setting=setting,
        replicate=tuple(_hashable(config[key]) for key in REPLICATE_KEYS),
        gains=tuple(row["target_gain"] for row in buckets),
        final_forgetting=buckets[-1]["source_forgetting"],
        trained=sum(not row.get("skipped", False) for row in buckets),
        buckets=len(buckets),
    )


def summarise(runs: Iterable[AdaptationRun]) -> list[SettingSummary]:
    """The runs grouped by setting, in the order each setting first appears."""
    groups: dict[tuple, list[AdaptationRun]] = {}
    for run in runs:
        groups.setdefault(run.setting, []).append(run)
    if not groups:
        raise PromptKitError("no adaptation runs given: pass one or more `distill adapt` folders")
    for members in groups.values():
        seen = [run.replicate for run in members]
        if len(set(seen)) < len(seen):
            twice = next(run for run in members if seen.count(run.replicate) > 1)
            raise PromptKitError(
                f"{twice.folder} repeats another folder's run (same setting, teacher, student, data and seed): "
                "give each adaptation once"
            )
    labels = setting_labels(list(groups))
    return [
        SettingSummary(
            label=labels[setting],
            runs=members,
            gain=t_interval([run.final_gain for run in members], "run"),
            forgetting=t_interval([run.final_forgetting for run in members], "run"),
        )
        for setting, members in groups.items()
    ]


def setting_labels(settings: list[tuple[tuple[str, Any], ...]]) -> dict[tuple, str]:
    """Each setting named by the keys in which the settings differ (``order=asc, min_kept_share=0.5``)."""
    differing = sorted({key for a in settings for key, value in a if any(dict(b).get(key) != value for b in settings)})
    return {
        setting: ", ".join(f"{key}={_text(dict(setting).get(key))}" for key in differing) or "all runs"
        for setting in settings
    }


def paired_differences(summaries: list[SettingSummary]) -> list[tuple[str, str, Difference]]:
    """``a - b`` of the final target gain for every two settings that share at least two replicates."""
    pairs = []
    for a, b in combinations(summaries, 2):
        gains_b = {run.replicate: run.final_gain for run in b.runs}
        shared = [run.final_gain - gains_b[run.replicate] for run in a.runs if run.replicate in gains_b]
        if len(shared) >= 2:
            pairs.append((a.label, b.label, t_interval(shared, "run")))
    return pairs


def summary_table(summaries: list[SettingSummary]) -> str:
    """Markdown: per setting, the runs, buckets trained, gain after each bucket (mean), final gain and forgetting."""
    lines = [
        "| setting | runs | buckets trained | mean gain after each bucket | final target gain [95%] "
        "| ended above start | final forgetting [95%] |",
        "|---|---:|---:|---|---|---:|---|",
    ]
    for summary in summaries:
        runs = summary.runs
        trained = statistics.mean(run.trained for run in runs)
        path = ", ".join(f"{statistics.mean(gains):+.3f}" for gains in zip(*(run.gains for run in runs), strict=True))
        lines.append(
            f"| {summary.label} | {len(runs)} | {trained:.1f} of {runs[0].buckets} | {path} | {_spread(summary.gain)} "
            f"| {summary.ended_above_start} of {len(runs)} | {_spread(summary.forgetting)} |"
        )
    return "\n".join(lines)


def differences_table(pairs: list[tuple[str, str, Difference]]) -> str:
    """Markdown: the paired differences of the final target gain between settings."""
    if not pairs:
        return "(no two settings share two or more replicates: no paired differences)"
    lines = ["| a | b | final gain a - b [95%] | replicates | told apart |", "|---|---|---|---:|---|"]
    for a, b, difference in pairs:
        told = "yes" if difference.distinguishable else "no"
        lines.append(
            f"| {a} | {b} | {difference.mean:+.3f} {_bracket(difference)} | {difference.replicates} | {told} |"
        )
    return "\n".join(lines)


def _spread(difference: Difference) -> str:
    if difference.replicates < 2:
        return f"{difference.mean:+.3f} (one run: no interval)"
    return f"{difference.mean:+.3f} ± {difference.sd:.3f} {_bracket(difference)}"


def _bracket(difference: Difference) -> str:
    return f"[{difference.low:+.3f}, {difference.high:+.3f}]"


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _text(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, tuple):
        return ",".join(str(item) for item in value)
    return str(value).lower() if isinstance(value, bool) else str(value)


__all__ = [
    "AdaptationRun",
    "SettingSummary",
    "differences_table",
    "paired_differences",
    "read_adaptation",
    "setting_labels",
    "summarise",
    "summary_table",
]
