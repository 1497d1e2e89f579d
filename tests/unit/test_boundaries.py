"""Module boundaries from DESIGN.md, held by reading the imports."""

import ast
import re
import sys
from pathlib import Path

import fixgate

PACKAGE = Path(fixgate.__file__).parent
IMPORT = re.compile(r"^\s*(?:from\s+([\w.]+)\s+c?import|c?import\s+([\w.]+))", re.M)


def imports_of(path: Path) -> set[str]:
    if path.suffix == ".py":
        tree = ast.parse(path.read_text())
        names = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names.add(node.module)
        return names
    return {from_name or plain for from_name, plain in IMPORT.findall(path.read_text())}


def test_fast_when_imports_read_uses_only_c_libraries_numpy_and_itself():
    for path in sorted(PACKAGE.joinpath("_fast").glob("*.p[yx][xd]")):
        for name in imports_of(path):
            root = name.split(".")[0]
            assert (name.startswith("fixgate._fast") or root in ("libc", "posix", "cpython", "numpy", "enum")), (
                f"{path.name} imports {name}")


def test_reference_when_imports_read_uses_only_the_standard_library():
    for path in sorted(PACKAGE.joinpath("reference").glob("*.py")):
        for name in imports_of(path):
            root = name.split(".")[0]
            assert name.startswith("fixgate.reference") or root in sys.stdlib_module_names, (
                f"{path.name} imports {name}")


def test_core_when_imports_read_never_reaches_outward():
    outward = ("quickfix", "fixgate.fix", "fixgate.simulator", "fixgate.ops", "fixgate.gateway", "fixgate.cli")
    for path in sorted(PACKAGE.joinpath("core").rglob("*.py")):
        for name in imports_of(path):
            assert not name.startswith(outward), f"{path.name} imports {name}"


def test_core_when_imports_read_never_reaches_the_native_engine():
    # The engine drives the state thread through callables (drain, wait) and events; core knows its
    # records only by their layout (EVENT_DTYPE), never by importing it.
    for path in sorted(PACKAGE.joinpath("core").rglob("*.py")):
        for name in imports_of(path):
            assert not name.startswith("fixgate._engine"), f"{path.name} imports {name}"
        assert "fixgate._engine" not in path.read_text(), f"{path.name} names fixgate._engine (a dynamic import?)"


QUICKFIX_INCLUDE = re.compile(r'^\s*#\s*include\s*["<]quickfix/|cdef\s+extern\s+from\s+["<]quickfix/', re.M)
NATIVE_SOURCES = (".c", ".cc", ".cpp", ".cxx", ".h", ".hh", ".hpp", ".pyx", ".pxd", ".pxi")


def test_native_sources_when_includes_read_only_the_engine_and_bench_peers_include_quickfix():
    allowed = (PACKAGE / "_engine" / "native", PACKAGE / "bench" / "native")
    including = [path for path in sorted(PACKAGE.rglob("*")) if path.suffix in NATIVE_SOURCES and path.is_file()
                 and QUICKFIX_INCLUDE.search(path.read_text(errors="replace"))]
    assert including, "no QuickFIX include found at all: the pattern no longer matches the sources"
    for path in including:
        assert any(folder in path.parents for folder in allowed), (
            f"{path.relative_to(PACKAGE)} includes QuickFIX headers outside _engine/native and bench/native")


def test_firm_when_imports_read_reaches_only_core_and_nats():
    # The firm link sees its gateway through FirmHooks, never by importing it; nothing but the firm
    # package (and the composition root, the CLI and the tests) imports nats.
    outward = ("quickfix", "fixgate.fix", "fixgate.simulator", "fixgate.ops", "fixgate.gateway", "fixgate.cli",
               "fixgate._engine", "fixgate._fast")
    for path in sorted(PACKAGE.joinpath("firm").rglob("*.py")):
        for name in imports_of(path):
            assert not name.startswith(outward), f"{path.name} imports {name}"
    for path in sorted(PACKAGE.rglob("*.py")):
        if PACKAGE / "firm" not in path.parents:
            assert not any(name == "nats" or name.startswith("nats.") for name in imports_of(path)), (
                f"{path.relative_to(PACKAGE)} imports nats")
