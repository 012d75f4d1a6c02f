"""One procedurally drawn street scene: layout, sky, road, buildings, objects, then camera effects.

``draw_street_scene(height, width, rng)`` returns an RGB image and its CamVid label map. The
layout is a street seen from a car: road and pavements in perspective, facades on both sides
(sometimes gaps, low houses or open verges), a block or skyline at the end of the street, and
objects placed on the ground plane and drawn far to near so that nearer ones occlude. The
class balance follows real streets (road and buildings large, poles, signs and people small);
colours are wide per class and the image gets shadows, texture, lighting and noise, so that a
small network cannot saturate on colour alone.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from distill.datasets.street.buildings import FAR_Z, draw_facades, draw_skyline, draw_street_end
from distill.datasets.street.canvas import (
    BICYCLIST,
    BUILDING,
    CAR,
    FENCE,
    IGNORE,
    NUM_CLASSES,
    PAVEMENT,
    PEDESTRIAN,
    POLE,
    ROAD,
    SIGN,
    SKY,
    TREE,
    Camera,
    Canvas,
    hsv_colour,
    scale_colour,
)
from distill.datasets.street.domain_shift import night_appearance, shift_appearance, target_street
from distill.datasets.street.layout import Street
from distill.datasets.street.objects import (
    draw_bicyclist,
    draw_car,
    draw_clutter,
    draw_fence,
    draw_hedge,
    draw_pedestrian,
    draw_pole,
    draw_sign_post,
    draw_tree,
    fence_style,
    log_uniform,
)

DOMAINS = ("source", "target", "night")  # append only: a domain's index seeds its scenes


def draw_street_scene(
    height: int, width: int, rng: np.random.Generator, domain: str = "source"
) -> tuple[np.ndarray, np.ndarray]:
    """An RGB image uint8 ``[H, W, 3]`` and its label map uint8 ``[H, W]`` (CamVid ids, 11 ignore).

    ``domain="target"`` draws the same world under a domain shift (for adaptation): other layout
    statistics (fewer dense urban streets, wider roads), then another palette and light (a colour
    cast, lower exposure, dusk or night) and weather (fog rising towards the horizon, rain
    streaks). ``domain="night"`` keeps the source's layout statistics and changes only the light
    (dark, sodium or moonlight, street-light glows, sensor noise). The labels keep their meaning;
    the source domain's pixels are unchanged by either.
    """
    if domain not in DOMAINS:
        raise ValueError(f"domain must be one of {', '.join(DOMAINS)}, got {domain!r}")
    camera = Camera(
        focal=width * rng.uniform(0.55, 0.85),
        horizon=height * rng.uniform(0.4, 0.53),
        centre=width * rng.uniform(0.38, 0.62),
    )
    street = target_street(_random_street(rng), rng) if domain == "target" else _random_street(rng)
    canvas = Canvas(_sky(height, width, camera, street, rng), SKY)
    draw_skyline(canvas, camera, rng)
    _draw_ground(canvas, camera, street, rng)
    draw_street_end(canvas, camera, street, rng)
    for side in (-1, 1):
        if street.buildings[(side + 1) // 2]:
            draw_facades(canvas, camera, street, side, rng)
    objects = _place_objects(canvas, camera, street, rng)
    for _, draw in sorted(objects, key=lambda item: -item[0]):
        draw()
    image, label = _finish(canvas, street, rng)
    if domain == "target":
        image = shift_appearance(image, camera.horizon, rng)
    elif domain == "night":
        image = night_appearance(image, camera.horizon, rng)
    return image, label


def _random_street(rng: np.random.Generator) -> Street:
    style = str(rng.choice(["urban", "suburban", "open"], p=[0.55, 0.33, 0.12]))
    building_odds = {"urban": 0.95, "suburban": 0.8, "open": 0.35}[style]
    return Street(
        style=style,
        road_left=rng.uniform(2.5, 9.0),
        road_right=rng.uniform(1.6, 4.5),
        pavement=(rng.uniform(1.5, 4.5), rng.uniform(1.5, 4.5)),
        setback=(_setback(rng), _setback(rng)),
        buildings=(bool(rng.random() < building_odds), bool(rng.random() < building_odds)),
        street_end=rng.uniform(50.0, 160.0) if rng.random() < 0.7 else FAR_Z,
        sun_side=int(rng.choice([-1, 0, 1], p=[0.3, 0.4, 0.3])),
        autumn=bool(rng.random() < 0.2),
    )


def _setback(rng: np.random.Generator) -> float:
    """Facades stand on the pavement's edge, or behind a front garden or forecourt."""
    return 0.0 if rng.random() < 0.6 else float(rng.uniform(0.5, 6.0))


