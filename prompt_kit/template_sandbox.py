"""A Jinja sandbox with limits: user templates cannot run forever or fill the memory.

Jinja's own sandbox stops a template from reaching Python internals, but not from asking for
``'x' * 4000000000`` or three nested ``range(100000)`` loops. Prompt and request templates are small
texts, so the limits here are generous for them and tight for an attack:

- every operation that can make a value larger than ``MAX_TEXT`` characters (``*``, ``+``, ``**``,
  ``%``, ``~``, ``str.format`` widths, padding methods and filters) is checked *before* it runs;
- a call with an integer argument above ``MAX_TEXT`` is refused (``'x'.ljust(10**9)``,
  ``'a'.expandtabs(...)``, ``range`` is already limited by Jinja);
- a render is stopped after ``time_limit`` seconds, checked on every line the template executes;
- the rendered text may hold at most ``MAX_TEXT`` characters.

Each limit ends in a :class:`TemplateLimitError` (a :class:`~jinja2.exceptions.SecurityError`) that
says which one was hit.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Sized
from typing import Any

from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

MAX_TEXT = 1_000_000  # characters in any value a template makes, and in its output
TIME_LIMIT = 2.0  # seconds per render
_BIG_NUMBER = re.compile(r"\d{7,}")  # a width or precision of a million or more in a format string
_WIDTH_FILTERS = ("center", "indent", "wordwrap", "truncate", "format", "join")


class TemplateLimitError(SecurityError):
    """A template asked for more time or memory than a prompt template may use."""


def _length(value: Any) -> int:
    return len(value) if isinstance(value, Sized) and not isinstance(value, dict) else 0


def _check_size(size: float, what: str) -> None:
    if size > MAX_TEXT:
        raise TemplateLimitError(f"{what} would make {int(size):,} characters (at most {MAX_TEXT:,})")


def _check_format(text: Any) -> None:
    if isinstance(text, str) and _BIG_NUMBER.search(text):
        raise TemplateLimitError(f"a format width or precision above {MAX_TEXT:,} in {text[:40]!r}")


def _check_arguments(args: tuple, kwargs: dict) -> None:
    for value in (*args, *kwargs.values()):
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_TEXT:
            raise TemplateLimitError(f"an argument of {value:,} (at most {MAX_TEXT:,})")


def _method_result_size(text: str, name: str, args: tuple) -> int:
    """An upper bound of the length of ``text.name(*args)`` for the str methods that can grow a text."""
    if name == "join" and args and isinstance(args[0], (list, tuple)):
        items = args[0]
        return sum(len(str(item)) for item in items) + len(text) * max(0, len(items) - 1)
    if name == "replace" and len(args) >= 2:
        return len(text) * (len(str(args[1])) + 1) + len(str(args[1]))
    if name == "expandtabs":
        tab = int(args[0]) if args and isinstance(args[0], int) else 8
        return len(text) * max(1, tab)
    return 0


def bounded_join(values: tuple) -> str:
    """``a ~ b ~ c`` with the size checked before the strings are joined."""
    texts = [str(value) for value in values]
    _check_size(sum(len(text) for text in texts), "joining strings with ~")
    return "".join(texts)


class _BoundedCodeGenerator(CodeGenerator):
    """Compiles ``~`` to :func:`bounded_join` (Jinja's ``str_join`` cannot be intercepted otherwise)."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        if frame.eval_ctx.autoescape or frame.eval_ctx.volatile:  # not used here; keep Jinja's own
            super().visit_Concat(node, frame)
            return
        self.write("environment.bounded_join((")
        for argument in node.nodes:
            self.visit(argument, frame)
            self.write(", ")
        self.write("))")


class BoundedSandbox(SandboxedEnvironment):
    """:class:`SandboxedEnvironment` plus the size and time limits of this module."""

    code_generator_class = _BoundedCodeGenerator
    intercepted_binops = frozenset({"*", "+", "**", "%"})
    bounded_join = staticmethod(bounded_join)

    def __init__(self, *args: Any, time_limit: float = TIME_LIMIT, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.time_limit = time_limit
        for name in _WIDTH_FILTERS:
            if name in self.filters:
                self.filters[name] = self._bounded(self.filters[name], name)

    @staticmethod
    def _bounded(function, name: str):
        def checked(*args: Any, **kwargs: Any) -> Any:
            _check_arguments(args[1:], kwargs)
            if name == "format" and args:
                _check_format(args[0])
            if name == "indent" and args:
                width = args[1] if len(args) > 1 and isinstance(args[1], int) else 4
                _check_size(_length(str(args[0])) * (max(0, width) + 1), "the indent filter")
            if name == "join" and len(args) > 1:
                items = [str(item) for item in args[1]]
                separator = str(args[2]) if len(args) > 2 else str(kwargs.get("d", ""))
                _check_size(sum(map(len, items)) + len(separator) * max(0, len(items) - 1), "the join filter")
            return function(*args, **kwargs)

        for attribute in ("jinja_pass_arg",):  # keep Jinja's context/environment passing marker
            if hasattr(function, attribute):
                setattr(checked, attribute, getattr(function, attribute))
        return checked

    def call_binop(self, context: Any, operator_name: str, left: Any, right: Any) -> Any:
        if operator_name == "*":
            for sequence, count in ((left, right), (right, left)):
                if isinstance(count, int) and _length(sequence):
                    _check_size(_length(sequence) * count, "repeating a value with *")
        elif operator_name == "+":
            _check_size(_length(left) + _length(right), "adding values with +")
        elif operator_name == "**":
            if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
                _check_size(right * abs(left).bit_length() / 3.3, "a power with **")  # about its decimal digits
        elif operator_name == "%":
            _check_format(left)
        return super().call_binop(context, operator_name, left, right)

    def wrap_str_format(self, value: Any):
        if getattr(value, "__name__", "") in {"format", "format_map"}:
            _check_format(getattr(value, "__self__", None))
        return super().wrap_str_format(value)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805 (Jinja's form)
        _check_arguments(args, kwargs)
        owner, name = getattr(__obj, "__self__", None), getattr(__obj, "__name__", "")
        if isinstance(owner, str):
            _check_size(_method_result_size(owner, name, args), f"str.{name}")
        return super().call(__context, __obj, *args, **kwargs)

    def render_limited(self, template: Any, variables: dict[str, Any]) -> str:
        """Render ``template`` within the time and size limits."""
        deadline = time.monotonic() + self.time_limit
        limit = self.time_limit

        def tracer(frame, event, arg):  # noqa: ARG001 (sys.settrace's signature)
            if time.monotonic() > deadline:
                raise TemplateLimitError(f"rendering took more than {limit:g} s")
            return tracer

        previous = sys.gettrace()
        sys.settrace(tracer)
        try:
            pieces: list[str] = []
            size = 0
            for piece in template.generate(**variables):
                size += len(piece)
                _check_size(size, "the rendered text")
                pieces.append(piece)
        except MemoryError as exc:
            raise TemplateLimitError("the template ran out of memory") from exc
        finally:
            sys.settrace(previous)
        return "".join(pieces)


__all__ = ["MAX_TEXT", "TIME_LIMIT", "BoundedSandbox", "TemplateLimitError", "bounded_join"]
