"""Every name a `.pyi` stub promises exists in the compiled extension."""

import ast
import importlib
from importlib import resources

import pytest

# Every compiled extension of the package with its stub: (package, module).
MODULES = [("fixgate._fast", name) for name in ("codes", "instruments", "quotes", "throttle", "risk", "ring",
                                                 "describe")] + [("fixgate._engine", "engine"),
                                                                 ("fixgate.bench", "_peers")]


def stub_names(package: str, module: str):
    tree = ast.parse(resources.files(package).joinpath(f"{module}.pyi").read_text())
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            members = [item.name for item in node.body if isinstance(item, ast.FunctionDef)]
            members += [item.target.id for item in node.body if isinstance(item, ast.AnnAssign)]
            members += [target.id for item in node.body if isinstance(item, ast.Assign)
                        for target in item.targets]
            yield node.name, members
        elif isinstance(node, ast.FunctionDef):
            yield node.name, []
        elif isinstance(node, ast.AnnAssign):
            yield node.target.id, []


@pytest.mark.parametrize("package, module", MODULES)
def test_stub_when_compared_to_extension_lists_only_real_names(package, module):
    runtime = importlib.import_module(f"{package}.{module}")
    for name, members in stub_names(package, module):
        assert hasattr(runtime, name), f"{module}.{name}"
        for member in members:
            assert hasattr(getattr(runtime, name), member), f"{module}.{name}.{member}"
