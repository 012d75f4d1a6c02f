"""``promptkit score`` and ``promptkit embed`` as a user runs them."""

from __future__ import annotations

import json

import pytest

from cli.promptkit_cli import promptkit
from prompt_kit.class_embeddings import ClassEmbeddings
from prompt_kit.resources import prompts_dir

CAMVID_SETS = [str(prompts_dir() / "camvid" / f"{style}.yaml") for style in ("label", "bag_of_words", "orthogonal")]


def test_score_compares_sets_side_by_side(runner):
    result = runner.invoke(promptkit, ["score", *CAMVID_SETS])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "encoder: minilm"
    assert [line.split()[0] for line in lines[2:5]] == ["label", "bag_of_words", "orthogonal"]
    assert "most confusable pairs" in result.stdout


def test_score_json_has_the_documented_keys(runner):
    result = runner.invoke(promptkit, ["score", *CAMVID_SETS, "--format", "json"])
    rows = json.loads(result.stdout)
    assert [row["set"] for row in rows] == ["label", "bag_of_words", "orthogonal"]
    for row in rows:
        assert {"set", "style", "encoder", "mean_offdiag", "max_offdiag", "max_offdiag_centered",
                "effective_rank"} <= set(row)  # fmt: skip
        assert len(row["pooled"]["most_confusable"]) == 5 and len(row["tokens"]["nearest"]) == 11
    by_set = {row["set"]: row for row in rows}
    assert by_set["orthogonal"]["max_offdiag"] < by_set["bag_of_words"]["max_offdiag"]


@pytest.mark.parametrize("fmt", ["md", "csv"])
def test_score_md_and_csv(runner, fmt):
    result = runner.invoke(promptkit, ["score", *CAMVID_SETS, "--format", fmt])
    first = result.stdout.splitlines()[0]
    assert first.startswith("| set | style |" if fmt == "md" else "set,style,encoder")


def test_score_out_writes_tables_and_readable_plots(runner, tmp_path):
    out = tmp_path / "rep"
    result = runner.invoke(promptkit, ["score", *CAMVID_SETS, "--out", str(out)])
    assert result.exit_code == 0
    names = sorted(path.name for path in out.iterdir())
    assert names == ["comparison.png", "heatmap_bag_of_words.png", "heatmap_label.png", "heatmap_orthogonal.png",
                     "scores.csv", "scores.json", "scores.md"]  # fmt: skip
    from PIL import Image

    width, height = Image.open(out / "heatmap_label.png").size
    assert width > 500 and height > 400


def test_score_with_the_teachers_clip_encoder(runner, tiny_sd_folder):
    result = runner.invoke(
        promptkit, ["score", *CAMVID_SETS, "--encoder", f"clip:{tiny_sd_folder}", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert rows[0]["encoder"] == f"clip:{tiny_sd_folder}"
    # for CLIP the token view (all 77 positions, masked mean) differs from the pooled EOS view
    assert rows[0]["tokens"]["max_offdiag"] != pytest.approx(rows[0]["max_offdiag"], abs=1e-4)


def test_embed_writes_class_embeddings(runner, tmp_path):
    out = tmp_path / "e.safetensors"
    result = runner.invoke(promptkit, ["embed", CAMVID_SETS[2], "--out", str(out)])
    assert result.exit_code == 0, result.output
    embeddings = ClassEmbeddings.load(out)
    assert embeddings.pooled.shape == (11, 384) and embeddings.style == "orthogonal"


def _kitti_set_labelled_camvid(tmp_path):
    text = (prompts_dir() / "kitti11" / "label.yaml").read_text().replace("dataset: kitti11", "dataset: camvid")
    path = tmp_path / "wrong.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("make_args", "message"),
    [
        (lambda tmp: ["score", str(_kitti_set_labelled_camvid(tmp))], "does not match taxonomy 'camvid'"),
        (lambda tmp: ["score", CAMVID_SETS[0], "--encoder", "clip:/no/where"], "encoder folder not found"),
        (lambda tmp: ["score", CAMVID_SETS[0], "--encoder", f"st:{tmp}"], "not a sentence-transformers model"),
        (lambda tmp: ["score", str(tmp / "missing.yaml")], "prompt set file not found"),
        (lambda tmp: ["embed", str(_kitti_set_labelled_camvid(tmp)), "--out", str(tmp / "e.st")], "does not match"),
    ],
)
def test_score_errors_exit_2_and_write_nothing(runner, tmp_path, make_args, message):
    out = tmp_path / "rep"
    args = make_args(tmp_path)
    result = runner.invoke(promptkit, [*args, "--out", str(out)] if args[0] == "score" else args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and "Traceback" not in result.output
    assert not out.exists() and not (tmp_path / "e.st").exists()


def test_empty_words_in_a_set_is_an_error(runner, tmp_path):
    text = (prompts_dir() / "camvid" / "orthogonal.yaml").read_text()
    path = tmp_path / "empty.yaml"
    path.write_text(text.replace("words: [", "words: ['', ", 1))
    result = runner.invoke(promptkit, ["score", str(path)])
    assert result.exit_code == 2 and "words must not be empty" in result.stderr
