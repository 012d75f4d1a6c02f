"""The newer commands (adapt, predict/eval/pseudo-label TTA, vdna, map, adapt-summary, compare) under hostile input.

Each named case runs the real CLI in-process and checks the README's promise: no traceback, one
``error:`` line, exit status 2, and every file under ``tmp_path`` exactly as it was (nothing
half-written, no run folder left, no finished work replaced). The tests after the table show the
ordinary inputs that used to crash now doing their work.
"""

from __future__ import annotations

import io
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save as safetensors_save

from cli.distill_cli import distill
from cli.promptkit_cli import promptkit
from prompt_kit.resources import prompts_dir
from tests.reliability.conftest import DATA, assert_clean_error, files_under

LABEL_SET = str(prompts_dir() / "camvid" / "label.yaml")
TARGET = DATA + ",domain=target"
NOT_UTF8 = b'{"config": "\xff\xfe"}'
RANDOM_BYTES = bytes(np.random.default_rng(1).integers(0, 256, 700, dtype=np.uint8))
FINISHED_RUN = {"run/metrics.json": '{"miou": 0.5}\n', "run/config.yaml": "student: tiny\n"}


def _pickle_bytes() -> bytes:
    buffer = io.BytesIO()
    torch.save({"range.encoder": torch.zeros(4, 2)}, buffer)
    return buffer.getvalue()


def _vdna_bytes(neurons: int = 4, bins: int = 50, low: float = -1.0, layers: str = "encoder") -> bytes:
    """A vDNA file as ``distill vdna`` writes it (written here with safetensors, so the table needs no new code)."""
    ranges = torch.tensor([[low, 1.0]] * neurons)
    tensors = {f"range.{layers}": ranges, f"histogram.{layers}": torch.ones(neurons, bins, dtype=torch.float64)}
    return safetensors_save(tensors, metadata={"images": "3", "layers": layers})


@dataclass
class Case:
    """A command line with ``{tmp}``, ``{teacher}`` and ``{student}`` in it, and files to write under ``tmp`` first."""

    name: str
    app: str
    args: list[str]
    files: dict[str, bytes | str] = field(default_factory=dict)
    expect: str = ""


ADAPT = ["adapt", "--teacher", "{teacher}", "--student", "{student}", "--source", DATA, "--target", TARGET,
         "--buckets", "2", "--out", "{tmp}/adapt", "--set", "steps_per_bucket=2", "--set", "bins=50"]  # fmt: skip
PREDICT = ["predict", "{student}", "--images", DATA, "--split", "val", "--out", "{tmp}/pred"]
PSEUDO = ["pseudo-label", "{teacher}", "--images", DATA, "--out", "{tmp}/pseudo"]
MAP = ["map", "--from", "camvid", "--to", "cityscapes", "--out", "{tmp}/map.csv"]
COMPARE = ["compare", "--data", DATA, "--styles", "label", "--seeds", "1", "--out", "{tmp}/compare"]
VDNA = ["vdna", "--model", "{student}", "--layers", "encoder", "--data", DATA, "--out", "{tmp}/v.safetensors"]
RUN = ["run", "--student", "tiny", "--kd", "none", "--steps", "2", "--out", "{tmp}/r"]
AGAINST = [*VDNA, "--against", "{tmp}/a.safetensors"]

