"""``distill`` commands for images nobody labelled: predict, pseudo-label, vdna, adapt, adapt-summary.

Registered on the ``distill`` group by ``cli.distill_cli``; parsing and printing only.
"""

from __future__ import annotations

import click

from cli.parameters import integer, real
from prompt_kit.bounds import MAX_BATCH, MAX_BINS, MAX_BUCKETS


@click.command(
    epilog="""Examples:

\b
  distill predict runs/camvid-lite2 --images ../shared/data/camvid/test --out predictions/lite2
  distill predict runs/kl --images 'photos/*.jpg' --out predictions/kl --tta flip,scales=0.75,1,1.25
  distill predict runs/cityscapes-r101 --images cityscapes:/data/cityscapes --split val --ids dataset \\
      --out predictions/server                 (Cityscapes labelIds, as its evaluation server wants)
""",
)
@click.argument("model", type=click.Path())
@click.option("--images", required=True, help="A folder, an image, a glob pattern, or a dataset spec (with --split).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder for labels/, overlays/, ...")
@click.option("--split", default="test", show_default=True, help="The split, when --images is a dataset spec.")
@click.option("--tta", default=None, help="Test-time augmentation, e.g. flip,scales=0.75,1,1.25 (default: none).")
@click.option(
    "--ids",
    type=click.Choice(["train", "dataset"]),
    default="train",
    show_default=True,
    help="Label PNG values: train ids, or the dataset's own ids (Cityscapes labelIds; needs a dataset spec).",
)
@click.option("--overlays/--no-overlays", default=True, show_default=True, help="Write colour overlays.")
@click.option("--probabilities", is_flag=True, help="Also write the class probabilities (float16 safetensors).")
@click.option(
    "--prompts", type=click.Path(dir_okay=False), help="A diffusion teacher: condition it on this prompt set."
)
@click.option("--batch-size", type=integer(1, MAX_BATCH), default=4, show_default=True)
@click.option("--overwrite", is_flag=True, help="Predict every image again in an --out of other predictions.")
def predict(model, images, out, split, tta, ids, overlays, probabilities, prompts, batch_size, overwrite) -> None:
    """Predict label PNGs (and overlays, probabilities) for images with a teacher folder or a student run."""
    from distill.evaluation.test_time_augmentation import TestTimeAugmentation
    from distill.unlabelled.prediction import predict_images

    augmentation = TestTimeAugmentation.parse(tta)
    record = predict_images(
        model, images, out, augmentation, split=split, ids=ids, overlays=overlays, probabilities=probabilities,
        prompts=prompts, batch_size=batch_size, overwrite=overwrite,
    )  # fmt: skip
    done = f", {record['skipped']} already there" if record["skipped"] else ""
    click.echo(f"{record['predicted']} images predicted into {out}{done} (tta {record['tta']}, {ids} ids)")


