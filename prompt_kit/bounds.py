"""Every number a user gives has a finite range: the ranges, as types, and the memory a size asks for.

One place for them, so that a command-line option, a config field and a ``--set`` override of
the same idea accept the same values. Floats are finite everywhere (``STRICT`` forbids NaN and
infinity in every config model); each integer has an upper bound where a bigger value is a typo
rather than an experiment (10^12 teacher seeds, 10^10 histogram bins); a size that passes its
bound is still checked against the memory it would take (:func:`check_allocation`) before the
allocation is made.
"""

from __future__ import annotations

import math
import os
from typing import Annotated, Any

from pydantic import BeforeValidator, ConfigDict, Field

from prompt_kit.errors import PromptKitError

STRICT = ConfigDict(extra="forbid", allow_inf_nan=False)
"""The config of every config model: unknown fields are errors, floats are finite."""

MAX_SIDE = 8192  # pixels per side of an image size: a bigger one is a typo, not a model
MAX_SEED = 2**32 - 1  # numpy's and most samplers' seed range
MAX_STEPS = 10**8  # optimizer steps: years on a GPU
MAX_BATCH = 4096
MAX_IMAGES = 10**7  # images counted, evaluated or held out
MAX_REPEATS = 1000  # seeds or teachers per cell of a comparison
MAX_WORKERS = 256
MAX_CHANNELS = 65536
MAX_BINS = 100_000
MAX_BUCKETS = 10_000  # buckets of one adaptation (each bucket k trains with seed + k)
MAX_SCALE = 8.0  # test-time scales: 8x a model's input is already far past what the model saw
MAX_LR = 10.0
MAX_VIEWS = 1024  # pre-drawn crops per train image: a bank of more is a typo, not a plan

Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]
Steps = Annotated[int, Field(ge=0, le=MAX_STEPS)]
PositiveSteps = Annotated[int, Field(ge=1, le=MAX_STEPS)]
BatchSize = Annotated[int, Field(ge=1, le=MAX_BATCH)]
ImageCount = Annotated[int, Field(ge=0, le=MAX_IMAGES)]
PositiveImageCount = Annotated[int, Field(ge=1, le=MAX_IMAGES)]
Repeats = Annotated[int, Field(ge=1, le=MAX_REPEATS)]
Workers = Annotated[int, Field(ge=0, le=MAX_WORKERS)]
Channels = Annotated[int, Field(ge=1, le=MAX_CHANNELS)]
Bins = Annotated[int, Field(ge=2, le=MAX_BINS)]
Views = Annotated[int, Field(ge=0, le=MAX_VIEWS)]


def range_text(low: float, high: float, low_open: bool = False, high_open: bool = False) -> str:
    """``[0, 1]``, ``(0, 10]``: a range as the errors write it."""
    return f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"


def real(low: float, high: float, *, low_open: bool = False, high_open: bool = False) -> Any:
    """A float field type that is finite and in the range, and says the range when it is not.

    pydantic's own message for NaN ("Input should be a finite number") names no range; this
    check runs first and does.
    """
    where = range_text(low, high, low_open, high_open)

    def finite(value: Any) -> Any:
        try:
            number = float(value) if isinstance(value, (int, float, str)) and not isinstance(value, bool) else None
        except ValueError:
            return value  # not a number at all: pydantic says so
        except OverflowError:  # an integer of hundreds of digits
            number = math.inf
        if number is not None and not math.isfinite(number):
            raise ValueError(f"{value!r} is not finite: give a number in {where}")
        return value

    bounds = {"gt" if low_open else "ge": low, "lt" if high_open else "le": high}
    return Annotated[float, BeforeValidator(finite), Field(**bounds)]


LearningRate = real(0, MAX_LR, low_open=True)
Share = real(0, 1)
LossWeight = real(0, 1e6)
WeightDecay = real(0, 1)
GradClip = real(0, 1e6)  # 0: no clipping
Nats = real(0, 100)  # an entropy: log(C) nats for C classes is at most ~11


def check_number(
    value: float | None,
    name: str,
    low: float,
    high: float,
    low_open: bool = False,
    high_open: bool = False,
    hint: str = "",
) -> float | None:
    """``value`` if it is finite and in the range (``None`` passes), else one line naming the range.

    For numbers that reach a function without a config model (a threshold handed to
    ``pseudo_label`` from Python, a scale in a ``--tta`` string).
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PromptKitError(
            f"{name} {value!r} is not a number: give one in {range_text(low, high, low_open, high_open)}"
        )
    below = value <= low if low_open else value < low
    above = value >= high if high_open else value > high
    if below or above or (isinstance(value, float) and not math.isfinite(value)):
        extra = f" ({hint})" if hint else ""
        shown = f"{value:g}" if isinstance(value, float) else str(value)[:20]
        raise PromptKitError(f"{name} {shown} is out of range: give a finite number in "
                             f"{range_text(low, high, low_open, high_open)}{extra}")  # fmt: skip
    return value


def available_memory() -> int:
    """Bytes this process can still allocate: ``MemAvailable`` where Linux says it, else physical memory."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 2**40


def check_allocation(nbytes: float, what: str, fix: str, device=None) -> None:
    """Refuse, before making it, an allocation of more than half the memory still available.

    ``device``: a CUDA device is measured by its own free memory, anything else by the host's.
    """
    if device is not None and getattr(device, "type", None) == "cuda":
        import torch

        limit = torch.cuda.mem_get_info(device)[0] // 2
    else:
        limit = available_memory() // 2
    if nbytes > limit:
        raise PromptKitError(
            f"{what} would take {_bytes(nbytes)}, more than this machine can hold ({_bytes(limit)} free): {fix}"
        )


def _bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if count < 1024 or unit == "PiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} PiB"


__all__ = [
    "MAX_BATCH",
    "MAX_BINS",
    "MAX_BUCKETS",
    "MAX_CHANNELS",
    "MAX_IMAGES",
    "MAX_LR",
    "MAX_VIEWS",
    "MAX_REPEATS",
    "MAX_SCALE",
    "MAX_SEED",
    "MAX_SIDE",
    "MAX_STEPS",
    "MAX_WORKERS",
    "STRICT",
    "BatchSize",
    "Bins",
    "Channels",
    "GradClip",
    "ImageCount",
    "LearningRate",
    "LossWeight",
    "Nats",
    "PositiveImageCount",
    "PositiveSteps",
    "Repeats",
    "Seed",
    "Share",
    "Steps",
    "WeightDecay",
    "Workers",
    "available_memory",
    "check_allocation",
    "check_number",
    "range_text",
    "real",
]
