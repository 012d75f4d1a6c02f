"""Things that stand in a synthetic street: cars, people, cyclists, trees, poles, signs, fences.

Each function draws one object at a world position (metres, see ``canvas``) with its own
random size and colours. Colours are drawn from wide ranges on purpose (grey cars on grey
roads, green fences next to trees) so that a model has to use shape and context, not colour.
"""

from __future__ import annotations

import math

import numpy as np

from distill.datasets.street.canvas import (
    BICYCLIST,
    CAR,
    FENCE,
    IGNORE,
    PEDESTRIAN,
    POLE,
    SIGN,
    TREE,
    Camera,
    Canvas,
    Colour,
    hsv_colour,
    mix_colour,
    scale_colour,
)

DARK: Colour = (22, 22, 24)


def any_colour(rng: np.random.Generator) -> Colour:
    """Paint, clothes: any hue, often muted, sometimes vivid, from near black to near white."""
    return hsv_colour(rng, (0, 360), (0.0, rng.choice([0.15, 0.5, 0.9])), (0.08, 0.95))


def draw_car(canvas: Canvas, camera: Camera, rng: np.random.Generator, x: float, z: float, oncoming: bool) -> None:
    """A car seen from behind (or the front when ``oncoming``), with its flank when off-centre."""
    kind = rng.choice(["sedan", "hatchback", "suv", "van"], p=[0.4, 0.3, 0.2, 0.1])
    width = rng.uniform(1.65, 1.95)
    height = {"sedan": (1.35, 1.5), "hatchback": (1.4, 1.55), "suv": (1.6, 1.85), "van": (1.9, 2.4)}[kind]
    height = rng.uniform(*height)
    length = rng.uniform(3.6, 4.3) if kind == "hatchback" else rng.uniform(4.2, 5.2)
    belt = height * (0.62 if kind == "van" else 0.52)
    body = any_colour(rng)
    glass = hsv_colour(rng, (180, 240), (0.0, 0.35), (0.05, 0.35))
    x0, x1 = x - width / 2, x + width / 2
    canvas.cast_shadow(camera.ground_quad(x0 - 0.15, x1 + 0.15, z - 0.3, z + length + 0.3), int(rng.uniform(90, 170)))

    flank = x0 if x0 > 0.2 else (x1 if x1 < -0.2 else None)
    if flank is not None:
        side = scale_colour(body, rng.uniform(0.7, 0.95))
        canvas.fill(camera.side_quad(flank, z, z + length, 0.25, belt), side, CAR)
        front, back = (0.05, 0.95) if kind == "van" else (0.22, 0.8)
        cabin = [
            camera.project(flank, belt, z + 0.1 * length),
            camera.project(flank, height, z + front * length),
            camera.project(flank, height, z + back * length),
            camera.project(flank, belt, z + 0.95 * length),
        ]
        canvas.fill(cabin, side, CAR)
        inset = 0.06
        canvas.paint(
            [
                camera.project(flank, belt + inset, z + (0.12 + inset) * length),
                camera.project(flank, height - inset, z + (front + inset) * length),
                camera.project(flank, height - inset, z + (back - inset) * length),
                camera.project(flank, belt + inset, z + (0.93 - inset) * length),
            ],
            glass,
        )
        radius = 0.33
        for wheel_z in (z + 0.2 * length, z + 0.82 * length):
            left = camera.project(flank, radius, wheel_z - radius)
            right = camera.project(flank, radius, wheel_z + radius)
            centre = ((left[0] + right[0]) / 2, left[1] / 2 + right[1] / 2)
            radii = (abs(right[0] - left[0]) / 2, radius * camera.pixels_per_metre(wheel_z))
            canvas.fill_ellipse(centre, radii, DARK, CAR)

    # The face towards the camera is the nearest part: drawn last.
    canvas.fill(camera.front_quad(x0, x1, 0.2, belt, z), body, CAR)
    canvas.paint(camera.front_quad(x0, x1, 0.2, 0.38, z), scale_colour(body, 0.55))  # bumper
    taper = width * rng.uniform(0.06, 0.14)
    canvas.fill(
        [
            camera.project(x0 + 0.03, belt, z),
            camera.project(x0 + taper, height, z),
            camera.project(x1 - taper, height, z),
            camera.project(x1 - 0.03, belt, z),
        ],
        body,
        CAR,
    )
    canvas.paint(
        [
            camera.project(x0 + taper * 0.6 + 0.08, belt + 0.05, z),
            camera.project(x0 + taper + 0.1, height - 0.07, z),
            camera.project(x1 - taper - 0.1, height - 0.07, z),
            camera.project(x1 - taper * 0.6 - 0.08, belt + 0.05, z),
        ],
        glass,
    )
    lamp = (250, 240, 200) if oncoming else hsv_colour(rng, (350, 370), (0.7, 1.0), (0.55, 1.0))
    for lx0, lx1 in ((x0 + 0.05, x0 + 0.35), (x1 - 0.35, x1 - 0.05)):
        canvas.paint(camera.front_quad(lx0, lx1, belt - 0.18, belt - 0.04, z), lamp)
    canvas.paint(camera.front_quad(x - 0.26, x + 0.26, 0.42, 0.53, z), (225, 225, 215))  # number plate
    for wx0, wx1 in ((x0 + 0.05, x0 + 0.3), (x1 - 0.3, x1 - 0.05)):
        canvas.fill(camera.front_quad(wx0, wx1, 0.0, 0.25, z), DARK, CAR)