@click.command(
    "pseudo-label",
    epilog="""Examples:

\b
  distill pseudo-label runs/camvid-lite2 --images photos/ --out pseudo/lite2 --min-confidence 0.968
  distill pseudo-label runs/camvid-lite2 --images camvid:../shared/data/camvid --split test --out pseudo/test \\
      --tta flip,scales=0.75,1,1.25 --class-balanced 0.5
  distill run --data folder:pseudo/lite2 --student efficientnet_lite0 --kd none --out runs/on-pseudo
""",
)
@click.argument("model", type=click.Path())
@click.option("--images", required=True, help="A folder, an image, a glob pattern, or a dataset spec (with --split).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="The folder: dataset to write.")
@click.option("--split", default="train", show_default=True, help="The split, when --images is a dataset spec.")
@click.option("--tta", default=None, help="Test-time augmentation, e.g. flip,scales=0.75,1,1.25 (default: none).")
@click.option(
    "--min-confidence", type=real(0.0, 1.0), default=None, help="Keep pixels whose top probability is at least this."
)
@click.option(
    "--max-entropy", type=real(0.0, 100.0), default=None, help="Keep pixels whose entropy (nats) is at most this."
)
@click.option(
    "--class-balanced",
    type=real(0.0, 1.0, low_open=True),
    default=None,
    help="Keep each class's most confident share P (CBST).",
)
@click.option(
    "--min-image-share",
    type=real(0.0, 1.0),
    default=None,
    help="Leave out an image with under this share of its pixels kept.",
)
@click.option(
    "--priors", type=click.Path(dir_okay=False), help="Master-labels CSV: restrict each pixel by its source label."
)
@click.option(
    "--prompts", type=click.Path(dir_okay=False), help="A diffusion teacher: condition it on this prompt set."
)
@click.option("--batch-size", type=integer(1, MAX_BATCH), default=4, show_default=True)
def pseudo_label_command(
    model,
    images,
    out,
    split,
    tta,
    min_confidence,
    max_entropy,
    class_balanced,
    min_image_share,
    priors,
    prompts,
    batch_size,
) -> None:
    """Pseudo-labels: a teacher's confident predictions as a folder: dataset that distill run trains on."""
    from distill.evaluation.test_time_augmentation import TestTimeAugmentation
    from distill.unlabelled.pseudo_labels import pseudo_label, summary_table

    record = pseudo_label(
        model, images, out, TestTimeAugmentation.parse(tta), split=split, min_confidence=min_confidence,
        max_entropy=max_entropy, class_balanced=class_balanced, priors=priors, prompts=prompts,
        batch_size=batch_size, min_image_share=min_image_share,
    )  # fmt: skip
    click.echo(summary_table(record))
    left_out = f" ({len(record['images_dropped'])} left out)" if record["images_dropped"] else ""
    click.echo(
        f"{record['images_written']} of {record['count']} images pseudo-labelled into {out}{left_out}: "
        f"{record['kept_share']:.1%} of the pixels kept (train on it: distill run --data folder:{out})"
    )


@click.command(
    epilog="""Examples:

\b
  distill vdna --model runs/camvid-lite2 --layers encoder,decoder --data camvid:../shared/data/camvid \\
      --out vdna/camvid.safetensors
  distill vdna --model runs/camvid-lite2 --layers encoder,decoder --data photos/ --against vdna/camvid.safetensors \\
      --out vdna/photos.safetensors --ranking vdna/photos_ranking.csv     (each photo's distance to CamVid)
""",
)
@click.option("--model", "model_path", required=True, type=click.Path(), help="A teacher folder or a student run.")
@click.option("--layers", required=True, help="Comma-separated feature maps (encoder,decoder; up0,... for diffusion).")
@click.option("--data", "images", required=True, help="A dataset spec (with --split), a folder, an image or a glob.")
@click.option("--split", default="train", show_default=True, help="The split, when --data is a dataset spec.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The vDNA file (.safetensors).")
@click.option(
    "--bins", type=integer(2, MAX_BINS), default=None, help="Histogram bins per neuron (default 1000, or --against's)."
)
@click.option("--against", type=click.Path(dir_okay=False), help="A source vDNA: use its bins and measure against it.")
@click.option("--ranking", type=click.Path(dir_okay=False), help="With --against: each image's distance, as CSV.")
@click.option("--overwrite", is_flag=True, help="Replace existing --out and --ranking files.")
def vdna(model_path, layers, images, split, out, bins, against, ranking, overwrite) -> None:
    """Visual DNA: per-neuron activation histograms of a dataset, and distances between datasets and images."""
    from pathlib import Path

    from distill.unlabelled.vdna import dataset_vdna, ranking_csv
    from prompt_kit.files import atomic_write_files
    from prompt_kit.outputs import check_new_file

    if ranking and not against:
        raise click.UsageError("--ranking needs --against SOURCE_VDNA (the distances are to it)")
    check_new_file(out, "--out", overwrite)
    if ranking:
        check_new_file(ranking, "--ranking", overwrite)
        if Path(ranking).resolve() == Path(out).resolve():
            raise click.UsageError("--out and --ranking name the same file: give each its own path")
    names = [name.strip() for name in layers.split(",") if name.strip()]
    result, image_names, distances, distance = dataset_vdna(
        model_path, images, names, split=split, bins=bins, against=against
    )
    files = {Path(out): result.to_bytes(metadata={"model": str(model_path), "data": images, "split": split})}
    if ranking:
        files[Path(ranking)] = ranking_csv(image_names, distances).encode()
    atomic_write_files(files)  # the vDNA and its ranking together or not at all
    message = f"wrote {out}: {result.images} images, layers {', '.join(names)}"
    if distance is not None:
        message += f"; distance to {against}: {distance:.4f}"
    if ranking:
        message += f"; per-image ranking in {ranking}"
    click.echo(message)


@click.command(
    epilog="""Examples:

\b
  distill adapt --teacher runs/synth-lite2 --student runs/synth-student --source synthetic:size=96x128 \\
      --target synthetic:size=96x128,domain=target --buckets 4 --order asc --out runs/adapt
""",
)
@click.option("--teacher", required=True, type=click.Path(), help="The teacher folder that pseudo-labels each bucket.")
@click.option("--student", required=True, type=click.Path(), help="The finished student run to adapt.")
@click.option("--source", required=True, help="The source domain's data spec.")
@click.option("--target", required=True, help="The target domain's data spec (val labels: evaluation only).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="The adaptation folder.")
@click.option("--buckets", type=integer(1, MAX_BUCKETS), default=None, help="Buckets of target images (default 4).")
@click.option("--order", type=click.Choice(["asc", "desc", "random"]), default=None, help="By vDNA distance.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="YAML config file.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config field.")
@click.option("--overwrite", is_flag=True, help="Start over in an --out that holds an adaptation (damaged or other).")
def adapt(teacher, student, source, target, out, buckets, order, config_file, overrides, overwrite) -> None:
    """Adapt a student to a target domain in vDNA-ordered buckets of pseudo-labelled images."""
    from distill.training.configuration import load_config
    from distill.unlabelled.adaptation import AdaptConfig, adapt_table
    from distill.unlabelled.adaptation import adapt as run_adaptation

    base = {"teacher": teacher, "student": student, "source": source, "target": target, "out": out}
    config = load_config(AdaptConfig, config_file, list(overrides), {**base, "buckets": buckets, "order": order})
    record = run_adaptation(config, overwrite=overwrite)
    click.echo(adapt_table(record))


@click.command(
    "adapt-summary",
    epilog="""Examples:

\b
  distill adapt-summary runs/adapt-seed*/asc runs/adapt-seed*/asc-guard runs/adapt-seed*/random
""",
)
@click.argument("folders", nargs=-1, required=True, type=click.Path(file_okay=False))
def adapt_summary(folders) -> None:
    """Summarise several adaptations: each setting's final gain and forgetting over its runs, with 95% intervals.

    Runs are grouped by setting (their config less the paths and the seed); two settings are
    compared, paired, on the runs both have (same teacher, student, data and seed).
    """
    from distill.unlabelled.adaptation_summary import (
        differences_table,
        paired_differences,
        read_adaptation,
        summarise,
        summary_table,
    )

    summaries = summarise(read_adaptation(folder) for folder in folders)
    click.echo(summary_table(summaries))
    click.echo()
    click.echo(differences_table(paired_differences(summaries)))


COMMANDS = [predict, pseudo_label_command, vdna, adapt, adapt_summary]