CASES = [
    # distill adapt: every bad setting is refused before the first file
    Case("adapt-seed-negative", "distill", [*ADAPT, "--set", "seed=-1"], expect="seed"),
    Case("adapt-seed-huge", "distill", [*ADAPT, "--set", "seed=99999999999"], expect="seed"),
    Case("adapt-lr-nan", "distill", [*ADAPT, "--set", "lr=.nan"], expect="lr"),
    Case("adapt-lr-inf", "distill", [*ADAPT, "--set", "lr=.inf"], expect="lr"),
    Case("adapt-max-entropy-nan", "distill", [*ADAPT, "--set", "max_entropy=nan"], expect="max_entropy"),
    Case("adapt-min-kept-share-above-one", "distill", [*ADAPT, "--set", "min_kept_share=2"]),
    Case("adapt-bins-huge", "distill", [*ADAPT, "--set", "bins=10000000000"], expect="bins"),
    Case("adapt-steps-zero", "distill", [*ADAPT, "--set", "steps_per_bucket=0"]),
    Case("adapt-tta-nan", "distill", [*ADAPT, "--set", "tta=scales=nan"], expect="tta"),
    Case("adapt-kd-unknown", "distill", [*ADAPT, "--set", "kd=klx"], expect="klx"),
    Case("adapt-more-buckets-than-images", "distill", [*ADAPT, "--buckets", "100"], expect="--buckets 100"),
    Case("adapt-record-truncated", "distill", ADAPT, {"adapt/adapt.json": '{"config": {"teach'}, expect="--overwrite"),
    Case("adapt-record-mistyped", "distill", ADAPT, {"adapt/adapt.json": '{"config": [], "buckets": 3}'}),
    Case("adapt-record-not-utf8", "distill", ADAPT, {"adapt/adapt.json": NOT_UTF8}, expect="UTF-8"),
    Case("adapt-out-is-a-finished-run", "distill", [*ADAPT[:-5], "{tmp}/run", *ADAPT[-4:]], FINISHED_RUN),
    # test-time augmentation and thresholds: non-finite and absurd numbers
    Case("predict-tta-nan", "distill", [*PREDICT, "--tta", "scales=nan"], expect="finite"),
    Case("predict-tta-inf", "distill", [*PREDICT, "--tta", "flip,scales=1,inf"], expect="finite"),
    Case("predict-tta-huge", "distill", [*PREDICT, "--tta", "scales=1e6"], expect="finite"),
    Case("eval-tta-nan", "distill", ["eval", "{student}", "--tta", "scales=nan"], expect="finite"),
    Case("eval-tta-negative", "distill", ["eval", "{student}", "--tta", "scales=-1"]),
    Case("pseudo-label-tta-inf", "distill", [*PSEUDO, "--tta", "scales=inf"], expect="finite"),
    Case("pseudo-label-max-entropy-nan", "distill", [*PSEUDO, "--max-entropy", "nan"], expect="--max-entropy"),
    Case("pseudo-label-min-confidence-inf", "distill", [*PSEUDO, "--min-confidence", "inf"]),
    Case("pseudo-label-class-balanced-nan", "distill", [*PSEUDO, "--class-balanced", "nan"]),
    Case("pseudo-label-min-image-share-negative", "distill", [*PSEUDO, "--min-image-share", "-1"]),
    Case("map-min-similarity-nan", "promptkit", [*MAP, "--min-similarity", "nan"], expect="[-1, 1]"),
    Case("map-min-similarity-minus-5", "promptkit", [*MAP, "--min-similarity", "-5"], expect="[-1, 1]"),
    Case("map-min-similarity-5", "promptkit", [*MAP, "--min-similarity", "5"], expect="[-1, 1]"),
    Case("map-close-negative", "promptkit", [*MAP, "--close", "-1"], expect="--close"),
    Case("map-close-inf", "promptkit", [*MAP, "--close", "inf"], expect="--close"),
    Case("compare-run-lr-nan", "distill", [*COMPARE, "--set", "run.lr=.nan"], expect="run.lr"),
    Case("compare-run-lr-nan-word", "distill", [*COMPARE, "--set", "run.lr=nan"], expect="run.lr"),
    Case("compare-run-lr-inf", "distill", [*COMPARE, "--set", "run.lr=.inf"], expect="run.lr"),
    Case("compare-teacher-lr-nan", "distill", [*COMPARE, "--set", "teacher.lr=.nan"], expect="teacher.lr"),
    Case("compare-kd-temperature-inf", "distill", [*COMPARE, "--set", "run.kd_params.tau=.inf"], expect="finite"),
    Case("compare-teacher-seeds-huge", "distill", [*COMPARE, "--teacher-seeds", str(10**12)], expect="[1, 1000]"),
    Case("compare-seeds-huge", "distill", [*COMPARE, "--seeds", str(10**9)], expect="[1, 1000]"),
    Case("synthetic-size-huge", "distill", [*RUN, "--data", "synthetic:size=100000x100000"], expect="8192"),
    Case("synthetic-count-huge", "distill", [*RUN, "--data", "synthetic:count=10000000000"], expect="count"),
    Case("run-grad-clip-nan", "distill", [*RUN, "--data", DATA, "--set", "grad_clip=.nan"], expect="grad_clip"),
    Case("run-steps-huge", "distill", [*RUN[:-4], "--steps", str(10**12), "--out", "{tmp}/r"], expect="--steps"),
    Case("vdna-bins-huge", "distill", [*VDNA, "--bins", "10000000000"], expect="--bins"),
    # the newer readers: damaged files
    Case("vdna-against-random-bytes", "distill", AGAINST, {"a.safetensors": RANDOM_BYTES}, expect="vDNA"),
    Case("vdna-against-pickle", "distill", AGAINST, {"a.safetensors": _pickle_bytes()}, expect="vDNA"),
    Case(
        "vdna-against-other-bins",
        "distill",
        [*AGAINST, "--bins", "20"],
        {"a.safetensors": _vdna_bytes()},
        expect="--bins 20",
    ),  # fmt: skip
    Case(
        "vdna-against-other-neurons", "distill", AGAINST, {"a.safetensors": _vdna_bytes(neurons=3)}, expect="neurons"
    ),  # fmt: skip
    Case("vdna-against-empty-ranges", "distill", AGAINST, {"a.safetensors": _vdna_bytes(low=1.0)}, expect="range"),
    Case("vdna-against-other-layers", "distill", AGAINST, {"a.safetensors": _vdna_bytes(layers="decoder")}),
    Case("adapt-summary-not-utf8", "distill", ["adapt-summary", "{tmp}/s"], {"s/adapt.json": NOT_UTF8}),
    Case("adapt-summary-truncated", "distill", ["adapt-summary", "{tmp}/s"], {"s/adapt.json": '{"config": {'}),
    Case(
        "adapt-summary-mistyped",
        "distill",
        ["adapt-summary", "{tmp}/s"],
        {"s/adapt.json": '{"config": {}, "unadapted": null, "order": null, "buckets": "x"}'},
        expect="buckets",
    ),  # fmt: skip
    Case(
        "adapt-summary-bucket-mistyped",
        "distill",
        ["adapt-summary", "{tmp}/s"],
        {"s/adapt.json": '{"config": {}, "buckets": [{"bucket": "first"}]}'},
    ),  # fmt: skip
    Case("pseudo-label-priors-not-utf8", "distill", [*PSEUDO, "--priors", "{tmp}/p.csv"], {"p.csv": b"\xff\xfe,x"}),
    # outputs over finished work
    Case(
        "map-out-over-a-runs-metrics",
        "promptkit",
        [*MAP[:-1], "{tmp}/run/metrics.json"],
        FINISHED_RUN,
        expect="--overwrite",
    ),  # fmt: skip
    Case("map-out-into-a-finished-run", "promptkit", [*MAP[:-1], "{tmp}/run/map.csv"], FINISHED_RUN),
    Case("map-out-existing-file", "promptkit", MAP, {"map.csv": "x\n"}, expect="exists"),
    Case("vdna-out-over-a-runs-metrics", "distill", [*VDNA[:-1], "{tmp}/run/metrics.json"], FINISHED_RUN),
    Case(
        "vdna-ranking-existing-file",
        "distill",
        [*AGAINST, "--ranking", "{tmp}/rank.csv"],
        {"a.safetensors": _vdna_bytes(), "rank.csv": "x\n"},
        expect="--ranking",
    ),  # fmt: skip
    Case("predict-into-a-finished-run", "distill", [*PREDICT[:-1], "{tmp}/run"], FINISHED_RUN, expect="finished run"),
    Case(
        "predict-over-other-predictions",
        "distill",
        PREDICT,
        {"pred/predictions.json": '{"model": "another", "tta": "none"}'},
        expect="--overwrite",
    ),  # fmt: skip
    Case("compare-into-a-finished-run", "distill", [*COMPARE[:-1], "{tmp}/run"], FINISHED_RUN, expect="finished run"),
    Case("score-out-into-a-finished-run", "promptkit", ["score", LABEL_SET, "--out", "{tmp}/run"], FINISHED_RUN),
    Case(
        "generate-out-existing-file",
        "promptkit",
        ["generate", "--style", "label", "--out", "{tmp}/o.yaml"],
        {"o.yaml": "x\n"},
        expect="exists",
    ),  # fmt: skip
    Case(
        "embed-out-existing-file",
        "promptkit",
        ["embed", LABEL_SET, "--out", "{tmp}/e.safetensors"],
        {"e.safetensors": "x"},
        expect="exists",
    ),  # fmt: skip
]


