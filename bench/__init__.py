"""The benchmark suite behind `make bench` (run it with `python -m bench.run`).

Not part of the installed packages: it is run from a checkout, like the tests.
"""
