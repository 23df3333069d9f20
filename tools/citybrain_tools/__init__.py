"""citybrain's development tools, a distribution of their own (`pip install -e ./tools`):
`bench` (the benchmarks), `chaos` (fault injection), `sim` (the city simulator),
`accuracy` (the correlator on the simulator's ground truth) and `cli` (their commands,
plugged into `citybrain` through the `citybrain.commands` entry points). The runtime
package `citybrain` never imports them."""
