"""fixgate: a FIX order gateway with a Cython pre-trade risk hot path."""

__version__ = "0.1.0"
