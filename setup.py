"""Build the extensions of fixgate; all metadata lives in pyproject.toml.

- ``fixgate._fast``: the Cython hot path (C).
- ``fixgate._engine``: the native order path, C++ over QuickFIX C++ (Debian's ``libquickfix-dev``).
- ``fixgate.bench._peers``: native benchmark peers (an echo venue and a load client) over QuickFIX C++.

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

# QuickFIX C++ 1.15.1 as Debian ships it: its headers use dynamic exception specifications (an error
# in C++17), its ABI carries std::auto_ptr (so HAVE_STD_UNIQUE_PTR stays undefined), and no config
# header is installed (HAVE_SSL is ours to define; the library is built with OpenSSL).
QUICKFIX_INCLUDE = Path("/usr/include/quickfix")
CPP_COMPILE_ARGS = EXTRA_COMPILE_ARGS + ["-std=gnu++14", "-faligned-new", "-DHAVE_SSL=1",
                                         "-Wno-deprecated-declarations", "-Wno-deprecated"]

Options.warning_errors = True

ANNOTATE = os.environ.get("FIXGATE_ANNOTATE") == "1"


def require_quickfix_cpp() -> None:
    """Stop with a clear message when QuickFIX C++'s headers are missing."""
    if not (QUICKFIX_INCLUDE / "Application.h").is_file():
        raise SystemExit(
            f"fixgate needs QuickFIX C++ (headers in {QUICKFIX_INCLUDE}, library libquickfix): on Debian or "
            "Ubuntu install the package libquickfix-dev (`apt-get install -y libquickfix-dev`), then build again.")


def native_extension(name: str, pyx: Path, native_dir: Path) -> Extension:
    """A C++ extension: one .pyx and the .cpp files of its native folder, linked to libquickfix."""
    return Extension(
        name,
        [str(pyx)] + [str(path) for path in sorted(native_dir.glob("*.cpp"))],
        include_dirs=[str(native_dir)],
        libraries=["quickfix", "ssl", "crypto"],
        language="c++",
        extra_compile_args=CPP_COMPILE_ARGS,
        depends=[str(path) for path in sorted(native_dir.glob("*.h"))],
    )


extensions = [
    Extension(
        f"fixgate._fast.{path.stem}",
        [str(path)],
        extra_compile_args=EXTRA_COMPILE_ARGS,
    )
    for path in sorted(Path("fixgate/_fast").glob("*.pyx"))
]

NATIVE = [
    ("fixgate._engine.engine", Path("fixgate/_engine/engine.pyx"), Path("fixgate/_engine/native")),
    ("fixgate.bench._peers", Path("fixgate/bench/_peers.pyx"), Path("fixgate/bench/native")),
]
native = [(name, pyx, folder) for name, pyx, folder in NATIVE if pyx.is_file()]
if native:
    require_quickfix_cpp()
extensions += [native_extension(name, pyx, folder) for name, pyx, folder in native]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives=COMPILER_DIRECTIVES,
        annotate=ANNOTATE,
        force=ANNOTATE,
    ),
)
