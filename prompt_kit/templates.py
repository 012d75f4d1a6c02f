"""Jinja templates: prompt texts (``templates/<style>.j2``) and LLM requests (``templates/llm/``).

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
from prompt_kit.styles import check_style
from prompt_kit.template_sandbox import BoundedSandbox, TemplateLimitError

_WHITESPACE = re.compile(r"\s+")


class PromptTemplates:
    """The shipped templates, optionally overridden file by file from ``override_dir``."""

    def __init__(self, override_dir: str | Path | None = None) -> None:
        search_path = [str(templates_dir())]
        if override_dir is not None:
            override = Path(override_dir)
            if not override.is_dir():
                raise PromptKitError(f"templates folder not found: {override}")
            search_path.insert(0, str(override))
        self.environment = BoundedSandbox(
            loader=jinja2.FileSystemLoader(search_path),
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
        template = self._template(name)
        source = Path(template.filename).read_bytes() if template.filename else b""
        return TemplateInfo(name=name, sha256=hashlib.sha256(source).hexdigest())

    def prompt_template_name(self, style: str) -> str:
        return f"{check_style(style)}.j2"

    def render_prompt(self, style: str, *, name: str, label: str, sentence: str | None, words: list[str]) -> str:
        """The prompt text an encoder sees for one class, whitespace collapsed."""
        text = self.render(
            self.prompt_template_name(style), name=name, label=label, sentence=sentence or "", words=words
        )
        text = _WHITESPACE.sub(" ", text).strip()
        if not text:
            raise PromptKitError(f"template {self.prompt_template_name(style)!r} rendered an empty prompt for {name!r}")
        return text
