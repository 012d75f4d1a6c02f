"""Option help written from the registries, so a new loss, dataset reader or encoder appears by itself.

The help is built when help is shown, not when the CLI is imported: the registries import torch,
which a command's own start-up should pay only when it needs it.
"""

from __future__ import annotations

from collections.abc import Callable

import click


class HelpFromRegistry(click.Option):
    """A click option whose help text comes from ``help_from()`` at the time help is shown."""

    def __init__(self, *args, help_from: Callable[[], str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.help_from = help_from

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        self.help = self.help_from()
        return super().get_help_record(ctx)


def kd_help() -> str:
    from distill.kd.losses import list_losses

    return f"KD loss spec: {', '.join(list_losses())}, or weighted terms such as kl=1.0,cwd=3.0 (default: dist)."


def data_help() -> str:
    from distill.datasets.factory import SPEC_EXAMPLES, list_datasets

    return "; ".join(SPEC_EXAMPLES[name] for name in list_datasets()) + " (any of them SPEC@map=FILE.csv)."


def encoder_help(default: str = "minilm") -> str:
    from prompt_kit.encoders import ENCODER_SPECS, list_encoders

    return f"Prompt encoder: {', '.join(ENCODER_SPECS[name] for name in list_encoders())} (default: {default})."


def option_from_registry(*names: str, help_from: Callable[[], str], **kwargs) -> Callable:
    """``@option_from_registry("--kd", help_from=kd_help, default=None)``."""
    return click.option(*names, cls=HelpFromRegistry, help_from=help_from, **kwargs)


__all__ = ["HelpFromRegistry", "data_help", "encoder_help", "kd_help", "option_from_registry"]
