"""`python -m citybrain.cli`: the `citybrain` command (the workers and the API that
`citybrain run` and the benchmarks start run this way)."""

from citybrain.cli import main

if __name__ == "__main__":
    main()
