"""Stage `ping`: the wiring probe (pipeline.ping.v1 -> pipeline_pings)."""
