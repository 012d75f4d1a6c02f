"""KD terms as data: schedules, checked outputs and parameters, connectors trained, saved and resumed."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from pydantic import ValidationError
from safetensors.torch import load_file

from cli.distill_cli import distill
from distill.kd.terms import KDTermSpec, WeightSchedule, shorthand_specs
from tests.distill.conftest import DATA, kill_after_checkpoint


def test_schedule_warms_up_then_decays_to_zero_near_the_end():
    schedule = WeightSchedule(warmup_steps=4, decay_start=0.5, decay_end=0.9)
    factors = [schedule.factor(step, 20) for step in range(20)]
    assert factors[:4] == [0.25, 0.5, 0.75, 1.0] and factors[4:10] == [1.0] * 6
    # decay on the 1-based call count, as SegDistill's earlydecay: start 10, end 18
    assert factors[9] == 1.0 and factors[10] == pytest.approx(7 / 8) and factors[13] == pytest.approx(0.5)
    assert factors[16] == pytest.approx(1 / 8) and factors[17:] == [0.0, 0.0, 0.0]
    assert all(a >= b for a, b in zip(factors[4:], factors[5:], strict=False))
    assert WeightSchedule().factor(7, 10) == 1.0
    with pytest.raises(ValidationError, match="decay_end"):
        WeightSchedule(decay_start=0.9, decay_end=0.5)


@pytest.mark.parametrize(
    ("term", "message"),
    [
        ({"loss": "cgd", "params": {"temprature": 2}}, "cgd does not take 'temprature' \\(parameters: tau, group_size"),
        ({"loss": "kd"}, "unknown KD loss 'kd'"),
        ({"loss": "none"}, "not a KD term"),
        ({"loss": "kl", "connecter": "conv1x1"}, "connecter"),
        ({"loss": "kl", "connector": "mlp"}, "connector"),
    ],
)
def test_a_bad_term_is_an_error_naming_what_is_wrong(term, message):
    with pytest.raises(ValidationError, match=message):
        KDTermSpec.model_validate(term)


def test_the_shorthand_is_logit_terms_and_cirkd_at_the_decoder():
    specs = shorthand_specs("kl=1,cirkd=2", {"tau": 0.5})
    assert [(s.loss, s.weight, s.student, s.teacher) for s in specs] == [
        ("kl", 1.0, "logits", "logits"),
        ("cirkd", 2.0, "decoder", "decoder"),
    ]
    assert specs[1].params == {"tau": 0.5} and specs[0].params == {}


def run_with_terms(runner, tmp_path, name, teacher, terms, steps=8, resume=False, extra=()):
    config = tmp_path / f"{name}.yaml"
    config.write_text(yaml.safe_dump({"kd": terms, "checkpoint_every": 4, "eval_every": 8}))
    args = ["run", "--config", str(config), "--teacher", str(teacher), "--student", "tiny", "--data", DATA]
    args += ["--out", str(tmp_path / name), "--steps", str(steps), "--student-size", "32x48", "--seed", "0"]
    args += ["--set", "batch_size=4", "--set", "val_images=8", *extra]
    return runner.invoke(distill, [*args, *(["--resume"] if resume else [])])


CGD_AT_DECODER = [
    {"loss": "dist"},
    {
        "loss": "cgd",
        "weight": 3.0,
        "student": "decoder",
        "teacher": "decoder",
        "connector": "conv1x1",
        "params": {"group_size": 4, "shuffle_every": 2},
        "schedule": {"warmup_steps": 3, "decay_start": 0.75, "decay_end": 1.0},
    },
]


def test_a_segdistill_style_term_trains_its_connector_and_keeps_it_out_of_the_student(
    runner, trained_teacher, tmp_path
):
    result = run_with_terms(runner, tmp_path, "cgd", trained_teacher, CGD_AT_DECODER)
    assert result.exit_code == 0, result.output
    extra = load_file(str(tmp_path / "cgd" / "checkpoints" / "last" / "extra.safetensors"))
    connector = extra["cgd__decoder.connector.weight"]
    assert connector.shape == (16, 64, 1, 1)  # tiny student decoder 64 channels -> the teacher's 16
    student = load_file(str(tmp_path / "cgd" / "checkpoints" / "best" / "model.safetensors"))
    assert not any("connector" in key for key in student)
    history = json.loads((tmp_path / "cgd" / "metrics.json").read_text())
    assert history["miou"] >= 0
    torch.manual_seed(0)
    fresh = torch.nn.Conv2d(64, 16, 1).weight
    assert not torch.allclose(connector, fresh)  # it was trained, not left at its initialisation


def test_a_killed_run_with_a_connector_resumes_exactly(runner, trained_teacher, tmp_path, monkeypatch):
    whole = run_with_terms(runner, tmp_path, "whole", trained_teacher, CGD_AT_DECODER)
    assert whole.exit_code == 0, whole.output
    with monkeypatch.context() as patch:
        kill_after_checkpoint(patch, 4)
        killed = run_with_terms(runner, tmp_path, "killed", trained_teacher, CGD_AT_DECODER)
    assert killed.exit_code != 0
    resumed = run_with_terms(runner, tmp_path, "killed", trained_teacher, CGD_AT_DECODER, resume=True)
    assert resumed.exit_code == 0, resumed.output
    for name in ("model.safetensors", "extra.safetensors"):
        ours = load_file(str(tmp_path / "whole" / "checkpoints" / "last" / name))
        theirs = load_file(str(tmp_path / "killed" / "checkpoints" / "last" / name))
        assert all(torch.equal(ours[key], theirs[key]) for key in ours), name


@pytest.mark.parametrize(
    ("term", "message"),
    [
        ({"loss": "cwd", "student": "decoder", "teacher": "decoder"}, "add connector: conv1x1"),
        ({"loss": "cwd", "student": "neck", "teacher": "decoder"}, "the student has no output 'neck': choose from"),
        ({"loss": "mse", "student": "decoder", "teacher": "up9"}, "the teacher has no output 'up9'"),
    ],
)
def test_terms_that_do_not_fit_fail_before_training(runner, trained_teacher, tmp_path, term, message):
    result = run_with_terms(runner, tmp_path, "bad", trained_teacher, [term])
    assert result.exit_code == 2 and message in result.stderr, result.output
    assert "Traceback" not in result.output and not (tmp_path / "bad" / "checkpoints").exists()


class _Unrunnable(torch.nn.Module):
    def forward(self, *args, **kwargs):
        raise AssertionError("connect ran a model")


def test_connect_sizes_connectors_from_declared_shapes_without_running_a_model():
    from distill.kd.terms import build_terms, connect
    from networks import create_network
    from networks.feature_info import FeatureInfo, OutputInfo

    student = create_network("tiny", 5)
    student.forward = _Unrunnable().forward  # nothing may call it
    teacher = OutputInfo(5, 4, (FeatureInfo("decoder", 16, 4), FeatureInfo("encoder", 24, 8)))
    terms = build_terms(
        [
            KDTermSpec(loss="cwd", student="decoder", teacher="decoder", connector="conv1x1"),
            KDTermSpec(loss="kl"),
        ],
        "upsample_student",
    )
    connect(terms, student.output_info, teacher, (64, 96), (64, 96))
    decoder_channels = student.feature_channels["decoder"]
    assert terms[0].connector.weight.shape == (16, decoder_channels, 1, 1)
    assert terms[1].connector is None
    # a mismatch the declared shapes show is caught the same way
    with pytest.raises(Exception, match="add connector: conv1x1"):
        connect(build_terms([KDTermSpec(loss="cwd", student="decoder", teacher="decoder")], "upsample_student"),
                student.output_info, teacher, (64, 96), (64, 96))  # fmt: skip
