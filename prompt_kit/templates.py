"""Jinja templates: prompt texts (``<style>.j2``) and LLM requests (``llm/<style>.j2``, ``llm/system.j2``).

A style's two templates live in its module (:class:`prompt_kit.styles.PromptStyle`); the shared
system message lives in ``templates/llm/``.

Templates render in a sandbox with ``StrictUndefined``: a template that names a variable we do not
provide is an error, not an empty string in a prompt. A user folder (``--templates DIR``) overrides
any shipped template by file name.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import jinja2

from prompt_kit.errors import PromptKitError
from prompt_kit.prompt_set import TemplateInfo
from prompt_kit.resources import templates_dir
from prompt_kit.styles import get_style, registered_styles
from prompt_kit.template_sandbox import BoundedSandbox, TemplateLimitError

_WHITESPACE = re.compile(r"\s+")


def _style_template(name: str) -> str | None:
    """The source of a registered style's template, looked up at render time (plugins included)."""
    for style in registered_styles():
        source = style.templates().get(name)
        if source is not None:
            return source
    return None


class PromptTemplates:
    """The shipped templates, optionally overridden file by file from ``override_dir``."""

    def __init__(self, override_dir: str | Path | None = None) -> None:
        loaders: list[jinja2.BaseLoader] = [
            jinja2.FunctionLoader(_style_template),
            jinja2.FileSystemLoader(str(templates_dir())),
        ]
        if override_dir is not None:
            override = Path(override_dir)
            if not override.is_dir():
                raise PromptKitError(f"templates folder not found: {override}")
            loaders.insert(0, jinja2.FileSystemLoader(str(override)))
        self.environment = BoundedSandbox(
            loader=jinja2.ChoiceLoader(loaders),
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            keep_trailing_newline=False,
        )

    def _template(self, name: str) -> jinja2.Template:
        try:
            return self.environment.get_template(name)
        except jinja2.TemplateNotFound as exc:
            raise PromptKitError(f"template {name!r} not found in the templates folders") from exc
        except jinja2.TemplateSyntaxError as exc:
            raise PromptKitError(f"template {name!r} line {exc.lineno}: {exc.message}") from exc

    def render(self, template_name: str, /, **variables: Any) -> str:
        """Render a template; an undefined variable or a sandbox violation is a clear error."""
        name = template_name
        template = self._template(name)
        try:
            return self.environment.render_limited(template, variables)
        except jinja2.UndefinedError as exc:
            raise PromptKitError(
                f"template {name!r}: {exc.message}; available variables: {', '.join(sorted(variables))}"
            ) from exc
        except TemplateLimitError as exc:
            raise PromptKitError(f"template {name!r} is over a limit: {exc}; prompt templates are small texts") from exc
        except jinja2.exceptions.SecurityError as exc:
            raise PromptKitError(f"template {name!r} tried something unsafe: {exc}") from exc
        except jinja2.TemplateNotFound as exc:
            raise PromptKitError(
                f"template {name!r} includes {exc.name!r}, which is not in the templates folders "
                "(includes are looked up inside them only)"
            ) from exc
        except jinja2.TemplateSyntaxError as exc:
            raise PromptKitError(f"template {exc.name or name!r} line {exc.lineno}: {exc.message}") from exc
        except (jinja2.TemplateError, ArithmeticError, TypeError, ValueError) as exc:
            raise PromptKitError(f"template {name!r} failed: {type(exc).__name__}: {exc}") from exc

    def info(self, name: str) -> TemplateInfo:
        """Template name and SHA-256 of its source, for provenance."""
        self._template(name)  # the same errors as rendering it
        text, filename, _ = self.environment.loader.get_source(self.environment, name)
        source = Path(filename).read_bytes() if filename else text.encode("utf-8")  # a file's exact bytes
        return TemplateInfo(name=name, sha256=hashlib.sha256(source).hexdigest())

    def prompt_template_name(self, style: str) -> str:
        return get_style(style).prompt_template_name

    def render_prompt(self, style: str, *, name: str, label: str, sentence: str | None, words: list[str]) -> str:
        """The prompt text an encoder sees for one class, whitespace collapsed."""
        text = self.render(
            self.prompt_template_name(style), name=name, label=label, sentence=sentence or "", words=words
        )
        text = _WHITESPACE.sub(" ", text).strip()
        if not text:
            raise PromptKitError(f"template {self.prompt_template_name(style)!r} rendered an empty prompt for {name!r}")
        return text