def draw_pedestrian(canvas: Canvas, camera: Camera, rng: np.random.Generator, x: float, z: float) -> None:
    """A person facing or walking away from the camera, mid-stride, in random clothes."""
    tall = rng.uniform(1.5, 1.95)
    scale = camera.pixels_per_metre(z)
    skin = hsv_colour(rng, (15, 40), (0.2, 0.6), (0.25, 0.95))
    top, trousers = any_colour(rng), any_colour(rng)
    hip, shoulder = 0.52 * tall, 0.82 * tall
    stride = rng.uniform(-0.12, 0.12)
    for side, foot in ((-1, -stride), (1, stride)):
        canvas.fill(
            [
                camera.project(x + side * 0.02, hip, z),
                camera.project(x + side * 0.12, hip, z),
                camera.project(x + side * 0.1 + foot, 0.0, z),
                camera.project(x + side * 0.02 + foot, 0.0, z),
            ],
            trousers,
            PEDESTRIAN,
        )
    half = tall * rng.uniform(0.11, 0.14)
    canvas.fill(camera.front_quad(x - half * 0.85, x + half * 0.85, hip - 0.05, shoulder, z), top, PEDESTRIAN)
    canvas.fill(camera.front_quad(x - half, x + half, shoulder - 0.18, shoulder, z), top, PEDESTRIAN)
    for side in (-1, 1):
        swing = rng.uniform(-0.1, 0.1)
        arm = [
            camera.project(x + side * half, shoulder - 0.05, z),
            camera.project(x + side * (half + 0.05) + swing, hip, z),
        ]
        canvas.fill_line(arm, top, PEDESTRIAN, 0.09 * scale)
    head = camera.project(x, shoulder + 0.13 * tall * 0.75, z)
    radius = 0.105 * scale
    canvas.fill_ellipse(head, (radius * 0.85, radius), skin, PEDESTRIAN)
    if rng.random() < 0.7:  # hair
        hair = hsv_colour(rng, (10, 40), (0.2, 0.7), (0.05, 0.5))
        canvas.fill_ellipse((head[0], head[1] - radius * 0.35), (radius * 0.9, radius * 0.7), hair, PEDESTRIAN)
    if rng.random() < 0.25:  # a bag
        side = rng.choice([-1, 1])
        canvas.fill(
            camera.front_quad(x + side * half, x + side * (half + 0.25), hip - 0.2, hip + 0.15, z),
            any_colour(rng),
            PEDESTRIAN,
        )


