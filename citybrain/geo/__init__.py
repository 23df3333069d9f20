"""Geo-tagging: coordinate systems, city packs, the spatial index, addresses, devices.

Pure: no Kafka or database imports (loading packs into the database is `citybrain.db.packs`).
"""