def _sky(height: int, width: int, camera: Camera, street: Street, rng: np.random.Generator) -> np.ndarray:
    """A vertical gradient (clear, overcast or dusk) with soft clouds; covers the whole image."""
    if street.sun_side == 0:
        top = hsv_colour(rng, (0, 360), (0.0, 0.08), (0.55, 0.9))
        bottom = scale_colour(top, rng.uniform(1.0, 1.2))
    elif rng.random() < 0.8:
        top = hsv_colour(rng, (195, 225), (0.35, 0.75), (0.6, 0.95))
        bottom = hsv_colour(rng, (190, 220), (0.05, 0.3), (0.8, 1.0))
    else:  # dusk
        top = hsv_colour(rng, (200, 240), (0.3, 0.6), (0.35, 0.7))
        bottom = hsv_colour(rng, (10, 45), (0.3, 0.7), (0.75, 1.0))
    rows = np.clip(np.arange(height, dtype=np.float32) / max(camera.horizon, 1.0), 0.0, 1.0)[:, None, None]
    sky = (1.0 - rows) * np.array(top, np.float32) + rows * np.array(bottom, np.float32)
    sky = np.broadcast_to(sky, (height, width, 3)).copy()
    clouds = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(clouds)
    for _ in range(int(rng.integers(0, 8))):
        u, v = rng.uniform(-0.1, 1.1) * width, rng.uniform(0.0, 0.8) * camera.horizon
        for _ in range(int(rng.integers(3, 8))):
            du, dv = rng.normal(0.0, 0.06 * width), rng.normal(0.0, 0.02 * height)
            ru, rv = rng.uniform(0.04, 0.14) * width, rng.uniform(0.02, 0.06) * height
            draw.ellipse((u + du - ru, v + dv - rv, u + du + ru, v + dv + rv), fill=int(rng.integers(120, 256)))
    alpha = np.asarray(clouds.filter(ImageFilter.GaussianBlur(max(1.0, width / 60))), np.float32)[..., None] / 255.0
    cloud = np.array(hsv_colour(rng, (0, 360), (0.0, 0.05), (0.85, 1.0)), np.float32)
    sky = sky * (1.0 - alpha * 0.9) + cloud * alpha * 0.9
    return sky.astype(np.uint8)


