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
