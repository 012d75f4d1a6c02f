"""Every number a user can give: each numeric option and config field has a finite range, and anything outside it
(non-finite, negative, zero where it must be positive, huge, mistyped) is one line, exit 2, nothing written.

The options are found by walking both click groups, the fields by walking the config models, so a
new option or field is covered the moment it exists (and fails the first two tests if it has no range).
"""

from __future__ import annotations

import math
import types
import typing
from pathlib import Path

import annotated_types
import click
import click.testing
import pydantic
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli.distill_cli import distill
from cli.parameters import Number
from cli.promptkit_cli import promptkit
from distill.compare.plan import CompareConfig
from distill.kd.terms import KDTermSpec, WeightSchedule
from distill.training.configuration import load_config
from distill.training.prompt_teacher import TeacherTrainingConfig
from distill.training.run_config import RunConfig
from distill.unlabelled.adaptation import AdaptConfig
from prompt_kit.errors import PromptKitError
from prompt_kit.readers import parse_yaml
from teacher.config import DiffusionTeacherConfig
from tests.reliability.conftest import DATA, assert_clean_error, files_under

GROUPS = {"distill": distill, "promptkit": promptkit}
MODELS = [RunConfig, TeacherTrainingConfig, CompareConfig, AdaptConfig, DiffusionTeacherConfig]
MODELS += [WeightSchedule, KDTermSpec]
HYPOTHESIS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def numeric_options() -> list[tuple[str, str, click.Option]]:
    found = []
    for group_name, group in GROUPS.items():
        for name, command in group.commands.items():
            for param in command.params:
                if isinstance(param, click.Option) and not param.is_flag:
                    numeric = isinstance(param.type, (Number, click.IntRange, click.FloatRange))
                    if numeric or param.type in (click.INT, click.FLOAT):
                        found.append((group_name, name, param))
    return found


OPTIONS = numeric_options()