def draw_bicyclist(canvas: Canvas, camera: Camera, rng: np.random.Generator, x: float, z: float) -> None:
    """A rider and bicycle (one class in CamVid), seen from the side or from behind."""
    scale = camera.pixels_per_metre(z)
    frame = any_colour(rng)
    clothes, skin = any_colour(rng), hsv_colour(rng, (15, 40), (0.2, 0.6), (0.25, 0.9))
    radius = 0.34
    p = camera.project
    if rng.random() < 0.45:
        direction = rng.choice([-1, 1])
        rear, front = x - direction * 0.52, x + direction * 0.52
        for hub in (rear, front):
            centre = p(hub, radius, z)
            seen_through = canvas.colour_at(centre)
            canvas.fill_ellipse(centre, (radius * scale, radius * scale), DARK, BICYCLIST)
            canvas.fill_ellipse(centre, (radius * scale * 0.8, radius * scale * 0.8), seen_through, None)
        seat, bracket, bars = (x - direction * 0.2, 0.9), (x, 0.3), (x + direction * 0.42, 1.0)
        line = 0.05 * scale
        canvas.fill_line([p(rear, radius, z), p(*seat, z), p(*bracket, z), p(rear, radius, z)], frame, BICYCLIST, line)
        canvas.fill_line([p(*seat, z), p(*bars, z), p(front, radius, z)], frame, BICYCLIST, line)
        shoulder = (x + direction * 0.18, 1.45)
        canvas.fill_line([p(*seat, z), p(*shoulder, z)], clothes, BICYCLIST, 0.28 * scale)
        canvas.fill_line([p(*shoulder, z), p(*bars, z)], clothes, BICYCLIST, 0.08 * scale)
        canvas.fill_line(
            [p(*seat, z), p(x + direction * 0.1, 0.55, z), p(*bracket, z)], clothes, BICYCLIST, 0.12 * scale
        )
        canvas.fill_ellipse(p(shoulder[0] + direction * 0.06, 1.62, z), (0.1 * scale, 0.11 * scale), skin, BICYCLIST)
    else:
        canvas.fill(camera.front_quad(x - 0.03, x + 0.03, 0.0, 2 * radius, z), DARK, BICYCLIST)  # rear wheel
        canvas.fill_line([p(x - 0.28, 1.05, z), p(x + 0.28, 1.05, z)], frame, BICYCLIST, 0.04 * scale)  # handlebar
        for side in (-1, 1):
            canvas.fill_line(
                [p(x + side * 0.1, 0.95, z), p(x + side * 0.14, 0.25, z)], clothes, BICYCLIST, 0.11 * scale
            )
        canvas.fill(camera.front_quad(x - 0.19, x + 0.19, 0.9, 1.45, z), clothes, BICYCLIST)
        canvas.fill_ellipse(p(x, 1.58, z), (0.1 * scale, 0.11 * scale), skin, BICYCLIST)


def tree_colour(rng: np.random.Generator, autumn: bool) -> Colour:
    """Foliage: mostly greens, dark to sunlit; yellow-brown in autumn scenes."""
    if autumn and rng.random() < 0.6:
        return hsv_colour(rng, (20, 55), (0.4, 0.8), (0.3, 0.75))
    return hsv_colour(rng, (55, 150), (0.2, 0.75), (0.12, 0.6))


def draw_tree(canvas: Canvas, camera: Camera, rng: np.random.Generator, x: float, z: float, autumn: bool) -> None:
    """A trunk and a canopy of overlapping blobs, each blob a slightly different shade."""
    scale = camera.pixels_per_metre(z)
    trunk_height, trunk_width = rng.uniform(1.6, 3.5), rng.uniform(0.18, 0.45)
    radius = rng.uniform(1.2, 3.3)
    bark = hsv_colour(rng, (15, 45), (0.1, 0.5), (0.1, 0.4))
    canvas.fill(camera.front_quad(x - trunk_width / 2, x + trunk_width / 2, 0.0, trunk_height + radius, z), bark, TREE)
    leaves = tree_colour(rng, autumn)
    centre_y = trunk_height + radius * 0.8
    for _ in range(int(rng.integers(6, 15))):
        dx, dy = rng.normal(0.0, 0.45 * radius, size=2)
        blob = rng.uniform(0.35, 0.7) * radius
        centre = camera.project(x + dx, centre_y + dy * 0.8, z)
        canvas.fill_ellipse(
            centre,
            (blob * scale, blob * scale * rng.uniform(0.8, 1.1)),
            scale_colour(leaves, rng.uniform(0.7, 1.25)),
            TREE,
        )
    for _ in range(int(rng.integers(2, 6))):  # shadowed gaps inside the canopy
        dx, dy = rng.normal(0.0, 0.3 * radius, size=2)
        centre = camera.project(x + dx, centre_y + dy * 0.8, z)
        blob = rng.uniform(0.08, 0.18) * radius * scale
        canvas.fill_ellipse(centre, (blob, blob), scale_colour(leaves, 0.65), None)


def draw_hedge(canvas: Canvas, camera: Camera, rng: np.random.Generator, x: float, z0: float, z1: float) -> None:
    """A hedge along the pavement: a side-facing band with a lumpy top."""
    height = rng.uniform(0.7, 1.6)
    leaves = tree_colour(rng, autumn=False)
    steps = np.linspace(z0, z1, 6)
    tops = height + rng.uniform(-0.15, 0.15, size=steps.size)
    outline = [camera.project(x, 0.0, z0)] + [camera.project(x, t, s) for s, t in zip(steps, tops, strict=True)]
    outline.append(camera.project(x, 0.0, z1))
    canvas.fill(outline, leaves, TREE)


