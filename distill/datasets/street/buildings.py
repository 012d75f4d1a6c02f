"""The buildings of a street scene: facades with windows, the block closing the street, the skyline.

Split from ``scene`` (which lays out the street and calls these in drawing order). Each
function paints onto the scene's ``Canvas`` in the ``Camera``'s perspective, with labels
(``BUILDING``, ``TREE`` for a skyline of trees or a tree in the closing row); windows and shop
fronts are image only, part of the building's label.
"""

from __future__ import annotations

import numpy as np

from distill.datasets.street.canvas import BUILDING, TREE, Camera, Canvas, Colour, hsv_colour, mix_colour, scale_colour
from distill.datasets.street.layout import Street
from distill.datasets.street.objects import draw_tree, tree_colour

FAR_Z = 400.0  # metres: the road ends here, within a pixel of the horizon


def draw_skyline(canvas: Canvas, camera: Camera, rng: np.random.Generator) -> None:
    """Distant buildings or a tree line standing on the horizon (seen where the street is open)."""
    choice = rng.random()
    if choice < 0.25:
        return
    class_id = BUILDING if choice < 0.65 else TREE
    base = hsv_colour(rng, (0, 360), (0.0, 0.2), (0.35, 0.75)) if class_id == BUILDING else tree_colour(rng, False)
    base = mix_colour(base, canvas.colour_at((canvas.width / 2, camera.horizon - 1)), 0.35)  # haze
    u, horizon = -1.0, camera.horizon
    while u < canvas.width:
        step = rng.uniform(0.02, 0.08) * canvas.width
        top = horizon - rng.uniform(0.01, 0.08) * canvas.height
        if class_id == TREE:
            canvas.fill_ellipse((u + step / 2, top), (step * 0.7, horizon - top + 1), base, TREE)
        else:
            canvas.fill(
                [(u, horizon + 1), (u, top), (u + step, top), (u + step, horizon + 1)],
                scale_colour(base, rng.uniform(0.85, 1.15)),
                BUILDING,
            )
        u += step


def building_colour(rng: np.random.Generator) -> Colour:
    kind = rng.random()
    if kind < 0.25:  # brick
        return hsv_colour(rng, (0, 28), (0.35, 0.65), (0.3, 0.65))
    if kind < 0.8:  # render, concrete, stone
        return hsv_colour(rng, (0, 360), (0.0, 0.25), (0.35, 0.92))
    return hsv_colour(rng, (0, 360), (0.2, 0.5), (0.4, 0.85))  # painted


def draw_facades(canvas: Canvas, camera: Camera, street: Street, side: int, rng: np.random.Generator) -> None:
    """Buildings along one side: segments of varied height and colour, windows, near end walls."""
    x = street.facade(side)
    urban = street.style == "urban"
    shade = rng.uniform(0.6, 0.8) if side == street.sun_side else 1.0
    segments = []
    z = rng.uniform(0.3, 3.0)
    while z < min(street.street_end, 160.0):
        length = rng.uniform(8.0, 28.0) if urban else rng.uniform(8.0, 16.0)
        if rng.random() < (0.08 if urban else 0.3):
            z += rng.uniform(4.0, 14.0)  # a gap: side street, garden, car park
            continue
        segments.append((z, z + length))
        z += length
    for z0, z1 in reversed(segments):  # far to near: a nearer wall hides the end of the farther
        tall = rng.uniform(8.0, 30.0) if urban else rng.uniform(4.0, 9.0)
        colour = scale_colour(building_colour(rng), shade)
        depth = rng.uniform(8.0, 15.0)
        canvas.fill(
            camera.front_quad(*sorted((x, x + side * depth)), 0.0, tall, z0), scale_colour(colour, 0.8), BUILDING
        )
        canvas.fill(camera.side_quad(x, z0, z1, 0.0, tall), colour, BUILDING)
        if not urban and rng.random() < 0.7:  # a pitched roof rising away from the street
            roof = (
                hsv_colour(rng, (0, 30), (0.2, 0.6), (0.2, 0.5))
                if rng.random() < 0.6
                else hsv_colour(rng, (0, 360), (0.0, 0.1), (0.15, 0.4))
            )
            ridge = x + side * rng.uniform(2.0, 4.0)
            canvas.fill(
                [
                    camera.project(x, tall, z0),
                    camera.project(x, tall, z1),
                    camera.project(ridge, tall + rng.uniform(1.5, 3.0), z1),
                    camera.project(ridge, tall + rng.uniform(1.5, 3.0), z0),
                ],
                roof,
                BUILDING,
            )
        _draw_windows(canvas, camera, rng, x, z0, z1, tall, colour)


def _draw_windows(
    canvas: Canvas, camera: Camera, rng: np.random.Generator, x: float, z0: float, z1: float, tall: float, wall: Colour
) -> None:
    """A grid of windows on a facade (image only: windows are part of the building)."""
    floor, spacing = rng.uniform(2.8, 3.6), rng.uniform(2.2, 4.0)
    width, height = spacing * rng.uniform(0.35, 0.65), floor * rng.uniform(0.35, 0.6)
    glass = hsv_colour(rng, (180, 240), (0.0, 0.4), (0.08, 0.45))
    frame = scale_colour(wall, rng.uniform(0.6, 1.3))
    if rng.random() < 0.5:  # shop fronts on the ground floor
        canvas.paint(camera.side_quad(x, z0 + 0.5, z1 - 0.5, 0.4, 2.6), scale_colour(glass, 1.2))
        start = floor
    else:
        start = floor * 0.35
    for zw in np.arange(z0 + spacing * 0.3, z1 - width, spacing):
        if camera.pixels_per_metre(zw) * width * abs(x) / max(zw, 1.0) < 0.8:
            break  # windows narrower than a pixel: the wall's texture stands for them
        for yw in np.arange(start, tall - height, floor):
            lit = scale_colour(glass, rng.uniform(0.8, 1.6)) if rng.random() < 0.3 else glass
            canvas.paint(camera.side_quad(x, zw, zw + width, yw, yw + height), lit)
            canvas.paint(camera.side_quad(x, zw, zw + width, yw - 0.12, yw), frame)


def draw_street_end(canvas: Canvas, camera: Camera, street: Street, rng: np.random.Generator) -> None:
    """A row of buildings across the far end of the street (absent when the street runs out of view)."""
    if street.street_end >= FAR_Z:
        return
    z = street.street_end
    x = -rng.uniform(30.0, 60.0)
    while x < 60.0:
        width = rng.uniform(8.0, 25.0)
        tall = rng.uniform(6.0, 30.0)
        if rng.random() < 0.15:
            draw_tree(canvas, camera, rng, x + width / 2, z, street.autumn)
        else:
            colour = building_colour(rng)
            canvas.fill(camera.front_quad(x, x + width, 0.0, tall, z), colour, BUILDING)
            if camera.pixels_per_metre(z) * 1.5 > 1.5:
                for yw in np.arange(3.0, tall - 1.5, 3.2):
                    for xw in np.arange(x + 1.0, x + width - 1.5, 2.8):
                        canvas.paint(camera.front_quad(xw, xw + 1.3, yw, yw + 1.5, z), scale_colour(colour, 0.5))
        x += width


__all__ = ["FAR_Z", "building_colour", "draw_facades", "draw_skyline", "draw_street_end"]
