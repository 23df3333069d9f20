"""The HTTP API: departments' tasks and Open311 GeoReport v2."""