def draw_fence(
    canvas: Canvas, camera: Camera, rng: np.random.Generator, x: float, z0: float, z1: float, style: dict
) -> None:
    """One piece of a fence in the plane x = const: panel, rails or slats, posts; all of it Fence."""
    height, colour = style["height"], style["colour"]
    if style["kind"] == "panel":
        canvas.fill(camera.side_quad(x, z0, z1, 0.0, height), colour, FENCE)
        for slat in np.arange(z0, z1, style["spacing"]):
            canvas.fill_line(
                [camera.project(x, 0.0, slat), camera.project(x, height, slat)], scale_colour(colour, 0.7), None, 1
            )
    else:  # rails: open, posts and two or three horizontal bars
        for rail in np.linspace(0.35 * height, height, style["rails"]):
            canvas.fill(camera.side_quad(x, z0, z1, rail - 0.08, rail), colour, FENCE)
    for post in np.arange(z0, z1, 2.0):
        width = 0.08 * camera.pixels_per_metre(post)
        canvas.fill_line(
            [camera.project(x, 0.0, post), camera.project(x, height + 0.05, post)],
            scale_colour(colour, 0.85),
            FENCE,
            width,
        )


def fence_style(rng: np.random.Generator) -> dict:
    """One fence's look, shared by all of its pieces."""
    kind = rng.choice(["panel", "rails"], p=[0.6, 0.4])
    colour = rng.choice(3)
    palette = [
        hsv_colour(rng, (20, 40), (0.3, 0.6), (0.25, 0.6)),  # wood
        hsv_colour(rng, (0, 360), (0.0, 0.1), (0.3, 0.9)),  # metal, concrete, white paint
        hsv_colour(rng, (90, 160), (0.3, 0.6), (0.2, 0.45)),  # green paint
    ][colour]
    return {
        "kind": kind,
        "colour": palette,
        "height": rng.uniform(0.9, 1.9),
        "spacing": rng.uniform(0.15, 0.4),
        "rails": int(rng.integers(2, 4)),
    }


def draw_pole(canvas: Canvas, camera: Camera, rng: np.random.Generator, x: float, z: float, towards_road: int) -> None:
    """A lamp post or utility pole, sometimes carrying a sign or a traffic light."""
    height, width = rng.uniform(4.0, 9.0), rng.uniform(0.12, 0.3)
    colour = hsv_colour(rng, (0, 360), (0.0, 0.25), (0.1, 0.75))
    canvas.fill(camera.front_quad(x - width / 2, x + width / 2, 0.0, height, z), colour, POLE)
    scale = camera.pixels_per_metre(z)
    if rng.random() < 0.5:  # street lamp arm and head
        reach = x + towards_road * rng.uniform(0.8, 2.2)
        canvas.fill_line(
            [camera.project(x, height, z), camera.project(reach, height + 0.3, z)], colour, POLE, width * 0.6 * scale
        )
        canvas.fill(camera.front_quad(reach - 0.3, reach + 0.3, height + 0.1, height + 0.35, z), colour, POLE)
    if rng.random() < 0.55:
        draw_sign(canvas, camera, rng, x, rng.uniform(2.0, min(3.5, height - 0.5)), z)
    elif rng.random() < 0.3:
        draw_traffic_light(canvas, camera, rng, x + towards_road * width, height * 0.7, z)


def draw_sign_post(canvas: Canvas, camera: Camera, rng: np.random.Generator, x: float, z: float) -> None:
    """A traffic sign on its own thin post (the post is Pole, the plate SignSymbol)."""
    top = rng.uniform(1.8, 2.8)
    colour = hsv_colour(rng, (0, 360), (0.0, 0.15), (0.35, 0.8))
    canvas.fill(camera.front_quad(x - 0.04, x + 0.04, 0.0, top, z), colour, POLE)
    draw_sign(canvas, camera, rng, x, top, z)


