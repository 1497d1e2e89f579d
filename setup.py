"""Build the Cython extensions of ``fixgate._fast``; all metadata lives in pyproject.toml.

Set ``FIXGATE_ANNOTATE=1`` to write ``cython -a`` HTML next to each ``.pyx`` (it re-cythonizes all).
"""

import os
from pathlib import Path

from Cython.Build import cythonize
from Cython.Compiler import Options
from setuptools import Extension, setup

# One directive table for every extension. A file that needs another value says so in a header
# comment with the reason.
COMPILER_DIRECTIVES = {
    "language_level": 3,
    "boundscheck": False,
    "wraparound": False,
    "cdivision": True,
    "initializedcheck": False,
    "embedsignature": True,
}

# -ffp-contract=off: no fused multiply-add, so a float expression rounds exactly as the
# plain-Python reference model computes it, and the property tests can demand equality.
EXTRA_COMPILE_ARGS = ["-O3", "-ffp-contract=off", "-fno-strict-aliasing"]

Options.warning_errors = True

ANNOTATE = os.environ.get("FIXGATE_ANNOTATE") == "1"

extensions = [
    Extension(
        f"fixgate._fast.{path.stem}",
        [str(path)],
        extra_compile_args=EXTRA_COMPILE_ARGS,
    )
    for path in sorted(Path("fixgate/_fast").glob("*.pyx"))
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives=COMPILER_DIRECTIVES,
        annotate=ANNOTATE,
        force=ANNOTATE,
    ),
)
