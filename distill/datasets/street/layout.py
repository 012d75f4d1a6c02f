"""The random layout of one street scene: the few numbers every drawing step reads."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Street:
    """The random layout of one scene, in metres (x > 0 is right of the camera)."""

    style: str  # "urban", "suburban" or "open"
    road_left: float  # distance from the camera to the left road edge
    road_right: float
    pavement: tuple[float, float]  # widths, left and right
    setback: tuple[float, float]  # verge between pavement and facade, left and right
    buildings: tuple[bool, bool]  # whether each side has facades
    street_end: float  # z of the block closing the street (FAR_Z when open)
    sun_side: int  # -1 / +1: buildings on that side shade the street; 0: overcast
    autumn: bool

    def kerb(self, side: int) -> float:
        return -self.road_left if side < 0 else self.road_right

    def pavement_width(self, side: int) -> float:
        return self.pavement[0 if side < 0 else 1]

    def facade(self, side: int) -> float:
        index = 0 if side < 0 else 1
        return self.kerb(side) + side * (self.pavement[index] + self.setback[index])
