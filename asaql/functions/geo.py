"""Geospatial functions (R:geospatial-functions.md): CreatePoint, CreateLineString,
CreatePolygon, ST_DISTANCE, ST_WITHIN, ST_INTERSECTS, ST_OVERLAPS.

Geography values are GeoJSON records ``{"type": "Point", "coordinates": [lon, lat]}`` (note
the order: CreatePoint takes lat, lon); WKT text (``POINT(lon lat)``, ``LINESTRING(...)``,
``POLYGON((...))``) is accepted as input too.

* ST_DISTANCE is the geodesic distance in metres on the WGS-84 ellipsoid (Vincenty's inverse
  formula, iterated to 1e-12 rad; sub-millimetre; a spherical fallback only for the rare
  nearly antipodal pairs where it does not converge). With a polygon argument it is 0
  (R:st-distance.md: "If used with Polygons will return 0"); for lines the distance is the
  minimum over vertices and over the planar (lon/lat) closest points of their segments.
* ST_WITHIN / ST_INTERSECTS / ST_OVERLAPS are **planar** tests on lon/lat coordinates (good
  for geofences far from the poles and the antimeridian; ASA uses geodesic edges).
  ST_OVERLAPS is 1 when the interiors of two shapes of the same kind intersect and neither
  lies within the other (R:st-overlaps.md: "one is within another" gives 0).

Per-value Python (the slow path in :func:`asaql.functions.args.map_values`) is used here:
geometry work is branchy and these functions run on few rows.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from asaql.errors import ExecutionError
from asaql.functions.args import as_array, batch_length, map_values, to_float64
from asaql.functions.registry import KernelContext, scalar

__all__ = ["geodesic_distance", "parse_geo"]

POINT_TYPE = pa.struct([("type", pa.string()), ("coordinates", pa.list_(pa.float64()))])
LINE_TYPE = pa.struct(
    [("type", pa.string()), ("coordinates", pa.list_(pa.list_(pa.float64())))]
)
POLYGON_TYPE = pa.struct(
    [("type", pa.string()), ("coordinates", pa.list_(pa.list_(pa.list_(pa.float64()))))]
)

# WGS-84
_A = 6378137.0
_F = 1 / 298.257223563
_B = _A * (1 - _F)


def geodesic_distance(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Vincenty inverse on WGS-84, metres."""
    if lat1 == lat2 and lon1 == lon2:
        return 0.0
    L = math.radians(lon2 - lon1)
    U1 = math.atan((1 - _F) * math.tan(math.radians(lat1)))
    U2 = math.atan((1 - _F) * math.tan(math.radians(lat2)))
    sinU1, cosU1 = math.sin(U1), math.cos(U1)
    sinU2, cosU2 = math.sin(U2), math.cos(U2)
    lam = L
    for _ in range(1000):
        sin_lam, cos_lam = math.sin(lam), math.cos(lam)
        sin_sigma = math.hypot(cosU2 * sin_lam, cosU1 * sinU2 - sinU1 * cosU2 * cos_lam)
        if sin_sigma == 0:
            return 0.0
        cos_sigma = sinU1 * sinU2 + cosU1 * cosU2 * cos_lam
        sigma = math.atan2(sin_sigma, cos_sigma)
        sin_alpha = cosU1 * cosU2 * sin_lam / sin_sigma
        cos2_alpha = 1 - sin_alpha**2
        cos2_sm = cos_sigma - 2 * sinU1 * sinU2 / cos2_alpha if cos2_alpha != 0 else 0.0
        C = _F / 16 * cos2_alpha * (4 + _F * (4 - 3 * cos2_alpha))
        lam_prev = lam
        lam = L + (1 - C) * _F * sin_alpha * (
            sigma + C * sin_sigma * (cos2_sm + C * cos_sigma * (-1 + 2 * cos2_sm**2))
        )
        if abs(lam - lam_prev) < 1e-12:
            break
    else:  # no convergence (nearly antipodal): spherical approximation
        return _haversine(lat1, lon1, lat2, lon2)
    u2 = cos2_alpha * (_A**2 - _B**2) / _B**2
    A = 1 + u2 / 16384 * (4096 + u2 * (-768 + u2 * (320 - 175 * u2)))
    B = u2 / 1024 * (256 + u2 * (-128 + u2 * (74 - 47 * u2)))
    d_sigma = B * sin_sigma * (
        cos2_sm
        + B / 4 * (cos_sigma * (-1 + 2 * cos2_sm**2)
                   - B / 6 * cos2_sm * (-3 + 4 * sin_sigma**2) * (-3 + 4 * cos2_sm**2))
    )
    return _B * A * (sigma - d_sigma)


