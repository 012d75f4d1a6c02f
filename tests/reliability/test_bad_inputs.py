"""Named malformed inputs against every reader and option: one ``error:`` line, exit 2, nothing left behind.

Each case builds its bad input under ``tmp_path`` and names the command line to run; the test runs
it in-process through the real CLI and checks the promise of the README's "Guarantees": no
traceback, a single line that says what is wrong, exit status 2, and the files under ``tmp_path``
exactly as they were before (no half-written output, no empty run folder, nothing added to a
teacher folder).
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cli.distill_cli import distill
from cli.promptkit_cli import promptkit
from prompt_kit.resources import prompts_dir
from tests.reliability.conftest import DATA, TINY_TEACHER, assert_clean_error, files_under

LABEL_SET = prompts_dir() / "camvid" / "label.yaml"
NOT_UTF8 = b"name: \xff\xfe\xfa bad\nclasses: [\x80\x81]\n"
RANDOM_BYTES = bytes(np.random.default_rng(0).integers(0, 256, 600, dtype=np.uint8))
ALIAS_BOMB = "\n".join(
    ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    + [f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]" for i in range(8)]
)  # 10^9 values once expanded, 600 bytes on disk
INLINE_BOMB = "[" + ", ".join(["&a [x, x, x, x, x, x, x, x, x, x]"] + [
    f"&{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]" for i in range(8)
]) + "]"  # fmt: skip


@dataclass
class Case:
    """A command line with ``{tmp}`` and ``{teacher}`` in it, and the files to write first.

    ``files`` maps a path under ``tmp_path`` to its bytes; ``damage`` replaces a file of a copy of
    the session teacher (``truncate``: its first half; other bytes: written as they are).
    """

    name: str
    app: str  # "promptkit" or "distill"
    args: list[str]
    files: dict[str, bytes | str] = field(default_factory=dict)
    damage: tuple[str, bytes | str] | None = None
    expect: str = ""  # a phrase the error line must contain

    @property
    def needs_teacher(self) -> bool:
        return self.damage is not None or any("{teacher}" in arg for arg in self.args)


RUN = ["run", "--student", "tiny", "--kd", "none", "--data", DATA, "--steps", "2", "--out", "{tmp}/run"]
TEACHER_RUN = ["run", "--teacher", "{teacher}", "--student", "tiny", "--data", DATA, "--steps", "2",
               "--student-size", "32x48", "--out", "{tmp}/run"]  # fmt: skip
TEACHER = ["teacher", "--prompts", str(LABEL_SET), "--data", DATA, "--out", "{tmp}/teacher", "--steps", "2",
           "--pretrain-denoiser", "0", "--size", "32x48", *TINY_TEACHER]  # fmt: skip
LLM = ["generate", "--style", "sentence", "--llm", "m", "--base-url", "http://127.0.0.1:9/v1"]
TEMPLATES = ["generate", "--style", "label", "--templates", "{tmp}/templates", "--out", "{tmp}/out.yaml"]
FILE = {"file": "x"}  # a regular file to put an output under


def _png_header(width: int, height: int) -> bytes:
    """A PNG that claims ``width x height`` pixels: enough for the image library to measure it."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + header
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk))


def _folder_dataset(bad_image: bytes) -> dict[str, bytes | str]:
    """A ``folder:`` dataset of six 12x16 pairs whose second image is ``bad_image``."""
    rng = np.random.default_rng(0)
    classes = "name: shapes\nignore_index: 255\nclasses: [{name: a}, {name: b}]\n"
    files: dict[str, bytes | str] = {"data/classes.yaml": classes}
    for index in range(6):
        for folder, array in (("images", rng.integers(0, 256, (12, 16, 3))), ("labels", rng.integers(0, 2, (12, 16)))):
            buffer = io.BytesIO()
            Image.fromarray(array.astype(np.uint8)).save(buffer, format="PNG")
            files[f"data/{folder}/i{index}.png"] = buffer.getvalue()
    files["data/images/i1.png"] = bad_image
    return files