def _draw_ground(canvas: Canvas, camera: Camera, street: Street, rng: np.random.Generator) -> None:
    """Verge, pavements (with kerbs and tiles), the road (with markings and patches), shadows."""
    verge_class = int(rng.choice([TREE, PAVEMENT, IGNORE], p=[0.45, 0.25, 0.3]))
    verge = {
        TREE: hsv_colour(rng, (60, 120), (0.25, 0.6), (0.25, 0.6)),
        PAVEMENT: hsv_colour(rng, (0, 360), (0.0, 0.2), (0.35, 0.75)),
        IGNORE: hsv_colour(rng, (20, 45), (0.15, 0.45), (0.25, 0.6)),
    }[verge_class]
    bottom = canvas.height + 1
    canvas.fill(
        [(-1, camera.horizon), (canvas.width + 1, camera.horizon), (canvas.width + 1, bottom), (-1, bottom)],
        verge,
        verge_class,
    )

    for side in (-1, 1):
        kerb, width = street.kerb(side), street.pavement_width(side)
        colour = (
            hsv_colour(rng, (0, 360), (0.0, 0.2), (0.35, 0.85))
            if rng.random() < 0.8
            else hsv_colour(rng, (0, 25), (0.3, 0.55), (0.35, 0.6))
        )
        x0, x1 = sorted((kerb, kerb + side * width))
        canvas.fill(camera.ground_quad(x0, x1, 0.1, FAR_Z), colour, PAVEMENT)
        kerb_x0, kerb_x1 = sorted((kerb, kerb + side * 0.2))
        canvas.fill(
            camera.ground_quad(kerb_x0, kerb_x1, 0.1, FAR_Z), scale_colour(colour, rng.uniform(0.75, 1.25)), PAVEMENT
        )
        joints = scale_colour(colour, 0.8)
        for z in np.arange(rng.uniform(0.5, 1.5), 40.0, rng.uniform(1.0, 2.0)):
            if camera.pixels_per_metre(z) < 3:
                break
            canvas.fill_line([camera.project(x0, 0.0, z), camera.project(x1, 0.0, z)], joints, None, 1)

    road = hsv_colour(rng, (0, 360), (0.0, 0.12), (0.22, 0.55))
    canvas.fill(camera.ground_quad(-street.road_left, street.road_right, 0.1, FAR_Z), road, ROAD)
    for _ in range(int(rng.integers(0, 4))):  # repaired patches, wet or worn asphalt
        x0 = rng.uniform(-street.road_left, street.road_right)
        z0 = log_uniform(rng, 2.0, 40.0)
        patch = camera.ground_quad(x0, x0 + rng.uniform(0.5, 3.0), z0, z0 + rng.uniform(1.0, 8.0))
        canvas.paint(patch, scale_colour(road, rng.uniform(0.75, 1.3)))
    _draw_markings(canvas, camera, street, rng)
    if street.sun_side != 0 and street.buildings[(street.sun_side + 1) // 2]:
        inner = street.facade(street.sun_side)
        reach = rng.uniform(0.3, 1.0) * (street.road_left + street.road_right + 8.0)
        shadow = camera.ground_quad(
            min(inner, inner - street.sun_side * reach),
            max(inner, inner - street.sun_side * reach),
            0.1,
            street.street_end,
        )
        canvas.cast_shadow(shadow, int(rng.uniform(70, 140)))


def _draw_markings(canvas: Canvas, camera: Camera, street: Street, rng: np.random.Generator) -> None:
    paint = (235, 235, 225) if rng.random() < 0.75 else (230, 190, 60)
    paint = scale_colour(paint, rng.uniform(0.75, 1.0))
    centre = -rng.uniform(0.3, 0.7) * street.road_left
    dash, gap = rng.uniform(2.0, 4.0), rng.uniform(4.0, 9.0)
    z = rng.uniform(0.5, dash + gap)
    while z < 150.0:
        canvas.paint(camera.ground_quad(centre - 0.07, centre + 0.07, z, z + dash), paint)
        z += dash + gap
    if rng.random() < 0.6:
        for edge in (-street.road_left + 0.3, street.road_right - 0.3):
            canvas.paint(camera.ground_quad(edge - 0.06, edge + 0.06, 0.5, FAR_Z), paint)
    if rng.random() < 0.25:  # a zebra crossing
        z = log_uniform(rng, 5.0, 25.0)
        for x in np.arange(-street.road_left + 0.5, street.road_right - 0.3, 1.0):
            canvas.paint(camera.ground_quad(x, x + 0.5, z, z + 3.0), paint)


def _place_objects(
    canvas: Canvas, camera: Camera, street: Street, rng: np.random.Generator
) -> list[tuple[float, Callable[[], None]]]:
    """Everything standing on the ground, as (depth, draw) for a far-to-near painter's pass."""
    objects: list[tuple[float, Callable[[], None]]] = []

    def add(z: float, draw: Callable[..., None], *args: object) -> None:
        objects.append((z, lambda: draw(canvas, camera, rng, *args)))

    urban = street.style == "urban"
    end = min(street.street_end, 120.0)
    for side in (-1, 1):
        kerb, width = street.kerb(side), street.pavement_width(side)
        outer = kerb + side * width
        for _ in range(int(rng.poisson(1.5 if urban else 3.0))):
            z = log_uniform(rng, 3.0, end)
            add(z, draw_tree, kerb + side * rng.uniform(0.5, max(0.6, width - 0.4)), z, street.autumn)
        for _ in range(int(rng.poisson(2.0))):
            z = log_uniform(rng, 3.0, 70.0)
            add(z, draw_pole, kerb + side * rng.uniform(0.25, 0.5), z, -side)
        for _ in range(int(rng.poisson(1.3))):
            z = log_uniform(rng, 3.0, 50.0)
            add(z, draw_sign_post, kerb + side * rng.uniform(0.3, 0.8), z)
        if rng.random() < 0.55:  # a fence or a hedge along part of the street, in 2 m pieces
            start = log_uniform(rng, 1.0, 30.0)
            stop = start + rng.uniform(8.0, 40.0)
            by_kerb = rng.random() < 0.3
            x = kerb + side * 0.15 if by_kerb else outer
            if rng.random() < 0.7:
                style = fence_style(rng)
                for z in np.arange(start, stop, 2.0):
                    add(z + 1.0, draw_fence, x, z, z + 2.0, style)
            else:
                for z in np.arange(start, stop, 2.0):
                    add(z + 1.0, draw_hedge, x, z, z + 2.05)
        for _ in range(int(rng.poisson(2.0))):
            z = log_uniform(rng, 3.0, 45.0)
            add(z, draw_pedestrian, kerb + side * rng.uniform(0.4, max(0.5, width - 0.3)), z)
        for _ in range(int(rng.poisson(0.6))):
            z = log_uniform(rng, 3.0, 30.0)
            add(z, draw_clutter, kerb + side * rng.uniform(0.5, max(0.6, width - 0.2)), z)

    occupied: list[tuple[float, float, float, float]] = []
    for _ in range(int(rng.poisson(4.0))):
        for _attempt in range(5):
            parked = rng.random() < 0.45
            side = int(rng.choice([-1, 1]))
            if parked:
                x = street.kerb(side) - side * rng.uniform(1.0, 1.3)
            else:
                x = rng.uniform(-street.road_left + 1.2, street.road_right - 1.2)
            z = log_uniform(rng, 3.5, 90.0)
            box = (x - 1.1, x + 1.1, z - 0.5, z + 5.5)
            if all(box[1] < o[0] or box[0] > o[1] or box[3] < o[2] or box[2] > o[3] for o in occupied):
                occupied.append(box)
                add(z, draw_car, x, z, x < -1.5 and not parked)
                break
    for _ in range(int(rng.poisson(0.7))):
        side = int(rng.choice([-1, 1]))
        z = log_uniform(rng, 3.5, 35.0)
        add(z, draw_bicyclist, street.kerb(side) - side * rng.uniform(0.5, 1.0), z)
    if rng.random() < 0.15:  # someone crossing the road
        z = log_uniform(rng, 4.0, 25.0)
        add(z, draw_pedestrian, rng.uniform(-street.road_left, street.road_right), z)
    return objects


def _finish(canvas: Canvas, street: Street, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Shadows, per-class texture, uneven light, blur, white balance, noise; ignore at some borders."""
    height, width = canvas.height, canvas.width
    label = np.array(canvas.label)
    image = np.asarray(canvas.image, dtype=np.float32) / 255.0
    shade = np.asarray(canvas.shade, dtype=np.float32) / 255.0
    image *= (1.0 - shade)[..., None]

    grain = np.full(NUM_CLASSES + 1, 0.02, np.float32)
    blotch = np.full(NUM_CLASSES + 1, 0.03, np.float32)
    for class_id, (fine, coarse) in {
        SKY: (0.004, 0.015),
        BUILDING: (0.03, 0.06),
        ROAD: (0.03, 0.03),
        PAVEMENT: (0.03, 0.05),
        TREE: (0.07, 0.14),
    }.items():
        grain[class_id] = fine * rng.uniform(0.5, 1.5)
        blotch[class_id] = coarse * rng.uniform(0.5, 1.5)
    texture = rng.standard_normal((height, width), dtype=np.float32) * grain[label]
    texture += _smooth_noise(rng, height, width, 3.0) * blotch[label]
    image += texture[..., None]
    image *= (1.0 + 0.12 * _smooth_noise(rng, height, width, max(height, width) / 3.0))[..., None]

    blur = rng.uniform(0.0, 0.8)
    smooth = image.copy()
    smooth[1:-1] = 0.25 * image[:-2] + 0.5 * image[1:-1] + 0.25 * image[2:]
    smooth[:, 1:-1] = 0.25 * smooth[:, :-2] + 0.5 * smooth[:, 1:-1] + 0.25 * smooth[:, 2:]
    image = (1.0 - blur) * image + blur * smooth

    gain = rng.uniform(0.75, 1.2) * (0.9 if street.sun_side == 0 else 1.0)
    balance = rng.uniform(0.92, 1.08, size=3).astype(np.float32)
    image = np.clip(image * gain * balance, 0.0, 1.0) ** rng.uniform(0.8, 1.25)
    rows, cols = np.ogrid[-1.0 : 1.0 : height * 1j, -1.0 : 1.0 : width * 1j]
    image *= (1.0 - rng.uniform(0.0, 0.35) * (rows**2 + cols**2) / 2.0)[..., None].astype(np.float32)
    image += rng.standard_normal(image.shape, dtype=np.float32) * rng.uniform(0.005, 0.03)
    image = (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)

    if rng.random() < 0.6:  # annotators leave object borders unlabelled, as in CamVid
        border = np.zeros_like(label, dtype=bool)
        border[:, 1:] |= label[:, 1:] != label[:, :-1]
        border[1:, :] |= label[1:, :] != label[:-1, :]
        border &= np.isin(label, [POLE, SIGN, FENCE, CAR, PEDESTRIAN, BICYCLIST, TREE])
        label[border & (rng.random(label.shape) < rng.uniform(0.2, 0.8))] = IGNORE
    return image, label


def _smooth_noise(rng: np.random.Generator, height: int, width: int, cell: float) -> np.ndarray:
    """Unit-variance-ish noise that varies over about ``cell`` pixels (bilinear upsampling)."""
    rows, cols = int(height / cell) + 2, int(width / cell) + 2
    coarse = rng.standard_normal((rows, cols), dtype=np.float32)
    return np.asarray(Image.fromarray(coarse).resize((width, height), Image.Resampling.BILINEAR))
