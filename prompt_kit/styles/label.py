"""``label``: the class as the taxonomy names it, nothing more; the baseline every style is measured against."""

from __future__ import annotations

from prompt_kit.styles.base import PromptStyle


class LabelStyle(PromptStyle):
    name = "label"
    title = "label"
    summary = "the class name"
    prompt_template = (
        "{#- label: the class as the taxonomy says it in words. Variables: name, label, sentence, words. -#}\n"
        "{{ label }}\n"
    )


STYLE = LabelStyle()
