"""The tools' commands, plugged into `citybrain` by the `citybrain.commands` entry points
of tools/pyproject.toml: `bench` and `correlate` (command groups), `chaos` and `simulate`.
Each imports what it runs only when it runs."""
