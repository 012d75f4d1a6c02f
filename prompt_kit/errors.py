"""The one exception type that means "the user gave us something we cannot use"."""

from __future__ import annotations


class PromptKitError(Exception):
    """A user-facing error: its message says what is wrong and how to fix it, in one line.

    The command-line interface prints it without a traceback and exits with ``exit_code``
    (2 for usage and data errors, 1 for failures outside the user's input such as a dead server).
    """

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class InvalidAnswer(ValueError):
    """An LLM's answer cannot be used; the message is sent back to the LLM when we re-ask."""
