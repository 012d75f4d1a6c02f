"""KD losses by name: ``list_losses()``, ``parse_kd_spec()`` and ``create_loss()``.

A plain list of classes becomes a dict by their ``name`` (no decorators). To add a loss, write its
module and append its class to ``_LOSS_CLASSES``; the tests pick it up and ask for a reference.
"""

from __future__ import annotations

import inspect
import math
from typing import Any

from torch import nn

from distill.kd.losses.attention_transfer import AttentionTransfer
from distill.kd.losses.cgd import ChannelGroupDivergence
from distill.kd.losses.cirkd import CrossImagePixelPairs
from distill.kd.losses.cwd import ChannelWiseDivergence
from distill.kd.losses.dist import DIST
from distill.kd.losses.kl import KLDivergence
from distill.kd.losses.mse import LogitMSE
from distill.kd.losses.none import NoDistillation
from distill.kd.losses.weighted_sum import WeightedSum

_LOSS_CLASSES: list[type[nn.Module]] = [
    KLDivergence,
    LogitMSE,
    ChannelWiseDivergence,
    ChannelGroupDivergence,
    AttentionTransfer,
    DIST,
    CrossImagePixelPairs,
    NoDistillation,
]
LOSSES: dict[str, type[nn.Module]] = {cls.name: cls for cls in _LOSS_CLASSES}

SPEC_HELP = "write it as name=weight pairs separated by commas, e.g. 'kl=1.0,cwd=3.0' (a bare name weighs 1.0)"


def list_losses() -> list[str]:
    """The registered KD loss names, in registration order."""
    return list(LOSSES)


def loss_parameters(name: str) -> list[str]:
    """The parameter names that loss ``name`` takes (its constructor's keyword arguments)."""
    return [p for p in inspect.signature(_loss_class(name)).parameters if p != "self"]


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
        _loss_class(name)
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


def create_loss(spec: str, **params: Any) -> nn.Module:
    """Build a KD loss from a name (``"kl"``) or a weighted spec (``"kl=1.0,cwd=3.0"``).

    A bare name gives that loss's module; a spec with weights or several terms gives a
    :class:`WeightedSum`. Parameters are passed by name:

    - ``create_loss("cwd", tau=4.0)``: a parameter goes to every term that takes it (``align`` to
      all of them, ``tau`` to each of cwd, dist and cirkd) and must be taken by at least one;
    - ``create_loss("cwd=3,dist=1", tau=4.0, dist={"tau": 1.0})``: a dict under a loss's name holds
      parameters for that term only and overrides the shared ones.

    Raises:
        ValueError: an unknown loss name (the message lists the valid ones), bad spec syntax, or a
            parameter that no term of the spec takes.
    """
    terms = parse_kd_spec(spec)
    names = [name for name, _ in terms]
    per_loss = {key: params.pop(key) for key in list(params) if key in LOSSES}
    for name, values in per_loss.items():
        if name not in names:
            raise ValueError(f"parameters are given for {name}, which is not in the KD spec {spec!r}")
        if not isinstance(values, dict):
            raise ValueError(f"parameters for {name} must be a dict such as {{'tau': 2.0}}; got {values!r}")
        _check_parameters(values, [name])
    _check_parameters(params, names)
    modules: list[tuple[str, float, nn.Module]] = []
    for name, weight in terms:
        taken = loss_parameters(name)
        kwargs = {key: value for key, value in params.items() if key in taken} | per_loss.get(name, {})
        modules.append((name, weight, LOSSES[name](**kwargs)))
    if len(terms) == 1 and "=" not in spec:
        return modules[0][2]
    return WeightedSum(modules)


def _loss_class(name: str) -> type[nn.Module]:
    if name not in LOSSES:
        raise ValueError(f"unknown KD loss {name!r}; valid names: {', '.join(LOSSES)}")
    return LOSSES[name]


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
