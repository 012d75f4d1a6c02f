"""Numeric command-line options with a finite range, the range named in the error.

click's ``FloatRange`` lets NaN through (every comparison with NaN is false) and ``IntRange``
without a maximum takes 10^12; every numeric option of both command groups is one of these.
"""

from __future__ import annotations

import math

import click

from prompt_kit.bounds import range_text


class Number(click.ParamType):
    """A finite ``int`` or ``float`` in ``[low, high]`` (an open end with ``low_open``/``high_open``)."""

    def __init__(self, kind: type, low: float, high: float, low_open: bool = False, high_open: bool = False) -> None:
        if kind not in (int, float):
            raise TypeError(f"Number takes int or float, not {kind!r}")
        self.kind, self.low, self.high = kind, low, high
        self.low_open, self.high_open = low_open, high_open
        self.name = "integer" if kind is int else "float"

    @property
    def range_text(self) -> str:
        return range_text(self.low, self.high, self.low_open, self.high_open)

    def contains(self, value: float) -> bool:
        """Whether ``value`` (already a number) is finite and in the range (ints compared exactly, any size)."""
        if isinstance(value, float) and not math.isfinite(value):
            return False
        above_low = value > self.low if self.low_open else value >= self.low
        below_high = value < self.high if self.high_open else value <= self.high
        return above_low and below_high

    def convert(self, value, param, ctx):
        if isinstance(value, bool):
            self.fail(f"{value!r} is not a number", param, ctx)
        if isinstance(value, str):
            text = value.strip()
            try:
                number = int(text) if self.kind is int else float(text)
            except (ValueError, OverflowError):
                kind = "a whole number" if self.kind is int else "a number"
                self.fail(f"{value!r} is not {kind}: give one in {self.range_text}", param, ctx)
        elif isinstance(value, (int, float)):
            number = value
            if self.kind is int and not isinstance(value, int):
                self.fail(f"{value!r} is not a whole number: give one in {self.range_text}", param, ctx)
        else:
            self.fail(f"{value!r} is not a number", param, ctx)
        if not self.contains(number):
            kind = "a whole number" if self.kind is int else "a finite number"
            self.fail(f"{value!r} is out of range: give {kind} in {self.range_text}", param, ctx)
        return self.kind(number)

    def __repr__(self) -> str:
        return f"Number({self.kind.__name__}, {self.range_text})"


def integer(low: int, high: int) -> Number:
    return Number(int, low, high)


def real(low: float, high: float, low_open: bool = False, high_open: bool = False) -> Number:
    return Number(float, low, high, low_open, high_open)


__all__ = ["Number", "integer", "real"]


class StyleName(click.ParamType):
    """A registered prompt style, looked up when the option is parsed (plugin styles included)."""

    name = "style"

    def get_metavar(self, *args, **kwargs) -> str:
        from prompt_kit.styles import style_names

        return "[" + "|".join(style_names()) + "]"

    def convert(self, value, param, ctx):
        from prompt_kit.styles import style_names

        names = style_names()
        if value in names:
            return value
        self.fail(f"{value!r} is not a prompt style: choose one of {', '.join(names)}", param, ctx)

    def shell_complete(self, ctx, param, incomplete):
        from click.shell_completion import CompletionItem

        from prompt_kit.styles import style_names

        return [CompletionItem(name) for name in style_names() if name.startswith(incomplete)]