def _prepare(case: Case, tmp_path: Path, teacher: Path, student: Path) -> tuple[object, list[str]]:
    for name, data in case.files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data if isinstance(data, bytes) else data.encode())
    args = [
        arg.replace("{tmp}", str(tmp_path)).replace("{teacher}", str(teacher)).replace("{student}", str(student))
        for arg in case.args
    ]
    return (promptkit if case.app == "promptkit" else distill), args


def test_the_table_names_every_class_of_the_issue():
    names = " ".join(case.name for case in CASES)
    for family in ("adapt-", "predict-tta", "eval-tta", "pseudo-label-", "map-", "compare-", "synthetic-size",
                   "vdna-bins", "vdna-against", "adapt-summary", "-out-", "-into-"):  # fmt: skip
        assert family in names, family
    assert len({case.name for case in CASES}) == len(CASES) >= 60


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_hostile_input_is_one_line_exit_2_and_changes_nothing(
    case, runner, tmp_path, trained_teacher, finished_student
):
    app, args = _prepare(case, tmp_path, trained_teacher, finished_student)
    before = files_under(tmp_path)
    teacher_before, student_before = files_under(trained_teacher), files_under(finished_student)
    result = runner.invoke(app, args)
    line = assert_clean_error(result)
    assert case.expect in line, line
    assert files_under(tmp_path) == before, "the failed command left or changed files"
    assert files_under(finished_student) == student_before and files_under(trained_teacher) == teacher_before