def _template(source: str) -> dict[str, bytes | str]:
    return {"templates/label.j2": source, "secret.j2": "a file outside the templates folder"}


CASES = [
    # -- YAML and text readers ------------------------------------------------------------------
    Case("prompt-set-not-utf8", "promptkit", ["score", "{tmp}/s.yaml"], {"s.yaml": NOT_UTF8}, expect="UTF-8"),
    Case("prompt-set-random-bytes", "promptkit", ["score", "{tmp}/s.yaml"], {"s.yaml": RANDOM_BYTES}),
    Case("prompt-set-alias-bomb", "promptkit", ["score", "{tmp}/s.yaml"], {"s.yaml": ALIAS_BOMB}, expect="aliases"),
    Case(
        "prompt-set-recursive-alias",
        "promptkit",
        ["score", "{tmp}/s.yaml"],
        {"s.yaml": "a: &a [*a]\n"},
        expect="contains itself",
    ),  # fmt: skip
    Case(
        "prompt-set-huge-file", "promptkit", ["score", "{tmp}/s.yaml"], {"s.yaml": b"#" * (17 * 2**20)}, expect="bytes"
    ),  # fmt: skip
    Case("prompt-set-not-a-mapping", "promptkit", ["score", "{tmp}/s.yaml"], {"s.yaml": "- a\n- b\n"}),
    Case(
        "taxonomy-not-utf8",
        "promptkit",
        ["generate", "--style", "label", "--classes", "{tmp}/c.yaml"],
        {"c.yaml": NOT_UTF8},
    ),  # fmt: skip
    Case(
        "taxonomy-alias-bomb",
        "promptkit",
        ["generate", "--style", "label", "--classes", "{tmp}/c.yaml"],
        {"c.yaml": ALIAS_BOMB},
    ),  # fmt: skip
    Case("run-config-not-utf8", "distill", [*RUN, "--config", "{tmp}/c.yaml"], {"c.yaml": NOT_UTF8}),
    Case(
        "run-config-alias-bomb", "distill", [*RUN, "--config", "{tmp}/c.yaml"], {"c.yaml": ALIAS_BOMB}, expect="aliases"
    ),  # fmt: skip
    Case("set-value-alias-bomb", "distill", [*RUN, "--set", f"kd_params={INLINE_BOMB}"], expect="aliases"),
    Case("set-value-recursive-alias", "distill", [*RUN, "--set", "kd_params=&a [*a]"]),
    Case("set-value-bad-yaml", "distill", [*RUN, "--set", "lr=[1, 2"]),
    Case(
        "compare-config-not-utf8",
        "distill",
        ["compare", "--config", "{tmp}/c.yaml", "--out", "{tmp}/cmp"],
        {"c.yaml": NOT_UTF8},
    ),  # fmt: skip
    # -- teacher folders -------------------------------------------------------------------------
    Case("teacher-config-yaml-not-utf8", "distill", TEACHER_RUN, damage=("config.yaml", NOT_UTF8)),
    Case(
        "teacher-image-size-not-a-size",
        "distill",
        TEACHER_RUN,
        damage=("config.yaml", "image_size: big\n"),
        expect="image_size",
    ),  # fmt: skip
    Case(
        "teacher-image-size-zero",
        "distill",
        TEACHER_RUN,
        damage=("config.yaml", "image_size: [0, 0]\n"),
        expect="image_size",
    ),  # fmt: skip
    Case("teacher-config-json-corrupt", "distill", TEACHER_RUN, damage=("teacher_config.json", "{not json")),
    Case(
        "teacher-config-json-wrong-fields",
        "distill",
        TEACHER_RUN,
        damage=("teacher_config.json", '{"num_classes": "many"}'),
    ),  # fmt: skip
    Case(
        "teacher-weights-truncated",
        "distill",
        TEACHER_RUN,
        damage=("teacher.safetensors", "truncate"),
        expect="safetensors",
    ),  # fmt: skip
    Case("teacher-weights-random-bytes", "distill", TEACHER_RUN, damage=("teacher.safetensors", RANDOM_BYTES)),
    Case("class-embeddings-truncated", "distill", TEACHER_RUN, damage=("class_embeddings.safetensors", "truncate")),
    Case(
        "class-embeddings-random-bytes", "distill", TEACHER_RUN, damage=("class_embeddings.safetensors", RANDOM_BYTES)
    ),  # fmt: skip
    Case(
        "teacher-config-yaml-alias-bomb", "distill", TEACHER_RUN, damage=("config.yaml", ALIAS_BOMB), expect="aliases"
    ),  # fmt: skip
    Case(
        "teacher-folder-empty", "distill", [*TEACHER_RUN[:2], "{tmp}/empty", *TEACHER_RUN[3:]], {"empty/.keep": ""}
    ),  # fmt: skip
    # -- templates --------------------------------------------------------------------------------
    Case("template-include-missing", "promptkit", TEMPLATES, _template("{% include 'nope.j2' %}"), expect="includes"),
    Case(
        "template-include-outside-folder",
        "promptkit",
        TEMPLATES,
        _template("{% include '../secret.j2' %}"),
        expect="includes",
    ),  # fmt: skip
    Case("template-syntax-error", "promptkit", TEMPLATES, _template("{{ name "), expect="line"),
    Case("template-huge-string", "promptkit", TEMPLATES, _template("{{ 'x' * 4000000000 }}"), expect="limit"),
    Case(
        "template-nested-loops",
        "promptkit",
        TEMPLATES,
        _template("{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}"),
        expect="limit",
    ),  # fmt: skip
    Case("template-unsafe", "promptkit", TEMPLATES, _template("{{ ''.__class__.__mro__ }}"), expect="unsafe"),
    # -- images -----------------------------------------------------------------------------------
    Case(
        "image-decompression-bomb",
        "distill",
        [*RUN, "--data", "folder:{tmp}/data"],
        _folder_dataset(_png_header(30000, 30000)),
    ),  # fmt: skip
    Case("image-truncated", "distill", [*RUN, "--data", "folder:{tmp}/data"], _folder_dataset(_png_header(16, 12))),
    # -- options ----------------------------------------------------------------------------------
    Case("size-0x0", "distill", [*TEACHER, "--size", "0x0"]),
    Case("student-size-0x0", "distill", [*RUN, "--student-size", "0x0"]),
    Case("set-student-size-0x0", "distill", [*RUN, "--set", "student_size=0x0"]),
    Case("seed-negative", "distill", [*RUN, "--seed", "-1"]),
    Case("timeout-negative", "promptkit", [*LLM, "--timeout", "-1"]),
    Case("retries-negative", "promptkit", [*LLM, "--retries", "-1"]),
    Case("samples-zero", "promptkit", [*LLM, "--samples", "0"]),
    Case("misspelled-option", "distill", [*RUN, "--student-siz", "32x48"], expect="--help"),
    Case("set-unknown-field", "distill", [*RUN, "--set", "lerning_rate=1"]),
    Case("set-model-unknown-key", "distill", [*TEACHER, "--set", "model.nope=1"]),
    Case("set-model-bad-type", "distill", [*TEACHER, "--set", "model.head_channels=abc"]),
    Case(
        "set-kd-params-misspelled",
        "distill",
        [*TEACHER_RUN, "--kd", "kl", "--set", "kd_params.temprature=2"],
        expect="temprature",
    ),  # fmt: skip
    Case("set-kd-params-bad-type", "distill", [*TEACHER_RUN, "--kd", "kl", "--set", "kd_params.temperature=abc"]),
    Case("kd-spec-unknown-loss", "distill", [*TEACHER_RUN, "--kd", "klx"]),
    Case("resume-and-overwrite", "distill", [*RUN, "--resume", "--overwrite"]),
    Case("resume-nothing-to-resume", "distill", [*RUN, "--resume"], expect="nothing to resume"),
    Case("allow-change-of-a-result-field", "distill", [*RUN, "--resume", "--allow-change", "lr"]),
    # -- output paths -----------------------------------------------------------------------------
    Case("out-under-a-file", "distill", [*RUN[:-1], "{tmp}/file/run"], FILE),
    Case("out-is-a-file", "distill", [*RUN[:-1], "{tmp}/file"], FILE),
    Case("teacher-out-under-a-file", "distill", [*TEACHER, "--out", "{tmp}/file/teacher"], FILE),
    Case("embed-out-under-a-file", "promptkit", ["embed", str(LABEL_SET), "--out", "{tmp}/file/e.safetensors"], FILE),
    Case("score-out-under-a-file", "promptkit", ["score", str(LABEL_SET), "--out", "{tmp}/file/report"], FILE),
    Case(
        "generate-out-under-a-file", "promptkit", ["generate", "--style", "label", "--out", "{tmp}/file/s.yaml"], FILE
    ),  # fmt: skip
    # -- data and taxonomies ----------------------------------------------------------------------
    Case("data-unknown-reader", "distill", [*RUN, "--data", "nope:x"]),
    Case("data-missing-folder", "distill", [*RUN, "--data", "camvid:{tmp}/absent"]),
    Case("data-missing-under-a-new-nested-out", "distill", [*RUN[:-1], "{tmp}/a/b/run", "--data", "camvid:{tmp}/no"]),
    Case(
        "prompt-set-of-another-taxonomy",
        "distill",
        [*TEACHER_RUN, "--kd", "kl", "--prompts", "{tmp}/p.yaml"],
        {"p.yaml": LABEL_SET.read_text().replace("Bicyclist", "Tram")},
    ),  # fmt: skip
]