def _haversine(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    r = 6371008.8
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(min(1.0, math.sqrt(h)))


# --------------------------------------------------------------------------- parsing

_WKT = re.compile(r"^\s*(POINT|LINESTRING|POLYGON)\s*\((.*)\)\s*$", re.I | re.S)


def _wkt_coords(body: str) -> list[list[float]]:
    out = []
    for pair in body.split(","):
        nums = pair.strip().strip("()").split()
        out.append([float(nums[0]), float(nums[1])])
    return out


def _normalize_rings(kind: str, coords: Any) -> Any:
    """A Polygon written with a single ring and no ring nesting (``[[x, y], ...]``, as in
    the ST_OVERLAPS reference example) is read as that one ring."""
    if kind == "polygon" and isinstance(coords, list) and coords and isinstance(coords[0], list) \
            and coords[0] and not isinstance(coords[0][0], list):
        return [coords]
    return coords


def parse_geo(value: Any) -> tuple[str, Any] | None:
    """(kind, coordinates) of a GeoJSON record or WKT text; None if not a geography."""
    if isinstance(value, dict):
        kind = str(value.get("type", "")).lower()
        coords = value.get("coordinates")
        if kind in ("point", "linestring", "polygon") and coords is not None:
            return kind, _normalize_rings(kind, coords)
        return None
    if isinstance(value, str):
        m = _WKT.match(value)
        if not m:
            return None
        kind = m.group(1).lower()
        try:
            if kind == "point":
                return kind, _wkt_coords(m.group(2))[0]
            if kind == "linestring":
                return kind, _wkt_coords(m.group(2))
            rings = re.findall(r"\(([^()]*)\)", m.group(2))
            return kind, [_wkt_coords(r) for r in rings]
        except (ValueError, IndexError):
            return None
    return None


def _geo(value: Any, fn: str) -> tuple[str, Any]:
    g = parse_geo(value)
    if g is None:
        raise ExecutionError(
            f"Function {fn} expects a geography (GeoJSON record or WKT text).",
            code="invalid_argument",
        )
    return g


# --------------------------------------------------------------------------- planar helpers


def _vertices(g: tuple[str, Any]) -> list[tuple[float, float]]:
    kind, c = g
    if kind == "point":
        return [(float(c[0]), float(c[1]))]
    if kind == "linestring":
        return [(float(p[0]), float(p[1])) for p in c]
    return [(float(p[0]), float(p[1])) for ring in c for p in ring]


def _segments(g: tuple[str, Any]) -> list[tuple[tuple[float, float], tuple[float, float]]]:
    kind, c = g
    if kind == "point":
        return []
    lines = [c] if kind == "linestring" else c
    out = []
    for line in lines:
        pts = [(float(p[0]), float(p[1])) for p in line]
        out.extend(zip(pts, pts[1:], strict=False))
    return out


def _in_polygon(pt: tuple[float, float], poly: list) -> bool:
    """Even-odd ray casting over every ring (outer ring plus holes); boundary counts as in."""
    x, y = pt
    inside = False
    for ring in poly:
        pts = [(float(p[0]), float(p[1])) for p in ring]
        for (x1, y1), (x2, y2) in zip(pts, pts[1:] + pts[:1], strict=True):
            if _on_segment(pt, (x1, y1), (x2, y2)):
                return True
            if (y1 > y) != (y2 > y):
                xi = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
                if x < xi:
                    inside = not inside
    return inside


def _cross(o: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def _on_segment(p: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> bool:
    if abs(_cross(a, b, p)) > 1e-12:
        return False
    return min(a[0], b[0]) - 1e-12 <= p[0] <= max(a[0], b[0]) + 1e-12 and \
        min(a[1], b[1]) - 1e-12 <= p[1] <= max(a[1], b[1]) + 1e-12


def _segments_intersect(a, b, c, d) -> bool:  # type: ignore[no-untyped-def]
    d1, d2 = _cross(c, d, a), _cross(c, d, b)
    d3, d4 = _cross(a, b, c), _cross(a, b, d)
    if ((d1 > 0) != (d2 > 0)) and ((d3 > 0) != (d4 > 0)) and d1 and d2 and d3 and d4:
        return True
    return _on_segment(a, c, d) or _on_segment(b, c, d) or _on_segment(c, a, b) or \
        _on_segment(d, a, b)


def _within(g: tuple[str, Any], poly: tuple[str, Any]) -> bool:
    if poly[0] != "polygon":
        if g[0] == "point" and poly[0] == "point":
            return _vertices(g) == _vertices(poly)
        return False
    return all(_in_polygon(v, poly[1]) for v in _vertices(g))


def _intersects(a: tuple[str, Any], b: tuple[str, Any]) -> bool:
    if a[0] == "polygon" and any(_in_polygon(v, a[1]) for v in _vertices(b)):
        return True
    if b[0] == "polygon" and any(_in_polygon(v, b[1]) for v in _vertices(a)):
        return True
    if a[0] == "point" and b[0] == "point":
        return _vertices(a) == _vertices(b)
    if a[0] == "point":
        return any(_on_segment(_vertices(a)[0], s, e) for s, e in _segments(b))
    if b[0] == "point":
        return any(_on_segment(_vertices(b)[0], s, e) for s, e in _segments(a))
    return any(_segments_intersect(s1, e1, s2, e2)
               for s1, e1 in _segments(a) for s2, e2 in _segments(b))


def _closest_on_segment(p, a, b):  # type: ignore[no-untyped-def]
    dx, dy = b[0] - a[0], b[1] - a[1]
    L2 = dx * dx + dy * dy
    if L2 == 0:
        return a
    t = max(0.0, min(1.0, ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / L2))
    return (a[0] + t * dx, a[1] + t * dy)


def _point_distance(p: tuple[float, float], g: tuple[str, Any]) -> float:
    if g[0] == "polygon" and _in_polygon(p, g[1]):
        return 0.0
    cands = _vertices(g) + [_closest_on_segment(p, s, e) for s, e in _segments(g)]
    return min(geodesic_distance(p[1], p[0], q[1], q[0]) for q in cands)


def _distance(a: tuple[str, Any], b: tuple[str, Any]) -> float:
    """R:st-distance.md: the distance between two points; "if used with Polygons will
    return 0" (taken literally: any polygon argument gives 0)."""
    if a[0] == "polygon" or b[0] == "polygon":
        return 0.0
    if _intersects(a, b) and (a[0] != "point" or b[0] != "point"):
        return 0.0
    if a[0] == "point":
        return _point_distance(_vertices(a)[0], b)
    if b[0] == "point":
        return _point_distance(_vertices(b)[0], a)
    return min(
        min(_point_distance(v, b) for v in _vertices(a)),
        min(_point_distance(v, a) for v in _vertices(b)),
    )


def _strictly_inside(pt: tuple[float, float], poly: list) -> bool:
    """Inside the polygon and not on any of its edges."""
    for ring in poly:
        pts = [(float(p[0]), float(p[1])) for p in ring]
        if any(_on_segment(pt, a, b) for a, b in zip(pts, pts[1:] + pts[:1], strict=True)):
            return False
    return _in_polygon(pt, poly)


def _probe_points(g: tuple[str, Any]) -> list[tuple[float, float]]:
    """Vertices and edge midpoints: where an interior intersection shows up."""
    mids = [((a[0] + b[0]) / 2, (a[1] + b[1]) / 2) for a, b in _segments(g)]
    return _vertices(g) + mids


def _proper_crossing(a, b, c, d) -> bool:  # type: ignore[no-untyped-def]
    d1, d2 = _cross(c, d, a), _cross(c, d, b)
    d3, d4 = _cross(a, b, c), _cross(a, b, d)
    return d1 * d2 < 0 and d3 * d4 < 0


def _interiors_meet(a: tuple[str, Any], b: tuple[str, Any]) -> bool:
    """Polygons: some point of one lies strictly inside the other, or two edges cross."""
    if any(_strictly_inside(p, b[1]) for p in _probe_points(a)):
        return True
    if any(_strictly_inside(p, a[1]) for p in _probe_points(b)):
        return True
    return any(_proper_crossing(s1, e1, s2, e2)
               for s1, e1 in _segments(a) for s2, e2 in _segments(b))


def _collinear_overlap(a: tuple[str, Any], b: tuple[str, Any]) -> bool:
    """Lines: two segments lie on one line and share more than a point."""
    for s1, e1 in _segments(a):
        for s2, e2 in _segments(b):
            if abs(_cross(s1, e1, s2)) > 1e-12 or abs(_cross(s1, e1, e2)) > 1e-12:
                continue
            axis = 0 if abs(e1[0] - s1[0]) >= abs(e1[1] - s1[1]) else 1
            lo = max(min(s1[axis], e1[axis]), min(s2[axis], e2[axis]))
            hi = min(max(s1[axis], e1[axis]), max(s2[axis], e2[axis]))
            if hi - lo > 1e-12:
                return True
    return False


def _all_on(a: tuple[str, Any], b: tuple[str, Any]) -> bool:
    return all(any(_on_segment(v, s, e) for s, e in _segments(b)) for v in _vertices(a))


def _overlaps(a: tuple[str, Any], b: tuple[str, Any]) -> bool:
    """R:st-overlaps.md: 1 when the shapes overlap; 0 when they do not, or when one is within
    the other. Shapes of different kinds (a point and a polygon, ...) never overlap."""
    if a[0] != b[0] or a[0] == "point":
        return False
    if a[0] == "linestring":
        return _collinear_overlap(a, b) and not _all_on(a, b) and not _all_on(b, a)
    if _within(a, b) or _within(b, a):
        return False
    return _interiors_meet(a, b)


# --------------------------------------------------------------------------- kernels


@scalar("CreatePoint", args=(2, 2), returns="record")
def createpoint(args: list[Any], ctx: KernelContext) -> pa.Array:
    """CreatePoint(lat, lon) -> {"type": "Point", "coordinates": [lon, lat]} (vectorized)."""
    n = batch_length(args, ctx.length)
    lat = to_float64(args[0], n, "createpoint", 1)
    lon = to_float64(args[1], n, "createpoint", 2)
    valid = pc.and_(pc.is_valid(lat), pc.is_valid(lon))
    inter = np.empty(2 * n, dtype=np.float64)
    inter[0::2] = lon.fill_null(0.0).to_numpy(zero_copy_only=False)
    inter[1::2] = lat.fill_null(0.0).to_numpy(zero_copy_only=False)
    offsets = pa.array(np.arange(0, 2 * n + 1, 2, dtype=np.int32))
    coords = pa.ListArray.from_arrays(offsets, pa.array(inter))
    types = pa.repeat(pa.scalar("Point"), n)
    mask = pc.invert(valid)
    return pa.StructArray.from_arrays([types, coords], fields=list(POINT_TYPE), mask=mask)


def _point_coords(value: Any, fn: str) -> list[float]:
    g = _geo(value, fn)
    if g[0] != "point":
        raise ExecutionError(f"Function {fn} expects points.", code="invalid_argument")
    return [float(g[1][0]), float(g[1][1])]


@scalar("CreateLineString", args=(2, None), returns="record")
def createlinestring(args: list[Any], ctx: KernelContext) -> pa.Array:
    """CreateLineString(p1, p2, ...): a GeoJSON LineString of at least two points."""
    n = batch_length(args, ctx.length)

    def one(*pts: Any) -> dict[str, Any]:
        return {"type": "LineString",
                "coordinates": [_point_coords(p, "createlinestring") for p in pts]}

    return map_values(one, *[as_array(a, n) for a in args], length=n, type=LINE_TYPE)


@scalar("CreatePolygon", args=(4, None), returns="record")
def createpolygon(args: list[Any], ctx: KernelContext) -> pa.Array:
    """CreatePolygon(p1, ..., p1): a GeoJSON Polygon (closed ring, at least 3 points)."""
    n = batch_length(args, ctx.length)

    def one(*pts: Any) -> dict[str, Any]:
        ring = [_point_coords(p, "createpolygon") for p in pts]
        if ring[0] != ring[-1]:
            raise ExecutionError(
                "CreatePolygon: the first and last points must be the same (a closed ring).",
                code="invalid_argument",
            )
        return {"type": "Polygon", "coordinates": [ring]}

    return map_values(one, *[as_array(a, n) for a in args], length=n, type=POLYGON_TYPE)


@scalar("ST_DISTANCE", args=(2, 2), returns="float")
def st_distance(args: list[Any], ctx: KernelContext) -> pa.Array:
    """ST_DISTANCE(a, b): geodesic distance in metres on the WGS-84 ellipsoid."""
    n = batch_length(args, ctx.length)
    return map_values(
        lambda a, b: _distance(_geo(a, "st_distance"), _geo(b, "st_distance")),
        as_array(args[0], n), as_array(args[1], n), length=n, type=pa.float64(),
    )


@scalar("ST_WITHIN", args=(2, 2), returns="bigint")
def st_within(args: list[Any], ctx: KernelContext) -> pa.Array:
    """ST_WITHIN(geo, polygon): 1 if geo lies inside the polygon (planar test), else 0."""
    n = batch_length(args, ctx.length)
    return map_values(
        lambda a, b: int(_within(_geo(a, "st_within"), _geo(b, "st_within"))),
        as_array(args[0], n), as_array(args[1], n), length=n, type=pa.int64(),
    )


@scalar("ST_INTERSECTS", args=(2, 2), returns="bigint")
def st_intersects(args: list[Any], ctx: KernelContext) -> pa.Array:
    """ST_INTERSECTS(a, b): 1 if the shapes intersect (planar test), else 0."""
    n = batch_length(args, ctx.length)
    return map_values(
        lambda a, b: int(_intersects(_geo(a, "st_intersects"), _geo(b, "st_intersects"))),
        as_array(args[0], n), as_array(args[1], n), length=n, type=pa.int64(),
    )


@scalar("ST_OVERLAPS", args=(2, 2), returns="bigint")
def st_overlaps(args: list[Any], ctx: KernelContext) -> pa.Array:
    """ST_OVERLAPS(a, b): 1 if the shapes overlap (planar test), else 0; 0 as well when one
    lies within the other."""
    n = batch_length(args, ctx.length)
    return map_values(
        lambda a, b: int(_overlaps(_geo(a, "st_overlaps"), _geo(b, "st_overlaps"))),
        as_array(args[0], n), as_array(args[1], n), length=n, type=pa.int64(),
    )
