"""``distill``: train teachers and students and compare prompt styles (commands arrive per stage)."""

from __future__ import annotations

import click

import prompt_kit
from cli.common import UserFacingGroup


@click.group(
    cls=UserFacingGroup,
    epilog="Example (once the teacher and student stages land): distill run --prompts prompts/camvid/orthogonal.yaml",
)
@click.version_option(prompt_kit.__version__, prog_name="distill")
def distill() -> None:
    """Distil a prompt-conditioned diffusion teacher into small students.

    No training command is available yet: the teacher, student and KD stages are still to be built.
    """


def main() -> None:
    distill(prog_name="distill")


if __name__ == "__main__":
    main()