def _numbers_in(annotation) -> tuple[type | None, list]:
    """The number type an annotation holds (int or float, through Optional/Annotated/tuple) and its bounds."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        kind, inner = _numbers_in(typing.get_args(annotation)[0])
        extra = [m for a in typing.get_args(annotation)[1:] for m in getattr(a, "metadata", [a])]
        return kind, inner + extra
    if origin in (typing.Union, types.UnionType, tuple):
        for arg in typing.get_args(annotation):
            kind, bounds = _numbers_in(arg)
            if kind is not None:
                return kind, bounds
        return None, []
    if annotation in (int, float):
        return annotation, []
    return None, []


def numeric_fields() -> list[tuple[type, str, type, float, float, bool, bool]]:
    """``(model, field, int|float, low, high, low_open, high_open)`` for every numeric config field."""
    found = []
    for model in MODELS:
        for name, info in model.model_fields.items():
            kind, bounds = _numbers_in(info.annotation)
            if kind is None:
                continue
            bounds = bounds + list(info.metadata)
            low = [(m.ge, False) for m in bounds if isinstance(m, annotated_types.Ge)]
            low += [(m.gt, True) for m in bounds if isinstance(m, annotated_types.Gt)]
            high = [(m.le, False) for m in bounds if isinstance(m, annotated_types.Le)]
            high += [(m.lt, True) for m in bounds if isinstance(m, annotated_types.Lt)]
            (lo, lo_open), (hi, hi_open) = (low or [(None, False)])[0], (high or [(None, False)])[0]
            found.append((model, name, kind, lo, hi, lo_open, hi_open))
    return found


FIELDS = numeric_fields()


def test_every_numeric_option_has_a_finite_range():
    unbounded = [f"{group} {command} {param.opts[0]}" for group, command, param in OPTIONS
                 if not isinstance(param.type, Number) or not (math.isfinite(param.type.low)
                                                              and math.isfinite(param.type.high))]  # fmt: skip
    assert len(OPTIONS) >= 25 and unbounded == []


def test_every_numeric_config_field_has_a_finite_range():
    unbounded = [f"{model.__name__}.{name}" for model, name, _, low, high, *_ in FIELDS if low is None or high is None]
    assert len(FIELDS) >= 55 and unbounded == []


def bad_values(
    kind: type, low: float, high: float, low_open: bool, high_open: bool, empty: bool = True
) -> st.SearchStrategy[str]:
    """Text a user might type that is not a number in the range: non-finite, below, above, mistyped, fractional.

    ``empty=False`` for ``--set``, where an empty value is YAML's null: an optional field's default.
    """
    words = ["nan", "NaN", "inf", "-inf", "+inf", "1e999", "abc", "1,5", "0x1p3", "--", "1" + "0" * 400]
    words += [""] if empty else []
    words = st.sampled_from(words)
    if kind is int:
        below = st.integers(max_value=int(math.ceil(low)) - 1, min_value=-(10**30)).map(str)
        above = st.integers(min_value=int(math.floor(high)) + 1, max_value=10**30).map(str)
        fraction = st.floats(-1e6, 1e6).filter(lambda x: x != int(x)).map(repr)
        return st.one_of(words, below, above, fraction)
    below = st.floats(max_value=low, exclude_max=not low_open, allow_nan=False, allow_infinity=False).map(repr)
    above = st.floats(min_value=high, exclude_min=not high_open, allow_nan=False, allow_infinity=False).map(repr)
    return st.one_of(words.filter(lambda w: w not in ("0x1p3",)), below, above)


@pytest.mark.parametrize(("group", "command", "param"), OPTIONS, ids=[f"{g}-{c}-{p.opts[0]}" for g, c, p in OPTIONS])
@HYPOTHESIS
@given(data=st.data())
def test_a_bad_number_for_any_option_is_one_line_and_writes_nothing(group, command, param, data, tmp_path):
    kind = param.type.kind if isinstance(param.type, Number) else int
    value = data.draw(bad_values(kind, param.type.low, param.type.high, param.type.low_open, param.type.high_open))
    before = files_under(tmp_path)
    takes_out = any(p.name == "out" for p in GROUPS[group].commands[command].params)
    out = ["--out", str(tmp_path / "out")] if takes_out else []
    result = click.testing.CliRunner().invoke(GROUPS[group], [command, f"{param.opts[0]}={value}", *out])
    line = assert_clean_error(result)
    assert param.opts[0] in line and param.type.range_text in line, line
    assert files_under(tmp_path) == before


def _yaml_text(value: str) -> str:
    """What ``--set`` receives; YAML reads ``.nan``/``.inf`` as floats, so non-finite words go in both spellings."""
    return {"nan": ".nan", "inf": ".inf", "-inf": "-.inf"}.get(value, value)


FIELD_IDS = [f"{model.__name__}.{name}" for model, name, *_ in FIELDS]
BASES = {
    RunConfig: {},
    TeacherTrainingConfig: {"prompts": "p.yaml"},
    CompareConfig: {},
    AdaptConfig: {"teacher": "t", "student": "s", "source": "a", "target": "b", "out": "o"},
}


@pytest.mark.parametrize(("model", "name", "kind", "low", "high", "low_open", "high_open"), FIELDS, ids=FIELD_IDS)
@HYPOTHESIS
@given(data=st.data())
def test_a_bad_number_for_any_config_field_is_refused_naming_it(
    model, name, kind, low, high, low_open, high_open, data
):
    is_tuple = typing.get_origin(model.model_fields[name].annotation) is tuple
    values = bad_values(kind, low, high, low_open, high_open, empty=False)
    # inside a list "1,5" would be two good elements, not one bad one
    value = data.draw(values.filter(lambda text: "," not in text) if is_tuple else values)
    text = _yaml_text(value) if data.draw(st.booleans()) else value
    if is_tuple:  # a bad element beside a good one
        text = f"[{high:g}, {text}]"
    name_alone = rf"(?<![a-z_]){name}(?![a-z_])"  # lr, not denoiser_lr
    if model in BASES:
        with pytest.raises(PromptKitError, match=name_alone):
            load_config(model, None, [f"{name}={text}"], BASES[model])
    elif model is DiffusionTeacherConfig:
        with pytest.raises(PromptKitError, match=name_alone):
            load_config(TeacherTrainingConfig, None, [f"model.{name}={text}"], BASES[TeacherTrainingConfig])
    else:  # a KD term's weight or its schedule: models inside a run config's kd list
        parsed = parse_yaml(text, f"--set {name}") if text.strip() else None
        with pytest.raises(pydantic.ValidationError, match=name_alone):
            model.model_validate({"loss": "kl", name: parsed} if model is KDTermSpec else {name: parsed})


COMMAND_LINES = {
    RunConfig: ["run", "--student", "tiny", "--kd", "none", "--data", DATA, "--steps", "2"],
    TeacherTrainingConfig: ["teacher", "--prompts", "{label}", "--data", DATA, "--steps", "2"],
    AdaptConfig: ["adapt", "--teacher", "{tmp}/t", "--student", "{tmp}/s", "--source", DATA, "--target", DATA],
}
COMMAND_FIELDS = [field for field in FIELDS if field[0] in COMMAND_LINES]


@pytest.mark.parametrize(
    ("model", "name", "kind", "low", "high", "low_open", "high_open"),
    COMMAND_FIELDS,
    ids=[f"{model.__name__}.{name}" for model, name, *_ in COMMAND_FIELDS],
)
@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_bad_set_value_on_the_command_line_writes_nothing(
    model, name, kind, low, high, low_open, high_open, data, tmp_path
):
    from prompt_kit.resources import prompts_dir

    value = _yaml_text(data.draw(bad_values(kind, low, high, low_open, high_open, empty=False)))
    label = str(prompts_dir() / "camvid" / "label.yaml")
    args = [arg.replace("{tmp}", str(tmp_path)).replace("{label}", label) for arg in COMMAND_LINES[model]]
    before = files_under(tmp_path)
    result = click.testing.CliRunner().invoke(distill, [*args, "--out", str(Path(tmp_path) / "out"), "--set",
                                                        f"{name}={value}"])  # fmt: skip
    assert name in assert_clean_error(result)
    assert files_under(tmp_path) == before
