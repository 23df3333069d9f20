"""Conversions against the published formulas' reference values, and round trips."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from citybrain.geo import crs

# Reference outputs for the input (128.543, 37.065) printed by the widely used
# coordTransform_utils implementation of the published formulas (lon, lat).
REF_IN = (128.543, 37.065)
REFERENCE: list[tuple[Callable[..., tuple[np.ndarray, np.ndarray]], tuple[float, float]]] = [
    (crs.wgs84_to_gcj02, (128.54820547949757, 37.065651049489816)),
    (crs.gcj02_to_bd09, (128.54944656269413, 37.07113427883019)),
    (crs.bd09_to_gcj02, (128.5365893261212, 37.058754503281534)),
    (lambda lon, lat: crs.from_wgs84(lon, lat, "BD-09"), (128.55468192918485, 37.07168344938498)),
]
# The same implementation's GCJ-02 -> WGS-84 is the one-step approximation of the inverse
# (no closed form exists); ours iterates to convergence. Both are checked by mapping the
# result forward again: ours must land on the input, the reference lands ~2 m away.
APPROXIMATE_INVERSES = [
    ("GCJ-02", (128.53779452050244, 37.06434895051018)),
    ("BD-09", (128.53136876750008, 37.0580926428705)),
]


@pytest.mark.parametrize(("convert", "expected"), REFERENCE)
def test_within_one_metre_of_the_reference_values(convert, expected) -> None:  # type: ignore[no-untyped-def]
    lon, lat = convert(*REF_IN)
    assert float(crs.distance_m(lon, lat, *expected)) < 1.0


@pytest.mark.parametrize(("system", "reference"), APPROXIMATE_INVERSES)
def test_inverses_are_exact_where_the_one_step_reference_is_not(system, reference) -> None:  # type: ignore[no-untyped-def]
    ours = crs.to_wgs84(*REF_IN, system)
    assert float(crs.distance_m(*ours, *reference)) < 2.5  # the reference's own error
    ours_error = crs.distance_m(*crs.from_wgs84(*ours, system), *REF_IN)
    reference_error = crs.distance_m(*crs.from_wgs84(*reference, system), *REF_IN)
    assert float(ours_error) < 0.01
    assert float(reference_error) > float(ours_error)


def test_beijing_railway_station() -> None:
    lon, lat = crs.wgs84_to_gcj02(116.42079, 39.90105)
    assert float(crs.distance_m(lon, lat, 116.42703, 39.90245)) < 1.0  # 5-decimal reference


@pytest.mark.parametrize("system", ["GCJ-02", "BD-09"])
def test_round_trips_over_the_city_are_far_below_one_metre(system: str) -> None:
    rng = np.random.default_rng(1)
    lon = rng.uniform(120.85, 122.0, 10_000)
    lat = rng.uniform(30.67, 31.9, 10_000)
    back_lon, back_lat = crs.to_wgs84(*crs.from_wgs84(lon, lat, system), system)
    assert float(np.max(crs.distance_m(lon, lat, back_lon, back_lat))) < 0.01


def test_the_offset_is_hundreds_of_metres_in_shanghai() -> None:
    lon, lat = crs.wgs84_to_gcj02(121.4737, 31.2304)
    assert 300 < float(crs.distance_m(121.4737, 31.2304, lon, lat)) < 800


def test_outside_china_nothing_moves() -> None:
    lon, lat = crs.wgs84_to_gcj02([139.7671, 2.35], [35.6812, 48.85])
    assert list(lon) == [139.7671, 2.35]
    assert list(lat) == [35.6812, 48.85]


@pytest.mark.parametrize(
    ("name", "canonical"),
    [("wgs84", "WGS-84"), ("GCJ02", "GCJ-02"), ("bd-09", "BD-09"), ("Baidu", "BD-09")],
)
def test_names_are_normalised(name: str, canonical: str) -> None:
    assert crs.normalize_crs(name) == canonical


def test_unknown_system_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown coordinate system 'utm50n'"):
        crs.normalize_crs("utm50n")
