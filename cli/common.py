"""What both command groups share: turning user errors into one line and an exit status."""

from __future__ import annotations

import click

from prompt_kit.errors import PromptKitError


class UserFacingGroup(click.Group):
    """A click group that prints a :class:`PromptKitError` as ``error: ...`` without a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except PromptKitError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)
