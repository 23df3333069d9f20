"""Stage `monitor`: the worker's pipeline counters into `pipeline_counts`."""
