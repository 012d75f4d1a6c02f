"""A pinhole camera over a flat street and a canvas that draws an image and its label together.

Everything in a synthetic scene is placed in metres (x to the right, y up, z forward from the
camera) and projected here, so sizes, occlusion and the road's perspective stay consistent. The
canvas draws each shape into the RGB image and, with its class id, into the label map in the
same call: the two can never disagree.
"""

from __future__ import annotations

import colorsys
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

# CamVid label ids (the SegNet order of prompts/classes/camvid.yaml).
SKY, BUILDING, POLE, ROAD, PAVEMENT, TREE, SIGN, FENCE, CAR, PEDESTRIAN, BICYCLIST = range(11)
IGNORE = 11
NUM_CLASSES = 11

Colour = tuple[int, int, int]
Point = tuple[float, float]

CAMERA_HEIGHT = 1.5  # metres above the road, roughly a dashboard camera
NEAREST_Z = 0.3  # metres: nearer points would project absurdly far outside the image


@dataclass(frozen=True)
class Camera:
    """Pinhole camera at ``CAMERA_HEIGHT`` looking along +z; ``focal`` in pixels."""

    focal: float
    horizon: float  # image row of the horizon
    centre: float  # image column of the vanishing point

    def project(self, x: float, y: float, z: float) -> Point:
        """Image (column, row) of the world point (x, y, z)."""
        z = max(z, NEAREST_Z)
        return self.centre + self.focal * x / z, self.horizon + self.focal * (CAMERA_HEIGHT - y) / z

    def pixels_per_metre(self, z: float) -> float:
        return self.focal / max(z, NEAREST_Z)

    def side_quad(self, x: float, z0: float, z1: float, y0: float, y1: float) -> list[Point]:
        """A rectangle in the plane x = const (a facade, a fence, a car's flank)."""
        return [self.project(x, y0, z0), self.project(x, y0, z1), self.project(x, y1, z1), self.project(x, y1, z0)]

    def front_quad(self, x0: float, x1: float, y0: float, y1: float, z: float) -> list[Point]:
        """A rectangle in the plane z = const, facing the camera."""
        return [self.project(x0, y0, z), self.project(x1, y0, z), self.project(x1, y1, z), self.project(x0, y1, z)]

    def ground_quad(self, x0: float, x1: float, z0: float, z1: float, y: float = 0.0) -> list[Point]:
        """A rectangle on the ground (or at height y): road, pavement, a lane marking, a shadow."""
        return [self.project(x0, y, z0), self.project(x1, y, z0), self.project(x1, y, z1), self.project(x0, y, z1)]


class Canvas:
    """An RGB image, its label map and a shadow mask, drawn with PIL."""

    def __init__(self, background: np.ndarray, background_class: int) -> None:
        """``background``: uint8 ``[H, W, 3]`` (the sky), labelled ``background_class`` everywhere."""
        self.height, self.width = background.shape[:2]
        height, width = self.height, self.width
        self.image = Image.fromarray(background)
        self.label = Image.new("L", (width, height), background_class)
        self.shade = Image.new("L", (width, height), 0)
        self._image = ImageDraw.Draw(self.image)
        self._label = ImageDraw.Draw(self.label)
        self._shade = ImageDraw.Draw(self.shade)

    def fill(self, points: Sequence[Point], colour: Colour, class_id: int) -> None:
        """A polygon in the image and, as ``class_id``, in the label."""
        self._image.polygon(points, fill=colour)
        self._label.polygon(points, fill=class_id)

    def paint(self, points: Sequence[Point], colour: Colour) -> None:
        """A polygon in the image only: detail that keeps the class below it (windows, markings)."""
        self._image.polygon(points, fill=colour)

    def fill_ellipse(self, centre: Point, radii: Point, colour: Colour, class_id: int | None) -> None:
        """An ellipse; ``class_id`` None paints the image only."""
        (u, v), (ru, rv) = centre, radii
        box = (u - ru, v - rv, u + ru, v + rv)
        self._image.ellipse(box, fill=colour)
        if class_id is not None:
            self._label.ellipse(box, fill=class_id)

    def fill_line(self, points: Sequence[Point], colour: Colour, class_id: int | None, width: float) -> None:
        """A polyline at least one pixel wide; ``class_id`` None paints the image only."""
        pixels = max(1, int(round(width)))
        self._image.line(points, fill=colour, width=pixels)
        if class_id is not None:
            self._label.line(points, fill=class_id, width=pixels)

    def colour_at(self, point: Point) -> Colour:
        """The image colour drawn so far at a point (clamped into the image)."""
        u = min(max(int(point[0]), 0), self.width - 1)
        v = min(max(int(point[1]), 0), self.height - 1)
        red, green, blue = self.image.getpixel((u, v))
        return red, green, blue

    def cast_shadow(self, points: Sequence[Point], darkness: int) -> None:
        """Darken everything later found in this polygon (0 none .. 255 black), applied at the end."""
        self._shade.polygon(points, fill=darkness)


def hsv_colour(
    rng: np.random.Generator, hue: Sequence[float], saturation: Sequence[float], value: Sequence[float]
) -> Colour:
    """A random colour from ranges: hue in degrees (may wrap past 360), saturation and value in 0..1."""
    h = (rng.uniform(*hue) % 360.0) / 360.0
    s = min(1.0, max(0.0, rng.uniform(*saturation)))
    v = min(1.0, max(0.0, rng.uniform(*value)))
    r, g, b = colorsys.hsv_to_rgb(h, s, v)
    return int(r * 255), int(g * 255), int(b * 255)


def scale_colour(colour: Colour, factor: float) -> Colour:
    """``colour`` made brighter (factor > 1) or darker, clipped to 0..255."""
    r, g, b = (int(min(255.0, max(0.0, channel * factor))) for channel in colour)
    return r, g, b


def mix_colour(a: Colour, b: Colour, weight: float) -> Colour:
    """``(1 - weight) * a + weight * b``."""
    red, green, blue = (int(round((1.0 - weight) * x + weight * y)) for x, y in zip(a, b, strict=True))
    return red, green, blue
