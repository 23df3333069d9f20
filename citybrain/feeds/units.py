"""Unit conversion for readings (pure): factor and offset per (from, to) pair."""

from __future__ import annotations

_LINEAR: dict[tuple[str, str], tuple[float, float]] = {
    ("mm", "m"): (0.001, 0.0),
    ("cm", "m"): (0.01, 0.0),
    ("m", "cm"): (100.0, 0.0),
    ("m", "mm"): (1000.0, 0.0),
    ("km", "m"): (1000.0, 0.0),
    ("mg/m3", "ug/m3"): (1000.0, 0.0),
    ("ug/m3", "mg/m3"): (0.001, 0.0),
    ("F", "C"): (5 / 9, -32 * 5 / 9),
    ("C", "F"): (9 / 5, 32.0),
    ("kPa", "Pa"): (1000.0, 0.0),
    ("Pa", "kPa"): (0.001, 0.0),
    ("MPa", "kPa"): (1000.0, 0.0),
    ("mrad", "deg"): (0.0572958, 0.0),
    ("rad", "deg"): (57.2957795, 0.0),
    ("ppm", "ppb"): (1000.0, 0.0),
    ("ppb", "ppm"): (0.001, 0.0),
    ("mm/s", "m/s"): (0.001, 0.0),
    ("mg", "g"): (0.001, 0.0),  # milli-g (acceleration), as accelerometers report it
    ("g", "mg"): (1000.0, 0.0),
    ("g", "m/s2"): (9.80665, 0.0),
}


def converter(unit: str, to_unit: str | None) -> tuple[float, float]:
    """(factor, offset) with value_in_to_unit = value * factor + offset."""
    if to_unit is None or to_unit == unit:
        return (1.0, 0.0)
    try:
        return _LINEAR[(unit, to_unit)]
    except KeyError:
        known = ", ".join(f"{a}->{b}" for a, b in sorted(_LINEAR))
        raise ValueError(f"no conversion from {unit!r} to {to_unit!r} (known: {known})") from None
