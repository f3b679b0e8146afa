"""Area polygons of the rules: [lat, lon] points as operators copy them from a map.

Shapely works in (x, y), so points become (lon, lat) here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import shapely
from shapely.validation import explain_validity

Point = tuple[float, float]  # (lat, lon)


def polygon(points: Sequence[Point]) -> shapely.Polygon:
    return shapely.Polygon([(lon, lat) for lat, lon in points])


def polygon_problem(points: Sequence[Point]) -> str | None:
    """Why the points make no usable area (crossing edges, all on one line), or None."""
    try:
        shape = polygon(points)
    except (ValueError, shapely.errors.ShapelyError) as exc:
        return f"degenerate polygon: {exc}"
    if not shape.is_valid:
        return f"degenerate polygon: {explain_validity(shape)}"
    if shape.area == 0:
        return "degenerate polygon: its points enclose no area"
    return None


def area_test(points: Sequence[Point]) -> Callable[[float, float], bool]:
    """A test of (lat, lon) against the area, compiled once: the polygon is
    prepared (indexed) so each test is a microsecond or two. Points on the
    border are inside."""
    shape = polygon(points)
    shapely.prepare(shape)

    def inside(lat: float, lon: float) -> bool:
        return bool(shapely.intersects_xy(shape, lon, lat))

    return inside


def area_covers(outer: Sequence[Point], inner: Sequence[Point]) -> bool:
    return bool(polygon(outer).covers(polygon(inner)))
