"""The synthetic target domain: the street world under another layout, palette, light and weather.

``draw_street_scene(..., domain="target")`` draws the source's layout first and passes it through
:func:`target_street` (fewer dense urban streets, wider roads, overcast and autumn more often),
then passes the finished image through :func:`shift_appearance` (a colour cast and a partial
channel rotation, dusk-to-night exposure, fog rising towards the horizon, rain streaks, sensor
noise). ``domain="night"`` is a second, different shift for testing what was tuned on the first:
the source's own layout statistics, seen at night (:func:`night_appearance`: a low exposure under
sodium or moonlight colour, glows of street lights, sensor noise; no fog, no rain). Labels
are untouched: the same classes, seen otherwise.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from distill.datasets.street.layout import Street


def target_street(street: Street, rng: np.random.Generator) -> Street:
    """The target domain's layout of a source ``street``: suburban and open more often, wider roads, more autumn."""
    style = str(rng.choice(["urban", "suburban", "open"], p=[0.2, 0.4, 0.4]))
    odds = {"urban": 0.95, "suburban": 0.8, "open": 0.35}[style]
    return dataclasses.replace(
        street,
        style=style,
        road_left=street.road_left * rng.uniform(1.1, 1.5),
        road_right=street.road_right * rng.uniform(1.1, 1.5),
        buildings=(bool(rng.random() < odds), bool(rng.random() < odds)),
        sun_side=int(rng.choice([-1, 0, 1], p=[0.15, 0.7, 0.15])),
        autumn=bool(rng.random() < 0.5),
    )


def shift_appearance(image: np.ndarray, horizon: float, rng: np.random.Generator) -> np.ndarray:
    """Palette, light and weather of the target domain, on a finished image."""
    height, width = image.shape[:2]
    pixels = image.astype(np.float32) / 255.0
    cast = np.array([rng.uniform(0.75, 0.9), rng.uniform(0.85, 1.0), rng.uniform(1.05, 1.3)], np.float32)
    mix = rng.uniform(0.15, 0.35)  # a partial channel rotation: every class's colours move
    pixels = (1 - mix) * pixels + mix * pixels[..., [1, 2, 0]]
    pixels = pixels * cast * rng.uniform(0.45, 0.8)  # dusk to night
    rows = np.arange(height, dtype=np.float32)[:, None, None]
    fog = np.clip(1.0 - np.abs(rows - horizon) / (0.6 * height), 0.0, 1.0) * rng.uniform(0.25, 0.6)
    grey = np.float32(rng.uniform(0.35, 0.6))
    pixels = pixels * (1 - fog) + grey * fog
    if rng.random() < 0.6:  # rain: short bright streaks
        streaks = np.zeros((height, width), np.float32)
        count = int(height * width * rng.uniform(0.002, 0.006))
        ys, xs = rng.integers(0, height, count), rng.integers(0, width, count)
        length = max(2, height // 24)
        for step in range(length):
            streaks[np.clip(ys + step, 0, height - 1), np.clip(xs + step // 3, 0, width - 1)] = 0.35
        pixels = pixels + streaks[..., None]
    pixels += rng.standard_normal(pixels.shape, dtype=np.float32) * rng.uniform(0.01, 0.04)  # sensor noise
    return (np.clip(pixels, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def night_appearance(image: np.ndarray, horizon: float, rng: np.random.Generator) -> np.ndarray:
    """The night domain's light on a finished image: dark, one colour of light, glows, noise."""
    height, width = image.shape[:2]
    pixels = image.astype(np.float32) / 255.0
    sodium, moonlight = np.array([1.25, 0.95, 0.55], np.float32), np.array([0.7, 0.85, 1.25], np.float32)
    light = sodium if rng.random() < 0.6 else moonlight
    pixels = pixels * light * rng.uniform(0.25, 0.45)
    rows, columns = np.mgrid[0:height, 0:width].astype(np.float32)
    for _ in range(int(rng.integers(1, 5))):  # street lights: soft warm glows above the horizon
        y, x = rng.uniform(0.1, 1.0) * horizon, rng.uniform(0.0, width)
        radius = height * rng.uniform(0.03, 0.08)
        glow = np.exp(-((rows - y) ** 2 + (columns - x) ** 2) / (2 * radius**2)) * rng.uniform(0.3, 0.6)
        pixels += glow[..., None] * sodium / 1.25
    pixels += rng.standard_normal(pixels.shape, dtype=np.float32) * rng.uniform(0.02, 0.05)  # sensor noise
    return (np.clip(pixels, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
