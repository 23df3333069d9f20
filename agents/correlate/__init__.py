"""Stage `correlate`: events.v1 -> incidents (table, incidents.v1, database)."""
