"""``distill``: train teachers and students, compare prompt styles."""

from __future__ import annotations

from pathlib import Path

import click

import prompt_kit
from cli.common import UserFacingGroup, configure_logging
from cli.parameters import integer
from cli.registry_help import data_help, encoder_help, kd_help, option_from_registry
from prompt_kit.bounds import MAX_BATCH, MAX_REPEATS, MAX_SEED, MAX_SIDE, MAX_STEPS, MAX_VIEWS


@click.group(
    cls=UserFacingGroup,
    epilog="Example: distill teacher --prompts prompts/camvid/label.yaml --data synthetic --out runs/teacher",
)
@click.version_option(prompt_kit.__version__, prog_name="distill")
def distill() -> None:
    """Train a teacher (prompt-conditioned diffusion or any segmentation network) and distil it into small students."""
    configure_logging()


def run_folder_options(function):
    """--resume, --overwrite and --allow-change: what to do with an --out that already holds a run."""
    function = click.option(
        "--allow-change",
        "allow_changes",
        multiple=True,
        metavar="FIELD",
        help="With --resume: let a field that does not change results differ (eval_every, checkpoint_every, ...).",
    )(function)
    function = click.option(
        "--overwrite", is_flag=True, help="Start over in an --out that holds a finished or killed run."
    )(function)
    return function


def _size(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    height, sep, width = value.lower().partition("x")
    if not sep or not height.isdigit() or not width.isdigit():
        raise click.BadParameter(f"{value!r}: write HEIGHTxWIDTH, e.g. 96x128")
    if not 1 <= int(height) <= MAX_SIDE or not 1 <= int(width) <= MAX_SIDE:
        raise click.BadParameter(f"{value!r}: each side must be between 1 and {MAX_SIDE} pixels")
    return int(height), int(width)


@distill.command(
    epilog="""Examples:

\b
  distill teacher --prompts prompts/camvid/label.yaml --data synthetic --out runs/teacher
  distill teacher --model efficientnet_lite2 --data camvid:../shared/data/camvid --out runs/lite2
  distill teacher --model deeplabv3_resnet101 --pretrained deeplabv3_resnet101_camvid.pth --steps 0 \\
      --data camvid:/data/camvid --out runs/r101        (a trained network you already have)
  distill teacher --prompts prompts/camvid/label.yaml --data camvid:/data/camvid \\
      --pretrained /models/stable-diffusion-v1-5 --size 384x512 --out runs/teacher-sd
  distill teacher --prompts prompts/camvid/label.yaml --data camvid:/data/camvid \\
      --set model.architecture=network --set model.class_projection=frozen --out runs/teacher-pn
  distill teacher ... --resume                          (continue a killed teacher)
"""
)
@click.option(
    "--prompts",
    type=click.Path(dir_okay=False),
    help="PromptSet file: a prompt-conditioned teacher (diffusion, or --set model.architecture=network).",
)
@click.option(
    "--model", default=None, help="A registered network instead (see distill networks), e.g. efficientnet_lite2."
)
@option_from_registry("--data", help_from=data_help, default=None)
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Teacher folder to write.")
@option_from_registry("--encoder", help_from=lambda: encoder_help("minilm; clip:PATH with --pretrained"), default=None)
@click.option("--steps", type=integer(0, MAX_STEPS), default=None, help="Segmentation training steps.")
@click.option(
    "--pretrained",
    default=None,
    help="Diffusion: a local Stable Diffusion folder. Network: imagenet or a trained checkpoint (.pth, folder).",
)
@click.option("--pretrain-denoiser", type=integer(0, MAX_STEPS), default=None, help="DDPM steps first (diffusion).")
@click.option("--size", default=None, help="Training and evaluation image size HEIGHTxWIDTH.")
@click.option("--batch-size", type=integer(1, MAX_BATCH), default=None)
@click.option("--seed", type=integer(0, MAX_SEED), default=None)
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="YAML config file.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config field.")
@click.option("--resume", is_flag=True, help="Continue a killed teacher from its last checkpoint.")
@run_folder_options
def teacher(
    prompts,
    model,
    data,
    out,
    encoder,
    steps,
    pretrained,
    pretrain_denoiser,
    size,
    batch_size,
    seed,
    config_file,
    overrides,
    resume,
    overwrite,
    allow_changes,
) -> None:
    """Train a teacher and evaluate it on the val split: prompt-conditioned (--prompts) or a network (--model)."""
    from prompt_kit.errors import PromptKitError

    if bool(prompts) == bool(model):
        raise PromptKitError("pass either --prompts (a prompt-conditioned teacher) or --model (a segmentation network)")
    options = dict(data=data, out=out, steps=steps, image_size=_size(size), batch_size=batch_size, seed=seed)
    if model:
        from distill.training.network_teacher import network_teacher_config
        from distill.training.student import train_student

        for flag, value in (("--encoder", encoder), ("--pretrain-denoiser", pretrain_denoiser)):
            if value is not None:
                raise PromptKitError(f"{flag} is for diffusion teachers (--prompts), not --model")
        config = network_teacher_config(model, {**options, "pretrained": pretrained}, config_file, list(overrides))
        metrics = train_student(config, resume=resume, overwrite=overwrite, allow_changes=allow_changes)
        height, width = config.student_size
        click.echo(
            f"teacher {model} val mIoU {metrics['miou']:.3f}, pixel accuracy {metrics['pixel_accuracy']:.3f} "
            f"({metrics['eval_images']} images at {height}x{width}); wrote {out}"
        )
        return
    from distill.training.configuration import load_config
    from distill.training.prompt_teacher import TeacherTrainingConfig, train_teacher

    base = dict(**options, prompts=prompts, encoder=encoder, pretrained=pretrained, pretrain_denoiser=pretrain_denoiser)
    config = load_config(TeacherTrainingConfig, config_file, list(overrides), base)
    metrics = train_teacher(config, resume=resume, overwrite=overwrite, allow_changes=allow_changes)
    click.echo(
        f"teacher val mIoU {metrics['miou']:.3f}, pixel accuracy {metrics['pixel_accuracy']:.3f} "
        f"({metrics['eval_images']} images at {config.image_size[0]}x{config.image_size[1]}); wrote {out}"
    )


