"""Stage `maintenance`: plain-PostgreSQL housekeeping from inside the worker."""
