"""What both command groups share: user errors as one line and an exit status, warnings as one line."""

from __future__ import annotations

import logging
import sys

import click

from prompt_kit.errors import PromptKitError


class _StderrLine(logging.Handler):
    """``warning: message`` on the current ``sys.stderr`` (looked up per record, so redirection works)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(f"{record.levelname.lower()}: {record.getMessage()}\n")
        except Exception:  # noqa: BLE001 (logging must never raise)
            self.handleError(record)


_HANDLER = _StderrLine()


def configure_logging(verbose: bool = False) -> None:
    """Warnings (a damaged cache entry dropped, a stale lock taken over) on stderr, one line each."""
    root = logging.getLogger()
    if _HANDLER not in root.handlers:
        root.addHandler(_HANDLER)
    root.setLevel(logging.INFO if verbose else logging.WARNING)


_PATH_ERRORS = (PermissionError, IsADirectoryError, NotADirectoryError, FileExistsError)  # the user's path


class UserFacingGroup(click.Group):
    """A click group that prints user errors as ``error: ...`` without a traceback.

    A :class:`PromptKitError` exits with its code (2 for bad input); a command-line mistake (an
    unknown option, a bad value) is one line too, with the command's ``--help`` named, and exit 2;
    Ctrl-C is ``error: interrupted`` and exit 130, after whatever the command saved.
    """

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except PromptKitError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except OSError as exc:  # the machine said no: a path we cannot write, a full disk
            where = f" {exc.filename}" if exc.filename else ""
            click.echo(f"error: cannot use{where}: {exc.strerror or exc}", err=True)
            ctx.exit(2 if isinstance(exc, _PATH_ERRORS) else 1)

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode: bool = True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as exc:
            where = f" (see {exc.ctx.command_path} --help)" if exc.ctx is not None else ""
            click.echo(f"error: {exc.format_message()}{where}", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            click.echo(f"error: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        except (click.Abort, KeyboardInterrupt, EOFError):
            click.echo("error: interrupted", err=True)
            sys.exit(130)
        sys.exit(code if isinstance(code, int) else 0)