@distill.command()
def networks() -> None:
    """List the registered networks: students and teacher-size networks (for --student and --model)."""
    from networks import list_students, list_teacher_networks

    click.echo("students: " + ", ".join(list_students()))
    click.echo("teacher-size networks: " + ", ".join(list_teacher_networks()))


@distill.command(
    epilog="""Examples:

\b
  distill run --teacher runs/teacher --student tiny --kd kl --data synthetic --out runs/kl
  distill run --student tiny --kd none --data synthetic --out runs/baseline
  distill run --teacher runs/teacher --prompts prompts/camvid/orthogonal.yaml --student lraspp_mobilenetv3 \\
      --kd kl=1.0,cwd=3.0 --set kd_params.temperature=2 --steps 2000 --out runs/kl-cwd
  accelerate launch --multi_gpu --num_processes 2 -m cli.distill_cli run ...   (same flags, several GPUs)
"""
)
@click.option(
    "--teacher",
    "teacher_dir",
    type=click.Path(file_okay=False),
    help="Teacher folder: distill teacher (diffusion or --model) or a finished distill run.",
)
@click.option("--prompts", type=click.Path(dir_okay=False), help="Prompt set (default: the teacher's own).")
@click.option("--student", default=None, help="Student name (see --list-students).")
@option_from_registry("--kd", help_from=kd_help, default=None)
@option_from_registry("--data", help_from=data_help, default=None)
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Run folder to write.")
@click.option("--steps", type=integer(0, MAX_STEPS), default=None)
@click.option("--seed", type=integer(0, MAX_SEED), default=None)
@click.option("--student-size", default=None, help="HEIGHTxWIDTH of the student's input.")
@click.option("--teacher-size", default=None, help="HEIGHTxWIDTH of the teacher's input (default: its training size).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="YAML config file.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config field.")
@click.option("--resume", is_flag=True, help="Continue a killed run from its last checkpoint.")
@run_folder_options
def run(
    teacher_dir,
    prompts,
    student,
    kd,
    data,
    out,
    steps,
    seed,
    student_size,
    teacher_size,
    config_file,
    overrides,
    resume,
    overwrite,
    allow_changes,
) -> None:
    """Train a student with cross-entropy plus KD from a frozen teacher; evaluate both."""
    from distill.training.configuration import load_config
    from distill.training.run_config import RunConfig
    from distill.training.student import train_student

    base = dict(
        teacher=teacher_dir,
        prompts=prompts,
        student=student,
        kd=kd,
        data=data,
        out=out,
        steps=steps,
        seed=seed,
        student_size=_size(student_size),
        teacher_size=_size(teacher_size),
    )
    config = load_config(RunConfig, config_file, list(overrides), base)
    metrics = train_student(config, resume=resume, overwrite=overwrite, allow_changes=allow_changes)
    teacher_text = f", teacher {metrics['teacher']['miou']:.3f}" if metrics.get("teacher") else ""
    click.echo(f"student val mIoU {metrics['miou']:.3f}{teacher_text}; wrote {out}")


@distill.command(
    epilog="""Examples:

\b
  distill cache runs/camvid-lite2 --data camvid:../shared/data/camvid --views 16 --config configs/camvid_kd_student.yaml
  distill cache runs/teacher --data synthetic --kd kl=1.0,cwd=3.0      (the bank of these terms' outputs)
Pass what the runs will pass (config, --kd, sizes, --set): a run reads the bank whose key matches its own.
"""
)
@click.argument("teacher_dir", type=click.Path(file_okay=False))
@option_from_registry("--data", help_from=data_help, default=None)
@click.option("--views", type=integer(1, MAX_VIEWS), default=None, help="Views per train image (default 16).")
@click.option("--kd", default=None, help="The runs' KD spec: which teacher maps the bank holds (default: dist).")
@click.option("--student", default=None, help="The runs' student (its map sizes set the stored sizes).")
@click.option("--student-size", default=None, help="HEIGHTxWIDTH of the student's input.")
@click.option("--teacher-size", default=None, help="HEIGHTxWIDTH of the teacher's input (default: its training size).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="The runs' YAML config file.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a run config field.")
def cache(teacher_dir, data, views, kd, student, student_size, teacher_size, config_file, overrides) -> None:
    """Build a teacher's view bank ahead: its outputs on every pre-drawn crop, read by every later run."""
    from distill.training.configuration import load_config
    from distill.training.run_config import RunConfig
    from distill.training.student import build_view_bank

    base = dict(
        teacher=teacher_dir,
        data=data,
        teacher_views=views,
        kd=kd,
        student=student,
        student_size=_size(student_size),
        teacher_size=_size(teacher_size),
    )
    config = load_config(RunConfig, config_file, list(overrides), base)
    report, spec = build_view_bank(config)
    size = sum(path.stat().st_size for path in report.folder.glob("shard-*.safetensors")) / 2**20
    done = (
        f"built in {report.seconds:.1f} s ({report.teacher_forward_images} teacher forwards)"
        if report.built
        else "already built"
    )
    click.echo(f"view bank {report.folder}: {spec.images} images x {spec.stored_views} views, {size:.1f} MiB, {done}")


@distill.command(
    epilog="""Examples:

\b
  distill compare --data synthetic --seeds 3 --out runs/compare
  distill compare --data camvid:../shared/data/camvid --student efficientnet_lite0 \\
      --config configs/camvid_cpu.yaml --out runs/compare-camvid
  distill compare --styles label,orthogonal --kd kl --kd kl=1.0,cwd=3.0 --set teacher.steps=900 --out runs/kd
  distill compare --data camvid:../shared/data/camvid --styles none --teacher runs/camvid-lite2 \\
      --teacher deeplabv3_resnet50 --set network_teacher.steps=3000 --kd dist --out runs/teachers
Re-running the same command skips finished cells and resumes a killed one.
"""
)
@option_from_registry("--data", help_from=data_help, default=None)
@click.option("--styles", default=None, help="Comma-separated styles (default: all four; none: no style rows).")
@click.option(
    "--teacher",
    "teachers",
    multiple=True,
    help="Another teacher, one row each: a teacher folder, or a network name trained first. Repeat for more.",
)
@click.option("--prompt-sets", type=click.Path(file_okay=False), help="Folder of <style>.yaml (default: curated sets).")
@click.option("--kd", "kd_specs", multiple=True, help="KD spec; repeat for one row per spec (default: dist).")
@click.option("--student", default=None, help="Student name.")
@click.option("--seeds", type=integer(1, MAX_REPEATS), default=None, help="Student seeds per teacher (default 3).")
@click.option(
    "--teacher-seeds", type=integer(1, MAX_REPEATS), default=None, help="Teachers per prompt style (default 1)."
)
@option_from_registry("--encoder", help_from=encoder_help, default=None)
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Comparison folder.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="YAML config file.")
@click.option(
    "--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a field: teacher.steps=900, run.lr=0.003."
)
def compare(
    data, styles, teachers, prompt_sets, kd_specs, student, seeds, teacher_seeds, encoder, out, config_file, overrides
) -> None:
    """Teacher and distilled student per prompt style, with the no-KD student as baseline, in one table."""
    from distill.compare.plan import CompareConfig
    from distill.compare.run import run_compare
    from distill.training.configuration import load_config

    base = dict(
        data=data,
        styles=None if not styles else [] if styles.strip() == "none" else [part.strip() for part in styles.split(",")],
        teachers=list(teachers) or None,
        prompt_sets=prompt_sets,
        kd=list(kd_specs) or None,
        student=student,
        seeds=seeds,
        teacher_seeds=teacher_seeds,
        encoder=encoder,
        out=out,
    )
    config = load_config(CompareConfig, config_file, list(overrides), base)
    run_compare(config, log=lambda message: click.echo(message, err=True))
    click.echo((Path(config.out) / "results.md").read_text(), nl=False)


@distill.command(
    "eval",
    epilog="""Examples:

\b
  distill eval runs/kl                                   (the run's own data and val split)
  distill eval runs/kl --data camvid:../shared/data/camvid --split test
  distill eval runs/kl/checkpoints/best/model.safetensors --json
  distill eval runs/teacher                              (a teacher folder)
  distill eval runs/teacher --prompts prompts/camvid/sentence.yaml   (given other prompts)
""",
)
@click.argument("path", type=click.Path())
@click.option("--data", default=None, help="Data spec (default: what the model was trained on).")
@click.option("--split", default="val", show_default=True, help="Split to evaluate on.")
@click.option(
    "--prompts",
    type=click.Path(dir_okay=False),
    help="A diffusion teacher: condition it on this prompt set of its classes (prompt transfer).",
)
@click.option("--tta", default=None, help="Test-time augmentation, e.g. flip,scales=0.5,0.75,1,1.25,1.5,1.75.")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
def evaluate(path, data, split, prompts, tta, as_json) -> None:
    """Re-evaluate a run folder, a student checkpoint or a teacher folder: mIoU and per-class IoU."""
    import json

    from distill.evaluation.test_time_augmentation import TestTimeAugmentation
    from distill.training.saved_evaluation import evaluate_saved

    augmentation = TestTimeAugmentation.parse(tta)
    metrics = evaluate_saved(path, data=data, split=split, prompts=prompts, augmentation=augmentation)
    if not metrics["finished"]:
        step = metrics.get("checkpoint_step")
        stopped = f"it stopped after step {step}" if step is not None else "it has no checkpoint"
        click.echo(f"warning: {path} is an unfinished run ({stopped}): these are the best weights it kept", err=True)
    if as_json:
        click.echo(json.dumps(metrics, indent=2))
        return
    with_tta = "" if augmentation.is_identity else f" (tta {augmentation.describe()})"
    click.echo(
        f"{metrics['model']} on {metrics['data']} {split}{with_tta}: mIoU {metrics['miou']:.4f}, "
        f"pixel accuracy {metrics['pixel_accuracy']:.4f}"
    )
    for name, value in metrics["per_class_iou"].items():
        click.echo(f"  {name:<16} {'-' if value is None else f'{value:.4f}'}")


def _register_unlabelled_commands() -> None:
    from cli.unlabelled_commands import COMMANDS

    for command in COMMANDS:
        distill.add_command(command)


_register_unlabelled_commands()


def main() -> None:
    distill(prog_name="distill")


if __name__ == "__main__":
    main()
