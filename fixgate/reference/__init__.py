"""Plain-Python models of every ``fixgate._fast`` class, with the same names and methods.

They are the oracle of the property tests and the baseline of the benchmarks. Standard library only.
"""