def _prepare(case: Case, tmp_path: Path, teacher: Path | None) -> tuple[object, list[str]]:
    for name, data in case.files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data if isinstance(data, bytes) else data.encode())
    if case.damage is not None:
        name, data = case.damage
        path = teacher / name
        if data == "truncate":
            data = path.read_bytes()[: path.stat().st_size // 2]
        path.write_bytes(data if isinstance(data, bytes) else data.encode())
    args = [arg.replace("{tmp}", str(tmp_path)).replace("{teacher}", str(teacher)) for arg in case.args]
    return (promptkit if case.app == "promptkit" else distill), args


def test_there_are_at_least_forty_named_cases():
    assert len(CASES) >= 40 and len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input_is_one_line_exit_2_and_leaves_nothing(case, runner, tmp_path, request):
    teacher = request.getfixturevalue("teacher_copy") if case.needs_teacher else None
    app, args = _prepare(case, tmp_path, teacher)
    before = files_under(tmp_path)
    result = runner.invoke(app, args)
    line = assert_clean_error(result)
    assert case.expect in line, line
    assert files_under(tmp_path) == before, "the failed command left or changed files"


def test_read_only_out_is_one_line(runner, tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root may write into a read-only folder, so there is no refusal to test")
    parent = tmp_path / "locked"
    parent.mkdir()
    parent.chmod(0o500)
    try:
        args = [arg.replace("{tmp}/run", str(parent / "run")) for arg in RUN]
        line = assert_clean_error(runner.invoke(distill, args))
    finally:
        parent.chmod(0o700)
    assert "permission" in line.lower()


def test_bad_input_cases_cover_each_reader_family():
    """The table names a case for every reader the issue listed (a guard against the table shrinking)."""
    families = ["prompt-set", "taxonomy", "run-config", "set-value", "compare-config", "teacher-config",
                "teacher-weights", "class-embeddings", "template", "image", "size", "seed", "timeout", "retries",
                "set-model", "set-kd-params", "out-", "resume"]  # fmt: skip
    names = " ".join(case.name for case in CASES)
    assert [family for family in families if family not in names] == []