def draw_sign(canvas: Canvas, camera: Camera, rng: np.random.Generator, x: float, y: float, z: float) -> None:
    """A sign plate centred at (x, y, z): circle, triangle, rectangle or diamond."""
    size = rng.uniform(0.45, 0.9)
    scale = camera.pixels_per_metre(z)
    centre = camera.project(x, y, z)
    radius = size / 2 * scale
    red = hsv_colour(rng, (350, 365), (0.75, 1.0), (0.6, 0.95))
    white = hsv_colour(rng, (0, 360), (0.0, 0.08), (0.8, 1.0))
    blue = hsv_colour(rng, (205, 225), (0.7, 1.0), (0.4, 0.8))
    shape = rng.choice(["circle", "triangle", "rectangle", "diamond"])
    u, v = centre
    if shape == "circle":
        outer, inner = (red, white) if rng.random() < 0.6 else (white, blue)
        canvas.fill_ellipse(centre, (radius, radius), outer, SIGN)
        canvas.fill_ellipse(centre, (radius * 0.75, radius * 0.75), inner, None)
    elif shape == "triangle":
        points = [(u, v - radius), (u + radius, v + radius * 0.75), (u - radius, v + radius * 0.75)]
        canvas.fill(points, red, SIGN)
        canvas.paint(
            [(u, v - radius * 0.5), (u + radius * 0.6, v + radius * 0.5), (u - radius * 0.6, v + radius * 0.5)], white
        )
    elif shape == "rectangle":
        plate = [
            blue,
            hsv_colour(rng, (120, 150), (0.6, 1.0), (0.35, 0.7)),
            white,
            hsv_colour(rng, (45, 60), (0.7, 1.0), (0.8, 1.0)),
        ]
        colour = plate[int(rng.integers(len(plate)))]
        aspect = rng.uniform(0.6, 2.2)
        canvas.fill(
            [
                (u - radius * aspect, v - radius),
                (u + radius * aspect, v - radius),
                (u + radius * aspect, v + radius),
                (u - radius * aspect, v + radius),
            ],
            colour,
            SIGN,
        )
    else:
        yellow = hsv_colour(rng, (45, 58), (0.7, 1.0), (0.8, 1.0))
        canvas.fill([(u, v - radius), (u + radius, v), (u, v + radius), (u - radius, v)], yellow, SIGN)
    if radius > 4:  # a symbol on larger plates
        canvas.fill_ellipse(centre, (radius * 0.25, radius * 0.3), DARK, None)


def draw_traffic_light(canvas: Canvas, camera: Camera, rng: np.random.Generator, x: float, y: float, z: float) -> None:
    """A dark housing with three lamps, one lit (SignSymbol, as CamVid labels it)."""
    housing = hsv_colour(rng, (0, 360), (0.0, 0.2), (0.05, 0.3))
    canvas.fill(camera.front_quad(x - 0.18, x + 0.18, y - 0.45, y + 0.45, z), housing, SIGN)
    scale = camera.pixels_per_metre(z)
    lit = int(rng.integers(3))
    for index, colour in enumerate([(230, 40, 30), (240, 180, 20), (40, 220, 90)]):
        shown = colour if index == lit else scale_colour(colour, 0.25)
        canvas.fill_ellipse(camera.project(x, y + 0.28 - 0.28 * index, z), (0.1 * scale, 0.1 * scale), shown, None)


def draw_clutter(canvas: Canvas, camera: Camera, rng: np.random.Generator, x: float, z: float) -> None:
    """Unlabelled street furniture (bins, boxes, bollards, a bench): the ignore index, as in CamVid."""
    colour = any_colour(rng)
    kind = rng.choice(["bin", "box", "bollards", "bench"])
    if kind == "bin":
        canvas.fill(camera.front_quad(x - 0.3, x + 0.3, 0.0, 1.0, z), colour, IGNORE)
        canvas.fill_ellipse(
            camera.project(x, 1.0, z),
            (0.32 * camera.pixels_per_metre(z), 0.06 * camera.pixels_per_metre(z)),
            scale_colour(colour, 0.7),
            IGNORE,
        )
    elif kind == "box":
        width, height = rng.uniform(0.5, 1.6), rng.uniform(0.5, 1.8)
        canvas.fill(camera.front_quad(x - width / 2, x + width / 2, 0.0, height, z), colour, IGNORE)
        canvas.paint(
            camera.front_quad(x - width / 2, x + width / 2, height * 0.8, height, z), scale_colour(colour, 0.75)
        )
    elif kind == "bollards":
        for offset in np.arange(-1.5, 1.6, 0.75):
            canvas.fill(camera.front_quad(x + offset - 0.07, x + offset + 0.07, 0.0, 0.9, z), colour, IGNORE)
    else:
        canvas.fill(camera.front_quad(x - 0.9, x + 0.9, 0.4, 0.5, z), colour, IGNORE)
        canvas.fill(camera.front_quad(x - 0.9, x + 0.9, 0.6, 0.9, z), mix_colour(colour, DARK, 0.3), IGNORE)
        for leg in (-0.8, 0.8):
            canvas.fill(camera.front_quad(x + leg - 0.04, x + leg + 0.04, 0.0, 0.45, z), DARK, IGNORE)


def log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    """A depth: far objects are as common per octave of distance as near ones, as in real streets."""
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))
