"""Stage `normalize`: raw feed records -> canonical events, readings, dead letters."""