# -- what used to crash on ordinary input, now doing its work ----------------------------------------------------


def adapt_args(teacher, student, out, target=TARGET, buckets=2):
    return ["adapt", "--teacher", str(teacher), "--student", str(student), "--source", DATA, "--target", target,
            "--buckets", str(buckets), "--out", str(out), "--set", "steps_per_bucket=2", "--set", "bins=50",
            "--set", "max_entropy=2.0"]  # fmt: skip


def test_adapt_trains_buckets_smaller_than_a_batch_with_a_batch_of_all_their_images(
    runner, trained_teacher, finished_student, tmp_path
):
    """Before: ``ValueError: the training set has 4 samples, fewer than one global batch (8)`` after 18 files."""
    out = tmp_path / "adapt"
    small = "synthetic:count=8,size=32x48,domain=target"
    result = runner.invoke(distill, adapt_args(trained_teacher, finished_student, out, small))
    assert result.exit_code == 0, result.output
    record = json.loads((out / "adapt.json").read_text())
    assert [row["batch_size"] for row in record["buckets"]] == [4, 4]
    assert "4 (batch 4)" in result.output
    again = runner.invoke(distill, adapt_args(trained_teacher, finished_student, out, small))
    assert again.exit_code == 0 and json.loads((out / "adapt.json").read_text()) == record


def test_adapt_to_a_target_without_labels_reports_the_forgetting(runner, trained_teacher, finished_student, tmp_path):
    """Before: ``NotImplementedError: Got <class 'NoneType'>`` from the logger after the first bucket."""
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for index in range(6):
        Image.fromarray(rng.integers(0, 256, (32, 48, 3), dtype=np.uint8)).save(photos / f"p{index}.png")
    out = tmp_path / "adapt"
    result = runner.invoke(distill, adapt_args(trained_teacher, finished_student, out, str(photos)))
    assert result.exit_code == 0, result.output
    record = json.loads((out / "adapt.json").read_text())
    assert record["unadapted"]["target_miou"] is None and record["unadapted"]["source_miou"] is not None
    assert all(row["target_gain"] is None and row["source_forgetting"] is not None for row in record["buckets"])
    assert "only the source's forgetting is measured" in result.output
    summary = runner.invoke(distill, ["adapt-summary", str(out)])
    assert "without labels" in assert_clean_error(summary)


def test_adapt_continues_after_a_kill_while_pseudo_labelling(
    runner, trained_teacher, finished_student, tmp_path, monkeypatch
):
    import distill.unlabelled.pseudo_labels as pseudo_labels

    out = tmp_path / "adapt"
    with monkeypatch.context() as patch:
        original, calls = pseudo_labels._write_image, {"n": 0}

        def die_on_the_third_image(item, array, folder):
            calls["n"] += 1
            if calls["n"] == 3:
                raise KeyboardInterrupt
            original(item, array, folder)

        patch.setattr(pseudo_labels, "_write_image", die_on_the_third_image)
        killed = runner.invoke(distill, adapt_args(trained_teacher, finished_student, out))
    assert killed.exit_code != 0 and "Traceback" not in killed.output
    resumed = runner.invoke(distill, adapt_args(trained_teacher, finished_student, out))
    assert resumed.exit_code == 0, resumed.output
    assert len(json.loads((out / "adapt.json").read_text())["buckets"]) == 2


