"""Every name a `.pyi` stub promises exists in the compiled extension."""

import ast
import importlib
from importlib import resources

import pytest

MODULES = ["codes", "instruments", "quotes", "throttle", "risk", "ring"]


def stub_names(module: str):
    tree = ast.parse(resources.files("fixgate._fast").joinpath(f"{module}.pyi").read_text())
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


@pytest.mark.parametrize("module", MODULES)
def test_stub_when_compared_to_extension_lists_only_real_names(module):
    runtime = importlib.import_module(f"fixgate._fast.{module}")
    for name, members in stub_names(module):
        assert hasattr(runtime, name), f"{module}.{name}"
        for member in members:
            assert hasattr(getattr(runtime, name), member), f"{module}.{name}.{member}"
