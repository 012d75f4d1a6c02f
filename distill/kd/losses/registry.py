"""KD losses by name: ``list_losses()``, ``loss_class()``, ``create_loss()``; ``parse_kd_spec()`` reads ``--kd``.

A plain list of classes becomes a dict by their ``name`` (no decorators). To add a loss, write its
module and append its class to ``_LOSS_CLASSES``; the tests pick it up and ask for a reference.
"""

from __future__ import annotations

import math
from typing import Any

from distill.kd.losses.attention_transfer import AttentionTransfer
from distill.kd.losses.base import KDLoss
from distill.kd.losses.cgd import ChannelGroupDivergence
from distill.kd.losses.cirkd import CrossImagePixelPairs
from distill.kd.losses.cwd import ChannelWiseDivergence
from distill.kd.losses.dist import DIST
from distill.kd.losses.kl import KLDivergence
from distill.kd.losses.mse import LogitMSE
from distill.kd.losses.none import NoDistillation

_LOSS_CLASSES: list[type[KDLoss]] = [
    KLDivergence,
    LogitMSE,
    ChannelWiseDivergence,
    ChannelGroupDivergence,
    AttentionTransfer,
    DIST,
    CrossImagePixelPairs,
    NoDistillation,
]
LOSSES: dict[str, type[KDLoss]] = {cls.name: cls for cls in _LOSS_CLASSES}

SPEC_HELP = "write it as name=weight pairs separated by commas, e.g. 'kl=1.0,cwd=3.0' (a bare name weighs 1.0)"


def list_losses() -> list[str]:
    """The registered KD loss names, in registration order."""
    return list(LOSSES)


def loss_parameters(name: str) -> list[str]:
    """The parameter names that loss ``name`` takes (its constructor's keyword arguments)."""
    return loss_class(name).parameter_names()


def parse_kd_spec(spec: str) -> list[tuple[str, float]]:
    """Parse ``"kl=1.0,cwd=3.0"`` into ``[("kl", 1.0), ("cwd", 3.0)]``.

    A bare name (``"kl"``) weighs 1.0. Weights are finite numbers >= 0; names are registered and
    distinct. Any other input raises a one-line ValueError that says how to write a spec.
    """
    if not spec.strip():
        raise ValueError(f"empty KD loss spec: {SPEC_HELP}")
    terms: list[tuple[str, float]] = []
    for part in spec.split(","):
        name, equals, weight_text = (piece.strip() for piece in part.partition("="))
        if not name:
            raise ValueError(f"bad KD loss spec {spec!r}: a term has no loss name; {SPEC_HELP}")
        loss_class(name)
        weight = 1.0
        if equals:
            try:
                weight = float(weight_text)
            except ValueError:
                raise ValueError(
                    f"bad KD loss spec {spec!r}: the weight of {name} ({weight_text!r}) is not a number; {SPEC_HELP}"
                ) from None
            if not math.isfinite(weight) or weight < 0:
                raise ValueError(f"bad KD loss spec {spec!r}: the weight of {name} must be >= 0; {SPEC_HELP}")
        if name in (seen for seen, _ in terms):
            raise ValueError(f"bad KD loss spec {spec!r}: {name} appears twice; {SPEC_HELP}")
        terms.append((name, weight))
    return terms


def loss_class(name: str) -> type[KDLoss]:
    """The registered loss called ``name``; an unknown name is a ValueError listing the valid ones."""
    if name not in LOSSES:
        raise ValueError(f"unknown KD loss {name!r}; valid names: {', '.join(LOSSES)}")
    return LOSSES[name]


def create_loss(name: str, **params: Any) -> KDLoss:
    """Build the KD loss ``name`` with its parameters: ``create_loss("cwd", tau=4.0, align="downsample_teacher")``.

    Weighted sums of losses are KD terms (``distill.kd.terms``: ``--kd kl=1,cwd=3`` or a ``kd:``
    list), the one path from a config to the losses a run computes.

    Raises:
        ValueError: an unknown loss name (the message lists the valid ones), a weighted spec, or a
            parameter the loss does not take or refuses.
    """
    if "=" in name or "," in name:
        raise ValueError(
            f"create_loss takes one loss name, not the spec {name!r}: weighted losses are KD terms "
            "(distill.kd.terms.shorthand_specs and build_terms)"
        )
    cls = loss_class(name.strip())
    _check_parameters(params, [cls.name])
    return cls(**params)


def _check_parameters(params: dict[str, Any], names: list[str]) -> None:
    taken = {p for name in names for p in loss_parameters(name)}
    for key, value in params.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{key} = {value} is not a finite number: give the loss parameter a finite value")
        if isinstance(value, int) and not isinstance(value, bool) and not -(2**31) <= value <= 2**32 - 1:
            raise ValueError(f"{key} = {value} is out of range: give a whole number in [-2^31, 2^32 - 1]")
        if key not in taken:
            described = "; ".join(f"{name}: {', '.join(loss_parameters(name))}" for name in names)
            raise ValueError(f"{key!r} is not a parameter of {' or '.join(names)} (parameters: {described})")
