"""``promptkit``: class taxonomies, prompt generation, embeddings and orthogonality scores."""

from __future__ import annotations

import json
from pathlib import Path

import click

import prompt_kit
from cli.common import UserFacingGroup, configure_logging
from cli.parameters import StyleName, integer, real
from cli.registry_help import encoder_help, option_from_registry
from prompt_kit.bounds import MAX_REPEATS, MAX_SEED
from prompt_kit.concepts import curated_answer
from prompt_kit.errors import PromptKitError
from prompt_kit.files import atomic_write_files
from prompt_kit.generate import build_prompt_set
from prompt_kit.llm import LLMSettings, request_class_answers
from prompt_kit.outputs import check_new_file, check_output_folder
from prompt_kit.prompt_set import load_prompt_set, prompt_set_to_yaml
from prompt_kit.styles import get_style
from prompt_kit.taxonomy import list_taxonomies, load_taxonomy
from prompt_kit.templates import PromptTemplates


@click.group(
    cls=UserFacingGroup,
    epilog="Example: promptkit generate --dataset camvid --style orthogonal --out orthogonal.yaml",
)
@click.version_option(prompt_kit.__version__, prog_name="promptkit")
@click.option("-v", "--verbose", is_flag=True, help="Log what happens (LLM retries, cache hits).")
def promptkit(verbose: bool) -> None:
    """Build, check and measure the class prompts a text-conditioned segmentation teacher sees."""
    configure_logging(verbose)


@promptkit.command(epilog="Example: promptkit classes camvid")
@click.argument("dataset", required=False)
def classes(dataset: str | None) -> None:
    """List the built-in taxonomies, or show one (a name or a taxonomy FILE)."""
    if dataset is None:
        for name in list_taxonomies():
            taxonomy = load_taxonomy(name)
            click.echo(f"{name:<12} {taxonomy.num_classes:>3} classes  {taxonomy.description}")
        return
    taxonomy = load_taxonomy(dataset)
    click.echo(f"{taxonomy.name}: {taxonomy.num_classes} classes, ignore index {taxonomy.ignore_index}")
    for index, info in enumerate(taxonomy.classes):
        r, g, b = info.color
        click.echo(f"{index:>3}  {info.name:<16} {info.label:<16} #{r:02x}{g:02x}{b:02x}")


@promptkit.command(epilog="Example: promptkit styles --names")
@click.option("--names", is_flag=True, help="Only the names, one per line (for scripts).")
def styles(names: bool) -> None:
    """List the prompt styles: the built-in four and any registered by a plugin."""
    from prompt_kit.styles import registered_styles

    for style in registered_styles():
        if names:
            click.echo(style.name)
            continue
        needs = "LLM or lexicon" if style.request_template else ("lexicon" if style.uses_lexicon else "taxonomy only")
        chosen = ", words chosen by measurement" if style.selects_words else ""
        click.echo(f"{style.name:<14} {style.summary} ({needs}{chosen})")