def test_adapt_overwrite_starts_over_after_a_damaged_record(runner, trained_teacher, finished_student, tmp_path):
    out = tmp_path / "adapt"
    out.mkdir()
    (out / "adapt.json").write_text('{"config": {"tea')
    (out / "bucket_0").mkdir()
    refused = runner.invoke(distill, adapt_args(trained_teacher, finished_student, out))
    assert "--overwrite" in assert_clean_error(refused)
    result = runner.invoke(distill, [*adapt_args(trained_teacher, finished_student, out), "--overwrite"])
    assert result.exit_code == 0, result.output
    assert len(json.loads((out / "adapt.json").read_text())["buckets"]) == 2


def test_vdna_against_takes_its_bins(runner, finished_student, tmp_path):
    source, target = tmp_path / "source.safetensors", tmp_path / "target.safetensors"
    base = ["vdna", "--model", str(finished_student), "--layers", "encoder", "--data", DATA]
    assert runner.invoke(distill, [*base, "--bins", "30", "--out", str(source)]).exit_code == 0
    result = runner.invoke(distill, [*base, "--against", str(source), "--out", str(target), "--ranking",
                                     str(tmp_path / "rank.csv")])  # fmt: skip
    assert result.exit_code == 0, result.output
    from distill.unlabelled.vdna import VisualDNA

    assert VisualDNA.load(target).bins == 30 and (tmp_path / "rank.csv").is_file()
    again = runner.invoke(distill, [*base, "--against", str(source), "--out", str(target), "--overwrite"])
    assert again.exit_code == 0, again.output


def test_predict_resumes_its_own_folder_and_overwrite_predicts_again(runner, finished_student, tmp_path):
    out = tmp_path / "pred"
    args = ["predict", str(finished_student), "--images", DATA, "--split", "val", "--out", str(out), "--no-overlays"]
    assert runner.invoke(distill, args).exit_code == 0
    again = runner.invoke(distill, args)
    assert again.exit_code == 0 and "already there" in again.output
    other = runner.invoke(distill, [*args, "--tta", "flip"])
    assert "--overwrite" in assert_clean_error(other)
    forced = runner.invoke(distill, [*args, "--tta", "flip", "--overwrite"])
    assert forced.exit_code == 0 and "already there" not in forced.output
    assert json.loads((out / "predictions.json").read_text())["tta"] == "flip"


def test_generate_overwrite_replaces_the_file(runner, tmp_path):
    out = tmp_path / "o.yaml"
    out.write_text("old\n")
    result = runner.invoke(promptkit, ["generate", "--style", "label", "--out", str(out), "--overwrite"])
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("name:") or "classes" in out.read_text()


def test_a_copied_run_folder_is_still_refused_as_an_output(runner, finished_student, tmp_path):
    run = Path(shutil.copytree(finished_student, tmp_path / "run"))
    before = files_under(run)
    result = runner.invoke(distill, ["predict", str(finished_student), "--images", DATA, "--out", str(run)])
    assert "finished run" in assert_clean_error(result)
    assert files_under(run) == before


def test_a_constant_neuron_keeps_an_increasing_range_that_its_own_vdna_file_passes(tmp_path):
    """A ReLU6 stuck at 6: a span floor of 1e-6 fell below float32's resolution there, and the file was refused."""
    from distill.unlabelled.vdna import VisualDNA, histogram, ranges_from

    features = torch.full((2, 3, 4, 4), 6.0)
    ranges = ranges_from(features)
    assert (ranges[:, 1] > ranges[:, 0]).all()
    path = VisualDNA({"encoder": ranges}, {"encoder": histogram(features, ranges, 10)}, 2).save(tmp_path / "v.st")
    assert VisualDNA.load(path).bins == 10


def test_adapt_overwrite_never_deletes_what_no_adaptation_wrote(runner, trained_teacher, finished_student, tmp_path):
    out = tmp_path / "adapt"
    out.mkdir()
    (out / "adapt.json").write_text("{}")
    (out / "notes.txt").write_text("mine\n")
    before = files_under(tmp_path)
    result = runner.invoke(distill, [*adapt_args(trained_teacher, finished_student, out), "--overwrite"])
    assert "notes.txt" in assert_clean_error(result)
    assert files_under(tmp_path) == before


@pytest.mark.parametrize("args", [["run", "--seed", "1" + "0" * 400], ["run", "--set", "lr=1" + "0" * 400]])
def test_numbers_of_hundreds_of_digits_are_one_line(runner, tmp_path, args):
    result = runner.invoke(distill, [*args, "--student", "tiny", "--data", DATA, "--out", str(tmp_path / "r")])
    assert_clean_error(result)
    assert not (tmp_path / "r").exists()
