"""The hot path: Cython risk book, pre-trade checks, rate limits, quote book and SPSC ring.

Nothing here reads a clock, logs, or imports another fixgate module; every time is an argument.
"""