@promptkit.command(
    epilog="""Examples:

\b
  promptkit generate --dataset camvid --style orthogonal --out orthogonal.yaml
  OPENAI_API_KEY=... promptkit generate --dataset kitti11 --style bag_of_words \\
      --llm gpt-4o-mini --samples 3 --out bow.yaml
  promptkit generate --classes my_classes.yaml --style sentence --llm qwen2.5 \\
      --base-url http://127.0.0.1:8000/v1 --out sentence.yaml
"""
)
@click.option("--dataset", "dataset", default="camvid", show_default=True, help="Built-in taxonomy name or file.")
@click.option("--classes", "classes_file", type=click.Path(dir_okay=False), help="Your own taxonomy file.")
@click.option("--style", type=StyleName(), required=True, help="How each class is named.")
@click.option("--out", type=click.Path(dir_okay=False), help="Write the prompt set here (default: print it).")
@click.option("--templates", "templates_dir", type=click.Path(file_okay=False), help="Folder overriding templates.")
@click.option("--llm", "llm_model", metavar="MODEL", help="Ask this model instead of using the curated words.")
@click.option("--base-url", help="OpenAI-compatible server URL (default: $OPENAI_BASE_URL or OpenAI).")
@click.option("--temperature", type=real(0.0, 2.0), default=0.7, show_default=True)
@click.option("--top-p", type=real(0.0, 1.0, low_open=True), default=None)
@click.option(
    "--seed", type=integer(0, MAX_SEED), default=None, help="Sampling seed sent to the server (sample i gets seed+i)."
)
@click.option(
    "--samples",
    type=integer(1, 100),
    default=1,
    show_default=True,
    help="Answers per request, kept as alternatives.",
)
@click.option(
    "--timeout",
    type=real(0.0, 3600.0, low_open=True),
    default=60.0,
    show_default=True,
    help="Seconds per HTTP request.",
)
@click.option("--retries", type=integer(0, 100), default=2, show_default=True, help="HTTP retries on 429/5xx/timeouts.")
@click.option("--reasks", type=integer(0, 100), default=2, show_default=True, help="Re-asks after an invalid answer.")
@click.option("--cache-dir", type=click.Path(file_okay=False), help="LLM answer cache (default: user cache).")
@click.option("--no-cache", is_flag=True, help="Neither read nor write the LLM answer cache.")
@click.option("--replay", is_flag=True, help="Answers only from the cache; a miss is an error.")
@click.option("--encoder", default="minilm", show_default=True, help="Encoder that measures orthogonal word choices.")
@click.option(
    "--selection-seed", type=integer(0, MAX_SEED), default=0, show_default=True, help="Seed of the word selection."
)
@click.option("--no-select", is_flag=True, help="orthogonal (word-choosing styles): keep the first 4 candidates.")
@click.option(
    "--report", "report_out", type=click.Path(dir_okay=False), help="orthogonal: the word selection report JSON."
)
@click.option("--overwrite", is_flag=True, help="Replace existing --out and --report files.")
def generate(
    dataset: str,
    classes_file: str | None,
    style: str,
    out: str | None,
    templates_dir: str | None,
    llm_model: str | None,
    base_url: str | None,
    temperature: float,
    top_p: float | None,
    seed: int | None,
    samples: int,
    timeout: float,
    retries: int,
    reasks: int,
    cache_dir: str | None,
    no_cache: bool,
    replay: bool,
    encoder: str,
    selection_seed: int,
    no_select: bool,
    report_out: str | None,
    overwrite: bool,
) -> None:
    """Build a validated prompt set in one STYLE, from curated words or an LLM's answer."""
    for option, path in (("--out", out), ("--report", report_out)):
        if path is not None:
            check_new_file(path, option, overwrite)
    taxonomy = load_taxonomy(classes_file or dataset)
    templates = PromptTemplates(templates_dir)
    if replay and no_cache:
        raise click.UsageError("--replay reads the cache; it cannot be combined with --no-cache")
    if llm_model is None and (replay or samples != 1):
        raise click.UsageError("--replay and --samples need --llm MODEL")
    llm_source = None
    if llm_model is None:
        answers = [curated_answer(taxonomy, style)]
    else:
        settings = LLMSettings(
            model=llm_model,
            base_url=base_url,
            temperature=temperature,
            top_p=top_p,
            seed=seed,
            samples=samples,
            timeout=timeout,
            http_retries=retries,
            reasks=reasks,
            cache_dir=Path(cache_dir) if cache_dir else None,
            use_cache=not no_cache,
            replay=replay,
        )
        result = request_class_answers(taxonomy, style, settings, templates)
        answers, llm_source = result.answers, result.source
    selector = None
    if get_style(style).selects_words and not no_select:
        from prompt_kit.encoders import create_encoder
        from prompt_kit.orthogonal_selection import SelectionSettings, measured_selector

        selector = measured_selector(create_encoder(encoder), SelectionSettings(seed=selection_seed))
    prompt_set = build_prompt_set(
        taxonomy, style, answers, templates, llm=llm_source, select_words=selector, version=prompt_kit.__version__
    )
    selection = prompt_set.provenance.selection or {}
    if "after" in selection:
        before, after = selection["before"]["max_offdiag"], selection["after"]["max_offdiag"]
        click.echo(
            f"orthogonal words chosen with {selection['encoder']}: max off-diagonal cosine {before:.3f} "
            f"(first 4 candidates) -> {after:.3f}",
            err=True,
        )
    files = {}  # the set and its report are written together or not at all
    if report_out and "after" in selection:
        files[Path(report_out)] = (json.dumps(selection, indent=2) + "\n").encode()
    if out is not None:
        if report_out and Path(out).resolve() == Path(report_out).resolve():
            raise click.UsageError("--out and --report name the same file: give the report its own path")
        files[Path(out)] = prompt_set_to_yaml(prompt_set).encode()
    try:
        atomic_write_files(files)
    except OSError as exc:
        raise PromptKitError(f"cannot write {exc.filename or out} ({exc.strerror}): nothing was written") from exc
    if out is None:
        click.echo(prompt_set_to_yaml(prompt_set), nl=False)
        return
    click.echo(f"wrote {out}: {style} prompts for {taxonomy.num_classes} classes of {taxonomy.name}", err=True)


def _set_names(paths: list[Path]) -> list[str]:
    stems = [path.stem for path in paths]
    if len(set(stems)) == len(stems):
        return stems
    return [f"{path.parent.name}/{path.stem}" for path in paths]


@promptkit.command(epilog="Example: promptkit embed prompts/camvid/orthogonal.yaml --out camvid_orth.safetensors")
@click.argument("prompt_set_path", metavar="SET", type=click.Path(dir_okay=False))
@option_from_registry("--encoder", help_from=encoder_help, default="minilm")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="ClassEmbeddings .safetensors file.")
@click.option("--no-cache", is_flag=True, help="Do not read or write the embedding cache.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out file.")
def embed(prompt_set_path: str, encoder: str, out: str, no_cache: bool, overwrite: bool) -> None:
    """Encode a prompt set into ClassEmbeddings (tokens, mask, pooled) for a teacher."""
    check_new_file(out, "--out", overwrite)
    from prompt_kit.embedding_cache import EmbeddingCache
    from prompt_kit.encoders import create_encoder, encode_prompt_set

    prompt_set = load_prompt_set(prompt_set_path)
    _check_taxonomy(prompt_set, None)
    embeddings = encode_prompt_set(prompt_set, create_encoder(encoder), None if no_cache else EmbeddingCache())
    embeddings.save(out)
    c, length, dim = embeddings.tokens.shape
    click.echo(f"wrote {out}: tokens [{c}, {length}, {dim}], pooled {list(embeddings.pooled.shape)}", err=True)


def _check_taxonomy(prompt_set, classes_file: str | None) -> None:
    """A set must match its taxonomy: the one given, or the built-in one it names."""
    if classes_file:
        prompt_set.check_against(load_taxonomy(classes_file))
    elif prompt_set.dataset in list_taxonomies():
        prompt_set.check_against(load_taxonomy(prompt_set.dataset))


@promptkit.command(
    epilog="""Examples:

\b
  promptkit score prompts/camvid/*.yaml
  promptkit score prompts/camvid/*.yaml --encoder clip:/models/sd-v1-5 --out report/
  promptkit score my_set.yaml --format json
"""
)
@click.argument("paths", metavar="SET...", nargs=-1, required=True, type=click.Path(dir_okay=False))
@option_from_registry("--encoder", help_from=encoder_help, default="minilm")
@click.option("--classes", "classes_file", type=click.Path(dir_okay=False), help="Taxonomy the sets must match.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Also write md/csv/json and PNG plots here.")
@click.option("--format", "fmt", type=click.Choice(["table", "md", "csv", "json"]), default="table", show_default=True)
@click.option("--no-cache", is_flag=True, help="Do not read or write the embedding cache.")
def score(paths: tuple[str, ...], encoder: str, classes_file: str | None, out_dir: str | None, fmt: str,
          no_cache: bool) -> None:  # fmt: skip
    """Measure how orthogonal each set's class embeddings are, side by side."""
    from prompt_kit.embedding_cache import EmbeddingCache
    from prompt_kit.encoders import create_encoder, encode_prompt_set
    from prompt_kit.score_report import render_report, score_embeddings, write_report

    if out_dir:
        check_output_folder(out_dir, "--out")  # a report never goes into a run's or comparison's folder
    prompt_sets = [load_prompt_set(path) for path in paths]  # validate every file before any work
    for prompt_set in prompt_sets:
        _check_taxonomy(prompt_set, classes_file)
    text_encoder = create_encoder(encoder)
    cache = None if no_cache else EmbeddingCache()
    results = [
        score_embeddings(name, encode_prompt_set(prompt_set, text_encoder, cache))
        for name, prompt_set in zip(_set_names([Path(p) for p in paths]), prompt_sets, strict=True)
    ]
    click.echo(render_report(results, fmt), nl=False)
    if out_dir:
        written = write_report(results, out_dir)
        click.echo(f"wrote {len(written)} files to {out_dir}", err=True)


@promptkit.command(
    epilog="""Examples:

\b
  promptkit demo                      (about 10 minutes on two CPU cores)
  promptkit demo --out runs/demo --seeds 3
Re-running the same command skips finished runs and resumes a killed one.
"""
)
@click.option("--out", default="runs/demo", show_default=True, type=click.Path(file_okay=False))
@click.option("--seeds", type=integer(1, MAX_REPEATS), default=None, help="Student seeds per teacher (default 1).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a compare field.")
def demo(out: str, seeds: int | None, overrides: tuple[str, ...]) -> None:
    """The main job on the embedded default: four prompt styles and a network teacher, KD students, one table.

    Synthetic street scenes, the curated CamVid prompt sets, two tiny teachers per style, the
    pretrained EfficientNet-Lite0 student and `distill compare` with the default KD: style
    differences with 95% intervals and the prompt-transfer matrix; no data and no network needed.
    """
    from distill.compare.demo import DEMO_SETTINGS
    from distill.compare.plan import CompareConfig
    from distill.compare.run import run_compare
    from distill.training.configuration import load_config

    base = {**DEMO_SETTINGS, "out": out}
    if seeds is not None:
        base["seeds"] = seeds
    config = load_config(CompareConfig, None, list(overrides), base)
    run_compare(config, log=lambda message: click.echo(message, err=True))
    click.echo((Path(config.out) / "results.md").read_text(), nl=False)
    click.echo(f"Tables (md, csv, json) and charts in {out}/; run folders in {out}/teachers and {out}/students.")


@promptkit.command(
    "map",
    epilog="""Examples:

\b
  promptkit map --from camvid --to cityscapes --out camvid_to_cityscapes.csv
  promptkit map --from kitti11 --to camvid --style sentence --encoder clip:/models/sd15 --out map.csv
""",
)
@click.option("--from", "source", required=True, help="Source taxonomy (a built-in dataset with shipped prompt sets).")
@click.option("--to", "target", required=True, help="Target taxonomy.")
@click.option(
    "--style", type=StyleName(), default="label", show_default=True, help="Prompt style whose embeddings are compared."
)
@option_from_registry("--encoder", help_from=encoder_help, default="minilm")
@click.option("--min-similarity", type=real(-1.0, 1.0), default=0.3, show_default=True, help="Below this: void.")
@click.option(
    "--close", type=real(0.0, 2.0), default=0.05, show_default=True, help="Flag rows whose best two are this close."
)
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The master-labels CSV to write.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out file.")
def map_labels(source, target, style, encoder, min_similarity, close, out, overwrite) -> None:
    """Propose a label-space mapping from the class-prompt embeddings, for a person to review."""
    check_new_file(out, "--out", overwrite)
    from prompt_kit.embedding_cache import EmbeddingCache
    from prompt_kit.encoders import create_encoder, encode_prompt_set
    from prompt_kit.label_space_proposal import propose_label_map, review_table
    from prompt_kit.resources import prompts_dir

    text_encoder, cache = create_encoder(encoder), EmbeddingCache()
    embeddings = []
    for dataset in (source, target):
        path = prompts_dir() / dataset / f"{style}.yaml"
        if not path.is_file():
            shipped = sorted(p.parent.name for p in prompts_dir().glob(f"*/{style}.yaml"))
            raise PromptKitError(f"no shipped {style} prompt set for {dataset!r}: choose from {', '.join(shipped)}")
        embeddings.append(encode_prompt_set(load_prompt_set(path), text_encoder, cache))
    mapping, matches = propose_label_map(*embeddings, min_similarity=min_similarity, close=close)
    mapping.save(out)
    click.echo(review_table(matches))
    flagged = sum(match.close or match.void for match in matches)
    click.echo(f"wrote {out} ({len(matches)} {source} classes onto {target}; {flagged} to review)", err=True)


def main() -> None:
    promptkit(prog_name="promptkit")


if __name__ == "__main__":
    main()
